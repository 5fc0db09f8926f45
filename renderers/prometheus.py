"""The prometheus renderer: a scrape endpoint on the launcher while it runs.

`--metrics-port PORT` (or OTEL_METRICS_EXPORTER=prometheus with OTEL_EXPORTER_PROMETHEUS_PORT,
default 9464) serves the metrics of renderers/metrics.py at http://HOST:PORT/metrics, HOST
being OTEL_EXPORTER_PROMETHEUS_HOST (default localhost, as the OpenTelemetry specification
says; 0.0.0.0 lets a Prometheus on another machine scrape it). Prometheus names them its way:
dots become underscores and the unit is appended (mlpstorage.disk.io.rate ->
mlpstorage_disk_io_rate_bytes_per_second), counters end in _total, host.name is the label
host_name, and the resource is the separate target_info series. A traced run's latency
histogram mlpstorage.io.duration is mlpstorage_io_duration_seconds_bucket{le=...} (cumulative
counts, as Prometheus wants them), _sum and _count.
"""

from __future__ import annotations

import os

from opentelemetry.exporter.prometheus import PrometheusMetricReader

from mlpstorage.emitter.core import default_resource
from mlpstorage.errors import UsageError

from .metrics import LiveMetrics, RecordedHistograms, WithRecordedHistograms

DEFAULT_PORT = 9464


class HistogramPrometheusReader(WithRecordedHistograms, PrometheusMetricReader):
    """The Prometheus reader (each scrape collects), with the recorded histograms."""


class PrometheusRenderer:
    def __init__(self, port: int | None = None, host: str | None = None, resource=None):
        from prometheus_client import start_http_server

        host = host or os.environ.get("OTEL_EXPORTER_PROMETHEUS_HOST") or "localhost"
        raw = port or os.environ.get("OTEL_EXPORTER_PROMETHEUS_PORT") or DEFAULT_PORT
        if not str(raw).isdigit() or not 0 < int(raw) < 65536:
            raise UsageError(f"OTEL_EXPORTER_PROMETHEUS_PORT={raw!r} is not a port (1-65535)")
        try:
            self._server, self._thread = start_http_server(int(raw), addr=host)
        except OSError as exc:
            raise UsageError(f"cannot serve metrics on {host}:{raw}: {exc.strerror}") from None
        self.address = f"{host}:{self._server.server_port}"
        histograms = RecordedHistograms()
        self._reader = HistogramPrometheusReader(histograms)
        self._metrics = LiveMetrics(resource or default_resource(), [self._reader], histograms)

    @classmethod
    def from_options(cls, options) -> "PrometheusRenderer":
        return cls(options.metrics_port, resource=options.resource)

    def handle(self, event: dict) -> None:
        self._metrics.handle(event)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._metrics.provider.shutdown()
