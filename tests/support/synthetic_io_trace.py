"""A synthetic io_trace.json (docs/iotrace.md) for a synthetic run (synthetic_run.py with
io_trace=True): what `--io-trace` leaves behind for HOSTS hosts of RANKS_PER_HOST ranks each
over the run's epochs, built with the tracer's own buckets and percentile so that it reads
exactly as a real one. Latencies are log-normal per operation; one host (node04) reads three
times slower than the others, so the pages have something to show.
"""

from __future__ import annotations

import numpy as np

from mlpstorage.iotrace.aggregate import BIN_S, LATENCY_BOUNDS_US, METRIC_BOUNDS_S, N_LAT, SIZE_BOUNDS, percentile
from mlpstorage.iotrace.summary import FORMAT, PERCENTILES, TIMELINE_BINS, VERSION, metric_counts

# operation: (layer, median µs, sigma of its log, calls per rank over the run, bytes per call)
OPERATIONS = {
    "read": ("posix", 40.0, 1.0, 200_000, 262_144),
    "open": ("posix", 15.0, 0.6, 4_000, 0),
    "close": ("posix", 4.0, 0.5, 4_000, 0),
    "lseek": ("posix", 0.8, 0.7, 30_000, 0),
    "write": ("posix", 120.0, 1.2, 2_000, 4_194_304),
    "fsync": ("posix", 8_000.0, 0.8, 20, 0),
    "NPZReader.open": ("dlio", 3_000.0, 0.8, 4_000, 0),
    "NPZReader.read_index": ("dlio", 3_500.0, 0.8, 4_000, 0),
    "TorchDataset.__getitem__": ("dlio", 4_000.0, 0.8, 4_000, 0),
    "TorchDataLoader.next": ("dlio", 200.0, 1.5, 4_000, 0),
    "PyTorchCheckpointing.save_state": ("dlio", 2_000_000.0, 0.3, 2, 0),
}
SLOW_HOST = 3  # node04
SAMPLES = 2_000  # drawn per rank and operation, scaled to its calls
FILES = 28_000


def _sparse(counts: np.ndarray) -> list[list[int]]:
    return [[int(i), int(counts[i])] for i in np.flatnonzero(counts)]


def _row(name: str, layer: str, host: str, rank: int | None, latency: np.ndarray, low: int, high: int, total_us: float,
         size_bucket: int, size: int) -> dict:
    count = int(latency.sum())
    row = {"operation": name, "layer": layer, "host": host, **({"rank": rank} if rank is not None else {}),
           "count": count, "bytes": count * size, "total_s": total_us / 1e6, "min_us": low}
    for label, q in PERCENTILES.items():
        row[f"{label}_us"] = round(percentile(latency, q, low, high), 1)
    sizes = np.zeros(len(SIZE_BOUNDS) + 1, np.int64)
    sizes[size_bucket] = count
    row.update(max_us=high, latency_counts=_sparse(latency), size_counts=_sparse(sizes),
               metric_counts=metric_counts(latency))
    return row


