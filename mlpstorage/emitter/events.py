"""The event schema shared by the emitter, every renderer and `events replay`.

Every event is a flat JSON-able dict with at least:
  schema     SCHEMA_VERSION
  type       one of EVENT_TYPES
  timestamp  ISO-8601 UTC with microseconds and a trailing "Z"
  level      debug | info | status | warning | error | result
and, inside a run, trace_id (32 hex) and span_id (16 hex) of the span the event belongs to.
"""

from __future__ import annotations

import datetime as _dt

SCHEMA_VERSION = 1

RUN_STARTED = "run.started"
RUN_FINISHED = "run.finished"
STAGE_STARTED = "stage.started"
STAGE_FINISHED = "stage.finished"
SPINNER_STARTED = "spinner.started"
SPINNER_UPDATED = "spinner.updated"
SPINNER_FINISHED = "spinner.finished"
TASK_STARTED = "task.started"
TASK_FINISHED = "task.finished"
LOG = "log"
OUTPUT = "output"
SAMPLE = "sample"

EVENT_TYPES = frozenset(
    {
        RUN_STARTED, RUN_FINISHED, STAGE_STARTED, STAGE_FINISHED,
        SPINNER_STARTED, SPINNER_UPDATED, SPINNER_FINISHED,
        TASK_STARTED, TASK_FINISHED, LOG, OUTPUT, SAMPLE,
    }
)

# Span kinds, stored on each span as the attribute "mlpstorage.kind". A task is any
# other child span (an epoch, a host in a collection) shown like a spinner.
KINDS = ("run", "stage", "spinner", "task")

LEVELS = ("debug", "info", "status", "warning", "error", "result")


def iso_from_ns(unix_nano: int) -> str:
    """2026-11-27T10:01:30.123456Z from nanoseconds since the epoch."""
    seconds, nanos = divmod(unix_nano, 1_000_000_000)
    moment = _dt.datetime.fromtimestamp(seconds, tz=_dt.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{nanos // 1000:06d}Z"


def ns_from_iso(text: str) -> int:
    """Inverse of iso_from_ns (microsecond precision)."""
    moment = _dt.datetime.strptime(text.rstrip("Z"), "%Y-%m-%dT%H:%M:%S.%f")
    moment = moment.replace(tzinfo=_dt.timezone.utc)
    return int(moment.timestamp()) * 1_000_000_000 + moment.microsecond * 1000
