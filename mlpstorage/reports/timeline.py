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
import itertools
import re
from dataclasses import dataclass, field

from typing import TYPE_CHECKING

from .record import RunRecord
from .recording import Span

if TYPE_CHECKING:  # numpy only for a run with time series (its samples are numpy arrays already)
    import numpy as np

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
    kind: str  # run | stage | spinner | task | epoch | checkpoint | rank | host | io
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
    if "mlpstorage.io.slowest" in span.attributes:  # --io-trace: the run's slowest calls, on one lane
        return "slowest I/O calls", "io"
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
    for kind, group in itertools.groupby(lanes, key=lambda l: l.kind if l.kind in ("host", "rank") else id(l)):
        group = list(group)
        ordered.extend(sorted(group, key=lambda l: natural_key(l.label)) if kind in ("host", "rank") else group)
    return ordered


def natural_key(text: str) -> list:
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
    key: str  # in a sample (samples.KEYS)
    title: str
    unit: str
    scale: float  # sample value x scale = shown value
    total: str  # how hosts add up: sum | mean
    worse: str = "low"  # which way a host is the slow one: low (a rate, memory left) | high (load)


METRICS = (
    Metric("read_Bps", "Read", "MB/s", 1e-6, "sum"),
    Metric("write_Bps", "Write", "MB/s", 1e-6, "sum"),
    Metric("rx_Bps", "Network in", "MB/s", 1e-6, "sum"),
    Metric("tx_Bps", "Network out", "MB/s", 1e-6, "sum"),
    Metric("mem_available_bytes", "Memory available", "GB", 1e-9, "sum"),
    Metric("load1", "Load (1 min)", "", 1.0, "mean", worse="high"),
)
TOTAL = "all hosts"


@dataclass
class Series:
    """One line of a plot: a host's values of a metric (or all hosts' total), over time."""

    name: str
    times_s: list[float]
    values: list[float]


def _points(record: RunRecord, host: str, metric: Metric) -> tuple[np.ndarray, np.ndarray]:
    """(seconds since the run started, shown values) of a host's samples that hold the metric."""
    import numpy as np

    samples = record.samples[host]
    column = samples.values.get(metric.key)
    if column is None:
        return np.empty(0), np.empty(0)
    kept = ~np.isnan(column)
    return (samples.times_ns[kept] - float(record.start_ns or 0)) / 1e9, column[kept] * metric.scale


def host_series(record: RunRecord, metric: Metric, hosts: list[str] | None = None) -> list[Series]:
    """A line per host (in host order; of the hosts given, else all) of one metric."""
    import numpy as np

    lines = []
    for host in sorted(record.samples) if hosts is None else hosts:
        times, values = _points(record, host, metric)
        if len(times):
            lines.append(Series(host, np.round(times, 3).tolist(), values.tolist()))
    return lines


@dataclass
class Binned:
    """Every host's values of a metric in interval-wide time bins (each host samples on its
    own clock): a row per host (in host order), NaN where a host has no sample in a bin."""

    hosts: list[str]
    times_s: np.ndarray  # each bin's mean sample time
    values: np.ndarray  # hosts x bins


def binned(record: RunRecord, metric: Metric) -> Binned | None:
    import numpy as np

    points = {host: _points(record, host, metric) for host in sorted(record.samples)}
    points = {host: tv for host, tv in points.items() if len(tv[0])}
    if not points:
        return None
    interval = record.interval_s or 1.0
    first = min(times[0] for times, _ in points.values())
    bins = {host: np.round((times - first) / interval).astype(np.int64) for host, (times, _) in points.items()}
    keys = np.unique(np.concatenate(list(bins.values())))
    values = np.full((len(points), len(keys)), np.nan)
    time_sum, time_count = np.zeros(len(keys)), np.zeros(len(keys))
    for row, (host, (times, host_values)) in enumerate(points.items()):
        where = np.searchsorted(keys, bins[host])
        values[row, where] = host_values  # (two samples of a host in one bin: the later one)
        np.add.at(time_sum, where, times)
        np.add.at(time_count, where, 1)
    return Binned(list(points), np.round(time_sum / time_count, 3), values)


