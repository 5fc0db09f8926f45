"""Reading a recording (events.jsonl) as untrusted input, for `events replay` and the reports.

A recording may come from anywhere (a batch job, a colleague, a download):

- It must be a recording: its first non-empty line must be a valid event (schema in
  events.py). Anything else (an empty file, a binary, another JSON file, a log) is refused
  with one error. After that first line, a bad line (a crash mid-write truncates the last
  one) is skipped with a warning, the first MAX_WARNINGS of them each on a line of their own
  and the rest counted in one more.
- A recording is plain text, or gzip (a large one once its run ended: recording.py); the
  first bytes tell which, whatever the file's name. A compressed recording cut short reads up
  to its cut, with one warning, as a plain one does.
- A recording cut short (the launcher killed: spans started and never finished) ends as a
  live run ends on an interrupt: OpenSpans finishes every span still open, innermost first,
  at the recording's last timestamp with error UNFINISHED, its open stage keeping the
  recorded time-series samples as "timeseries.sample" span events.

Standard library only.
"""

from __future__ import annotations

import gzip
import json
import zlib
from pathlib import Path
from typing import IO, Iterator

from ..errors import UsageError
from . import events as ev
from .events import MAX_SPAN_EVENTS
from .recording import COMPRESSED_NAME, FILE_NAME

UNFINISHED = ev.UNFINISHED
MAX_WARNINGS = 10
# The first line is read with this bound: a large file without newlines (a binary) is refused
# without being read whole. A recording's first event is a few hundred bytes.
MAX_FIRST_LINE = 1 << 20
# No event nests deeper than a few levels; far deeper input would only exhaust the stack.
MAX_DEPTH = 32
# Where a line's type is looked for when some are skipped: it is the second key of an event.
UNREAD_WITHIN = 64
GZIP_MAGIC = b"\x1f\x8b"


class NotARecording(UsageError):
    def __init__(self, path: Path, why: str):
        super().__init__(f"{path}: not an mlpstorage recording ({why})")


# ----- finding and opening ---------------------------------------------------------------
def find_recording(folder: Path) -> Path | None:
    """The recording in a run folder: events.jsonl, or events.jsonl.gz once compressed; None
    when it has neither."""
    for name in (FILE_NAME, COMPRESSED_NAME):
        if (Path(folder) / name).is_file():
            return Path(folder) / name
    return None


def _compressed_instead(path: Path) -> Path:
    """path, or path.gz when only that exists: a run's events.jsonl compressed as it ended."""
    compressed = path.with_name(path.name + ".gz")
    return compressed if not path.exists() and compressed.is_file() else path


def _open_text(path: Path) -> IO[str]:
    """path as text, decompressed if it is gzip (told by its first bytes, not its name)."""
    handle = open(path, "rb")
    try:
        compressed = handle.read(2) == GZIP_MAGIC
        handle.seek(0)
    except BaseException:
        handle.close()
        raise
    if compressed:
        return gzip.open(handle, "rt", encoding="utf-8", errors="replace")
    handle.close()
    return open(path, encoding="utf-8", errors="replace")


# ----- reading -----------------------------------------------------------------------------
def _parse(line: str) -> tuple[dict | None, str | None]:
    """The event on a line, or what is wrong with the line."""
    try:
        event = json.loads(line)
    except json.JSONDecodeError as exc:
        return None, f"not JSON: {exc.msg}"
    except (ValueError, RecursionError) as exc:  # an integer too long to convert; arrays nested too deeply
        return None, f"not JSON: {exc}"
    problem = ev.validate(event)
    if problem is None and _deeper_than(event, MAX_DEPTH):
        problem = f"nested deeper than {MAX_DEPTH} levels"
    return (None, f"not an mlpstorage event: {problem}") if problem else (event, None)


def _deeper_than(value, limit: int) -> bool:
    stack = [(value, 0)]
    while stack:
        value, depth = stack.pop()
        if depth > limit:
            return True
        if isinstance(value, dict):
            stack.extend((item, depth + 1) for item in value.values())
        elif isinstance(value, list):
            stack.extend((item, depth + 1) for item in value)
    return False


