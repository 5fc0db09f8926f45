"""The I/O trace of a run as one small, versioned JSON file: `io_trace.json` in the run folder
(its fields: docs/iotrace.md). Readable without mlpstorage; once the run is over the run page,
`reports show`, `reports compare`, reportgen and the metrics read this, never the trace files
again (during the run, live.py and a stall's evidence read the files as they grow).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .aggregate import (
    BIN_S,
    LATENCY_BOUNDS_US,
    METRIC_BOUNDS_S,
    METRIC_INDEX,
    SIZE_BOUNDS,
    RankTrace,
    _Op,
    merge_ops,
    percentile,
)
from .reader import ReadCount, read_calls, trace_files, trace_host

from . import IO_TRACE_FILE
FORMAT = "mlpstorage.io_trace"
VERSION = 1
PERCENTILES = {"p50": 0.5, "p90": 0.9, "p99": 0.99, "p999": 0.999}
TIMELINE_BINS = 240  # columns of the I/O-over-time heatmap, whatever the run's length
SLOWEST_KEPT = 50
HOTTEST_FILES = 20


class NotAnIoTrace(ValueError):
    """A file that is not an io_trace.json this version reads."""


def summarise(folder: Path, warn: Callable[[str], None] | None = None) -> dict | None:
    """The run folder's rank traces as the io_trace.json document; None without trace files.
    A file cut short or with corrupt lines is one warning, and the rest of it still counts."""
    files = trace_files(folder)
    if not files:
        return None
    ranks, sources = [], []
    origin = None
    for trace in files:
        count = ReadCount()
        rank = RankTrace(trace.rank, origin)
        rank.host = trace_host(trace.path)
        for calls in read_calls(trace.path, count):
            rank.add(calls)
        origin = rank.origin_us if origin is None else origin
        if count.bad_lines and warn is not None:
            warn(f"{trace.path.name}: {count.bad_lines} line{'s' if count.bad_lines != 1 else ''} could not be "
                 f"read (cut short or corrupt; first: {count.first_bad[:80]!r}); the rest of the file is counted")
        ranks.append(rank)
        sources.append({"file": trace.path.name, "rank": trace.rank, "of": trace.size, "host": rank.host,
                        "events": count.events, "bad_lines": count.bad_lines})
    ranks = [r for r in ranks if r.first_us is not None]
    _align(ranks)
    start = min((r.first_us for r in ranks), default=0)
    end = max((r.last_us for r in ranks), default=0)
    return {
        "format": FORMAT,
        "version": VERSION,
        "tracer": "DFTracer",
        "sources": sources,
        "events": sum(s["events"] for s in sources),
        "bad_lines": sum(s["bad_lines"] for s in sources),
        "start_unix_us": start,
        "end_unix_us": end,
        "latency_bounds_us": [float(b) for b in LATENCY_BOUNDS_US],
        "size_bounds_bytes": [int(b) for b in SIZE_BOUNDS],
        "metric_bounds_s": METRIC_BOUNDS_S,
        "operations": _op_rows(merge_ops(ranks, lambda r, name: (r.host, r.rank, name))),
        "by_host": _op_rows(merge_ops(ranks, lambda r, name: (r.host, None, name))),
        "epochs": _epochs(ranks),
        "timeline": _timeline(ranks, start, end),
        "slowest": _slowest(ranks),
        "files": _files(ranks),
    }


def write_summary(folder: Path, warn: Callable[[str], None] | None = None) -> dict | None:
    """summarise() written to folder/io_trace.json (whole or not at all); the document."""
    document = summarise(folder, warn)
    if document is not None:
        target = folder / IO_TRACE_FILE
        partial = target.with_suffix(".json.partial")
        partial.write_text(json.dumps(document, separators=(",", ":")))
        partial.replace(target)
    return document


def load_summary(folder_or_file: Path) -> dict | None:
    """A run's io_trace.json, or None when the run was not traced. NotAnIoTrace when the file
    is there but is not one this version reads."""
    path = folder_or_file / IO_TRACE_FILE if folder_or_file.is_dir() else folder_or_file
    try:
        document = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise NotAnIoTrace(f"{path}: {exc}") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT or document.get("version") != VERSION:
        raise NotAnIoTrace(f"{path}: not an {IO_TRACE_FILE} of version {VERSION}")
    return document


# ----- the parts --------------------------------------------------------------------------
def _align(ranks: list[RankTrace]) -> None:
    """One time origin for every rank's bins (each file started its own at its first event)."""
    origin = min((r.origin_us for r in ranks), default=0)
    step = int(BIN_S * 1e6)
    for rank in ranks:
        shift = (rank.origin_us - origin) // step
        if shift:
            for series in (rank.busy, rank.moved):
                series.values = np.concatenate([np.zeros(shift), series.values])
        rank.origin_us = origin


