"""The otlp renderer: the run's spans, metrics and log records to a backend over OTLP.

Live, the spans go through a BatchSpanProcessor with the OTLP exporter on the emitter's own
TracerProvider (span_processor()), so the SDK's spans are exported as they are. Replaying a
recording (`mlpstorage events replay`), where spans exist only as their finished events, it
rebuilds each span from its event, with the original timestamps and trace ids. Metrics come
from renderers/metrics.py, log records from renderers/otlp_logs.py, both made from events.

Configuration is the standard OTEL_* environment, read here once for every signal:
OTEL_EXPORTER_OTLP_[TRACES_|METRICS_|LOGS_]ENDPOINT, _HEADERS, _TIMEOUT (seconds; 5 when
unset), _PROTOCOL (http/protobuf by default, or grpc), _INSECURE; OTEL_METRICS_EXPORTER,
OTEL_LOGS_EXPORTER, OTEL_TRACES_EXPORTER=none, OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES and
OTEL_SDK_DISABLED. A missing, dead or traces-only backend never hangs the run and is said once
per signal (renderers/otlp_delivery.py).
"""

from __future__ import annotations

import importlib
import logging
import os
import re
import sys
import urllib.parse
from typing import Callable

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from mlpstorage.emitter.core import default_resource
from mlpstorage.emitter.events import KINDS
from mlpstorage.emitter.rebuild import span_from_event
from mlpstorage.errors import UsageError

from . import exporters, metrics_exporters, sdk_disabled
from .otlp_delivery import Closing, CountingExporter, Delivery, close_all, http_session, watch_grpc

DEFAULT_TIMEOUT_S = 5.0


def _variable(name: str, signal: str) -> str | None:
    """The variable that sets `name` for a signal (TRACES, METRICS or LOGS): the signal's own first."""
    return next((v for v in (f"OTEL_EXPORTER_OTLP_{signal}_{name}", f"OTEL_EXPORTER_OTLP_{name}") if os.environ.get(v)),
                None)


def _env(name: str, signal: str = "TRACES") -> str | None:
    variable = _variable(name, signal)
    return os.environ[variable] if variable else None


def check_headers(signal: str = "TRACES") -> None:
    """OTEL_EXPORTER_OTLP_[SIGNAL_]HEADERS must be key=value pairs. The SDK would log a bad
    value, secret and all, and go on; here it is one error that never shows the value."""
    for name in (f"OTEL_EXPORTER_OTLP_{signal}_HEADERS", "OTEL_EXPORTER_OTLP_HEADERS"):
        value = os.environ.get(name, "")
        pairs = [p for p in value.split(",") if p.strip()]
        if any("=" not in p or not p.split("=", 1)[0].strip() for p in pairs):
            raise UsageError(f"{name} is not a comma-separated list of key=value pairs "
                             "(its value is not shown: it may hold a secret)")


def _insecure(signal: str = "TRACES") -> bool:
    value = (_env("INSECURE", signal) or "false").strip().lower()
    if value not in ("true", "false"):
        raise UsageError(f"OTEL_EXPORTER_OTLP_INSECURE={value!r} is not true or false")
    return value == "true"


def check_endpoint(protocol: str, signal: str = "TRACES") -> str | None:
    """The endpoint, checked at start (one line, not a late warning), as the OpenTelemetry
    specification reads it: a URL with an http or https scheme and a host. For gRPC only,
    host:port without a scheme is allowed; OTEL_EXPORTER_OTLP_INSECURE=true then means
    plaintext, else TLS. Returns the endpoint to give the exporter (None: its own default)."""
    name = _variable("ENDPOINT", signal)
    if name is None:
        return None
    value = os.environ[name].strip()
    parsed = urllib.parse.urlsplit(value if "://" in value else f"//{value}")
    try:
        port_ok = parsed.port is None or 0 < parsed.port < 65536
    except ValueError:
        port_ok = False
    host_ok = bool(parsed.hostname) and re.fullmatch(r"[\w.:-]+", parsed.hostname) is not None
    if not host_ok or not port_ok or (parsed.scheme and parsed.scheme not in ("http", "https")):
        raise UsageError(f"{name}={value!r} is not an OTLP endpoint (expected e.g. http://collector:4318"
                         + (" or collector:4317" if protocol == "grpc" else "") + ")")
    if not parsed.scheme:
        if protocol != "grpc":
            raise UsageError(f"{name}={value!r} has no scheme: use http://{value} (or https://)")
        return ("http://" if _insecure(signal) else "https://") + value
    return None


def _protocol(signal: str) -> str:
    protocol = (_env("PROTOCOL", signal) or "http/protobuf").strip().lower()
    if protocol not in ("grpc", "http/protobuf", "http"):
        raise UsageError(f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol!r} is not supported (use http/protobuf or grpc)")
    return protocol


