"""The I/O latency histogram `mlpstorage.io.duration` from a traced run's `io.summary` event:
its data points from the recorded traces in tests/data/iotrace, the rank bound, what a
recording may hold, every renderer taking the event; then real receivers: an oteltest OTLP
sink (live and replayed) and a real Prometheus scrape endpoint over HTTP."""

from __future__ import annotations

import io
import json
import os
import urllib.request
from itertools import accumulate
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console

from mlpstorage.emitter import events as ev
from mlpstorage.emitter.core import default_resource
from mlpstorage.iotrace.summary import event_payload, summarise
from renderers.io_histogram import HOST, IO_DURATION, LAYER, MAX_RANKS_AS_ATTRIBUTE, OPERATION, RANK, io_duration_metric
from renderers.jsonl import JsonlRenderer
from renderers.metrics import SCOPE, RecordedHistograms, metrics_data, points_from_event
from renderers.otlp import OtlpRenderer
from renderers.plain import PlainRenderer
from renderers.prometheus import PrometheusRenderer
from renderers.rich import RichRenderer

from support.otlp_histograms import by_rank, latest, received_histograms
from support.otlp_sink import replay_into, start_sink
from support.ports import free_port

TRACES = Path(__file__).parent / "data" / "iotrace"
GOLDEN = Path(__file__).parent / "golden"
RUN_START_NS = ev.ns_from_iso("2026-12-06T10:00:00.000000Z")
SUMMARY_TIME = "2026-12-06T10:01:00.000000Z"
CUMULATIVE = 2  # opentelemetry.proto.metrics.v1.AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE


@pytest.fixture(scope="module")
def payload() -> dict:
    return event_payload(summarise(TRACES))


def summary_event(payload: dict) -> dict:
    return ev.io_summary(payload, SUMMARY_TIME)


def run_started() -> dict:
    return ev.span_started(name="mlpstorage training run", trace_id="1" * 32, span_id="2" * 16, parent_span_id=None,
                           attributes={ev.KIND: "run"}, start_unix_nano=RUN_START_NS)


def attributes_of(row: dict, with_rank: bool = True) -> dict:
    made = {OPERATION: row["operation"], LAYER: row["layer"], HOST: row["host"]}
    return made | ({RANK: row["rank"]} if with_rank else {})


def assert_is_the_row(point, row: dict, bounds: list[float]) -> None:
    assert list(point.bucket_counts) == row["metric_counts"]
    assert list(point.explicit_bounds) == bounds and len(point.bucket_counts) == len(bounds) + 1
    assert point.count == row["count"] and point.sum == pytest.approx(row["total_s"])
    assert (point.min, point.max) == pytest.approx((row["min_us"] / 1e6, row["max_us"] / 1e6))


# ----- the data points ------------------------------------------------------------------------
def test_one_point_per_operation_row_with_its_buckets_and_attributes(payload):
    metric = io_duration_metric(summary_event(payload), RUN_START_NS)
    assert (metric.name, metric.unit) == (IO_DURATION, "s") and metric.description
    assert metric.data.aggregation_temporality == CUMULATIVE
    rows = payload["operations"]
    assert len(metric.data.data_points) == len(rows) == 53  # 2 ranks of the recorded run
    for point, row in zip(metric.data.data_points, rows):
        assert point.attributes == attributes_of(row)
        assert_is_the_row(point, row, payload["metric_bounds_s"])
        assert (point.start_time_unix_nano, point.time_unix_nano) == (RUN_START_NS, ev.ns_from_iso(SUMMARY_TIME))


