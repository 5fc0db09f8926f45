"""Turns the emitter's OpenTelemetry spans into events, as a SpanProcessor.

Spans are the single source of time: a started event carries the span's start time, a
finished event its end time and duration, so no renderer keeps a timer of its own.
"""

from __future__ import annotations

from typing import Callable

from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.trace import StatusCode

from .events import iso_from_ns

KIND = "mlpstorage.kind"
STAGE_INDEX = "mlpstorage.stage.index"
STAGE_COUNT = "mlpstorage.stage.count"
TOTAL = "mlpstorage.total"
COMPLETED = "mlpstorage.completed"
DESCRIPTION = "mlpstorage.description"

# Span attributes lifted to top-level event fields, for renderers and grep.
_LIFTED = {
    STAGE_INDEX: "stage_index",
    STAGE_COUNT: "stage_count",
    TOTAL: "total",
    COMPLETED: "completed",
    DESCRIPTION: "description",
}


def _hex_ids(span: ReadableSpan) -> dict:
    ctx = span.get_span_context()
    return {
        "trace_id": format(ctx.trace_id, "032x"),
        "span_id": format(ctx.span_id, "016x"),
        "parent_span_id": format(span.parent.span_id, "016x") if span.parent else None,
    }


def _common(span: ReadableSpan) -> dict:
    attributes = dict(span.attributes or {})
    fields = {"name": span.name, **_hex_ids(span)}
    for key, field in _LIFTED.items():
        if key in attributes:
            fields[field] = attributes[key]
    fields["attributes"] = {k: v if not isinstance(v, tuple) else list(v) for k, v in attributes.items()}
    fields["start_unix_nano"] = span.start_time
    return fields


def started_fields(span: ReadableSpan) -> dict:
    fields = _common(span)
    fields["timestamp"] = iso_from_ns(span.start_time)
    return fields


def finished_fields(span: ReadableSpan) -> dict:
    fields = _common(span)
    failed = span.status.status_code is StatusCode.ERROR
    fields.update(
        timestamp=iso_from_ns(span.end_time),
        end_unix_nano=span.end_time,
        duration_s=round((span.end_time - span.start_time) / 1e9, 6),
        status="error" if failed else "ok",
    )
    if failed:
        fields["level"] = "error"
        fields["error"] = span.status.description or "error"
    fields["span_events"] = [
        {
            "name": e.name,
            "unix_nano": e.timestamp,
            "attributes": {k: v if not isinstance(v, tuple) else list(v) for k, v in (e.attributes or {}).items()},
        }
        for e in span.events
    ]
    return fields


class SpanEvents(SpanProcessor):
    """Calls emit(event_type, fields) when one of the emitter's spans starts or ends."""

    def __init__(self, emit: Callable[[str, dict], None]):
        self._emit = emit

    def on_start(self, span: Span, parent_context=None) -> None:
        kind = (span.attributes or {}).get(KIND, "task")
        self._emit(f"{kind}.started", started_fields(span))

    def on_end(self, span: ReadableSpan) -> None:
        kind = (span.attributes or {}).get(KIND, "task")
        self._emit(f"{kind}.finished", finished_fields(span))

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True
