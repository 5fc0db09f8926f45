"""The run's log messages as OpenTelemetry log records, made from the event stream.

Every `log` event (the launcher's own messages, structlog's and stdlib logging's from
in-process code: mlpstorage/emitter/logs.py makes them all `log` events) becomes one record of
the SDK's LoggerProvider, with the same resource as the traces: its level as a severity
(SEVERITY), its message as the body, its other fields as attributes (log_attributes), its
original time, and the trace and span id of the span it was logged in. A stdlib record keeps
its logger's name as the instrumentation scope, as the SDK's own LoggingHandler does.

A child's output lines (`output` events) become records too only when
MLPSTORAGE_OTLP_OUTPUT_LOGS=1 (OUTPUT_LOGS_VARIABLE): a chatty run prints hundreds of thousands
of lines, each record costs the launcher CPU, and the batch queue drops what it cannot send in
time (docs/rendering.md has the figures). They stay in events.jsonl and the run folder either way.

Live and replayed alike, records are made from events, so `events replay --render otlp` sends
them with their original times and ids.
"""

from __future__ import annotations

import json
import os

from opentelemetry import trace
from opentelemetry._logs import SeverityNumber
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, LogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.resources import Resource
from opentelemetry.semconv.attributes.exception_attributes import EXCEPTION_STACKTRACE
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from mlpstorage import __version__
from mlpstorage.emitter.events import LIFTED, LOG, OUTPUT, ns_from_iso, output_lines

from .otlp_delivery import Closing, CountingExporter, Delivery

# The schema's levels -> (OpenTelemetry severity number, severity text). status and result are
# kinds of info: a stage's own status line, and a headline figure of the run.
SEVERITY = {
    "debug": (SeverityNumber.DEBUG, "DEBUG"),
    "info": (SeverityNumber.INFO, "INFO"),
    "status": (SeverityNumber.INFO2, "STATUS"),
    "result": (SeverityNumber.INFO4, "RESULT"),
    "warning": (SeverityNumber.WARN, "WARNING"),
    "error": (SeverityNumber.ERROR, "ERROR"),
}
OUTPUT_LOGS_VARIABLE = "MLPSTORAGE_OTLP_OUTPUT_LOGS"
SCOPE_NAME = "mlpstorage"
# semconv's log.iostream (still in its incubating set): stdout or stderr of an output line
LOG_IOSTREAM = "log.iostream"
OUTPUT_SOURCE = "mlpstorage.output.source"
# Fields of a log event that are not attributes: the record has them in its own places.
_NOT_ATTRIBUTES = {"schema", "type", "timestamp", "level", "message", "trace_id", "span_id", "logger"}
# The stage fields as the spans name them (mlpstorage.stage.index ...), exception as semconv does.
_RENAMED = {**{field: key for key, field in LIFTED.items()}, "exception": EXCEPTION_STACKTRACE}


def output_logs_wanted() -> bool:
    """Whether a child's output lines go out as log records too (MLPSTORAGE_OTLP_OUTPUT_LOGS=1)."""
    return os.environ.get(OUTPUT_LOGS_VARIABLE, "").strip().lower() in ("1", "true", "yes")


def log_attributes(event: dict) -> dict:
    """A log event's own fields as OpenTelemetry attributes: nested objects flattened to dotted
    keys, lists of one primitive type kept, anything else as its JSON text, nulls left out."""
    attributes: dict = {}
    for key, value in event.items():
        if key not in _NOT_ATTRIBUTES:
            _flatten(_RENAMED.get(key, key), value, attributes)
    return attributes


def _flatten(key: str, value, into: dict) -> None:
    if value is None:
        return
    if isinstance(value, dict):
        for inner, item in value.items():
            _flatten(f"{key}.{inner}", item, into)
    elif _primitive(value):
        into[key] = value
    elif isinstance(value, (list, tuple)) and value and all(_primitive(v) for v in value) \
            and len({type(v) for v in value}) == 1:
        into[key] = list(value)
    else:
        into[key] = json.dumps(value, default=str)


def _primitive(value) -> bool:
    if isinstance(value, int) and not isinstance(value, bool):
        return -2**63 <= value < 2**63  # OTLP's int is 64-bit
    return isinstance(value, (str, bool, float))


def span_context(event: dict):
    """The OpenTelemetry context of the span an event belongs to (its trace_id and span_id),
    or None outside any span or when the ids are malformed (a recording is untrusted input)."""
    try:
        trace_id, span_id = int(event["trace_id"], 16), int(event["span_id"], 16)
    except (KeyError, TypeError, ValueError):
        return None
    if not (0 < trace_id < 2**128 and 0 < span_id < 2**64):
        return None
    parent = SpanContext(trace_id, span_id, is_remote=False, trace_flags=TraceFlags(TraceFlags.SAMPLED))
    return trace.set_span_in_context(NonRecordingSpan(parent))


class _CountingLogExporter(CountingExporter, LogRecordExporter):
    """Counts what each export carried into the signal's Delivery."""

    SUCCESS, FAILURE = LogRecordExportResult.SUCCESS, LogRecordExportResult.FAILURE


class OtlpLogs:
    """Log records from events, through a LoggerProvider and its batch processor."""

    def __init__(self, exporter: LogRecordExporter, delivery: Delivery, timeout_s: float, resource: Resource,
                 output_lines: bool | None = None):
        """output_lines: whether output events become records (default: output_logs_wanted())."""
        self.delivery = delivery
        self._timeout_s = timeout_s
        self._exporter = _CountingLogExporter(exporter, delivery)
        self._processor = BatchLogRecordProcessor(self._exporter, schedule_delay_millis=1000)
        self._provider = LoggerProvider(resource=resource, shutdown_on_exit=False)
        self._provider.add_log_record_processor(self._processor)
        self._logger = self._provider.get_logger(SCOPE_NAME, __version__)
        self._output_lines = output_logs_wanted() if output_lines is None else output_lines

    def handle(self, event: dict) -> None:
        if event["type"] == LOG:
            self._emit_log(event)
        elif event["type"] == OUTPUT and self._output_lines:
            self._emit_output(event)

    def _emit_log(self, event: dict) -> None:
        number, text = SEVERITY.get(event.get("level"), (SeverityNumber.UNSPECIFIED, None))
        name = event.get("logger")
        logger = self._provider.get_logger(name) if isinstance(name, str) and name else self._logger
        logger.emit(timestamp=ns_from_iso(event["timestamp"]), context=span_context(event), severity_number=number,
                    severity_text=text, body=str(event.get("message", "")), attributes=log_attributes(event))
        self.delivery.hand()

    def _emit_output(self, event: dict) -> None:
        attributes = {LOG_IOSTREAM: event.get("stream", "stdout")}
        if isinstance(event.get("source"), str):
            attributes[OUTPUT_SOURCE] = event["source"]
        timestamp, context = ns_from_iso(event["timestamp"]), span_context(event)
        lines = output_lines(event)
        for line in lines:
            self._logger.emit(timestamp=timestamp, context=context, body=line, attributes=attributes)
        self.delivery.hand(len(lines))

    def closing(self) -> Closing:
        """The last export at close (the processor's shutdown sends what is queued)."""
        return Closing(self.delivery, self._processor.shutdown, self._exporter.shutdown, self._timeout_s + 1.0)