def _op_rows(ops: dict[tuple, _Op]) -> list[dict]:
    rows = []
    for (host, rank, name), op in sorted(ops.items(), key=lambda kv: (str(kv[0][0]), kv[0][1] or 0, kv[0][2])):
        row = {"operation": name, "layer": op.layer, "host": host, **({"rank": rank} if rank is not None else {}),
               "count": op.count, "bytes": op.bytes, "total_s": op.total_us / 1e6, "min_us": op.min_us}
        for label, q in PERCENTILES.items():
            row[f"{label}_us"] = round(percentile(op.latency, q, op.min_us, op.max_us), 1)
        row["max_us"] = op.max_us
        row["latency_counts"] = _sparse(op.latency)
        row["size_counts"] = _sparse(op.size)
        row["metric_counts"] = metric_counts(op.latency)
        rows.append(row)
    return rows


def metric_counts(latency: np.ndarray) -> list[int]:
    """The fine buckets summed into the metric's (one more than METRIC_BOUNDS_S: the last is
    everything from 100 s)."""
    edges = np.concatenate([[0], METRIC_INDEX + 1, [len(latency)]])
    cumulative = np.concatenate([[0], np.cumsum(latency)])
    return [int(cumulative[b] - cumulative[a]) for a, b in zip(edges[:-1], edges[1:])]


def _sparse(counts: np.ndarray) -> list[list[int]]:
    """[[bucket, count], ...] for the buckets that are not empty."""
    return [[int(i), int(counts[i])] for i in np.flatnonzero(counts)]


def _sum_within(rows: np.ndarray, window: tuple[int, int]) -> int:
    """The durations of the (ts, dur) rows, sorted by ts, that start inside the window."""
    a, b = np.searchsorted(rows[:, 0], window, side="left")
    return int(rows[a:b, 1].sum())


def _share(values: np.ndarray, start: int, stop: int, step: int) -> float:
    """What the bins hold between start and stop (us from bin 0): whole bins inside, and of
    the two bins cut by the window the part it covers (as if spread evenly over the bin), so
    consecutive epochs share nothing and a short epoch that read is never 0."""
    if stop <= start or not len(values):
        return 0.0
    first, last = start // step, (stop - 1) // step
    picked = values[first:last + 1].astype(float)
    if not len(picked):
        return 0.0
    weights = np.ones(len(picked))
    weights[0] -= (start - first * step) / step
    weights[-1] -= ((last + 1) * step - stop) / step
    return float((picked * weights).sum())


def _epochs(ranks: list[RankTrace]) -> list[dict]:
    rows = []
    step = int(BIN_S * 1e6)
    for rank in ranks:
        for number, window in enumerate(sorted(rank.epochs), start=1):
            compute, wait = (_sum_within(rank.steps(kind), window) for kind in ("compute", "wait"))
            start, stop = window[0] - rank.origin_us, window[1] - rank.origin_us
            duration = window[1] - window[0]
            rows.append({"rank": rank.rank, "host": rank.host, "epoch": number, "start_unix_us": window[0],
                         "duration_s": duration / 1e6, "compute_s": compute / 1e6, "wait_s": wait / 1e6,
                         "io_s": _share(rank.busy.values, start, stop, step) / 1e6,
                         "bytes": int(round(_share(rank.moved.values, start, stop, step))),
                         "compute_fraction": compute / duration if duration else None})
    return rows


def _timeline(ranks: list[RankTrace], start: int, end: int) -> dict:
    """Per rank, the share of each time bin spent in system I/O calls (summed over a rank's
    threads and processes, so it can pass 1) and the bytes moved, in at most TIMELINE_BINS bins."""
    span_s = max((end - start) / 1e6, BIN_S)
    factor = max(1, int(np.ceil(span_s / BIN_S / TIMELINE_BINS)))
    width = BIN_S * factor
    bins = int(np.ceil(span_s / width))
    rows = []
    for rank in ranks:
        busy, moved = (_rebin(s.values, factor, bins) for s in (rank.busy, rank.moved))
        rows.append({"rank": rank.rank, "host": rank.host, "busy": [round(float(v) / (width * 1e6), 4) for v in busy],
                     "bytes": [int(v) for v in moved]})
    return {"start_unix_us": min((r.origin_us for r in ranks), default=start), "bin_s": width, "ranks": rows}