def test_more_ranks_than_the_bound_give_one_series_per_host_with_exact_sums(payload):
    ranks = MAX_RANKS_AS_ATTRIBUTE + 1
    rows = [row | {"rank": rank, "host": f"node{rank % 2}"} for rank in range(ranks)
            for row in payload["operations"] if row["rank"] == rank % 2]
    metric = io_duration_metric(summary_event(payload | {"operations": rows}))
    points = {(p.attributes[HOST], p.attributes[OPERATION]): p for p in metric.data.data_points}
    assert all(RANK not in p.attributes for p in points.values())
    assert len(points) == len(payload["operations"])  # each host's operations, once
    for host, rank in (("node0", 0), ("node1", 1)):
        mine = [r for r in rows if r["host"] == host and r["operation"] == "read"]
        read = points[(host, "read")]
        assert len(mine) == (33 if rank == 0 else 32)
        assert list(read.bucket_counts) == [sum(c) for c in zip(*(r["metric_counts"] for r in mine))]
        assert read.count == sum(r["count"] for r in mine) == sum(read.bucket_counts)
        assert read.sum == pytest.approx(sum(r["total_s"] for r in mine))
        assert read.max == max(r["max_us"] for r in mine) / 1e6


def test_exactly_the_bound_keeps_the_rank(payload):
    rows = [row | {"rank": rank} for rank in range(MAX_RANKS_AS_ATTRIBUTE) for row in payload["operations"][:1]]
    metric = io_duration_metric(summary_event(payload | {"operations": rows}))
    assert [p.attributes[RANK] for p in metric.data.data_points] == list(range(MAX_RANKS_AS_ATTRIBUTE))


def test_a_recorded_summary_is_untrusted_what_is_no_histogram_is_left_out(payload):
    good = payload["operations"][0]
    bad_rows = [good | {"metric_counts": good["metric_counts"][:-1]},  # a bucket short
                good | {"count": good["count"] + 1},  # counts that do not add up
                good | {"metric_counts": [-1] + good["metric_counts"][1:]},
                good | {"operation": 7}, good | {"max_us": "slow"}, "not a row"]
    metric = io_duration_metric(summary_event(payload | {"operations": [*bad_rows, good | {"host": None}]}))
    [point] = metric.data.data_points
    assert point.attributes == {OPERATION: good["operation"], LAYER: good["layer"], RANK: good["rank"]}
    for bounds in (None, [], [2e-6, 1e-6], ["1"], [float("nan")]):
        assert io_duration_metric(summary_event(payload | {"metric_bounds_s": bounds})) is None
    assert io_duration_metric(ev.io_summary({})) is None
    assert io_duration_metric(summary_event(payload | {"operations": bad_rows})) is None


def test_the_histogram_joins_a_collection_in_mlpstorages_scope_and_a_replay_keeps_its_time(payload):
    histograms = RecordedHistograms()
    for event in (run_started(), summary_event(payload)):
        histograms.handle(event)
    points = points_from_event(summary_event(payload))  # the trace's event count, a gauge
    assert [(p.kind.name, p.value) for p in points] == [("mlpstorage.io.trace.events", 1435.0)]
    collected = metrics_data(points, default_resource())
    joined = histograms.added_to(collected)
    [scope] = joined.resource_metrics[0].scope_metrics
    assert scope.scope == SCOPE and [m.name for m in scope.metrics] == ["mlpstorage.io.trace.events", IO_DURATION]
    assert [m.name for m in collected.resource_metrics[0].scope_metrics[0].metrics] == ["mlpstorage.io.trace.events"]
    replayed = metrics_data(points, default_resource(), histograms.metrics)
    histogram = replayed.resource_metrics[0].scope_metrics[0].metrics[-1]
    assert {(p.start_time_unix_nano, p.time_unix_nano) for p in histogram.data.data_points} == {
        (RUN_START_NS, ev.ns_from_iso(SUMMARY_TIME))}


# ----- every renderer takes the event -------------------------------------------------------------
def golden_ok_with(summary: dict | None) -> list[dict]:
    events = [json.loads(line) for line in (GOLDEN / "ok.events.jsonl").read_text().splitlines()]
    if summary is None:
        return events
    last_stage_end = max(i for i, e in enumerate(events) if e["type"] == "stage.finished")
    return events[:last_stage_end] + [summary] + events[last_stage_end:]


