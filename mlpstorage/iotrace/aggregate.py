"""From DFTracer's calls to what a storage engineer asks: per operation, host and rank the
count, bytes and latency distribution; per epoch and rank the time in I/O against compute;
the slowest calls; per-file totals; and I/O over time per rank.

Everything is accumulated a block of calls at a time with numpy (see reader.py), so memory
is bounded by what is kept, never by the number of calls: fixed histograms per operation,
time bins per rank (BIN_S), a handful of slowest calls, one row per file of the data set.

Latencies go into log-spaced buckets, ten a decade (the R10 series 1, 1.25, 1.6, 2, 2.5,
3.15, 4, 5, 6.3, 8 from 1 us to 1,000 s); a percentile is interpolated in its bucket, so it is
within one bucket (26 %) of the exact value, and clamped to the exact min and max. The 1-2-5
boundaries among them are the metric's buckets (METRIC_BOUNDS_S), summed exactly.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .reader import Call

_R10 = (1.0, 1.25, 1.6, 2.0, 2.5, 3.15, 4.0, 5.0, 6.3, 8.0)
LATENCY_BOUNDS_US = np.array([m * 10.0 ** d for d in range(10) for m in _R10] + [1e10])  # 1 us .. 10,000 s
METRIC_INDEX = np.array([i for i in range(81) if i % 10 in (0, 3, 7)])  # the 1, 2 and 5 of each decade
METRIC_BOUNDS_S = [float(LATENCY_BOUNDS_US[i]) / 1e6 for i in METRIC_INDEX]  # 1 us .. 100 s, 1-2-5
SIZE_BOUNDS = np.array([float(1 << k) for k in range(0, 41)])  # 1 B .. 1 TiB, powers of two, upper-inclusive
N_LAT = len(LATENCY_BOUNDS_US) + 1  # bucket i: bounds[i-1] < us <= bounds[i] (as OpenTelemetry's); 0: to 1 us
N_SIZE = len(SIZE_BOUNDS) + 1
BIN_S = 0.1  # the time bins of a rank's I/O (busy time, bytes)
SLOWEST = 20  # the slowest system calls kept per rank

# Categories of DFTracer events that are I/O: the system calls, and DLIO's own readers, loaders,
# checkpointing and storage layer (their times include the calls under them).
SYSTEM = {"POSIX": "posix", "STDIO": "stdio"}
DLIO_IO = {"reader", "data_loader", "checkpoint", "storage"}
READS = {"read", "pread", "readv", "preadv", "fread"}
WRITES = {"write", "pwrite", "writev", "pwritev", "fwrite"}
OPENS = {"open", "openat", "fopen"}
EPOCH = "DLIOBenchmark._train"  # one span per epoch, in order
COMPUTE = "Framework.compute"  # how a step's simulated computation ends: TorchFramework.compute, TFFramework.compute
WAIT = "<module>.iter"  # a step waiting for its batch from the loader


def operation_name(call: Call) -> str:
    """open64 -> open, lseek64 -> lseek: one name per system call, whichever libc entry."""
    name = call.name
    return name[:-2] if name.endswith("64") and call.cat in SYSTEM else name


@dataclass
class _Op:
    layer: str
    latency: np.ndarray = field(default_factory=lambda: np.zeros(N_LAT, np.int64))
    size: np.ndarray = field(default_factory=lambda: np.zeros(N_SIZE, np.int64))
    count: int = 0
    bytes: int = 0
    total_us: int = 0
    min_us: int = 1 << 62
    max_us: int = 0

    def merge(self, other: "_Op") -> None:
        self.latency += other.latency
        self.size += other.size
        self.count += other.count
        self.bytes += other.bytes
        self.total_us += other.total_us
        self.min_us = min(self.min_us, other.min_us)
        self.max_us = max(self.max_us, other.max_us)


class _Grow:
    """A float array indexed by time bin that grows as later bins arrive."""

    def __init__(self):
        self.values = np.zeros(0)

    def add(self, index: np.ndarray, weights: np.ndarray) -> None:
        if not len(index):
            return
        counts = np.bincount(index, weights=weights)
        if len(counts) > len(self.values):
            self.values = np.concatenate([self.values, np.zeros(len(counts) - len(self.values))])
        self.values[:len(counts)] += counts


class _Names(dict):
    """Event name -> small code, a new code for each new name."""

    def __missing__(self, name: str) -> int:
        code = self[name] = len(self)
        return code


# what a name is, per code: the columns of RankTrace's lookup table
IS_IO, IS_SYSTEM, IS_SIZED, IS_OPEN, IS_READ, IS_WRITE, IS_COMPUTE, IS_WAIT, IS_EPOCH = range(9)


class RankTrace:
    """What one rank's trace file adds up to."""

    def __init__(self, rank: int, origin_us: int | None = None):
        self.rank = rank
        self.host: str | None = None  # set by whoever reads the file (reader.trace_host)
        self.origin_us = origin_us  # time bin 0 (the first event seen, unless given)
        self.ops: dict[str, _Op] = {}
        self.busy = _Grow()  # microseconds in system I/O calls per bin
        self.moved = _Grow()  # bytes read or written per bin
        self.epochs: list[tuple[int, int]] = []  # (start, end) us
        self.compute: list[np.ndarray] = []  # (ts, dur) rows of each step's computation
        self.wait: list[np.ndarray] = []  # (ts, dur) rows of each step's wait for its batch
        self.slowest: list[tuple] = []  # (dur, ts, op, layer, fname, bytes)
        self._file_codes = _Names()
        self._file_codes[None]  # code 0: a call without a file name
        self._file_stats = np.zeros((0, 6))  # file code -> opens, reads, read bytes, written bytes, io us, max us
        self.opens: list[np.ndarray] = []  # (file code, ts) rows of each open
        self.first_us: int | None = None
        self.last_us = 0
        self._names = _Names()
        self._table = np.zeros((0, 9), bool)  # code -> IS_* flags
        self._ops: list[str] = []  # code -> operation name
        self._layers: list[str] = []  # code -> layer

    def _learn(self, calls: list[Call], codes: np.ndarray) -> None:
        """Flags for the names first seen in this block."""
        known = len(self._table)
        firsts = {}
        for i in np.flatnonzero(codes >= known):
            firsts.setdefault(int(codes[i]), calls[i])
        rows = np.zeros((len(self._names) - known, 9), bool)
        for code in range(known, len(self._names)):
            call = firsts[code]
            op = operation_name(call)
            system = call.cat in SYSTEM
            row = rows[code - known]
            row[IS_IO] = system or call.cat in DLIO_IO
            row[IS_SYSTEM] = system
            row[IS_SIZED] = system and (op in READS or op in WRITES)
            row[IS_OPEN], row[IS_READ], row[IS_WRITE] = system and op in OPENS, system and op in READS, system and op in WRITES
            row[IS_COMPUTE] = call.name.endswith(COMPUTE)
            row[IS_WAIT] = call.name == WAIT
            row[IS_EPOCH] = call.name == EPOCH
            self._ops.append(op)
            self._layers.append(SYSTEM.get(call.cat, "dlio"))
        self._table = np.concatenate([self._table, rows])

    # ----- a block of calls --------------------------------------------------------------
    def add(self, calls: list[Call]) -> None:
        n = len(calls)
        if not n:
            return
        code = np.fromiter(map(self._names.__getitem__, map(_NAME, calls)), np.int64, n)
        if len(self._names) > len(self._table):
            self._learn(calls, code)
        ts = np.fromiter(map(_TS, calls), np.int64, n)
        dur = np.fromiter(map(_DUR, calls), np.int64, n)
        first, last = int(ts.min()), int((ts + dur).max())
        self.first_us = first if self.first_us is None else min(self.first_us, first)
        self.last_us = max(self.last_us, last)
        if self.origin_us is None:
            self.origin_us = first
        flags = self._table[code]
        for column, kept in ((IS_COMPUTE, self.compute), (IS_WAIT, self.wait)):
            where = flags[:, column]
            if where.any():
                kept.append(np.stack([ts[where], dur[where]], axis=1))
        for i in np.flatnonzero(flags[:, IS_EPOCH]):
            self.epochs.append((int(ts[i]), int(ts[i] + dur[i])))
        io = np.flatnonzero(flags[:, IS_IO])
        if len(io):
            moved = np.zeros(n, np.int64)
            sized = np.flatnonzero(flags[:, IS_SIZED])
            if len(sized):
                moved[sized] = _moved(_pick(calls, sized))
            self._add_ops(code[io], ts[io], dur[io], moved[io])
            system = np.flatnonzero(flags[:, IS_SYSTEM])
            if len(system):
                self._add_system(calls, code, flags, system, ts, dur, moved)

    def _add_ops(self, code: np.ndarray, ts: np.ndarray, dur: np.ndarray, moved: np.ndarray) -> None:
        n = len(self._table)
        lat = np.searchsorted(LATENCY_BOUNDS_US, dur, side="left")
        latency = np.bincount(code * N_LAT + lat, minlength=n * N_LAT).reshape(n, N_LAT)
        has_size = moved > 0
        size = np.searchsorted(SIZE_BOUNDS, moved[has_size], side="left")
        sizes = np.bincount(code[has_size] * N_SIZE + size, minlength=n * N_SIZE).reshape(n, N_SIZE)
        counts = np.bincount(code, minlength=n)
        bytes_ = np.bincount(code, weights=moved, minlength=n)
        total = np.bincount(code, weights=dur, minlength=n)
        order = np.argsort(code, kind="stable")
        sorted_code, sorted_dur = code[order], dur[order]
        starts = np.flatnonzero(np.r_[True, sorted_code[1:] != sorted_code[:-1]])
        lows, highs = np.minimum.reduceat(sorted_dur, starts), np.maximum.reduceat(sorted_dur, starts)
        for c, low, high in zip(sorted_code[starts], lows, highs):
            c = int(c)
            entry = self.ops.get(self._ops[c])
            if entry is None:
                entry = self.ops[self._ops[c]] = _Op(self._layers[c])
            entry.latency += latency[c]
            entry.size += sizes[c]
            entry.count += int(counts[c])
            entry.bytes += int(bytes_[c])
            entry.total_us += int(total[c])
            entry.min_us = min(entry.min_us, int(low))
            entry.max_us = max(entry.max_us, int(high))

    def _add_system(self, calls, code, flags, system, ts, dur, moved) -> None:
        bins = np.maximum((ts[system] - self.origin_us) // int(BIN_S * 1e6), 0)
        self.busy.add(bins, dur[system].astype(float))
        self.moved.add(bins, moved[system].astype(float))
        self._keep_slowest(calls, code, system, ts, dur, moved)
        mine = _pick(calls, system)
        code_of = self._file_codes.__getitem__
        try:  # a name met before a call without args has the same code on the second pass
            file = np.fromiter(map(code_of, map(_ARGS_FNAME, mine)), np.int64, len(mine))
        except AttributeError:  # some event without args (traced without DFTRACER_INC_METADATA)
            file = np.fromiter(map(code_of, map(_fname, mine)), np.int64, len(mine))
        named = file != self._file_codes[None]
        file, flag = file[named], flags[system][named]
        d, m = dur[system][named], moved[system][named]
        n = len(self._file_codes)
        if n > len(self._file_stats):
            self._file_stats = np.concatenate([self._file_stats, np.zeros((n - len(self._file_stats), 6))])
        stats = self._file_stats
        stats[:n, 0] += np.bincount(file, weights=flag[:, IS_OPEN], minlength=n)
        stats[:n, 1] += np.bincount(file, weights=flag[:, IS_READ], minlength=n)
        stats[:n, 2] += np.bincount(file, weights=m * flag[:, IS_READ], minlength=n)
        stats[:n, 3] += np.bincount(file, weights=m * flag[:, IS_WRITE], minlength=n)
        stats[:n, 4] += np.bincount(file, weights=d, minlength=n)
        longer = d > stats[file, 5]  # the few calls that raise their file's maximum: .at is slow
        np.maximum.at(stats[:, 5], file[longer], d[longer])
        opens = flag[:, IS_OPEN]
        if opens.any():
            self.opens.append(np.stack([file[opens], ts[system][named][opens]], axis=1))

    @property
    def files(self) -> dict[str, list]:
        """fname -> [opens, reads, read bytes, written bytes, io us, max us]."""
        rows = self._file_stats.tolist()  # Python floats: int() of each is cheaper than of numpy's
        return {name: [int(v) for v in rows[code]] for name, code in self._file_codes.items() if name is not None}

    def open_times(self) -> list[tuple[str, int]]:
        """(fname, ts) of every open: which epochs read which file."""
        names = {code: name for name, code in self._file_codes.items()}
        rows = np.concatenate(self.opens).tolist() if self.opens else []  # one conversion, not one per value
        return [(names[f], t) for f, t in rows]

    def _keep_slowest(self, calls, code, system, ts, dur, moved) -> None:
        k = min(SLOWEST, len(system))
        top = system[np.argpartition(dur[system], len(system) - k)[-k:]]
        floor = self.slowest[-1][0] if len(self.slowest) >= SLOWEST else -1
        for i in top:
            if dur[i] > floor:
                c = int(code[i])
                self.slowest.append((int(dur[i]), int(ts[i]), self._ops[c], self._layers[c], _fname(calls[i]),
                                     int(moved[i])))
        self.slowest.sort(key=lambda s: -s[0])
        del self.slowest[SLOWEST:]

    def steps(self, kind: str) -> np.ndarray:
        """(ts, dur) rows of every step's computation ("compute") or wait ("wait"), by start."""
        parts = self.compute if kind == "compute" else self.wait
        if len(parts) != 1:  # one sorted array from here on
            rows = np.concatenate(parts) if parts else np.zeros((0, 2), np.int64)
            parts[:] = [rows[np.argsort(rows[:, 0], kind="stable")]]
        return parts[0]


_NAME, _TS, _DUR = operator.attrgetter("name"), operator.attrgetter("ts"), operator.attrgetter("dur")
_ARGS_FNAME, _ARGS_RET = operator.attrgetter("args.fname"), operator.attrgetter("args.ret")


def _pick(calls: list[Call], index: np.ndarray) -> Sequence[Call]:
    """calls[i] for each i of index (itemgetter: twice as fast as a loop over numpy integers)."""
    if len(index) == 1:
        return [calls[int(index[0])]]
    return operator.itemgetter(*index.tolist())(calls)


def _fname(call: Call) -> str | None:
    return call.args.fname if call.args is not None else None


def _moved(calls: Sequence[Call]) -> np.ndarray:
    """The bytes each read or write moved: its return value (0 when it has none, or failed)."""
    try:
        moved = np.fromiter(map(_ARGS_RET, calls), np.int64, len(calls))
    except (AttributeError, TypeError):  # some call without args or without ret
        moved = np.fromiter(map(returned, calls), np.int64, len(calls))
    return np.maximum(moved, 0)


def returned(call: Call) -> int:
    """The call's return value (the bytes a read or write moved, or -1); 0 when it has none."""
    args = call.args
    if args is None:
        return 0
    return args.ret or 0


def merge_ops(ranks: list[RankTrace], by) -> dict[tuple, _Op]:
    """The operations of several ranks added up under a key of (rank, op name)."""
    merged: dict[tuple, _Op] = {}
    for rank in ranks:
        for name, op in rank.ops.items():
            key = by(rank, name)
            total = merged.get(key)
            if total is None:
                total = merged[key] = _Op(op.layer)
            total.merge(op)
    return merged


def percentile(latency: np.ndarray, q: float, low_us: int, high_us: int) -> float:
    """The q-quantile (0..1) in microseconds, interpolated within its bucket."""
    total = int(latency.sum())
    if not total:
        return 0.0
    cumulative = np.cumsum(latency)
    target = q * total
    i = int(np.searchsorted(cumulative, target, side="left"))
    below = float(cumulative[i - 1]) if i else 0.0
    lo = float(LATENCY_BOUNDS_US[i - 1]) if i else 0.0
    hi = float(LATENCY_BOUNDS_US[i]) if i < len(LATENCY_BOUNDS_US) else float(high_us)
    inside = float(latency[i]) or 1.0
    value = lo + (hi - lo) * (target - below) / inside
    return float(min(max(value, low_us), high_us))
