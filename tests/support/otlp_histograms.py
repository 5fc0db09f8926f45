"""The histograms an OTLP sink (support/otlp_sink.py) received, as plain values, and what a test
asks of them: which bucket holds a quantile, and per rank, which is the slow one."""

from __future__ import annotations

from dataclasses import dataclass

from .otlp_sink import attributes as plain_attributes


@dataclass(frozen=True)
class ReceivedHistogram:
    """One histogram data point as it arrived."""

    name: str
    unit: str
    temporality: int  # 2: cumulative
    attributes: dict
    bounds: list[float]
    counts: list[int]
    count: int
    sum: float
    min: float
    max: float
    start_ns: int
    time_ns: int

    def quantile_bucket(self, q: float) -> tuple[float, float]:
        """(lower, upper) edges in the metric's unit of the bucket that holds the q-quantile
        (upper-inclusive, as OpenTelemetry counts; the last bucket's upper edge is infinity)."""
        rank = q * self.count
        seen = 0
        edges = [0.0, *self.bounds, float("inf")]
        for i, count in enumerate(self.counts):
            seen += count
            if seen >= rank and count:
                return edges[i], edges[i + 1]
        return edges[-2], edges[-1]

    def share_above(self, bound: float) -> float:
        """The share of calls longer than bound, which must be one of the bucket bounds (exact)."""
        index = self.bounds.index(bound)
        return sum(self.counts[index + 1:]) / self.count


def received_histograms(sink, name: str = "mlpstorage.io.duration") -> list[ReceivedHistogram]:
    """Every data point of the histogram `name` in every metrics request the sink received (a
    live run exports the cumulative histogram with each collection, so it may repeat: use
    latest())."""
    found = []
    for request in sink.handler.telemetry.metric_requests:
        for resource_metrics in request.pbreq.resource_metrics:
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    if metric.name != name or metric.WhichOneof("data") != "histogram":
                        continue
                    for point in metric.histogram.data_points:
                        found.append(ReceivedHistogram(
                            name=metric.name, unit=metric.unit, temporality=metric.histogram.aggregation_temporality,
                            attributes=plain_attributes(point.attributes), bounds=list(point.explicit_bounds),
                            counts=list(point.bucket_counts), count=point.count, sum=point.sum, min=point.min,
                            max=point.max, start_ns=point.start_time_unix_nano, time_ns=point.time_unix_nano))
    return found


def latest(points: list[ReceivedHistogram]) -> list[ReceivedHistogram]:
    """The last point of each series (its attributes): what the run ended with."""
    by_series = {tuple(sorted(p.attributes.items())): p for p in points}
    return list(by_series.values())


def by_rank(points: list[ReceivedHistogram], operation: str, layer: str | None = None) -> dict[int, ReceivedHistogram]:
    """The latest point of one operation (e.g. "read", layer "posix") for each rank."""
    return {p.attributes["mlpstorage.rank"]: p for p in latest(points)
            if p.attributes.get("mlpstorage.io.operation") == operation
            and (layer is None or p.attributes.get("mlpstorage.io.layer") == layer)}