def render_text(events: list[dict], kind: str) -> str:
    out = io.StringIO()
    renderer = (PlainRenderer(out, heartbeat_s=0, min_level="info") if kind == "plain"
                else RichRenderer(Console(file=out, width=100, color_system=None), live=False,
                                  clock_ns=lambda: events[-1].get("end_unix_nano", 0)))
    for event in events:
        renderer.handle(event)
    renderer.close()
    return out.getvalue()


@pytest.mark.parametrize("kind", ["plain", "rich"])
def test_text_renderers_show_nothing_of_it_the_benchmark_prints_its_result_lines(payload, kind):
    with_summary = golden_ok_with(summary_event(payload))
    assert [e["type"] for e in with_summary].count(ev.IO_SUMMARY) == 1
    assert render_text(with_summary, kind) == render_text(golden_ok_with(None), kind)


def test_jsonl_writes_it_as_it_is_and_the_schema_accepts_it(payload):
    event = summary_event(payload)
    assert ev.validate(event) is None
    assert ev.validate({**event, "io": "not an object"}) == "io.summary without a valid 'io'"
    out = io.StringIO()
    JsonlRenderer(out).handle(event)
    assert json.loads(out.getvalue()) == event


def test_capture_keeps_it(payload, mlpstorage_capture):
    mlpstorage_capture.emitter.io_summary(payload)
    [kept] = mlpstorage_capture.of_type(ev.IO_SUMMARY)
    assert kept["io"] == payload


# ----- real receivers -----------------------------------------------------------------------------
def export_live(payload: dict, protocol: str, monkeypatch):
    """The otlp renderer, live as in a run, given the run's start and the summary, then closed:
    what an oteltest sink received."""
    server, sink = start_sink(protocol)
    warnings = []
    try:
        for name in [n for n in os.environ if n.startswith("OTEL_")]:
            monkeypatch.delenv(name)
        for name, value in sink.env(GRPC_VERBOSITY="NONE").items():
            if name.startswith(("OTEL_", "GRPC_")):
                monkeypatch.setenv(name, value)
        renderer = OtlpRenderer(resource=default_resource(), warn=warnings.append)
        assert renderer.span_processor() is not None  # live: the SDK's reader collects and exports
        for event in (run_started(), summary_event(payload)):
            renderer.handle(event)
        renderer.close()
    finally:
        server.stop()
    assert warnings == []
    return sink


@pytest.mark.slow
@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_live_otlp_export_carries_each_rows_buckets_and_attributes(payload, protocol, monkeypatch):
    sink = export_live(payload, protocol, monkeypatch)
    points = latest(received_histograms(sink))
    rows = {tuple(sorted(attributes_of(r).items())): r for r in payload["operations"]}
    assert len(points) == len(rows)
    for point in points:
        row = rows[tuple(sorted(point.attributes.items()))]
        assert (point.unit, point.temporality) == ("s", CUMULATIVE)
        assert point.counts == row["metric_counts"] and point.bounds == payload["metric_bounds_s"]
        assert (point.count, point.sum) == (row["count"], pytest.approx(row["total_s"]))
        assert (point.start_ns, point.time_ns) == (RUN_START_NS, ev.ns_from_iso(SUMMARY_TIME))
    reads = by_rank(received_histograms(sink), "read", "posix")
    assert sorted(reads) == [0, 1] and all(p.attributes[HOST] == "vm" for p in reads.values())
    # the recorded run read from the page cache: both ranks' p99 well under a millisecond
    assert all(p.quantile_bucket(0.99)[1] <= 1e-4 and p.share_above(0.02) == 0 for p in reads.values())


