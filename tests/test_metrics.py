"""The time series and DLIO's figures as OpenTelemetry metrics: the points each event makes,
a real OTLP receiver (live and replayed), and a real Prometheus scraping a real run and reading
the I/O latency histogram per rank (the histogram's own tests: test_io_metrics.py)."""

from __future__ import annotations

import bisect
import json
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from mlpstorage.emitter.core import default_resource
from mlpstorage.emitter.events import ns_from_iso
from renderers.metrics import AU, DISK_IO, DISK_RATE, LOAD, MEMORY_AVAILABLE, THROUGHPUT, metrics_data, points_from_event

from support.otlp_sink import base_env, replay_into, start_sink
from support.ports import free_port
from support.prometheus import running_prometheus

SAMPLE = {"schema": 2, "type": "sample", "timestamp": "2026-11-27T10:00:00.000000Z", "level": "info", "host": "node1",
          "values": {"read_bytes": 4096, "write_bytes": 0, "rx_bytes": 10, "tx_bytes": 20, "read_Bps": 512.0,
                     "write_Bps": 0.0, "rx_Bps": 1.0, "tx_Bps": 2.0, "mem_available_bytes": 2**30, "load1": 0.5}}


def test_a_sample_makes_one_point_per_value_with_the_host_and_its_direction():
    points = {(p.kind.name, p.attributes): p for p in points_from_event(SAMPLE)}
    read = points[(DISK_IO.name, (("disk.io.direction", "read"), ("host.name", "node1")))]
    assert (read.value, read.kind.unit, read.kind.monotonic) == (4096, "By", True)
    rate = points[(DISK_RATE.name, (("disk.io.direction", "read"), ("host.name", "node1")))]
    assert (rate.value, rate.kind.unit, rate.kind.monotonic) == (512.0, "By/s", False)
    assert points[(MEMORY_AVAILABLE.name, (("host.name", "node1"),))].value == 2**30
    assert points[(LOAD.name, (("host.name", "node1"),))].value == 0.5
    assert len(points) == 10 and {p.time_ns for p in points.values()} == {ns_from_iso(SAMPLE["timestamp"])}


def test_epochs_and_the_run_give_dlios_figures():
    epoch = {"type": "task.finished", "end_unix_nano": 7, "attributes": {"dlio.epoch": 2, "dlio.au_percent": 98.5,
                                                                          "dlio.samples_per_second": 11.6}}
    run = {"type": "run.finished", "end_unix_nano": 9,
           "attributes": {"mlpstorage.metric.train_au_mean_percentage": 98.7, "mlpstorage.metric.other": 1}}
    assert {(p.kind, p.attributes, p.value) for p in points_from_event(epoch)} == {
        (AU, (("dlio.epoch", 2),), 98.5), (THROUGHPUT, (("dlio.epoch", 2),), 11.6)}
    assert [(p.kind, p.value, p.time_ns) for p in points_from_event(run)] == [(AU, 98.7, 9)]


def test_recorded_points_keep_their_own_times_and_counters_their_start():
    later = {**SAMPLE, "timestamp": "2026-11-27T10:00:10.000000Z", "values": {**SAMPLE["values"], "read_bytes": 8192}}
    data = metrics_data(points_from_event(SAMPLE) + points_from_event(later), default_resource())
    metrics = {m.name: m for m in data.resource_metrics[0].scope_metrics[0].metrics}
    reads = [p for p in metrics[DISK_IO.name].data.data_points if p.attributes["disk.io.direction"] == "read"]
    first, second = ns_from_iso(SAMPLE["timestamp"]), ns_from_iso(later["timestamp"])
    assert [(p.start_time_unix_nano, p.time_unix_nano, p.value) for p in reads] == [(first, first, 4096.0),
                                                                                     (first, second, 8192.0)]


# ----- real receivers ------------------------------------------------------------------------
def received_metrics(sink) -> list[tuple[str, str, dict, float, int]]:
    """(name, unit, attributes, value, time_unix_nano) of every data point the sink received."""
    found = []
    for request in sink.handler.telemetry.metric_requests:
        for resource_metrics in request.pbreq.resource_metrics:
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    for point in getattr(metric, metric.WhichOneof("data")).data_points:
                        attributes = {kv.key: kv.value.string_value for kv in point.attributes}
                        value = point.as_double if point.HasField("as_double") else point.as_int
                        found.append((metric.name, metric.unit, attributes, value, point.time_unix_nano))
    return found


