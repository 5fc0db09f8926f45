"""A run's I/O trace (io_trace.json, docs/iotrace.md) as every report shows it: per operation
the latency percentiles of the whole run, of each host and of its slowest rank, the latency
distribution per host, and one format for a latency and for bytes.

Percentiles over several hosts are computed from the summed fine histograms (the way
mlpstorage.iotrace computes them per rank), never averaged from the hosts' percentiles. The
file may come from anywhere: rows of another shape than this version writes are left out and
counted, never a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..iotrace import IO_TRACE_FILE, NotAnIoTrace, load_summary
from ..iotrace.aggregate import LATENCY_BOUNDS_US, N_LAT, READS, percentile

# The system calls every storage engineer looks at first, in this order; then DLIO's own calls
# with the most time (its readers, loaders and checkpointing).
MAIN_SYSTEM_CALLS = ("read", "write", "open", "close", "lseek", "fsync")
DLIO_SHOWN = 4
PERCENTILES = (("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("p99.9", 0.999))  # label, quantile
ROW_NUMBERS = ("count", "bytes", "min_us", "max_us")
# A latency bucket's point on a log axis: the geometric middle of its R10 bounds (ten a decade).
BUCKET_MIDDLES_US = LATENCY_BOUNDS_US / 10 ** 0.05


@dataclass(frozen=True)
class Latency:
    """One operation's figures over some calls: a host's, a rank's or the whole run's."""

    operation: str
    layer: str
    where: str  # "all hosts", a host, or "rank 3 (node01)"
    count: int
    bytes: int
    percentiles_us: dict  # p50, p90, p99, p99.9, max -> microseconds
    counts: np.ndarray  # the fine latency histogram (N_LAT buckets)

    def us(self, label: str) -> float:
        return self.percentiles_us[label]


class IoTrace:
    """io_trace.json of one run, checked as it is read (see problems)."""

    def __init__(self, document: dict):
        self.document = document
        self.problems: list[str] = []
        self.by_host = self._op_rows("by_host")
        self.by_rank = self._op_rows("operations")
        self.epochs = self._rows("epochs", ("rank", "epoch", "duration_s", "compute_s", "wait_s", "io_s"))
        self.slowest = self._rows("slowest", ("rank", "start_unix_us", "duration_us", "bytes"))
        files = document.get("files") if isinstance(document.get("files"), dict) else {}
        self.hottest = _valid(files.get("hottest"), ("opens", "reads", "read_bytes", "written_bytes", "io_s", "max_us"),
                              self._left_out("files.hottest"))
        self.unread = _valid(files.get("unread_per_epoch"), ("epoch", "count"),
                             self._left_out("files.unread_per_epoch"))
        self.files_touched, self.files_read = files.get("count"), files.get("read")
        self.timeline = self._timeline()

    # ----- reading, defensively ------------------------------------------------------------
    def _left_out(self, key: str):
        def note(count: int) -> None:
            self.problems.append(f"{IO_TRACE_FILE}: {count} row{'s' if count != 1 else ''} of {key} not as this "
                                 "version writes them; left out")
        return note

    def _rows(self, key: str, numbers: tuple[str, ...]) -> list[dict]:
        return _valid(self.document.get(key), numbers, self._left_out(key))

    def _op_rows(self, key: str) -> list[dict]:
        rows = self._rows(key, ROW_NUMBERS + tuple(f"{label.replace('.', '')}_us" for label, _ in PERCENTILES))
        kept = [r for r in rows if isinstance(r.get("operation"), str) and _histogram(r.get("latency_counts"))
                is not None]
        if len(kept) < len(rows):
            self._left_out(key)(len(rows) - len(kept))
        return kept

    def _timeline(self) -> dict | None:
        timeline = self.document.get("timeline")
        if not isinstance(timeline, dict) or _number(timeline.get("bin_s")) is None:
            return None
        ranks = [r for r in timeline.get("ranks") or () if isinstance(r, dict) and isinstance(r.get("busy"), list)
                 and all(_number(v) is not None for v in r["busy"])]
        return {**timeline, "ranks": ranks} if ranks else None

    # ----- what was traced -------------------------------------------------------------------
    @property
    def events(self) -> int | None:
        return _number(self.document.get("events"))

    @property
    def bad_lines(self) -> int | None:
        return _number(self.document.get("bad_lines"))

    @property
    def sources(self) -> list[dict]:
        return [s for s in self.document.get("sources") or () if isinstance(s, dict)]

    @property
    def start_unix_us(self) -> float | None:
        return _number(self.document.get("start_unix_us"))

    def hosts(self) -> list[str]:
        return list(dict.fromkeys(str(r.get("host")) for r in self.by_host))

    # ----- operations --------------------------------------------------------------------------
    def operations(self) -> list[str]:
        """The operations the reports show: the main system calls the run made, in their
        order, then DLIO's calls with the most time (not their constructors)."""
        totals: dict[str, float] = {}
        layers: dict[str, str] = {}
        for row in self.by_host:
            totals[row["operation"]] = totals.get(row["operation"], 0.0) + (_number(row.get("total_s")) or 0.0)
            layers[row["operation"]] = str(row.get("layer"))
        system = [name for name in MAIN_SYSTEM_CALLS if name in totals]
        dlio = sorted((name for name, layer in layers.items() if layer == "dlio" and not name.endswith("__init__")),
                      key=lambda name: -totals[name])
        return system + dlio[:DLIO_SHOWN]

    def overall(self, operation: str) -> Latency | None:
        """The operation over the whole run (every host)."""
        return _merged([r for r in self.by_host if r["operation"] == operation], operation, "all hosts")

    def per_host(self, operation: str) -> list[Latency]:
        return [_merged([r], operation, str(r.get("host"))) for r in self.by_host if r["operation"] == operation]

    def slowest_host(self, operation: str) -> Latency | None:
        """The host whose calls of operation have the highest p99 (then the highest max)."""
        rows = self.per_host(operation)
        return max(rows, key=lambda r: (r.us("p99"), r.us("max"))) if len(rows) > 1 else None

    def slowest_rank(self, operation: str) -> Latency | None:
        """The rank whose calls of operation have the highest p99 (then the highest max)."""
        rows = [r for r in self.by_rank if r["operation"] == operation]
        if len(rows) < 2:
            return None
        row = max(rows, key=lambda r: (r["p99_us"], r["max_us"]))
        return _merged([row], operation, f"rank {row.get('rank')} ({row.get('host')})")

    def reads(self) -> Latency | None:
        """Every read system call of the run together (read, pread, readv, preadv, fread)."""
        return _merged([r for r in self.by_host if r["operation"] in READS and r.get("layer") != "dlio"], "read",
                       "all hosts")

    def read_percentiles(self) -> tuple[float, float] | None:
        """(p50, p99) of every read system call, in microseconds; None without reads."""
        reads = self.reads()
        return (reads.us("p50"), reads.us("p99")) if reads is not None else None


