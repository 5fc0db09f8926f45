"""Turns the emitter's OpenTelemetry spans into events, as a SpanProcessor.

Spans are the single source of time: a started event carries the span's start time, a
finished event its end time and duration, so no renderer keeps a timer of its own.
"""

from __future__ import annotations

from typing import Callable

from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.trace import StatusCode

from . import events as ev


def _identity(span: ReadableSpan) -> dict:
    ctx = span.get_span_context()
    return {
        "name": span.name,
        "trace_id": ev.trace_id_hex(ctx.trace_id),
        "span_id": ev.span_id_hex(ctx.span_id),
        "parent_span_id": ev.span_id_hex(span.parent.span_id) if span.parent else None,
        "attributes": dict(span.attributes or {}),
        "start_unix_nano": span.start_time,
    }


def started_event(span: ReadableSpan) -> dict:
    return ev.span_started(**_identity(span))


def finished_event(span: ReadableSpan) -> dict:
    failed = span.status.status_code is StatusCode.ERROR
    span_events = [
        {"name": e.name, "unix_nano": e.timestamp,
         "attributes": {k: ev.plain_value(v) for k, v in (e.attributes or {}).items()}}
        for e in span.events
    ]
    return ev.span_finished(**_identity(span), end_unix_nano=span.end_time,
                            error=(span.status.description or "error") if failed else None, span_events=span_events)


class SpanEvents(SpanProcessor):
    """Calls publish(event) when one of the emitter's spans starts or ends."""

    def __init__(self, publish: Callable[[dict], None]):
        self._publish = publish

    def on_start(self, span: Span, parent_context=None) -> None:
        self._publish(started_event(span))

    def on_end(self, span: ReadableSpan) -> None:
        self._publish(finished_event(span))

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True
