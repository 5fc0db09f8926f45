"""The plain renderer: one append-only line per event, for logs, batch jobs and grep.

Line format (documented in docs/rendering.md; stable):

    <timestamp> <LEVEL> [<i>/<N> <stage>] <message>

- timestamp: the event's own ISO-8601 UTC time with milliseconds, e.g. 2026-11-27T10:04:03.289Z
- LEVEL: DEBUG INFO STATUS WARNING ERROR RESULT, padded to 7 characters
- the bracket names the stage the event belongs to and is left out outside any stage
- stage lines end in "started", "done in 12.3s" or "failed after 1.2s: <error>"
- spinner lines read "<description>: started", "<description>: <new text>", "<description>: done in 0.3s"
- time series: one aggregate line per interval, "all hosts: 63/64 reporting, read 6123.4 MB/s,
  write 0.0 MB/s, net 6200.1/12.3 MB/s in/out; slowest node17 (read 42.5 MB/s); silent node42"
  (AGGREGATE_PATTERN reads its message), and a line per sample, "<host>: read 12.3 MB/s, write
  0.0 MB/s, net 0.1/0.1 MB/s in/out, load 1.20", only with up to FEW_HOSTS hosts or at min_level
  debug. An interval has passed when a host reports again, or when every host that is not
  silent has reported since the last aggregate line: the samples' own timestamps decide, so a
  replay prints the same lines.

Lines of a child process's output are written exactly as they came, with no prefix.
While a stage runs past the heartbeat interval, a "still running" line names the open stage
and spinners with their elapsed times, the count of a task (an epoch's steps) and how long ago
it last moved, and any stall not yet resumed. A stall is a WARNING line "stalled: <what>", its
end an INFO line "resumed: <what>" (STALL_PATTERN reads their message).
"""

from __future__ import annotations

import re
import sys
import threading
import time
from typing import IO

from mlpstorage.emitter.events import LEVEL_RANK, iso_from_ns, output_lines, stall_text

from .board import (FEW_HOSTS, Aggregate, Board, SpanRow, describe_aggregate, describe_progress, describe_sample,
                    format_seconds, megabytes, stall_idle_s, without_trailing_dots)

LINE_PATTERN = re.compile(
    r"^(?P<timestamp>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) (?P<level>[A-Z]+)\s+"
    r"(?:\[(?P<stage_index>\d+)/(?P<stage_count>\d+) (?P<stage>[^\]]+)\] )?(?P<message>.*)$"
)
# The message of a time-series aggregate line (MB/s are 10^6 bytes a second).
_MBPS = r"-?\d+\.\d"
_HOST = r"[^ ,;()]+"
AGGREGATE_PATTERN = re.compile(
    rf"^all hosts: (?P<reporting>\d+)/(?P<hosts>\d+) reporting, read (?P<read_MBps>{_MBPS}) MB/s, "
    rf"write (?P<write_MBps>{_MBPS}) MB/s, net (?P<rx_MBps>{_MBPS})/(?P<tx_MBps>{_MBPS}) MB/s in/out"
    rf"(?:; slowest (?P<slowest>{_HOST}) \((?P<slowest_by>read|write) (?P<slowest_MBps>{_MBPS}) MB/s\))?"
    rf"(?:; silent (?P<silent>{_HOST}(?:, {_HOST})*))?$"
)

# The message of a stall's line (see mlpstorage/stalls/): "stalled: rank 5 on node3 (pid 4242):
# no step for 62 s, ..." or "resumed: ...".
STALL_PATTERN = re.compile(r"^(?P<state>stalled|resumed): (?P<what>.+)$")

_COLORS = {"DEBUG": "2", "WARNING": "33", "ERROR": "31;1", "RESULT": "32;1", "STATUS": "36"}


