"""The event schema: the one place that says what an event is.

Standard library only, so that what an MPI rank runs (engines/dlio_rank.py) can import it
without paying for structlog or OpenTelemetry. The emitter builds its events with these
constructors, the rank launcher builds its span with them, and `events replay` checks every
line of a recording with validate().

Every event is a flat JSON-able dict that starts with:
  schema     the version that wrote it (1 to 4; see SCHEMA_VERSION)
  type       one of EVENT_TYPES
  timestamp  ISO-8601 UTC with microseconds and a trailing "Z"
  level      one of LEVELS
and, inside a run, trace_id (32 hex) and span_id (16 hex) of the span the event belongs to.
"""

from __future__ import annotations

import datetime as _dt
import json as _json
import time as _time

# Version 2 added one thing: an `output` event may carry a batch of lines (`lines`, a list)
# instead of one `line`. A reader of version 1 cannot read such an event, hence the bump.
# Version 3 added two event types: `task.updated` (a task's count, e.g. the steps of an epoch)
# and `stall` (see mlpstorage/stalls/). Every older recording is a valid version-3 recording.
# Version 4 added `io.summary`: a traced run's I/O (--io-trace; mlpstorage/iotrace/).
SCHEMA_VERSION = 4
READABLE_VERSIONS = (1, 2, 3, 4)

# Time-series samples travel as span events of the running stage, up to this many (a span is
# exported whole, and OTLP receivers limit a request's size); the event stream keeps them all.
MAX_SPAN_EVENTS = 4096

# The error of a span a recording ends before finishing (the launcher was killed): `events
# replay` and the run page finish such spans with it.
UNFINISHED = "unfinished (recording ends)"

RUN_STARTED = "run.started"
RUN_FINISHED = "run.finished"
STAGE_STARTED = "stage.started"
STAGE_FINISHED = "stage.finished"
SPINNER_STARTED = "spinner.started"
SPINNER_UPDATED = "spinner.updated"
SPINNER_FINISHED = "spinner.finished"
TASK_STARTED = "task.started"
TASK_UPDATED = "task.updated"
TASK_FINISHED = "task.finished"
STALL = "stall"
LOG = "log"
OUTPUT = "output"
SAMPLE = "sample"
IO_SUMMARY = "io.summary"

EVENT_TYPES = frozenset(
    {
        RUN_STARTED, RUN_FINISHED, STAGE_STARTED, STAGE_FINISHED,
        SPINNER_STARTED, SPINNER_UPDATED, SPINNER_FINISHED,
        TASK_STARTED, TASK_UPDATED, TASK_FINISHED, LOG, OUTPUT, SAMPLE, STALL, IO_SUMMARY,
    }
)

# Span kinds, stored on each span as the attribute KIND. A task is any other child span
# (an epoch, a host in a collection, an MPI rank) shown like a spinner.
KINDS = ("run", "stage", "spinner", "task")
LEVELS = ("debug", "info", "status", "warning", "error", "result")
# For "at least this level" filters; a result always passes.
LEVEL_RANK = {"debug": 10, "info": 20, "status": 25, "warning": 30, "error": 40, "result": 50}

# Span attributes with a meaning of their own.
KIND = "mlpstorage.kind"
STAGE_INDEX = "mlpstorage.stage.index"
STAGE_COUNT = "mlpstorage.stage.count"
TOTAL = "mlpstorage.total"
COMPLETED = "mlpstorage.completed"
DESCRIPTION = "mlpstorage.description"
# On a span ended by an error users can cause: the launcher's own last line
# ("mlpstorage: error: ...") says what went wrong, so text renderers need not repeat it.
ERROR_REPORTED = "mlpstorage.error.reported"
# On a run span: its verdict (CLOSED, OPEN or INVALID), the reasons it is not CLOSED, its notes
# (e.g. a traced run), and the division --closed/--open asked for (see mlpstorage/reports/verdict.py).
VERDICT = "mlpstorage.verdict"
VERDICT_REASONS = "mlpstorage.verdict.reasons"
VERDICT_NOTES = "mlpstorage.verdict.notes"  # what a reader should know that does not change the verdict
DIVISION = "mlpstorage.division"

