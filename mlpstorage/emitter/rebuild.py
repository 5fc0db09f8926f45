"""A finished span rebuilt from its `*.finished` event: for spans that exist only as events
(a recording replayed with `events replay`, an MPI rank's span adopted into the run)."""

from __future__ import annotations

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

from mlpstorage import __version__

_FLAGS = TraceFlags(TraceFlags.SAMPLED)


def _attributes(values: dict) -> dict:
    return {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}


def span_from_event(event: dict, resource: Resource) -> ReadableSpan:
    trace_id = int(event["trace_id"], 16)
    context = SpanContext(trace_id, int(event["span_id"], 16), is_remote=False, trace_flags=_FLAGS)
    parent = None
    if event.get("parent_span_id"):
        parent = SpanContext(trace_id, int(event["parent_span_id"], 16), is_remote=False, trace_flags=_FLAGS)
    status = Status(StatusCode.ERROR, event.get("error")) if event.get("status") == "error" else Status(StatusCode.OK)
    span_events = [Event(e["name"], _attributes(e.get("attributes", {})), e["unix_nano"])
                   for e in event.get("span_events", [])]
    return ReadableSpan(
        name=event["name"],
        context=context,
        parent=parent,
        resource=resource,
        attributes=_attributes(event.get("attributes", {})),
        events=span_events,
        kind=SpanKind.INTERNAL,
        status=status,
        start_time=event["start_unix_nano"],
        end_time=event["end_unix_nano"],
        instrumentation_scope=InstrumentationScope("mlpstorage", __version__),
    )
