"""The I/O latency histogram `mlpstorage.io.duration`, made from a traced run's `io.summary` event.

One data point per operation row of the event (docs/iotrace.md): the row's counts on the
metric's fixed buckets (`metric_bounds_s`, 1-2-5 from 1 µs to 100 s, plus one bucket above),
its count, sum, min and max, with the operation, its layer, the host and, while the run has at
most MAX_RANKS_AS_ATTRIBUTE ranks, the rank as attributes. With more ranks the rows of each
host are summed: the buckets are fixed, so the counts add exactly.

The OpenTelemetry API has no asynchronous histogram, and recording every call's duration again
would take millions of record() calls for counts the trace reader already has, so the histogram
is built here as SDK data (a cumulative Histogram); renderers/metrics.py adds it to what the
metric readers receive.
"""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry.sdk.metrics.export import AggregationTemporality, Histogram, HistogramDataPoint, Metric

from mlpstorage.emitter.events import ns_from_iso

IO_DURATION = "mlpstorage.io.duration"
IO_DURATION_UNIT = "s"
IO_DURATION_DESCRIPTION = "Duration of the run's I/O calls (system calls and DLIO's I/O layers), from its I/O trace"
# Attributes of each data point (Prometheus labels: dots become underscores).
OPERATION = "mlpstorage.io.operation"
LAYER = "mlpstorage.io.layer"
HOST = "host.name"
RANK = "mlpstorage.rank"
# Up to this many ranks each rank is its own series (ranks x operations, about 30 operations in
# a DLIO run); beyond it, one series per host and operation keeps the cardinality bounded.
MAX_RANKS_AS_ATTRIBUTE = 64


def io_duration_metric(event: dict, start_ns: int | None = None) -> Metric | None:
    """The histogram of an `io.summary` event, at the event's time and cumulative from start_ns
    (the run's start; the event's time when unknown). None when the event holds no usable row.
    A recording is untrusted input: a row that is not a consistent histogram is left out."""
    io = event.get("io")
    time_ns = ns_from_iso(event["timestamp"])
    bounds = _bounds(io.get("metric_bounds_s")) if isinstance(io, dict) else None
    rows = io.get("operations") if bounds else None
    if not isinstance(rows, list):
        return None
    rows = [row for row in rows if _usable(row, len(bounds) + 1)]
    if len({row.get("rank") for row in rows}) > MAX_RANKS_AS_ATTRIBUTE:
        rows = per_host(rows)
    start = start_ns if isinstance(start_ns, int) and 0 < start_ns <= time_ns else time_ns
    points = [_point(row, bounds, start, time_ns) for row in rows]
    if not points:
        return None
    return Metric(IO_DURATION, IO_DURATION_DESCRIPTION, IO_DURATION_UNIT,
                  Histogram(points, AggregationTemporality.CUMULATIVE))


def per_host(rows: list[dict]) -> list[dict]:
    """The rows of each host, operation and layer summed into one (without `rank`)."""
    summed: dict[tuple, dict] = {}
    for row in rows:
        key = (row.get("host"), row["operation"], row.get("layer"))
        into = summed.get(key)
        if into is None:
            summed[key] = {k: v for k, v in row.items() if k != "rank"} | {"metric_counts": list(row["metric_counts"])}
            continue
        into["metric_counts"] = [a + b for a, b in zip(into["metric_counts"], row["metric_counts"])]
        into["total_s"] += row["total_s"]
        into["min_us"] = min(into["min_us"], row["min_us"])
        into["max_us"] = max(into["max_us"], row["max_us"])
    return list(summed.values())


def _point(row: dict, bounds: list[float], start_ns: int, time_ns: int) -> HistogramDataPoint:
    counts = row["metric_counts"]
    attributes = {OPERATION: row["operation"]}
    for key, field, kind in ((LAYER, "layer", str), (HOST, "host", str), (RANK, "rank", int)):
        if isinstance(row.get(field), kind) and not isinstance(row.get(field), bool):
            attributes[key] = row[field]
    return HistogramDataPoint(attributes, start_ns, time_ns, count=sum(counts), sum=float(row["total_s"]),
                              bucket_counts=list(counts), explicit_bounds=list(bounds),
                              min=row["min_us"] / 1e6, max=row["max_us"] / 1e6)


def _bounds(value) -> list[float] | None:
    """The bucket bounds, when they are increasing numbers."""
    if not isinstance(value, list) or not value or not all(_number(b) for b in value):
        return None
    bounds = [float(b) for b in value]
    return bounds if all(a < b for a, b in zip(bounds, bounds[1:])) else None


def _usable(row, buckets: int) -> bool:
    """A row with an operation name, `buckets` counts that add up to its count, and its figures."""
    if not isinstance(row, dict) or not isinstance(row.get("operation"), str):
        return False
    counts = row.get("metric_counts")
    if not isinstance(counts, Sequence) or len(counts) != buckets:
        return False
    if not all(isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in counts):
        return False
    return (sum(counts) > 0 and row.get("count") == sum(counts)
            and all(_number(row.get(k)) for k in ("total_s", "min_us", "max_us")))


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value  # not NaN
