"""A run's spans as a Gantt chart's lanes, and its time series per host and in total, on one
time axis: seconds since the run started. Plain data for the page, the terminal view and
the comparison; no drawing here.

Lanes: a span goes to the lane of its name, except that the epochs share one lane, the
checkpoints another, and the MPI ranks of a host another ("dlio ranks on node01"), so a
16-host run has tens of lanes, not hundreds. Lanes come in the order of the span tree
(depth first, children by start). Spans of a lane that overlap in time (a host's ranks) are
stacked in rows of their own within the lane.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass, field

from .record import RunRecord
from .recording import Span

_EPOCH = re.compile(r"epoch \d+(/\d+)?$")
_CHECKPOINT = re.compile(r"checkpoint \d+$")


@dataclass
class Bar:
    span: Span
    start_s: float  # since the run started
    end_s: float
    row: int = 0  # within its lane: overlapping bars are stacked

    @property
    def label(self) -> str:
        return self.span.name.rstrip(" .…")


@dataclass
class Lane:
    label: str
    kind: str  # run | stage | spinner | task | epoch | checkpoint | rank | host
    depth: int
    bars: list[Bar] = field(default_factory=list)
    rows: int = 1

    @property
    def failed(self) -> bool:
        return any(b.span.failed for b in self.bars)


def lane_of(span: Span) -> tuple[str, str]:
    """(lane label, lane kind) of a span."""
    name = span.name.rstrip(" .…")
    if span.kind != "task":
        return name, span.kind
    if _EPOCH.match(name):
        return "epochs", "epoch"
    if _CHECKPOINT.match(name):
        return "checkpoints", "checkpoint"
    if "mlpstorage.rank" in span.attributes:
        host = span.attributes.get("host.name")
        return (f"dlio ranks on {host}" if host else "dlio ranks"), "rank"
    if name.startswith("host "):
        return name, "host"
    return name, "task"


def lanes(record: RunRecord) -> list[Lane]:
    """The Gantt chart's lanes, in span-tree order."""
    origin = record.start_ns or 0
    children: dict[str | None, list[Span]] = {}
    known = {s.span_id for s in record.spans}
    for span in record.spans:  # already in start order
        parent = span.parent_id if span.parent_id in known else None
        children.setdefault(parent, []).append(span)
    found: dict[str, Lane] = {}
    stack = [(span, 0) for span in reversed(children.get(None, []))]
    while stack:
        span, depth = stack.pop()
        label, kind = lane_of(span)
        lane = found.setdefault(label, Lane(label, kind, depth))
        lane.bars.append(Bar(span, (span.start_ns - origin) / 1e9, (span.end_ns - origin) / 1e9))
        stack.extend((child, depth + 1) for child in reversed(children.get(span.span_id, [])))
    for lane in found.values():
        _stack_rows(lane)
    return _hosts_in_order(list(found.values()))


def _hosts_in_order(lanes: list[Lane]) -> list[Lane]:
    """Lanes of hosts or ranks that follow each other sorted by name (node2 before node10):
    hosts collected in parallel start in any order."""
    ordered: list[Lane] = []
    for lane in lanes:
        run = []
        while ordered and lane.kind in ("host", "rank") and ordered[-1].kind == lane.kind:
            run.append(ordered.pop())
        ordered.extend(sorted(run + [lane], key=lambda l: _natural(l.label)) if run else [lane])
    return ordered


def _natural(text: str) -> list:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


def _stack_rows(lane: Lane) -> None:
    """Each bar on the first row where it overlaps no other (greedy interval colouring)."""
    ends: list[float] = []
    for bar in sorted(lane.bars, key=lambda b: (b.start_s, b.end_s)):
        row = next((i for i, end in enumerate(ends) if end <= bar.start_s), len(ends))
        if row == len(ends):
            ends.append(bar.end_s)
        else:
            ends[row] = bar.end_s
        bar.row = row
    lane.rows = max(1, len(ends))


@dataclass
class StageMark:
    name: str
    start_s: float
    end_s: float
    failed: bool


def stage_marks(record: RunRecord) -> list[StageMark]:
    origin = record.start_ns or 0
    return [StageMark(s.name, (s.start_ns - origin) / 1e9, (s.end_ns - origin) / 1e9, s.failed) for s in record.stages]


# ----- time series -------------------------------------------------------------------------
@dataclass(frozen=True)
class Metric:
    key: str  # in a sample
    title: str
    unit: str
    scale: float  # sample value x scale = shown value
    total: str  # how hosts add up: sum | mean


METRICS = (
    Metric("read_Bps", "Read", "MB/s", 1e-6, "sum"),
    Metric("write_Bps", "Write", "MB/s", 1e-6, "sum"),
    Metric("rx_Bps", "Network in", "MB/s", 1e-6, "sum"),
    Metric("tx_Bps", "Network out", "MB/s", 1e-6, "sum"),
    Metric("mem_available_bytes", "Memory available", "GB", 1e-9, "sum"),
    Metric("load1", "Load (1 min)", "", 1.0, "mean"),
)
TOTAL = "all hosts"


@dataclass
class Series:
    """One line of a plot: a host's values of a metric (or all hosts' total), over time."""

    name: str
    times_s: list[float]
    values: list[float]


def host_series(record: RunRecord, metric: Metric) -> list[Series]:
    """A line per host (in host order) of one metric."""
    origin = record.start_ns or 0
    lines = []
    for host, samples in sorted(record.samples.items()):
        points = [((s["timestamp_ns"] - origin) / 1e9, s[metric.key] * metric.scale)
                  for s in samples if metric.key in s]
        if points:
            lines.append(Series(host, [round(t, 3) for t, _ in points], [v for _, v in points]))
    return lines


def total_series(record: RunRecord, metric: Metric) -> Series | None:
    """All hosts together: samples put in interval-wide buckets (each host samples on its own
    clock), then added up (or averaged, for the load). A bucket a host missed counts without it."""
    lines = host_series(record, metric)
    return _total(lines, record.interval_s or 1.0, metric.total) if lines else None


def _total(lines: list[Series], interval_s: float, how: str) -> Series:
    first = min(line.times_s[0] for line in lines)
    buckets: dict[int, list[float]] = {}
    times: dict[int, list[float]] = {}
    for line in lines:
        for t, v in zip(line.times_s, line.values):
            k = round((t - first) / interval_s)
            buckets.setdefault(k, []).append(v)
            times.setdefault(k, []).append(t)
    keys = sorted(buckets)
    values = [sum(buckets[k]) / (len(buckets[k]) if how == "mean" else 1) for k in keys]
    return Series(f"{TOTAL} ({how})", [round(sum(times[k]) / len(times[k]), 3) for k in keys], values)


def format_duration(seconds: float) -> str:
    """0.065 s, 12.3 s, 12:03 (723.4 s), 1:02:03 (3723.4 s)."""
    if seconds < 10:
        return f"{seconds:.3f} s"
    if seconds < 60:
        return f"{seconds:.1f} s"
    whole = int(round(seconds))
    hours, rest = divmod(whole, 3600)
    clock = f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"
    return f"{clock} ({seconds:.1f} s)"


def utc(ns: int | None) -> str:
    """2026-11-27 10:10:00 UTC from nanoseconds since the epoch."""
    try:
        return datetime.datetime.fromtimestamp(ns / 1e9, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (TypeError, ValueError, OverflowError, OSError):  # none, or a moment no calendar has
        return "unknown"