# Span attributes lifted to top-level event fields, for renderers and grep.
LIFTED = {
    STAGE_INDEX: "stage_index",
    STAGE_COUNT: "stage_count",
    TOTAL: "total",
    COMPLETED: "completed",
    DESCRIPTION: "description",
}


# ----- time and ids ------------------------------------------------------------------------
_second_cache: list = [None, ""]  # [unix second, "YYYY-MM-DDTHH:MM:SS"]: one strftime per second


def iso_from_ns(unix_nano: int) -> str:
    """2026-11-27T10:01:30.123456Z from nanoseconds since the epoch."""
    seconds, nanos = divmod(unix_nano, 1_000_000_000)
    cache = _second_cache
    if cache[0] != seconds:
        cache[1] = _time.strftime("%Y-%m-%dT%H:%M:%S", _time.gmtime(seconds))
        cache[0] = seconds
    return f"{cache[1]}.{nanos // 1000:06d}Z"


_parsed_seconds: dict[str, int] = {}  # "YYYY-MM-DDTHH:MM:SS" -> unix second: strptime once per second


def ns_from_iso(text: str) -> int:
    """Inverse of iso_from_ns (microsecond precision)."""
    head, dot, fraction = text.rstrip("Z").partition(".")
    seconds = _parsed_seconds.get(head)
    if seconds is None:
        moment = _dt.datetime.strptime(head, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=_dt.timezone.utc)
        seconds = int(moment.timestamp())
        if len(_parsed_seconds) > 100_000:
            _parsed_seconds.clear()
        _parsed_seconds[head] = seconds
    if not (dot and fraction.isdigit() and len(fraction) <= 6):
        raise ValueError(f"time data {text!r} does not match format '%Y-%m-%dT%H:%M:%S.%f'")
    return seconds * 1_000_000_000 + int(fraction.ljust(6, "0")) * 1000


def now_iso() -> str:
    return iso_from_ns(_time.time_ns())


def trace_id_hex(trace_id: int) -> str:
    return format(trace_id, "032x")


def span_id_hex(span_id: int) -> str:
    return format(span_id, "016x")


def parse_traceparent(value: str) -> tuple[str, str] | None:
    """(trace_id, parent span_id) in hex from a W3C traceparent header, or None."""
    parts = value.strip().split("-")
    if len(parts) != 4 or len(parts[1]) != 32 or len(parts[2]) != 16 or not _is_hex(parts[1] + parts[2]):
        return None
    if int(parts[1], 16) == 0 or int(parts[2], 16) == 0:
        return None
    return parts[1], parts[2]


def _is_hex(text: str) -> bool:
    return all(c in "0123456789abcdef" for c in text)


# ----- constructors ------------------------------------------------------------------------
def event(type_: str, timestamp: str | None = None, level: str = "info", **fields) -> dict:
    """An event with the common head in its documented order, then the given fields."""
    head = {"schema": SCHEMA_VERSION, "type": type_, "timestamp": timestamp or now_iso(), "level": level}
    head.update(fields)
    return head


def plain_value(value):
    """An attribute value as JSON holds it (OpenTelemetry keeps sequences as tuples)."""
    return list(value) if isinstance(value, tuple) else value


def span_started(*, name: str, trace_id: str, span_id: str, parent_span_id: str | None, attributes: dict,
                 start_unix_nano: int) -> dict:
    """`<kind>.started` for a span, stamped with the span's own start time."""
    kind = attributes.get(KIND, "task")
    fields = {"name": name, "trace_id": trace_id, "span_id": span_id, "parent_span_id": parent_span_id}
    for key, field in LIFTED.items():
        if key in attributes:
            fields[field] = attributes[key]
    fields["attributes"] = {k: plain_value(v) for k, v in attributes.items()}
    fields["start_unix_nano"] = start_unix_nano
    return event(f"{kind}.started", iso_from_ns(start_unix_nano), **fields)