# signal -> the exporter classes (module, class) for gRPC and for HTTP
_EXPORTERS = {
    "TRACES": (("opentelemetry.exporter.otlp.proto.grpc.trace_exporter", "OTLPSpanExporter"),
               ("opentelemetry.exporter.otlp.proto.http.trace_exporter", "OTLPSpanExporter")),
    "METRICS": (("opentelemetry.exporter.otlp.proto.grpc.metric_exporter", "OTLPMetricExporter"),
                ("opentelemetry.exporter.otlp.proto.http.metric_exporter", "OTLPMetricExporter")),
    "LOGS": (("opentelemetry.exporter.otlp.proto.grpc._log_exporter", "OTLPLogExporter"),
             ("opentelemetry.exporter.otlp.proto.http._log_exporter", "OTLPLogExporter")),
}


def make_exporter(signal: str = "TRACES", delivery: Delivery | None = None):
    """The OTLP exporter the environment asks for (spans, or signal="METRICS" or "LOGS"),
    and a description for messages (protocol and endpoint only: headers may hold secrets and
    are never shown). delivery, when given, hears every answer of the backend."""
    check_headers(signal)
    protocol = _protocol(signal)
    timeout = export_timeout_s(signal)
    endpoint = check_endpoint(protocol, signal)
    grpc_class, http_class = _EXPORTERS[signal]
    if protocol == "grpc":
        # gRPC's C core writes its own connection errors straight to stderr, over any live
        # display; this renderer reports failures itself, once.
        os.environ.setdefault("GRPC_VERBOSITY", "NONE")
        description = f"grpc {endpoint or _env('ENDPOINT', signal) or 'localhost:4317'}"
        if delivery is not None:
            delivery.description = description
            watch_grpc(signal.lower(), delivery)
        extra = {"endpoint": endpoint, "insecure": endpoint.startswith("http://")} if endpoint else {}
        return _class(grpc_class)(timeout=timeout, **extra), description
    description = f"http/protobuf {_env('ENDPOINT', signal) or 'http://localhost:4318'}"
    extra = {}
    if delivery is not None:
        delivery.description = description
        extra["session"] = http_session(delivery)
    return _class(http_class)(timeout=timeout, **extra), description


def _class(where: tuple[str, str]):
    module, name = where
    return getattr(importlib.import_module(module), name)


def exporter_names(signal: str) -> set[str]:
    """OTEL_{signal}_EXPORTER as a set of names: otlp when unset, none meaning none. For logs
    otlp and console are supported (others are a usage error); for traces anything but none
    means otlp."""
    variable = f"OTEL_{signal}_EXPORTER"
    names = exporters(signal) or {"otlp"}
    if signal != "LOGS":  # as before logs were exported: anything but none means otlp
        return set() if "none" in names else {"otlp"}
    supported = {"otlp", "console", "none"}
    if not names <= supported:
        raise UsageError(f"{variable}={os.environ[variable]!r} is not supported (use {', '.join(sorted(supported))})")
    return set() if "none" in names else names


def export_timeout_s(signal: str = "TRACES") -> float:
    """Seconds each export may take: OTEL_EXPORTER_OTLP_[SIGNAL_]TIMEOUT, else DEFAULT_TIMEOUT_S.

    Parsed here, and handed to the exporter explicitly, so that the exporter and the wait at
    exit agree, and a bad value is one usage error rather than a traceback."""
    name = _variable("TIMEOUT", signal)
    if name is None:
        return DEFAULT_TIMEOUT_S
    raw = os.environ[name]
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not 0 < value < float("inf"):
        raise UsageError(f"{name}={raw!r} is not a positive number of seconds")
    return value


class _CountingExporter(CountingExporter, SpanExporter):
    """Counts what each export carried into the traces' Delivery."""

    SUCCESS, FAILURE = SpanExportResult.SUCCESS, SpanExportResult.FAILURE


class _CountingProcessor(BatchSpanProcessor):
    """Counts the spans handed to it, to say at the end how many were not delivered."""

    def __init__(self, exporter: _CountingExporter, delivery: Delivery, **kwargs):
        super().__init__(exporter, **kwargs)
        self._delivery = delivery

    def on_end(self, span: ReadableSpan) -> None:
        self._delivery.hand()
        super().on_end(span)