def total_series(record: RunRecord, metric: Metric) -> Series | None:
    """All hosts together: samples put in interval-wide buckets, then added up (or averaged,
    for the load). A bucket a host missed counts without it."""
    import numpy as np

    found = binned(record, metric)
    if found is None:
        return None
    present = ~np.isnan(found.values)
    total = np.where(present, found.values, 0.0).sum(axis=0)
    if metric.total == "mean":
        total = total / present.sum(axis=0)
    return Series(f"{TOTAL} ({metric.total})", found.times_s.tolist(), total.tolist())


ENVELOPE = ("min", "p10", "median", "p90", "max")
SLOWEST_DRAWN = 3  # hosts drawn alone over the envelope, per metric


@dataclass
class Envelope:
    """What a plot of many hosts shows: per time bin the spread over hosts, and the hosts
    furthest on the slow side of the median over the run (drawn alone)."""

    times_s: list[float]
    figures: dict[str, list[float]]  # ENVELOPE name -> a value per bin
    slowest: list[Series]


def envelope(record: RunRecord, metric: Metric, slowest: int = SLOWEST_DRAWN) -> Envelope | None:
    import numpy as np

    found = binned(record, metric)
    if found is None:
        return None
    figures = np.nanpercentile(found.values, [0, 10, 50, 90, 100], axis=0)
    typical = np.nanmean(found.values, axis=1)  # each host over the run
    order = np.argsort(typical if metric.worse == "low" else -typical, kind="stable")
    drawn = [found.hosts[i] for i in order[:slowest]]
    return Envelope(found.times_s.tolist(), {name: row.tolist() for name, row in zip(ENVELOPE, figures)},
                    host_series(record, metric, drawn))


def host_figures(record: RunRecord) -> dict[str, dict[str, float]]:
    """host -> per metric key its mean over the run (memory: its least), in shown units."""
    found = {}
    for metric in METRICS:
        for host in record.samples:
            _, values = _points(record, host, metric)
            if len(values):
                figure = values.min() if metric.key == "mem_available_bytes" else values.mean()
                found.setdefault(host, {})[metric.key] = float(figure)
    return found


# ----- many hosts ----------------------------------------------------------------------------
def gathered(lanes: list[Lane], most: int) -> list[Lane]:
    """The lanes with each run of more than `most` host lanes (or rank lanes) gathered in
    one lane of a bar per parent span (a collection, the job), spanning its children, named
    with their count and the slowest; the failed ones and the slowest keep lanes of their own."""
    found: list[Lane] = []
    for kind, group in itertools.groupby(lanes, key=lambda l: l.kind if l.kind in ("host", "rank") else id(l)):
        group = list(group)
        if kind not in ("host", "rank") or len(group) <= most:
            found.extend(group)
            continue
        bars = [bar for lane in group for bar in lane.bars]
        slowest = max(group, key=lambda l: max(b.end_s - b.start_s for b in l.bars))
        what = "hosts" if kind == "host" else f"ranks on {len(group)} hosts"
        lane = Lane(f"{len(group) if kind == 'host' else len(bars)} {what}", kind, group[0].depth,
                    [_gathered_bar(same, what, kind) for _, same in
                     itertools.groupby(sorted(bars, key=lambda b: (b.span.parent_id or "", b.start_s)),
                                       key=lambda b: b.span.parent_id)])
        _stack_rows(lane)
        found.append(lane)
        found.extend(l for l in group if l.failed or l is slowest)
    return found


def _gathered_bar(bars, what: str, kind: str) -> Bar:
    bars = list(bars)
    first, last = min(b.start_s for b in bars), max(b.end_s for b in bars)
    failed = [b for b in bars if b.span.failed]
    longest = max(bars, key=lambda b: b.end_s - b.start_s)
    name = (f"{len(bars)} {what.split(' ')[0]}: the longest {longest.span.name} {format_duration(longest.span.duration_s)}"
            + (f", {len(failed)} failed" if failed else ""))
    origin = longest.span.start_ns - int(longest.start_s * 1e9)
    span = Span("", None, "task", name, origin + int(first * 1e9), origin + int(last * 1e9),
                "error" if failed else "ok", f"{len(failed)} failed" if failed else None, {})
    return Bar(span, first, last)


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