def read_text(trace: IoTrace | None) -> str | None:
    """'read p50 1.80 µs, p99 66.4 µs' for a traced run that read; None otherwise."""
    found = trace.read_percentiles() if trace is not None else None
    return f"read p50 {format_latency(found[0])}, p99 {format_latency(found[1])}" if found else None


def _merged(rows: list[dict], operation: str, where: str) -> Latency | None:
    if not rows:
        return None
    counts = np.zeros(N_LAT, np.int64)
    for row in rows:
        counts += _histogram(row["latency_counts"])
    low, high = min(r["min_us"] for r in rows), max(r["max_us"] for r in rows)
    if len(rows) == 1:  # as written: the tracer's own figures
        figures = {label: rows[0][f"{label.replace('.', '')}_us"] for label, _ in PERCENTILES}
    else:
        figures = {label: round(percentile(counts, q, low, high), 1) for label, q in PERCENTILES}
    return Latency(operation, str(rows[0].get("layer")), where, int(sum(r["count"] for r in rows)),
                   int(sum(r["bytes"] for r in rows)), {**figures, "max": high}, counts)


def _histogram(pairs) -> np.ndarray | None:
    """[[bucket, count], ...] as the dense histogram; None when it is not one."""
    counts = np.zeros(N_LAT, np.int64)
    if not isinstance(pairs, list):
        return None
    for pair in pairs:
        if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(v, int) for v in pair)
                and 0 <= pair[0] < N_LAT and pair[1] >= 0):
            return None
        counts[pair[0]] += pair[1]
    return counts


def _number(value) -> float | None:
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) and value == value else None


def _valid(rows, numbers: tuple[str, ...], left_out) -> list[dict]:
    """The rows that are objects with a number in each of numbers; left_out(n) for the others."""
    rows = rows if isinstance(rows, list) else []
    kept = [r for r in rows if isinstance(r, dict) and all(_number(r.get(k)) is not None for k in numbers)]
    if len(kept) < len(rows):
        left_out(len(rows) - len(kept))
    return kept


def load_io_trace(run_dir: Path | None, problems: list[str]) -> IoTrace | None:
    """The run folder's io_trace.json, or None (not traced, or a file that does not read: one
    line in problems)."""
    if run_dir is None:
        return None
    try:
        document = load_summary(Path(run_dir) / IO_TRACE_FILE)
    except NotAnIoTrace as exc:
        problems.append(f"{exc}; the I/O trace is left out")
        return None
    if document is None:
        return None
    trace = IoTrace(document)
    problems.extend(trace.problems)
    return trace


# ----- one format each --------------------------------------------------------------------
def format_latency(us) -> str:
    """850 µs, 1.25 ms, 3.40 s: three significant figures in the unit that suits."""
    if _number(us) is None:
        return "-"
    for unit, scale in (("s", 1e6), ("ms", 1e3)):
        if abs(us) >= scale * 0.9995:  # 999.7 µs is 1.00 ms, not 1000 µs
            return f"{_significant(us / scale)} {unit}"
    return f"{_significant(us)} µs"


def format_bytes(value) -> str:
    """0 B, 512 B, 2.10 MB, 33.7 GB (powers of 1000, as the page's MB/s)."""
    if _number(value) is None:
        return "-"
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if abs(value) >= scale * 0.9995:
            return f"{_significant(value / scale)} {unit}"
    return f"{int(value)} B"


def _significant(value: float) -> str:
    """Three significant figures (two past 100): 0.500, 12.3, 100 (not 100.0 for 99.96)."""
    return f"{value:.0f}" if abs(value) >= 99.95 else f"{value:.1f}" if abs(value) >= 9.995 else f"{value:.2f}"