class OtlpRenderer:
    def __init__(self, exporter: SpanExporter | None = None, description: str = "", warn: Callable[[str], None] | None = None,
                 flush_timeout_s: float | None = None, metrics=None, resource: Resource | None = None, logs=None):
        """exporter: spans go there instead of where the environment says (and metrics go to
        `metrics`, an OtlpMetrics, logs to `logs`, an OtlpLogs, or nowhere); resource: the one
        the edge made for this process (the emitter's), else the default."""
        exporter_given = exporter is not None
        self.disabled = exporter is None and sdk_disabled()
        self._warn = warn or (lambda message: print(f"mlpstorage: warning: {message}", file=sys.stderr))
        self._live = False  # True once the emitter took span_processor(): events are then not rebuilt
        self._resource = resource
        self._metrics = self._logs = self._processor = None
        if self.disabled:
            return
        # The exporters log every failed batch (with tracebacks) to the root logger, which would
        # draw over the live display; this renderer reports failures itself, once.
        for logger in ("opentelemetry.exporter", "opentelemetry.util.re",  # the latter logs header values
                       "opentelemetry.sdk.metrics", "opentelemetry.sdk._shared_internal", "opentelemetry.sdk._logs"):
            logging.getLogger(logger).setLevel(logging.CRITICAL)
        self._traces = Delivery("TRACES", "spans", description)
        if exporter is None and exporter_names("TRACES"):
            exporter, self._traces.description = make_exporter("TRACES", self._traces)
        if exporter is not None:
            self._exporter = _CountingExporter(exporter, self._traces)
            self._processor = _CountingProcessor(self._exporter, self._traces, schedule_delay_millis=1000)
        self._flush_timeout_s = flush_timeout_s or export_timeout_s() + 1.0
        if not exporter_given:
            metrics = metrics if metrics is not None else _otlp_metrics(self.resource)
            logs = logs if logs is not None else _otlp_logs(self.resource)
        self._metrics, self._logs = metrics, logs

    @property
    def resource(self) -> Resource:
        if self._resource is None:
            self._resource = default_resource()
        return self._resource

    @classmethod
    def from_options(cls, options) -> "OtlpRenderer":
        return cls(resource=options.resource)

    def span_processor(self) -> BatchSpanProcessor | None:
        """For a live run: the processor to hang on the emitter's TracerProvider."""
        if self.disabled:
            return None
        self._live = True
        if self._metrics is not None:
            self._metrics.go_live()
        return self._processor

    def handle(self, event: dict) -> None:
        if self.disabled:
            return
        if self._metrics is not None:
            self._metrics.handle(event)
        if self._logs is not None:
            self._logs.handle(event)
        if self._live or self._processor is None:  # live, the spans go through span_processor()
            return
        kind, _, what = event["type"].partition(".")
        if kind in KINDS and what == "finished":
            self._processor.on_end(span_from_event(event, self.resource))

    def close(self) -> None:
        """Sends what is left of every signal at once, waits as renderers/otlp_delivery.py says
        (a dead or silent endpoint: about GRACE_S in a live run), and warns once per signal
        that lost something or that the backend refused."""
        if self.disabled:
            return
        closings = []
        if self._processor is not None:
            closings.append(Closing(self._traces, self._processor.shutdown, self._exporter.shutdown,
                                    self._flush_timeout_s))
        closings += [part.closing() for part in (self._metrics, self._logs) if part is not None]
        for problem in close_all([c for c in closings if c is not None], self._live):
            self._warn(problem)


def _otlp_metrics(resource: Resource):
    """Metrics over OTLP, when OTEL_METRICS_EXPORTER asks for them (it does when unset)."""
    if "otlp" not in metrics_exporters():
        return None
    from .metrics import OtlpMetrics

    delivery = Delivery("METRICS", "metrics", "", label="metrics ")
    exporter, _ = make_exporter("METRICS", delivery)
    return OtlpMetrics(exporter, delivery, export_timeout_s("METRICS"), resource)


def _otlp_logs(resource: Resource):
    """Log records over OTLP or to the console, as OTEL_LOGS_EXPORTER asks (otlp when unset)."""
    names = exporter_names("LOGS")
    if not names:
        return None
    from .otlp_logs import OtlpLogs

    delivery = Delivery("LOGS", "log records", "console", label="logs ")
    if "otlp" in names:
        exporter, _ = make_exporter("LOGS", delivery)
        if "console" in names:
            exporter = _Both(exporter, _console_log_exporter())
    else:
        exporter = _console_log_exporter()
    return OtlpLogs(exporter, delivery, export_timeout_s("LOGS"), resource)


def _console_log_exporter():
    from opentelemetry.sdk._logs.export import ConsoleLogRecordExporter

    return ConsoleLogRecordExporter(out=sys.stdout)  # its default is the stdout of when the SDK was imported


class _Both:
    """Two log exporters as one (OTEL_LOGS_EXPORTER=otlp,console): the first one's result counts."""

    def __init__(self, first, second):
        self._exporters = (first, second)

    def export(self, batch):
        result = self._exporters[0].export(batch)
        self._exporters[1].export(batch)
        return result

    def shutdown(self):
        for exporter in self._exporters:
            exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return all(e.force_flush(timeout_millis) for e in self._exporters)