def _rebin(values: np.ndarray, factor: int, bins: int) -> np.ndarray:
    padded = np.zeros(bins * factor)
    n = min(len(values), len(padded))
    padded[:n] = values[:n]
    return padded.reshape(bins, factor).sum(axis=1)


def _slowest(ranks: list[RankTrace]) -> list[dict]:
    calls = sorted(((s, r) for r in ranks for s in r.slowest), key=lambda sr: -sr[0][0])[:SLOWEST_KEPT]
    return [{"operation": op, "layer": layer, "rank": r.rank, "host": r.host, "file": fname,
             "start_unix_us": ts, "duration_us": dur, "bytes": moved}
            for (dur, ts, op, layer, fname, moved), r in calls]


def _files(ranks: list[RankTrace]) -> dict:
    """Per-file totals: the hottest files (most time in I/O) and, per epoch, the files that
    were opened in some epoch but not in that one."""
    totals: dict[str, list] = {}
    for rank in ranks:
        for fname, row in rank.files.items():
            total = totals.setdefault(fname, [0, 0, 0, 0, 0, 0])
            for i in range(5):
                total[i] += row[i]
            total[5] = max(total[5], row[5])
    hottest = sorted(totals.items(), key=lambda kv: -kv[1][4])[:HOTTEST_FILES]
    windows = sorted((w for r in ranks for w in r.epochs))
    epochs = _epoch_spans(windows)
    opened_in: dict[int, set] = {n: set() for n in range(1, len(epochs) + 1)}
    starts, ends = np.array([w[0] for w in epochs]), np.array([w[1] for w in epochs])
    for rank in ranks:
        opens = rank.open_times()
        if not opens or not epochs:
            continue
        times = np.array([ts for _, ts in opens])
        numbers = np.searchsorted(starts, times, side="right")  # the last epoch started by each open
        inside = (numbers > 0) & (times < ends[np.maximum(numbers - 1, 0)])
        for i, number in zip(np.flatnonzero(inside).tolist(), numbers[inside].tolist()):
            opened_in[number].add(opens[i][0])
    read_files = set().union(*opened_in.values()) if opened_in else set()
    unread = []
    for number, opened in opened_in.items():
        missing = sorted(read_files - opened)
        unread.append({"epoch": number, "count": len(missing), "examples": missing[:5]})
    return {"count": len(totals),
            "read": sum(1 for t in totals.values() if t[1]),
            "hottest": [{"file": f, "opens": t[0], "reads": t[1], "read_bytes": t[2], "written_bytes": t[3],
                         "io_s": t[4] / 1e6, "max_us": t[5]} for f, t in hottest],
            "unread_per_epoch": unread}


def _epoch_spans(windows: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The run's epochs from every rank's: ranks run their epochs in step, so windows that
    overlap are one epoch, from the earliest start to the latest end."""
    groups: list[list[tuple[int, int]]] = []
    for window in windows:  # sorted by start: a window that starts after a group ended opens the next
        if groups and window[0] < max(w[1] for w in groups[-1]):
            groups[-1].append(window)
        else:
            groups.append([window])
    return [(min(w[0] for w in g), max(w[1] for w in g)) for g in groups]



EVENT_OPERATION_KEYS = ("operation", "layer", "host", "rank", "count", "bytes", "total_s", "min_us", "p50_us", "p90_us",
                        "p99_us", "p999_us", "max_us", "metric_counts")


def event_payload(document: dict) -> dict:
    """What the `io.summary` event carries of io_trace.json: per operation, host and rank the
    figures and the histogram on the metric's buckets, and I/O against compute per epoch and
    rank (the rest stays in the file: the event stream is read by every renderer)."""
    return {
        "file": IO_TRACE_FILE,
        "events": document["events"],
        "bad_lines": document["bad_lines"],
        "metric_bounds_s": document["metric_bounds_s"],
        "operations": [{k: row[k] for k in EVENT_OPERATION_KEYS if k in row} for row in document["operations"]],
        "epochs": [{k: row[k] for k in ("rank", "host", "epoch", "duration_s", "compute_s", "wait_s", "io_s")}
                   for row in document["epochs"]],
    }