def span_finished(*, name: str, trace_id: str, span_id: str, parent_span_id: str | None, attributes: dict,
                  start_unix_nano: int, end_unix_nano: int, error: str | None = None,
                  span_events: list[dict] | None = None) -> dict:
    """`<kind>.finished` for a span: its end time, its duration, ok or error."""
    started = span_started(name=name, trace_id=trace_id, span_id=span_id, parent_span_id=parent_span_id,
                           attributes=attributes, start_unix_nano=start_unix_nano)
    started.update(
        type=started["type"].replace(".started", ".finished"),
        timestamp=iso_from_ns(end_unix_nano),
        end_unix_nano=end_unix_nano,
        duration_s=round((end_unix_nano - start_unix_nano) / 1e9, 6),
        status="error" if error is not None else "ok",
    )
    if error is not None:
        started["level"] = "error"
        started["error"] = error or "error"
    started["span_events"] = span_events or []
    return started


def log(level: str, message: str, timestamp: str | None = None, **fields) -> dict:
    # Written out rather than through event(): every log message of a run comes this way.
    made = {"schema": SCHEMA_VERSION, "type": LOG, "timestamp": timestamp or now_iso(), "level": level,
            "message": message}
    if fields:
        made.update(fields)
    return made


def output(lines: list[str], stream: str = "stdout", source: str | None = None, timestamp: str | None = None) -> dict:
    """A batch of a program's output lines (without their newlines), unchanged."""
    fields = {"stream": stream, "lines": lines}
    if source:
        fields["source"] = source
    return event(OUTPUT, timestamp, **fields)


def output_lines(evt: dict) -> list[str]:
    """The lines of an output event of either version (`line` in 1, `lines` in 2)."""
    lines = evt.get("lines")
    return lines if lines is not None else [evt["line"]]


def sample(host: str, values: dict, timestamp: str | None = None) -> dict:
    return event(SAMPLE, timestamp, host=host, values=values)


def spinner_updated(*, name: str, trace_id: str, span_id: str, description: str, completed: int,
                    total: int | None, start_unix_nano: int, kind: str = "spinner", timestamp: str | None = None,
                    **fields) -> dict:
    """`spinner.updated` (or `task.updated`, kind "task"): a span's new count or text."""
    return event(f"{kind}.updated", timestamp, name=name, trace_id=trace_id, span_id=span_id,
                 description=description, completed=completed, total=total, start_unix_nano=start_unix_nano, **fields)


# A stall (mlpstorage/stalls/): `condition` is one of STALL_CONDITIONS, `state` one of
# STALL_STATES; `key` names the one condition a "resumed" ends (e.g. "rank:5", "job");
# `subject` says who in a few words ("rank 5 on node3 (pid 4242)", "the whole job").
STALL_CONDITIONS = ("rank", "job", "epoch", "host")
STALL_STATES = ("stalled", "resumed")


def stall(condition: str, state: str, key: str, subject: str, message: str, timestamp: str | None = None,
          **fields) -> dict:
    """A stall flagged (level warning) or its end (level info); fields say who and since when:
    rank, host, pid, epoch, step, steps_expected, idle_s, since_unix_nano, typical_s (an epoch's),
    detail (the message without its idle time, for a display that counts that on)."""
    return event(STALL, timestamp, "warning" if state == "stalled" else "info", condition=condition, state=state,
                 key=key, subject=subject, message=message, **fields)


STALL_SPAN_EVENT = "mlpstorage.stall"


def io_summary(io: dict, timestamp: str | None = None) -> dict:
    """A traced run's I/O, once its traces are read: `io` holds per operation, host and rank
    the count, bytes, percentiles and the latency histogram on the metric's buckets
    (`metric_bounds_s`), and per epoch and rank the time in I/O and compute; the whole of it is
    the run folder's io_trace.json (docs/iotrace.md)."""
    return event(IO_SUMMARY, timestamp, io=io)


def stall_text(evt: dict) -> str:
    """How text shows a stall event: "stalled: <message>" or "resumed: <message>"."""
    return f"{evt['state']}: {evt['message']}"


