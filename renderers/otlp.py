"""The otlp renderer: exports the run's spans to a tracing backend over OTLP.

Live, it is a BatchSpanProcessor with the OTLP exporter on the emitter's own TracerProvider
(span_processor()), so the SDK's spans are exported as they are. Replaying a recording
(`mlpstorage events replay`), where spans exist only as their finished events, it rebuilds
each span from its event, with the original timestamps and trace ids.

Configuration is the standard OTEL_* environment: OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT,
_HEADERS, _TIMEOUT (seconds; 5 when unset, so a dead endpoint costs little), _PROTOCOL
(http/protobuf by default, or grpc), OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES and
OTEL_SDK_DISABLED. A missing or dead endpoint never hangs the run: spans are sent from a
background thread, the wait at exit is bounded, and one warning says what was lost.
"""

from __future__ import annotations

import logging
import os
import re
import urllib.parse
import sys
import threading
from typing import Callable, Sequence

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from mlpstorage.emitter.core import default_resource
from mlpstorage.emitter.events import KINDS
from mlpstorage.emitter.rebuild import span_from_event
from mlpstorage.errors import UsageError

from . import metrics_exporters, sdk_disabled

DEFAULT_TIMEOUT_S = 5.0


def _variable(name: str, signal: str) -> str | None:
    """The variable that sets `name` for a signal (TRACES or METRICS): the signal's own first."""
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


def make_exporter(signal: str = "TRACES"):
    """The OTLP exporter the environment asks for (spans, or metrics with signal="METRICS"),
    and a description for messages (protocol and endpoint only: headers may hold secrets and
    are never shown)."""
    check_headers(signal)
    protocol = _protocol(signal)
    timeout = export_timeout_s(signal)
    endpoint = check_endpoint(protocol, signal)
    if protocol == "grpc":
        # gRPC's C core writes its own connection errors straight to stderr, over any live
        # display; this renderer reports failures itself, once.
        os.environ.setdefault("GRPC_VERBOSITY", "NONE")
        if signal == "TRACES":
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as Exporter
        else:
            from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter as Exporter

        extra = {"endpoint": endpoint, "insecure": endpoint.startswith("http://")} if endpoint else {}
        return Exporter(timeout=timeout, **extra), f"grpc {endpoint or _env('ENDPOINT', signal) or 'localhost:4317'}"
    if signal == "TRACES":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as Exporter
    else:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter as Exporter
    return Exporter(timeout=timeout), f"http/protobuf {_env('ENDPOINT', signal) or 'http://localhost:4318'}"


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


class _CountingExporter(SpanExporter):
    """Remembers whether any export failed, so the renderer can warn once at the end."""

    def __init__(self, inner: SpanExporter):
        self._inner = inner
        self.failed_spans = 0
        self.sent_spans = 0
        self._lock = threading.Lock()
        self._shut_down = False

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        try:
            result = self._inner.export(spans)
        except Exception:
            result = SpanExportResult.FAILURE
        with self._lock:
            if result is SpanExportResult.SUCCESS:
                self.sent_spans += len(spans)
            else:
                self.failed_spans += len(spans)
        return result

    def shutdown(self) -> None:
        with self._lock:  # once: close() may stop the exporter before the processor's shutdown does
            if self._shut_down:
                return
            self._shut_down = True
        self._inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._inner.force_flush(timeout_millis)


class _CountingProcessor(BatchSpanProcessor):
    """Counts the spans handed to it, to say at the end how many were not delivered."""

    handed = 0

    def on_end(self, span: ReadableSpan) -> None:
        self.handed += 1
        super().on_end(span)


class OtlpRenderer:
    def __init__(self, exporter: SpanExporter | None = None, description: str = "", warn: Callable[[str], None] | None = None,
                 flush_timeout_s: float | None = None, metrics=None, resource: Resource | None = None):
        """exporter: spans go there instead of where the environment says (and metrics go to
        `metrics`, an OtlpMetrics, or nowhere); resource: the one the edge made for this
        process (the emitter's), else the default."""
        exporter_given = exporter is not None
        self.disabled = exporter is None and sdk_disabled()
        self._warn = warn or (lambda message: print(f"mlpstorage: warning: {message}", file=sys.stderr))
        self._live = False  # True once the emitter took span_processor(): events are then not rebuilt
        self._resource = resource
        self._metrics = None
        if self.disabled:
            return
        if exporter is None:
            exporter, description = make_exporter()
        # The exporters log every failed batch (with tracebacks) to the root logger, which would
        # draw over the live display; this renderer reports failures itself, once.
        for logger in ("opentelemetry.exporter", "opentelemetry.util.re",  # the latter logs header values
                       "opentelemetry.sdk.metrics"):
            logging.getLogger(logger).setLevel(logging.CRITICAL)
        self._description = description
        if metrics is None and exporter_given is False and "otlp" in metrics_exporters():
            from .metrics import OtlpMetrics

            metric_exporter, metric_description = make_exporter("METRICS")
            metrics = OtlpMetrics(metric_exporter, metric_description, export_timeout_s("METRICS"),
                                  resource or default_resource())
        self._metrics = metrics
        self._exporter = _CountingExporter(exporter)
        self._processor = _CountingProcessor(self._exporter, schedule_delay_millis=1000)
        self._flush_timeout_s = flush_timeout_s or export_timeout_s() + 1.0

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
        if self._live:  # the spans go through span_processor()
            return
        kind, _, what = event["type"].partition(".")
        if kind in KINDS and what == "finished":
            if self._resource is None:
                self._resource = default_resource()
            self._processor.on_end(span_from_event(event, self._resource))

    def close(self) -> None:
        if self.disabled:
            return
        # BatchSpanProcessor.force_flush ignores its timeout (opentelemetry-python#4568) and waits
        # for an export already in flight before starting its own, so against a silent backend it
        # could block for twice the export timeout or more. It runs in a daemon thread instead,
        # and the wait here is bounded by _flush_timeout_s.
        flusher = threading.Thread(target=self._processor.force_flush, name="mlpstorage-otlp-flush", daemon=True)
        flusher.start()
        flusher.join(self._flush_timeout_s)
        flushed = not flusher.is_alive()
        if flushed:
            self._processor.shutdown()
        else:
            # Give up: stopping the exporter aborts its retries and refuses further batches. The
            # processor's shutdown joins its worker, which waits for the request still in flight,
            # so it runs in the background; both threads end when that request does.
            try:
                self._exporter.shutdown()
            except Exception:
                pass
            threading.Thread(target=self._processor.shutdown, name="mlpstorage-otlp-shutdown", daemon=True).start()
        handed = self._processor.handed
        lost = handed - self._exporter.sent_spans
        if lost > 0 or not flushed:
            self._warn(f"OTLP export to {self._description} failed: {lost} of {handed} spans not delivered")
        if self._metrics is not None and (problem := self._metrics.close()):
            self._warn(problem)