def run_exec(tmp_path: Path, env: dict, render: str = "plain,otlp", program=("sleep", "1")) -> Path:
    results = tmp_path / "results"
    proc = subprocess.run([sys.executable, "-m", "mlpstorage", "exec", "--render", render, "--results-dir",
                           str(results), "--timeseries-interval", "0.2", "--", *program],
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "warning" not in proc.stderr, proc.stderr
    [recording] = results.glob("exec/*/run/*/events.jsonl")
    return recording


def samples_of(recording: Path) -> list[dict]:
    return [e for e in map(json.loads, recording.read_text().splitlines()) if e["type"] == "sample"]


@pytest.mark.slow
@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_a_live_run_exports_its_samples_as_metrics(tmp_path, protocol):
    server, sink = start_sink(protocol)
    try:
        recording = run_exec(tmp_path, sink.env())
    finally:
        server.stop()
    points = received_metrics(sink)
    names = {(name, unit) for name, unit, *_ in points}
    assert {("system.disk.io", "By"), ("system.network.io", "By"), ("system.linux.memory.available", "By"),
            ("system.cpu.load_average.1m", "{thread}"), ("mlpstorage.disk.io.rate", "By/s")} <= names
    last = samples_of(recording)[-1]["values"]
    memory = [v for name, _, attributes, v, _ in points if name == "system.linux.memory.available"]
    assert memory[-1] == last["mem_available_bytes"]  # the final export holds the last sample
    assert all(a.get("host.name") == "localhost" for name, _, a, *_ in points)


@pytest.mark.slow
def test_replay_exports_the_recorded_samples_with_their_original_times(tmp_path):
    recording = run_exec(tmp_path, base_env(), render="plain")  # nothing exported while it ran
    samples = samples_of(recording)
    proc, sink = replay_into(recording)
    assert proc.returncode == 0, proc.stderr
    loads = sorted((t, v) for name, _, _, v, t in received_metrics(sink) if name == "system.cpu.load_average.1m")
    assert loads == sorted((ns_from_iso(s["timestamp"]), s["values"]["load1"]) for s in samples)


PROMETHEUS_CONFIG = """global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: mlpstorage
    static_configs:
      - targets: ["127.0.0.1:{port}"]
"""


@pytest.fixture
def prometheus(tmp_path):
    """A real Prometheus (Debian's package) on loopback, scraping 127.0.0.1:<metrics port> every
    second: (metrics port, API URL)."""
    metrics_port = free_port()
    with running_prometheus(tmp_path, PROMETHEUS_CONFIG.format(port=metrics_port)) as api:
        yield metrics_port, api


def query(api: str, promql: str) -> list:
    url = f"{api}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return json.loads(answer.read())["data"]["result"]
    except OSError:
        return []


@pytest.mark.slow
def test_a_real_prometheus_scrapes_a_hosts_read_rate_during_a_run(tmp_path, prometheus):
    metrics_port, api = prometheus
    promql = 'mlpstorage_disk_io_rate_bytes_per_second{host_name="localhost",disk_io_direction="read"}'
    results = tmp_path / "results"
    run = subprocess.Popen([sys.executable, "-m", "mlpstorage", "exec", "--render", "none", "--results-dir", str(results),
                            "--timeseries-interval", "0.5", "--metrics-port", str(metrics_port), "--", "sleep", "30"],
                           env=base_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        found = []
        deadline = time.monotonic() + 25  # Prometheus applies new targets on a 5 s tick
        while not found and time.monotonic() < deadline and run.poll() is None:
            found = query(api, promql)
            time.sleep(0.5)
        assert found, f"Prometheus never had {promql}; the run said: {run.stderr.read() if run.poll() is not None else ''}"
        assert float(found[0]["value"][1]) >= 0
        target_info = query(api, 'target_info{service_name="mlpstorage"}')
        assert target_info and target_info[0]["metric"]["service_version"]
    finally:
        run.send_signal(signal.SIGTERM)
        run.wait(timeout=60)


@pytest.mark.slow
def test_a_real_prometheus_reads_the_io_histogram_per_rank(prometheus):
    """The I/O latency histogram of the recorded traces (tests/data/iotrace), served by the
    prometheus renderer and queried with PromQL's histogram_quantile, rank by rank."""
    from mlpstorage.emitter.events import io_summary
    from mlpstorage.iotrace.summary import event_payload, summarise
    from renderers.prometheus import PrometheusRenderer

    metrics_port, api = prometheus
    payload = event_payload(summarise(Path(__file__).parent / "data" / "iotrace"))
    renderer = PrometheusRenderer(metrics_port, "127.0.0.1")
    promql = ('histogram_quantile(0.99, sum by (le, mlpstorage_rank, host_name) '
              '(mlpstorage_io_duration_seconds_bucket{mlpstorage_io_operation="read",mlpstorage_io_layer="posix"}))')
    try:
        renderer.handle(io_summary(payload))
        found = []
        deadline = time.monotonic() + 25  # Prometheus applies new targets on a 5 s tick
        while len(found) < 2 and time.monotonic() < deadline:
            found = query(api, promql)
            time.sleep(0.5)
    finally:
        renderer.close()
    p99 = {(r["metric"]["mlpstorage_rank"], r["metric"]["host_name"]): float(r["value"][1]) for r in found}
    assert sorted(p99) == [("0", "vm"), ("1", "vm")], found
    # PromQL interpolates inside the bucket that holds the 99th percentile, the bucket of the
    # p99 the trace reader computed from its finer buckets (rank 0: 48 µs, rank 1: 73.2 µs)
    bounds = payload["metric_bounds_s"]
    for row in (r for r in payload["operations"] if r["operation"] == "read"):
        bucket = bisect.bisect_left(bounds, row["p99_us"] / 1e6)
        assert bisect.bisect_left(bounds, p99[(str(row["rank"]), row["host"])]) == bucket, (p99, row["p99_us"])


def test_a_thousand_hosts_keep_a_series_each():
    """The SDK folds every series past 2,000 per metric into `otel.metric.overflow`: 1,024 hosts
    with two directions each must all come through."""
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.resources import Resource

    from mlpstorage.emitter import events as ev
    from renderers.metrics import LiveMetrics

    reader = InMemoryMetricReader()
    live = LiveMetrics(Resource.create({}), [reader])
    for host in range(1024):
        live.handle(ev.sample(f"node{host}", {"read_bytes": 1, "write_bytes": 2}, "2026-12-06T00:00:00.000000Z"))
    [disk] = [m for rm in reader.get_metrics_data().resource_metrics for sm in rm.scope_metrics for m in sm.metrics
              if m.name == "system.disk.io"]
    points = disk.data.data_points
    assert len(points) == 2048
    assert not [p for p in points if "otel.metric.overflow" in p.attributes]