class PlainRenderer:
    def __init__(self, stream: IO[str], color: bool = False, heartbeat_s: float = 30.0, clock=time.time_ns,
                 min_level: str = "debug"):
        self._stream = stream
        self._color = color
        self._clock = clock
        self._board = Board()
        self._last_update: dict[str, tuple] = {}
        self._errors_shown: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._heartbeat_s = heartbeat_s
        self._min_rank = LEVEL_RANK[min_level]
        self._heartbeat: threading.Thread | None = None
        # The time-series interval under way: the hosts that reported since the last aggregate
        # line, the last of their samples, and whether a host has reported twice yet (before
        # that, which hosts report at all is not known).
        self._round: set[str] = set()
        self._round_sample: dict | None = None
        self._hosts_known = False

    @classmethod
    def from_options(cls, options) -> "PlainRenderer":
        return cls(options.stream or sys.stderr, color=options.color, heartbeat_s=options.heartbeat_s,
                   min_level=options.min_level)

    # ----- events ----------------------------------------------------------------------
    def handle(self, event: dict) -> None:
        if event["type"] == "output":  # the hot path: a batch of lines, written as they came
            text = "\n".join(output_lines(event)) + "\n"
            with self._lock:
                self._stream.write(text)
                self._stream.flush()
            return
        with self._lock:
            if event["type"] == "sample":
                lines = self._sample_lines(event)
            else:
                # the last interval of the series ends with its stage
                lines = self._end_round() if event["type"] in ("stage.finished", "run.finished") else []
                if event["type"] == "run.started":
                    self._round, self._round_sample, self._hosts_known = set(), None, False
                lines.append(self._line(event, self._board.apply(event)))
            lines = [line for line in lines if line is not None]
            if lines:
                self._write("\n".join(lines))
        if event["type"] == "run.started" and self._heartbeat_s > 0:
            self._stop_heartbeat()
            self._stop = threading.Event()
            self._heartbeat = threading.Thread(target=self._beat, args=(self._stop,), name="plain-heartbeat",
                                               daemon=True)
            self._heartbeat.start()
        elif event["type"] == "run.finished":
            self._stop_heartbeat()

    def close(self) -> None:
        self._stop_heartbeat()
        with self._lock:
            lines = self._end_round()
            if lines:
                self._write("\n".join(lines))
        self._stream.flush()

    def _stop_heartbeat(self) -> None:
        self._stop.set()
        if self._heartbeat is not None and self._heartbeat is not threading.current_thread():
            self._heartbeat.join(timeout=2)
        self._heartbeat = None

    # ----- time series -----------------------------------------------------------------
    def _sample_lines(self, event: dict) -> list[str]:
        """The lines for a sample: the aggregate of the interval it ends, if any; its own line
        with few hosts or at debug; the aggregate of its interval when it completes it."""
        host = event["host"]
        lines = []
        if host in self._round:  # the host reports again: the interval before is over
            self._hosts_known = True
            lines += self._end_round()
        self._board.apply(event)
        self._round.add(host)
        self._round_sample = event
        if self._board.host_count <= FEW_HOSTS or self._min_rank <= LEVEL_RANK["debug"]:
            lines.append(self._format(event, event.get("level", "info"), f"{host}: {describe_sample(event['values'])}"))
        if self._hosts_known and self._round_complete():
            lines += self._end_round()
        return lines

    def _round_complete(self) -> bool:
        """Whether every host that is not silent has reported in the interval under way
        (counted, not looked up host by host: a thousand hosts report each interval)."""
        silent = self._board.silent_hosts()
        outside = sum(1 for name in silent if name not in self._round)
        return len(self._round) + outside >= self._board.host_count

    def _end_round(self) -> list[str]:
        """The aggregate line of the interval under way (none when no host has reported in it),
        stamped with the sample clock."""
        if not self._round:
            return []
        self._round.clear()
        stage = {k: self._round_sample[k] for k in ("stage_index", "stage_count") if k in self._round_sample}
        line = {"type": "sample", "timestamp": iso_from_ns(self._board.sample_clock_ns), **stage}
        return [self._format(line, "info", f"all hosts: {aggregate_message(self._board.aggregate(slowest=1))}")]

    def _line(self, event: dict, row: SpanRow | None) -> str | None:
        kind = event["type"]
        if kind == "log":
            if LEVEL_RANK.get(event["level"], 0) < self._min_rank:
                return None
            return self._format(event, event["level"], event["message"])
        if kind == "stall":
            if LEVEL_RANK.get(event["level"], 0) < self._min_rank:
                return None
            return self._format(event, event["level"], stall_text(event))
        if row is None:
            return None
        what = kind.split(".", 1)[1]
        if row.kind == "run":
            name = f"run {row.name}"
        elif row.kind == "stage":
            name = ""
        else:
            name = without_trailing_dots(row.name)
        if what == "started":
            message = "started"
        elif what == "updated":
            # A task's count (an epoch's steps) goes in the heartbeat: its program's own
            # lines (DLIO's per-step lines) already tell each step.
            if row.kind == "task" or not self._worth_a_line(row):
                return None
            text = without_trailing_dots(row.description)
            count = f"{row.completed}/{row.total}" if row.total is not None else ""
            message = " ".join(part for part in (text if text != name else "", count) if part)
        elif row.status == "error":
            message = f"failed after {format_seconds(row.duration_s or 0.0)}"
            # The text once: on the innermost span it ended, and not at all when the
            # launcher's own "mlpstorage: error:" line will say it.
            if not row.error_reported and row.error not in self._errors_shown:
                self._errors_shown.add(row.error)
                message += f": {row.error}"
        else:
            message = f"done in {format_seconds(row.duration_s or 0.0)}"
            if row.total is not None:
                message += f" ({row.completed}/{row.total})"
            if row.io:
                message += f"; {row.io}"
        if name:
            message = f"{name}: {message}"
        return self._format(event, event.get("level", "info"), message)

    def _worth_a_line(self, row: SpanRow) -> bool:
        """A log is no place for every tick of a bar: a line when the text changes, and for a
        determinate bar at each tenth of the way and at the end."""
        last = self._last_update.get(row.span_id)
        step = None
        if row.total:
            step = min(10, row.completed * 10 // row.total)
        self._last_update[row.span_id] = (row.description, step)
        return last is None or last[0] != row.description or (step is not None and step != last[1])

    def _format(self, event: dict, level: str, message: str) -> str:
        timestamp = event["timestamp"]
        timestamp = timestamp[:23] + "Z" if len(timestamp) > 24 else timestamp
        level_text = level.upper()
        padded = f"{level_text:<7}"
        if self._color and level_text in _COLORS:
            padded = f"\x1b[{_COLORS[level_text]}m{level_text}\x1b[0m" + " " * (7 - len(level_text))
        stage = ""
        if event.get("stage_index") is not None and not event["type"].startswith("run."):
            stage_name = event["name"] if event["type"].startswith("stage.") else self._stage_name(event)
            stage = f"[{event['stage_index']}/{event['stage_count']} {stage_name}] "
        return f"{timestamp} {padded} {stage}{message}"

    def _stage_name(self, event: dict) -> str:
        for stage in reversed(self._board.stages):
            if stage.stage_index == event["stage_index"]:
                return stage.name
        return "?"

    def _write(self, line: str) -> None:
        self._stream.write(line + "\n")
        self._stream.flush()

    # ----- heartbeat -------------------------------------------------------------------
    def _beat(self, stop: threading.Event) -> None:
        # Fixed-rate ticks: the next wake-up is computed from the first, so lines never drift.
        start = time.monotonic()
        ticks = 0
        while True:
            ticks += 1
            if stop.wait(max(0.0, start + ticks * self._heartbeat_s - time.monotonic())):
                return
            with self._lock:
                line = self.heartbeat_line()
                if line is not None:
                    self._write(line)

    def heartbeat_line(self) -> str | None:
        """The 'still running' line for now, or None when no stage has run past the interval."""
        stage = self._board.current_stage
        now = self._clock()
        if stage is None or stage.elapsed_s(now) < self._heartbeat_s:
            return None
        parts = [f"still running after {format_seconds(stage.elapsed_s(now))}"]
        parts += [describe_progress(row, now) for row in self._board.open_rows.values()]
        parts += [f"stalled: {stall['subject']} for {format_seconds(stall_idle_s(stall, now) or 0.0)}"
                  for stall in self._board.stalls.values()]
        event = {
            "timestamp": iso_from_ns(now),
            "type": "heartbeat",
            "stage_index": stage.stage_index,
            "stage_count": stage.stage_count,
        }
        return self._format(event, "info", "; ".join(parts))


def aggregate_message(aggregate: Aggregate) -> str:
    """What follows "all hosts: " on an aggregate line (see AGGREGATE_PATTERN)."""
    message = describe_aggregate(aggregate)
    if aggregate.slowest:
        slowest, by = aggregate.slowest[0], aggregate.direction
        message += f"; slowest {slowest.name} ({by} {megabytes(slowest.values.get(f'{by}_Bps', 0))} MB/s)"
    if aggregate.silent:
        message += "; silent " + ", ".join(h.name for h in aggregate.silent)
    return message