class Recording:
    """An events.jsonl (or events.jsonl.gz) opened for replay; opening it checks that it is a
    recording at all (NotARecording otherwise). A path to events.jsonl that is gone opens the
    events.jsonl.gz its run left instead. Iterating yields its valid events; the bad lines
    after the first are collected as warnings in `problems`."""

    def __init__(self, path: Path, skip_types: tuple[str, ...] = ()):
        """skip_types: events of these types are passed over unread (not parsed, not checked),
        for a reader that has what they hold elsewhere (the reports: a run folder's time
        series file holds its samples, most of a large recording's lines)."""
        self.path = path = _compressed_instead(Path(path))
        self.problems: list[str] = []
        self._skipped = 0
        self._unread = tuple(f'"type":"{t}"' for t in skip_types)  # as to_json_line writes it
        try:
            self._handle = _open_text(path)
        except OSError as exc:
            raise UsageError(f"{path}: {exc.strerror}") from None
        self._lines = self._numbered_lines()
        try:
            number, line = next(self._lines, (0, ""))
            if not number:
                raise NotARecording(path, "no events: the file is empty or blank")
            self._first, problem = _parse(line)
            if problem is not None:
                raise NotARecording(path, f"line {number} is {problem}")
        except BaseException:
            self.close()
            raise

    def _numbered_lines(self) -> Iterator[tuple[int, str]]:
        bound = MAX_FIRST_LINE  # -1 (no bound) once the first non-empty line is read
        number = 0
        try:
            while line := self._handle.readline(bound):
                number += 1
                if line.strip():
                    bound = -1
                    yield number, line
        except (EOFError, zlib.error, gzip.BadGzipFile) as exc:  # compressed, and cut or damaged there
            self.problems.append(f"{self.path}: the compressed recording ends early after line {number} "
                                 f"({exc}); read up to there")
        except OSError as exc:
            raise UsageError(f"{self.path}: {exc.strerror or exc}") from None

    def __iter__(self) -> Iterator[dict]:
        yield self._first
        for number, line in self._lines:
            if self._unread and any(line.find(marker, 0, UNREAD_WITHIN) != -1 for marker in self._unread):
                continue
            event, problem = _parse(line)
            if problem is None:
                yield event
                continue
            self._skipped += 1
            if self._skipped <= MAX_WARNINGS:
                self.problems.append(f"{self.path}:{number}: skipped a line that is {problem}")
        if self._skipped > MAX_WARNINGS:
            self.problems.append(f"{self.path}: skipped {self._skipped - MAX_WARNINGS} more lines that are not events")

    def close(self) -> None:
        self._handle.close()

    def __enter__(self) -> "Recording":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# ----- a recording cut short ---------------------------------------------------------------
class OpenSpans:
    """The spans of a recording that started and have not finished (yet), with what their
    finished events need: the latest spinner state, and the open stages' samples."""

    def __init__(self):
        self._open: dict[str, dict] = {}  # span id -> its started event (attributes kept up to date)
        self._stages: dict[tuple, str] = {}  # (trace id, stage index) -> span id of the open stage
        self._samples: dict[str, list[dict]] = {}  # open stage's span id -> its span events (samples, stalls)
        self.last_ns = 0  # the recording's last moment

    def note(self, event: dict) -> None:
        self.last_ns = max(self.last_ns, ev.ns_from_iso(event["timestamp"]),
                           *(event[f] for f in ("start_unix_nano", "end_unix_nano") if type(event.get(f)) is int))
        kind, _, what = event["type"].partition(".")
        if kind in (ev.SAMPLE, ev.STALL):
            stage = self._stages.get((event.get("trace_id"), event.get("stage_index")))
            if stage is None:
                return
            if kind == ev.SAMPLE:
                values = {k: v for k, v in event["values"].items() if isinstance(v, (int, float))}
                name, attributes = "timeseries.sample", {"host": event["host"], **values}
            else:
                name, attributes = ev.STALL_SPAN_EVENT, ev.stall_attributes(event)
            self._samples[stage].append({"name": name, "unix_nano": ev.ns_from_iso(event["timestamp"]),
                                         "attributes": attributes})
        elif what == "started":
            self._open[event["span_id"]] = {**event, "attributes": dict(event.get("attributes") or {})}
            if kind == "stage":
                self._stages[(event["trace_id"], event.get("stage_index"))] = event["span_id"]
                self._samples[event["span_id"]] = []
        elif what == "updated" and event["span_id"] in self._open:
            attributes = self._open[event["span_id"]]["attributes"]
            for key, field in ((ev.DESCRIPTION, "description"), (ev.COMPLETED, "completed"), (ev.TOTAL, "total")):
                if event.get(field) is not None:
                    attributes[key] = event[field]
        elif what == "finished":
            started = self._open.pop(event["span_id"], None)
            if started is not None and kind == "stage":
                self._stages.pop((started["trace_id"], started.get("stage_index")), None)
                self._samples.pop(event["span_id"], None)

    def finished_events(self) -> list[dict]:
        """A finished event with error UNFINISHED for every span still open, innermost (latest
        started) first, each ending at the recording's last moment."""
        ends = []
        for started in sorted(self._open.values(), key=lambda e: e["start_unix_nano"], reverse=True):
            finished = ev.span_finished(
                name=started["name"], trace_id=started["trace_id"], span_id=started["span_id"],
                parent_span_id=started.get("parent_span_id"), attributes=started["attributes"],
                start_unix_nano=started["start_unix_nano"], end_unix_nano=max(self.last_ns, started["start_unix_nano"]),
                error=UNFINISHED, span_events=self._samples.get(started["span_id"], [])[:MAX_SPAN_EVENTS])
            for field in ("stage_index", "stage_count"):  # a spinner's or task's stage, as the live event has it
                if field in started:
                    finished.setdefault(field, started[field])
            ends.append(finished)
        return ends
