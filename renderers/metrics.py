"""The time series and DLIO's figures as OpenTelemetry metrics, made from the event stream.

Per host, each `sample` event gives disk and network bytes (cumulative counters), their rates,
memory available and the load; each finished epoch gives DLIO's accelerator utilisation, and
the finished run its headline metrics. Names and units follow the OpenTelemetry semantic
conventions where they exist (system.disk.io, system.network.io, system.linux.memory.available
with their direction attributes; the load as the collector's hostmetrics receiver names it);
the rates and DLIO's figures are mlpstorage.* (no convention covers them). Every point has
`host.name` (or the epoch) as an attribute. A traced run's `io.summary` gives the histogram
`mlpstorage.io.duration` (renderers/io_histogram.py) and the count of trace events read.

Live, the points feed observable instruments of a MeterProvider with the trace's resource;
its readers export over OTLP (renderers/otlp.py) and serve Prometheus (renderers/prometheus.py),
and add the histogram to each collection (WithRecordedHistograms). Replayed, the points and the
histogram are built into MetricsData with their original timestamps.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass

from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Gauge,
    Metric,
    MetricExporter,
    MetricExportResult,
    MetricReader,
    MetricsData,
    NumberDataPoint,
    PeriodicExportingMetricReader,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
)
from opentelemetry.sdk.metrics.view import View
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from mlpstorage import __version__
from mlpstorage.emitter.events import IO_SUMMARY, RUN_STARTED, ns_from_iso

from .io_histogram import io_duration_metric
from .otlp_delivery import Closing, Delivery


@dataclass(frozen=True)
class MetricKind:
    name: str
    unit: str
    description: str
    monotonic: bool  # a cumulative counter (a Sum) rather than a gauge


DISK_IO = MetricKind("system.disk.io", "By", "Bytes read from and written to the host's disks", True)
NETWORK_IO = MetricKind("system.network.io", "By", "Bytes received and sent on the host's interfaces", True)
MEMORY_AVAILABLE = MetricKind("system.linux.memory.available", "By", "Memory available on the host", False)
LOAD = MetricKind("system.cpu.load_average.1m", "{thread}", "The host's 1-minute load average", False)
DISK_RATE = MetricKind("mlpstorage.disk.io.rate", "By/s", "Disk bytes per second since the previous sample", False)
NETWORK_RATE = MetricKind("mlpstorage.network.io.rate", "By/s", "Network bytes per second since the previous sample",
                          False)
AU = MetricKind("mlpstorage.dlio.accelerator_utilization", "%", "DLIO's accelerator utilisation (AU)", False)
THROUGHPUT = MetricKind("mlpstorage.dlio.throughput", "{sample}/s", "DLIO's training throughput", False)
IO_THROUGHPUT = MetricKind("mlpstorage.dlio.io.throughput", "MBy/s", "DLIO's training I/O throughput", False)
TRACE_EVENTS = MetricKind("mlpstorage.io.trace.events", "{event}", "Events read from the run's I/O trace", False)

# sample value -> (metric, attributes besides host.name)
SAMPLE_VALUES = {
    "read_bytes": (DISK_IO, {"disk.io.direction": "read"}),
    "write_bytes": (DISK_IO, {"disk.io.direction": "write"}),
    "rx_bytes": (NETWORK_IO, {"network.io.direction": "receive"}),
    "tx_bytes": (NETWORK_IO, {"network.io.direction": "transmit"}),
    "mem_available_bytes": (MEMORY_AVAILABLE, {}),
    "load1": (LOAD, {}),
    "read_Bps": (DISK_RATE, {"disk.io.direction": "read"}),
    "write_Bps": (DISK_RATE, {"disk.io.direction": "write"}),
    "rx_Bps": (NETWORK_RATE, {"network.io.direction": "receive"}),
    "tx_Bps": (NETWORK_RATE, {"network.io.direction": "transmit"}),
}
# epoch span attribute -> metric (what DLIO prints for each epoch; engines/dlio.py)
EPOCH_VALUES = {"dlio.au_percent": AU, "dlio.samples_per_second": THROUGHPUT}
# run span attribute -> metric (the run's headline figures, at its end)
RUN_VALUES = {
    "mlpstorage.metric.train_au_mean_percentage": AU,
    "mlpstorage.metric.train_throughput_mean_samples_per_second": THROUGHPUT,
    "mlpstorage.metric.train_io_mean_MB_per_second": IO_THROUGHPUT,
}
KINDS = (DISK_IO, NETWORK_IO, MEMORY_AVAILABLE, LOAD, DISK_RATE, NETWORK_RATE, AU, THROUGHPUT, IO_THROUGHPUT,
         TRACE_EVENTS)
SCOPE = InstrumentationScope("mlpstorage", __version__)
SERIES_LIMIT = 1_000_000  # per metric: hosts x attributes, never folded (see LiveMetrics)


@dataclass(frozen=True)
class Point:
    kind: MetricKind
    attributes: tuple  # sorted (key, value) pairs
    value: float
    time_ns: int


def points_from_event(event: dict) -> list[Point]:
    """The data points an event carries (most carry none)."""
    type_ = event["type"]
    if type_ == "sample":
        time_ns = ns_from_iso(event["timestamp"])
        return [Point(kind, tuple(sorted({"host.name": event["host"], **extra}.items())), float(value), time_ns)
                for key, (kind, extra) in SAMPLE_VALUES.items()
                if isinstance(value := event["values"].get(key), (int, float)) and not isinstance(value, bool)]
    if type_ == "task.finished" and "dlio.epoch" in event.get("attributes", {}):
        attributes = event["attributes"]
        epoch = (("dlio.epoch", attributes["dlio.epoch"]),)
        return [Point(kind, epoch, float(attributes[key]), event["end_unix_nano"])
                for key, kind in EPOCH_VALUES.items() if isinstance(attributes.get(key), (int, float))]
    if type_ == "run.finished":
        attributes = event.get("attributes", {})
        return [Point(kind, (), float(attributes[key]), event["end_unix_nano"])
                for key, kind in RUN_VALUES.items() if isinstance(attributes.get(key), (int, float))]
    if type_ == IO_SUMMARY:
        # Also what makes the SDK hand a collection to the readers (it hands on none without a
        # point), so the histogram reaches them even in a run without samples.
        events = event["io"].get("events") if isinstance(event.get("io"), dict) else None
        if isinstance(events, int) and not isinstance(events, bool):
            return [Point(TRACE_EVENTS, (), float(events), ns_from_iso(event["timestamp"]))]
    return []


class RecordedHistograms:
    """The histograms the event stream gave (the latest `io.summary`'s), for the readers:
    events arrive on the emitter's thread, collections on a reader's."""

    def __init__(self):
        self._lock = threading.Lock()
        self._metrics: list[Metric] = []
        self._run_start_ns: int | None = None  # a histogram counts from the run's start

    def handle(self, event: dict) -> None:
        if event["type"] == RUN_STARTED:
            self._run_start_ns = event.get("start_unix_nano")
        elif event["type"] == IO_SUMMARY:
            metric = io_duration_metric(event, self._run_start_ns)
            if metric is not None:
                with self._lock:
                    self._metrics = [metric]

    @property
    def metrics(self) -> list[Metric]:
        with self._lock:
            return list(self._metrics)

    def added_to(self, data: MetricsData) -> MetricsData:
        """A copy of data with the histograms in mlpstorage's scope of its first resource."""
        metrics = self.metrics
        if not metrics or not data.resource_metrics:
            return data
        first, *others = data.resource_metrics
        scopes = list(first.scope_metrics)
        mine = next((i for i, s in enumerate(scopes) if s.scope == SCOPE), None)
        if mine is None:
            scopes.append(ScopeMetrics(SCOPE, metrics, ""))
        else:
            scopes[mine] = ScopeMetrics(scopes[mine].scope, [*scopes[mine].metrics, *metrics], scopes[mine].schema_url)
        return MetricsData([ResourceMetrics(first.resource, scopes, first.schema_url), *others])


class WithRecordedHistograms:
    """For a MetricReader class: every collection it receives gets the recorded histograms
    added, through `_receive_metrics`, the method the SDK documents for subclasses. Exact
    bucket counts, without recording each call's duration again."""

    def __init__(self, histograms: RecordedHistograms, *args, **kwargs):
        self._histograms = histograms  # before the reader starts: a periodic one collects from its thread
        super().__init__(*args, **kwargs)

    def _receive_metrics(self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs) -> None:
        super()._receive_metrics(self._histograms.added_to(metrics_data), timeout_millis=timeout_millis, **kwargs)


class HistogramExportingReader(WithRecordedHistograms, PeriodicExportingMetricReader):
    """The periodic OTLP reader, with the recorded histograms."""


class LiveMetrics:
    """The latest point of each series, observed by a MeterProvider's instruments whenever a
    reader collects (an OTLP export, a Prometheus scrape)."""

    def __init__(self, resource: Resource, readers: list[MetricReader], histograms: RecordedHistograms | None = None):
        """histograms: what the readers (WithRecordedHistograms) add to each collection."""
        self._latest: dict[tuple, Point] = {}
        self._histograms = histograms
        self._lock = threading.Lock()
        # The SDK folds every series past 2,000 per metric into one `otel.metric.overflow` series:
        # 1,024 hosts x two directions is 2,048. A series per host is what these metrics are.
        every_series = View(instrument_name="*", aggregation_cardinality_limit=SERIES_LIMIT)
        self.provider = MeterProvider(resource=resource, metric_readers=readers, shutdown_on_exit=False,
                                      views=[every_series])
        meter = self.provider.get_meter(SCOPE.name, SCOPE.version)
        for kind in KINDS:
            create = meter.create_observable_counter if kind.monotonic else meter.create_observable_gauge
            create(kind.name, callbacks=[self._observer(kind)], unit=kind.unit, description=kind.description)

    def _observer(self, kind: MetricKind):
        def observe(options: CallbackOptions):
            with self._lock:
                points = [p for p in self._latest.values() if p.kind is kind]
            return [Observation(p.value, dict(p.attributes)) for p in points]

        return observe

    def handle(self, event: dict) -> None:
        if self._histograms is not None:
            self._histograms.handle(event)
        points = points_from_event(event)
        if points:
            with self._lock:
                for point in points:
                    self._latest[(point.kind.name, point.attributes)] = point


def metrics_data(points: list[Point], resource: Resource, histograms: list[Metric] = ()) -> MetricsData:
    """Recorded points as one export, each at its own time (a counter's start: its first point),
    and the recorded histograms."""
    metrics = []
    for kind in KINDS:
        mine = [p for p in points if p.kind is kind]
        if not mine:
            continue
        starts: dict[tuple, int] = {}
        data_points = []
        for p in sorted(mine, key=lambda p: p.time_ns):
            start = starts.setdefault(p.attributes, p.time_ns)
            data_points.append(NumberDataPoint(dict(p.attributes), start if kind.monotonic else p.time_ns,
                                               p.time_ns, p.value))
        data = (Sum(data_points, AggregationTemporality.CUMULATIVE, is_monotonic=True) if kind.monotonic
                else Gauge(data_points))
        metrics.append(Metric(kind.name, kind.description, kind.unit, data))
    metrics.extend(histograms)
    return MetricsData([ResourceMetrics(resource, [ScopeMetrics(SCOPE, metrics, "")], "")])


class _CountingMetricExporter(MetricExporter):
    """Counts each export into the metrics' Delivery (force_flush says True even when one failed)."""

    def __init__(self, inner: MetricExporter, delivery: Delivery):
        super().__init__()
        self._inner = inner
        self._delivery = delivery
        self._shut_down = False

    def export(self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs) -> MetricExportResult:
        def export() -> bool:
            return self._inner.export(metrics_data, timeout_millis=timeout_millis) is MetricExportResult.SUCCESS

        return MetricExportResult.SUCCESS if self._delivery.send(export, 1) else MetricExportResult.FAILURE

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return self._inner.force_flush(timeout_millis)

    def shutdown(self, timeout_millis: float = 30_000, **kwargs) -> None:
        if not self._shut_down:  # once: close() may abandon the exporter before the reader stops it
            self._shut_down = True
            self._inner.shutdown(timeout_millis=timeout_millis)


class OtlpMetrics:
    """Metrics over OTLP: live, a MeterProvider's periodic reader exports the latest values
    (every OTEL_METRIC_EXPORT_INTERVAL ms, 10 s when unset, and once more at the end);
    replayed, the recorded points and histograms go in one export with their original timestamps."""

    def __init__(self, exporter: MetricExporter, delivery: Delivery, timeout_s: float, resource: Resource):
        self.delivery = delivery
        self._exporter = _CountingMetricExporter(exporter, delivery)
        self._timeout_s = timeout_s
        self._resource = resource
        self._live: LiveMetrics | None = None
        self._points: list[Point] = []
        self._histograms = RecordedHistograms()

    def go_live(self) -> None:
        interval = float(os.environ.get("OTEL_METRIC_EXPORT_INTERVAL") or 10_000)
        reader = HistogramExportingReader(self._histograms, self._exporter, export_interval_millis=interval,
                                          export_timeout_millis=self._timeout_s * 1000)
        self._live = LiveMetrics(self._resource, [reader], self._histograms)

    def handle(self, event: dict) -> None:
        if self._live is not None:
            self._live.handle(event)
        else:
            self._points.extend(points_from_event(event))
            self._histograms.handle(event)

    def closing(self) -> Closing | None:
        """The last export at close: live, the provider's shutdown (one more collection);
        replayed, the recorded points in one export; None when there is nothing to send."""
        if self._live is not None:
            work = self._live.provider.shutdown
        elif self._points or self._histograms.metrics:
            def work():
                self._exporter.export(metrics_data(self._points, self._resource, self._histograms.metrics))
        else:
            return None
        return Closing(self.delivery, work, self._exporter.shutdown, self._timeout_s + 1.0, counted=False)