@pytest.mark.slow
def test_a_slowed_rank_is_the_one_whose_p99_reaches_20_ms(payload, monkeypatch):
    """What a run with one rank's reads delayed by 20 ms gives (tests/test_iotrace_real.py runs
    it with DLIO): here rank 1's recorded reads moved to the bucket (20 ms, 50 ms]."""
    def slowed(row):
        if row["rank"] != 1 or row["operation"] != "read":
            return row
        counts = [0] * len(row["metric_counts"])
        counts[payload["metric_bounds_s"].index(0.05)] = row["count"]
        return row | {"metric_counts": counts, "min_us": 20_100, "max_us": 20_900, "total_s": row["count"] * 0.0205}

    sink = export_live(payload | {"operations": [slowed(r) for r in payload["operations"]]}, "http", monkeypatch)
    reads = by_rank(received_histograms(sink), "read", "posix")
    slow = [rank for rank, p in reads.items() if p.quantile_bucket(0.99)[0] >= 0.02]
    assert slow == [1] and reads[1].attributes[HOST] == "vm" and reads[1].share_above(0.02) == 1.0
    assert reads[0].quantile_bucket(0.99)[1] <= 1e-4


def prometheus_histograms(text: str) -> dict[tuple, dict]:
    """mlpstorage_io_duration_seconds per series (its labels without le): le -> cumulative count,
    and _count, _sum."""
    series: dict[tuple, dict] = {}
    for family in text_string_to_metric_families(text):
        if family.name != "mlpstorage_io_duration_seconds":
            continue
        assert family.type == "histogram"
        for sample in family.samples:
            labels = {k: v for k, v in sample.labels.items() if k != "le"}
            into = series.setdefault(tuple(sorted(labels.items())), {"buckets": {}})
            if sample.name.endswith("_bucket"):
                into["buckets"][sample.labels["le"]] = sample.value
            else:
                into[sample.name.rsplit("_", 1)[1]] = sample.value
    return series


@pytest.mark.slow
def test_a_prometheus_scrape_serves_cumulative_buckets_with_le_labels(payload):
    renderer = PrometheusRenderer(free_port(), "127.0.0.1")
    try:
        for event in (run_started(), summary_event(payload)):
            renderer.handle(event)
        with urllib.request.urlopen(f"http://{renderer.address}/metrics", timeout=10) as answer:
            text = answer.read().decode()
    finally:
        renderer.close()
    assert 'mlpstorage_io_duration_seconds_bucket{host_name="vm",le="0.02",mlpstorage_io_layer="posix",' \
           'mlpstorage_io_operation="read",mlpstorage_rank="1"' in text
    series = prometheus_histograms(text)
    assert len(series) == len(payload["operations"])
    bounds = [*(str(b) for b in payload["metric_bounds_s"]), "+Inf"]
    for row in payload["operations"]:
        labels = {"host_name": row["host"], "mlpstorage_io_layer": row["layer"],
                  "mlpstorage_io_operation": row["operation"], "mlpstorage_rank": str(row["rank"])}
        found = next(s for key, s in series.items() if labels.items() <= dict(key).items())
        assert list(found["buckets"]) == bounds
        assert list(found["buckets"].values()) == list(accumulate(row["metric_counts"]))
        assert (found["count"], found["sum"]) == (row["count"], pytest.approx(row["total_s"]))


@pytest.mark.slow
def test_replay_exports_the_histogram_with_its_original_time(payload, tmp_path):
    recording = tmp_path / "events.jsonl"
    finished = ev.span_finished(name="mlpstorage training run", trace_id="1" * 32, span_id="2" * 16,
                                parent_span_id=None, attributes={ev.KIND: "run"}, start_unix_nano=RUN_START_NS,
                                end_unix_nano=ev.ns_from_iso(SUMMARY_TIME) + 1000)
    recording.write_text("".join(ev.to_json_line(e) for e in (run_started(), summary_event(payload), finished)))
    proc, sink = replay_into(recording)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    points = received_histograms(sink)
    assert len(points) == len(payload["operations"])  # one export: each series once
    assert {(p.start_ns, p.time_ns) for p in points} == {(RUN_START_NS, ev.ns_from_iso(SUMMARY_TIME))}
    reads = by_rank(points, "read", "posix")
    assert {rank: p.counts for rank, p in reads.items()} == {
        r["rank"]: r["metric_counts"] for r in payload["operations"] if r["operation"] == "read"}