def stall_attributes(evt: dict) -> dict:
    """The attributes of a stall's span event on its stage (in the trace, live or replayed)."""
    fields = {"condition", "state", "key", "subject", "message", "rank", "host", "pid", "epoch", "step",
              "steps_expected", "idle_s", "typical_s"}
    return {("message" if key == "message" else f"mlpstorage.stall.{key}"): value for key, value in evt.items()
            if key in fields and isinstance(value, (int, float, str)) and not isinstance(value, bool)}


# ----- validation --------------------------------------------------------------------------
_SPAN_FIELDS = {"name": str, "trace_id": str, "span_id": str, "start_unix_nano": int}
_FINISHED_FIELDS = {"end_unix_nano": int, "duration_s": (int, float), "status": str}
_TYPE_FIELDS = {LOG: {"message": str}, SAMPLE: {"host": str, "values": dict},
                STALL: {"condition": str, "state": str, "key": str, "subject": str, "message": str},
                IO_SUMMARY: {"io": dict}}


def validate(evt) -> str | None:
    """What is wrong with evt as an event of a readable version, or None when it is fine."""
    if not isinstance(evt, dict):
        return "not a JSON object"
    if evt.get("schema") not in READABLE_VERSIONS:
        return f"schema {evt.get('schema')!r} is not one this version reads ({', '.join(map(str, READABLE_VERSIONS))})"
    type_ = evt.get("type")
    if not isinstance(type_, str) or type_ not in EVENT_TYPES:
        return f"unknown event type {type_!r}"
    timestamp = evt.get("timestamp")
    if not isinstance(timestamp, str):
        return "no timestamp"
    try:
        ns_from_iso(timestamp)
    except ValueError:
        return f"timestamp {timestamp!r} is not ISO-8601 UTC"
    if evt.get("level") not in LEVELS:
        return f"unknown level {evt.get('level')!r}"
    required = dict(_TYPE_FIELDS.get(type_, {}))
    kind, _, what = type_.partition(".")
    if kind in KINDS:
        required.update(_SPAN_FIELDS)
        if what == "finished":
            required.update(_FINISHED_FIELDS)
    for field, kinds in required.items():
        if not isinstance(evt.get(field), kinds) or isinstance(evt.get(field), bool):
            return f"{type_} without a valid {field!r}"
    if kind in KINDS:
        for field, length in (("trace_id", 32), ("span_id", 16)):
            if len(evt[field]) != length or not _is_hex(evt[field]):
                return f"{type_} with a malformed {field!r}"
        parent = evt.get("parent_span_id")
        if parent is not None and (not isinstance(parent, str) or len(parent) != 16 or not _is_hex(parent)):
            return f"{type_} with a malformed 'parent_span_id'"
        if not isinstance(evt.get("attributes", {}), dict):
            return f"{type_} with attributes that are not an object"
        if not _valid_span_events(evt.get("span_events", [])):
            return f"{type_} with span_events that are not a list of {{name, unix_nano, attributes}}"
    if type_ == STALL and (evt["condition"] not in STALL_CONDITIONS or evt["state"] not in STALL_STATES):
        return f"stall with an unknown condition or state ({evt['condition']!r}, {evt['state']!r})"
    if type_ == OUTPUT:
        lines = evt.get("lines", [evt.get("line")])
        if not isinstance(lines, list) or not all(isinstance(line, str) for line in lines):
            return "output without its line(s)"
    return None


def _valid_span_events(items) -> bool:
    return isinstance(items, list) and all(
        isinstance(item, dict) and isinstance(item.get("name"), str) and type(item.get("unix_nano")) is int
        and isinstance(item.get("attributes", {}), dict)
        for item in items
    )


# Built once: json.dumps() with any non-default argument builds a new encoder on every call.
_ENCODER = _json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=str)


def to_json_line(evt: dict) -> str:
    """One event as a line of a recording (compact JSON, UTF-8 kept as it is)."""
    return _ENCODER.encode(evt) + "\n"