def synthetic_io_trace(hosts: list[str], ranks_per_host: int, start_us: int, duration_s: float,
                       epochs: list[tuple[float, float]], seed: int = 1) -> dict:
    """The document; epochs: (start, end) in seconds after start_us."""
    rng = np.random.default_rng(seed)
    ranks = [(rank, hosts[rank % len(hosts)]) for rank in range(len(hosts) * ranks_per_host)]
    per_rank, per_host = [], {}
    for rank, host in ranks:
        slow = 3.0 if hosts.index(host) == SLOW_HOST else 1.0
        for name, (layer, median, sigma, calls, size) in OPERATIONS.items():
            drawn = rng.lognormal(np.log(median * (slow if name == "read" else 1.0)), sigma, min(calls, SAMPLES))
            buckets = np.searchsorted(LATENCY_BOUNDS_US, drawn, side="left")
            latency = np.bincount(buckets, minlength=N_LAT).astype(np.int64) * calls // len(drawn)
            low, high = int(drawn.min()), int(np.ceil(drawn.max()))
            total = float(drawn.mean()) * int(latency.sum())
            size_bucket = int(np.searchsorted(SIZE_BOUNDS, size, side="left")) if size else 0
            per_rank.append(_row(name, layer, host, rank, latency, low, high, total, size_bucket, size))
            merged = per_host.setdefault((host, name), [np.zeros(N_LAT, np.int64), low, high, 0.0, size_bucket, size])
            merged[0] += latency
            merged[1], merged[2] = min(merged[1], low), max(merged[2], high)
            merged[3] += total
    by_host = [_row(name, OPERATIONS[name][0], host, None, m[0], m[1], m[2], m[3], m[4], m[5])
               for (host, name), m in sorted(per_host.items())]
    events = sum(row["count"] for row in per_rank)
    return {
        "format": FORMAT, "version": VERSION, "tracer": "DFTracer",
        "sources": [{"file": f"trace-{rank}-of-{len(ranks)}.pfw", "rank": rank, "of": len(ranks), "host": host,
                     "events": events // len(ranks), "bad_lines": 0} for rank, host in ranks],
        "events": events, "bad_lines": 0,
        "start_unix_us": start_us, "end_unix_us": start_us + int(duration_s * 1e6),
        "latency_bounds_us": [float(b) for b in LATENCY_BOUNDS_US], "size_bounds_bytes": [int(b) for b in SIZE_BOUNDS],
        "metric_bounds_s": METRIC_BOUNDS_S,
        "operations": per_rank, "by_host": by_host,
        "epochs": _epochs(rng, ranks, hosts, start_us, epochs),
        "timeline": _timeline(rng, ranks, hosts, start_us, duration_s, epochs),
        "slowest": _slowest(rng, ranks, start_us, duration_s),
        "files": _files(rng, len(epochs)),
    }


def _epochs(rng, ranks, hosts, start_us, epochs) -> list[dict]:
    rows = []
    for rank, host in ranks:
        waits = 0.25 if hosts.index(host) == SLOW_HOST else 0.08
        for number, (begin, end) in enumerate(epochs, start=1):
            duration = end - begin
            compute = duration * (0.9 - waits) * rng.uniform(0.97, 1.0)
            wait = duration * waits * rng.uniform(0.9, 1.1)
            rows.append({"rank": rank, "host": host, "epoch": number, "start_unix_us": start_us + int(begin * 1e6),
                         "duration_s": duration, "compute_s": compute, "wait_s": wait,
                         "io_s": duration * rng.uniform(0.4, 0.7), "bytes": int(duration * 1.5e8),
                         "compute_fraction": compute / duration})
    return rows


def _timeline(rng, ranks, hosts, start_us, duration_s, epochs) -> dict:
    factor = max(1, int(np.ceil(duration_s / BIN_S / TIMELINE_BINS)))
    width = BIN_S * factor
    bins = int(np.ceil(duration_s / width))
    middles = (np.arange(bins) + 0.5) * width
    in_epoch = np.zeros(bins, bool)
    for begin, end in epochs:
        in_epoch |= (middles >= begin) & (middles < end)
    rows = []
    for rank, host in ranks:
        level = 0.9 if hosts.index(host) == SLOW_HOST else 0.45
        busy = np.where(in_epoch, level * rng.uniform(0.6, 1.2, bins), rng.uniform(0, 0.02, bins))
        rows.append({"rank": rank, "host": host, "busy": [round(float(v), 4) for v in busy],
                     "bytes": [int(v * 1.5e8 * width) for v in busy]})
    return {"start_unix_us": start_us, "bin_s": width, "ranks": rows}


def _file(i: int) -> str:
    return f"/mnt/fs/unet3d/train/img_{i:05d}_of_{FILES}.npz"


def _slowest(rng, ranks, start_us, duration_s) -> list[dict]:
    calls = []
    for i in range(50):
        rank, host = ranks[int(rng.integers(len(ranks)))]
        calls.append({"operation": "fsync" if i % 7 == 0 else "read", "layer": "posix", "rank": rank, "host": host,
                      "file": _file(int(rng.integers(FILES))),
                      "start_unix_us": start_us + int(rng.uniform(0, duration_s) * 1e6),
                      "duration_us": int(rng.uniform(50_000, 900_000)), "bytes": 0 if i % 7 == 0 else 262_144})
    return sorted(calls, key=lambda c: -c["duration_us"])


def _files(rng, epochs: int) -> dict:
    hottest = [{"file": _file(i * 1_337 % FILES), "opens": 10, "reads": 5_000, "read_bytes": 5_000 * 262_144,
                "written_bytes": 0, "io_s": float(rng.uniform(5, 9)) - i * 0.2, "max_us": int(rng.uniform(1e4, 9e5))}
               for i in range(20)]
    unread = [{"epoch": n, "count": 0 if n > 1 else 12, "examples": [_file(i) for i in range(5)] if n == 1 else []}
              for n in range(1, epochs + 1)]
    return {"count": FILES, "read": FILES, "hottest": hottest, "unread_per_epoch": unread}
