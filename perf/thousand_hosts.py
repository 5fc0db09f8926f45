"""A thousand hosts: what a run's recording and its live views cost as the hosts grow, for the
synthetic one-hour run sampled every 10 s (support.synthetic_run: SyntheticRun(hosts=N)).

    .venv/bin/python perf/thousand_hosts.py [--hosts 16,128,1024] [--live-seconds 60]
                                            [--skip-recording] [--skip-live] [--skip-metrics]
                                            [--show HOSTS]

(a) the recording: bytes per sample event and per host-hour as the writer wrote them before
    (rates with every digit, plain text) and now (rates in whole bytes a second; compressed
    with gzip once the run ends, past recording.COMPRESS_ABOVE_BYTES), the writer's CPU per
    event, the compression at the run's end, reading it back (what replay and the reports
    pay), and, for comparison, a gzip stream flushed after every event (what writing it
    compressed as it comes would give);
(b) the live views fed one minute of N hosts' samples: the plain renderer (its aggregate line
    per interval, and its heartbeat; at debug also a line per sample), as fast as it takes
    them, and the rich renderer's display on a 120x40 terminal in real time (its printer
    thread redraws as the clocks tick), as the share of one core they take;
(c) the metrics' cardinality: the OTLP data points of one export and the series of one
    Prometheus scrape, for a traced run (8 ranks a host, the synthetic trace's operations),
    made by renderers/metrics.py and renderers/io_histogram.py themselves.

CPU is this process's (time.process_time, every thread), so other work on the machine counts
only through the caches it shares.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import tempfile
import time
import urllib.request
import zlib
from pathlib import Path

from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.resources import Resource
from rich.console import Console

from mlpstorage.collectors.timeseries import compact
from mlpstorage.emitter import events as ev
from mlpstorage.emitter.reading import Recording
from mlpstorage.emitter.recording import RunRecording
from mlpstorage.iotrace.aggregate import METRIC_BOUNDS_S
from renderers.metrics import RUN_VALUES, LiveMetrics, RecordedHistograms, WithRecordedHistograms
from renderers.plain import PlainRenderer
from renderers.prometheus import PrometheusRenderer
from renderers.rich import RichRenderer

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # `support`: tests/support

from support.ports import free_port  # noqa: E402
from support.synthetic_io_trace import OPERATIONS as IO_OPERATIONS  # noqa: E402
from support.synthetic_run import T0_NS, SyntheticRun, write_synthetic_run  # noqa: E402

MB = 1e6
BATCH = 4096  # events parsed ahead, so that the timing covers the writer alone
DEVNULL = open(os.devnull, "w")


def batches(path: Path):
    """The recording's events, BATCH at a time, each with its line."""
    batch = []
    with open(path, encoding="utf-8") as lines:
        for line in lines:
            batch.append((json.loads(line), line))
            if len(batch) == BATCH:
                yield batch
                batch = []
    if batch:
        yield batch


def compacted(event: dict) -> dict:
    if event["type"] == ev.SAMPLE:
        event = {**event, "values": compact(dict(event["values"]))}
    return event


# ----- (a) the recording -------------------------------------------------------------------
def measure_recording(hosts: int, tmp: Path) -> dict:
    spec = SyntheticRun(hosts=hosts)
    source = write_synthetic_run(tmp / f"source-{hosts}", spec) / "events.jsonl"
    before, after = RunRecording(compress_above=None), RunRecording()
    paths = []
    with open(source, encoding="utf-8") as lines:
        first = json.loads(lines.readline())
    for recording, name in ((before, f"before-{hosts}"), (after, f"after-{hosts}")):
        recording.handle(first)  # the run starts, then its folder is claimed
        (tmp / name).mkdir()
        paths.append(recording.attach(tmp / name))
    before_path, after_path = paths
    stream = zlib.compressobj(1, zlib.DEFLATED, 31)
    streamed = len(stream.compress(ev.to_json_line(first).encode()))
    cpu = {"before": 0.0, "after": 0.0}
    samples = sample_bytes_before = sample_bytes_after = events = 0
    for batch in batches(source):
        new = [compacted(event) for event, _ in batch]
        if events == 0:  # the run's start, handled above
            batch, new = batch[1:], new[1:]
            events = 1
        for event, line in batch:
            if event["type"] == ev.SAMPLE:
                samples += 1
                sample_bytes_before += len(line)
        for event in new:
            line = ev.to_json_line(event).encode()
            streamed += len(stream.compress(line)) + len(stream.flush(zlib.Z_SYNC_FLUSH))
            if event["type"] == ev.SAMPLE:
                sample_bytes_after += len(line)
        events += len(batch)
        started = time.process_time()
        for event, _ in batch:
            before.handle(event)
        cpu["before"] += time.process_time() - started
        started = time.process_time()
        for event in new:
            after.handle(event)
        cpu["after"] += time.process_time() - started
    streamed += len(stream.flush())
    before.close()
    plain_after = after_path.stat().st_size
    started = time.process_time()
    after.close()  # the run has ended: the writer compresses what it wrote
    end_s = time.process_time() - started
    host_hours = hosts * spec.duration_s / 3600
    result = {"hosts": hosts, "events": events, "samples": samples, "host_hours": host_hours,
              "before_bytes": before_path.stat().st_size, "plain_after_bytes": plain_after,
              "after_path": after.path, "after_bytes": after.path.stat().st_size, "streamed_bytes": streamed,
              "sample_before": sample_bytes_before / samples, "sample_after": sample_bytes_after / samples,
              "write_before_us": cpu["before"] / events * 1e6, "write_after_us": cpu["after"] / events * 1e6,
              "compress_s": end_s}
    result["read_before_us"] = read_cpu_us(before_path, events)
    result["read_after_us"] = read_cpu_us(after.path, events)
    for path in (source, before_path, after.path):
        path.unlink()
    return result


def read_cpu_us(path: Path, events: int) -> float:
    started = time.process_time()
    with Recording(path) as recording:
        read = sum(1 for _ in recording)
    assert read == events, (path, read, events)
    return (time.process_time() - started) / events * 1e6


def print_recording(rows: list[dict]) -> None:
    print("(a) the recording, one hour sampled every 10 s (host-hour: one host's hour)")
    for r in rows:
        per = r["host_hours"]
        print(f"  {r['hosts']:>5} hosts: {r['events']:,} events, {r['samples']:,} samples; a sample event "
              f"{r['sample_before']:.0f} -> {r['sample_after']:.0f} bytes")
        print(f"        before (plain, every digit): {r['before_bytes'] / MB:8.1f} MB = {r['before_bytes'] / per / 1e3:6.1f} kB "
              f"per host-hour")
        print(f"        now, while the run lasts (plain, rates rounded): {r['plain_after_bytes'] / MB:8.1f} MB = "
              f"{r['plain_after_bytes'] / per / 1e3:6.1f} kB per host-hour")
        ratio = r["before_bytes"] / r["after_bytes"]
        print(f"        now, once the run ended ({r['after_path'].name}): {r['after_bytes'] / MB:8.1f} MB = "
              f"{r['after_bytes'] / per / 1e3:6.1f} kB per host-hour ({ratio:.1f}x smaller than before)")
        print(f"        a gzip stream flushed after every event instead: {r['streamed_bytes'] / MB:8.1f} MB = "
              f"{r['streamed_bytes'] / per / 1e3:6.1f} kB per host-hour")
        print(f"        writer CPU per event, before / now: {r['write_before_us']:.2f} / {r['write_after_us']:.2f} µs; "
              f"compressing at the run's end: {r['compress_s'] * 1e3:.0f} ms "
              f"({r['compress_s'] / r['events'] * 1e6:.2f} µs per event)")
        print(f"        reading it back (replay, reports), CPU per event, plain / gzip: {r['read_before_us']:.1f} / "
              f"{r['read_after_us']:.1f} µs")


# ----- (b) the live views ------------------------------------------------------------------
def live_events(hosts: int, seconds: float, tmp: Path) -> tuple[list[dict], list[dict], int]:
    """(the events before the time series, those of its first `seconds`, the first sample's
    time) of a synthetic run of `hosts`."""
    folder = write_synthetic_run(tmp / f"live-{hosts}", SyntheticRun(hosts=hosts, duration_s=seconds + 30))
    with Recording(folder / "events.jsonl") as recording:
        events = list(recording)
    for path in folder.iterdir():
        path.unlink()
    first = next(i for i, e in enumerate(events) if e["type"] == ev.SAMPLE)
    start = ev.ns_from_iso(events[first]["timestamp"])
    # the samples, DLIO's lines and the epochs (not the ranks' spans: this short run's end,
    # which the hour's run has an hour later)
    window = [e for e in events[first:] if ev.ns_from_iso(e["timestamp"]) < start + seconds * 1e9
              and (e["type"] in (ev.SAMPLE, ev.OUTPUT) or e.get("name", "").startswith(("epoch", "checkpoint")))]
    return events[:first], window, start


def measure_plain(setup: list[dict], window: list[dict], seconds: float, level: str = "info") -> dict:
    renderer = PlainRenderer(DEVNULL, heartbeat_s=0, min_level=level)  # the heartbeat: timed below
    for event in setup:
        renderer.handle(event)
    started = time.process_time()
    for event in window:
        renderer.handle(event)
    cpu = time.process_time() - started
    renderer._heartbeat_s = 30.0
    renderer._clock = lambda: ev.ns_from_iso(window[-1]["timestamp"])
    started = time.process_time()
    for _ in range(100):
        renderer.heartbeat_line()
    beat = (time.process_time() - started) / 100
    samples = sum(1 for e in window if e["type"] == ev.SAMPLE)
    cpu += beat * seconds / 30
    return {"cpu_s": cpu, "share": cpu / seconds, "per_sample_us": cpu / samples * 1e6, "heartbeat_ms": beat * 1e3}


def measure_rich(setup: list[dict], window: list[dict], start_ns: int, seconds: float,
                 console: Console | None = None) -> dict:
    """The display in real time: each event handed over when its time comes (on console, by
    default a 120x40 terminal that writes nowhere)."""
    console = console or Console(file=DEVNULL, force_terminal=True, width=120, height=40, color_system="truecolor")
    wall0 = time.time_ns()
    renderer = RichRenderer(console, clock_ns=lambda: start_ns + time.time_ns() - wall0, min_level="info")
    for event in setup:
        renderer.handle(event)
    handled = 0.0
    offsets = [ev.ns_from_iso(event["timestamp"]) - start_ns for event in window]
    cpu0, wall = time.process_time(), time.monotonic()
    wall0 = time.time_ns()
    for event, offset in zip(window, offsets):
        delay = (offset - (time.time_ns() - wall0)) / 1e9
        if delay > 0.001:
            time.sleep(delay)
        started = time.thread_time()
        renderer.handle(event)
        handled += time.thread_time() - started
    time.sleep(max(0.0, seconds - (time.monotonic() - wall)))
    cpu, elapsed = time.process_time() - cpu0, time.monotonic() - wall
    frames = renderer.frames_rendered
    if console.file is DEVNULL:
        renderer._console = Console(file=io.StringIO(), width=120, height=40)  # the summary, out of sight
    renderer.close()
    return {"cpu_s": cpu, "share": cpu / elapsed, "handle_s": handled, "frames": frames}


def show(hosts: int, seconds: float, tmp: Path) -> None:
    """The live display of `hosts` on this terminal for `seconds`, in real time; the last two
    hosts stop sending samples after 15 s, to be named silent."""
    setup, window, start = live_events(hosts, seconds, tmp)
    lost = {f"node{i:02d}" for i in (hosts - 1, hosts)}
    window = [e for e in window if not (e.get("host") in lost and ev.ns_from_iso(e["timestamp"]) > start + 15e9)]
    measure_rich(setup, window, start, seconds, Console(stderr=True, highlight=False))


def print_live(rows: list[dict], seconds: float) -> None:
    print(f"(b) the live views, one minute of samples every 10 s ({seconds:g} s measured), share of one core")
    for r in rows:
        plain, rich = r["plain"], r["rich"]
        print(f"  {r['hosts']:>5} hosts: plain {plain['share']:.3%} ({plain['per_sample_us']:.1f} µs per sample, "
              f"a heartbeat {plain['heartbeat_ms']:.2f} ms); rich {rich['share']:.2%} "
              f"({rich['frames']} frames drawn, handing over the events {rich['handle_s'] * 1e3:.0f} ms); "
              f"plain at debug (a line per sample too) {r['debug']['share']:.3%}")


# ----- (c) the metrics' cardinality --------------------------------------------------------
def cardinality_events(hosts: int, ranks_per_host: int = 8, epochs: int = 5) -> list[dict]:
    """What makes metrics in a traced training run of `hosts`: its start, a sample per host,
    each epoch's figures, the run's, and an io.summary with a row per operation and rank."""
    names = [f"node{i:04d}" for i in range(1, hosts + 1)]
    started = {**ev.span_started(name="run", trace_id="1" * 32, span_id="2" * 16, parent_span_id=None,
                                 attributes={ev.KIND: "run", "mlpstorage.hosts": names}, start_unix_nano=T0_NS)}
    events = [started]
    values = {"read_bytes": 1, "write_bytes": 1, "rx_bytes": 1, "tx_bytes": 1, "mem_available_bytes": 1, "load1": 1.0,
              "read_Bps": 1, "write_Bps": 1, "rx_Bps": 1, "tx_Bps": 1}
    events += [ev.sample(name, values, ev.iso_from_ns(T0_NS + 10**9)) for name in names]
    for epoch in range(1, epochs + 1):
        events.append(ev.span_finished(name=f"epoch {epoch}", trace_id="1" * 32, span_id=f"{epoch:016x}",
                                       parent_span_id=None, start_unix_nano=T0_NS, end_unix_nano=T0_NS + 10**9,
                                       attributes={ev.KIND: "task", "dlio.epoch": epoch, "dlio.au_percent": 95.0,
                                                   "dlio.samples_per_second": 100.0}))
    counts = [0] * (len(METRIC_BOUNDS_S) + 1)
    counts[3] = 1
    rows = [{"operation": operation, "layer": layer, "host": name, "rank": h * ranks_per_host + r,
             "metric_counts": counts, "count": 1, "total_s": 1e-5, "min_us": 10.0, "max_us": 10.0}
            for operation, (layer, *_) in IO_OPERATIONS.items() for h, name in enumerate(names)
            for r in range(ranks_per_host)]
    events.append(ev.io_summary({"metric_bounds_s": METRIC_BOUNDS_S, "operations": rows},
                                ev.iso_from_ns(T0_NS + 2 * 10**9)))
    events.append(ev.span_finished(name="run", trace_id="1" * 32, span_id="2" * 16, parent_span_id=None,
                                   start_unix_nano=T0_NS, end_unix_nano=T0_NS + 3 * 10**9,
                                   attributes={ev.KIND: "run", **{key: 1.0 for key in RUN_VALUES}}))
    return events


class _MemoryReader(WithRecordedHistograms, InMemoryMetricReader):
    """A collection as the OTLP reader would export it, kept in memory."""


def measure_cardinality(hosts: int) -> dict:
    """The OTLP data points of one export (one per series; a histogram's with its buckets) and
    the series of one Prometheus scrape, made by the real code from cardinality_events."""
    events = cardinality_events(hosts)
    histograms = RecordedHistograms()
    reader = _MemoryReader(histograms)
    metrics = LiveMetrics(Resource.create({}), [reader], histograms)
    for event in events:
        metrics.handle(event)
    points = {metric.name: len(metric.data.data_points)
              for resource in reader.get_metrics_data().resource_metrics
              for scope in resource.scope_metrics for metric in scope.metrics}
    metrics.provider.shutdown()
    prometheus = PrometheusRenderer(port=free_port("127.0.0.1"), host="127.0.0.1")
    try:
        for event in events:
            prometheus.handle(event)
        with urllib.request.urlopen(f"http://{prometheus.address}/metrics", timeout=60) as response:
            scrape = response.read().decode()
    finally:
        prometheus.close()
    series = [line for line in scrape.splitlines() if line and not line.startswith("#")]
    return {"hosts": hosts, "points": points, "prometheus": len(series), "scrape_bytes": len(scrape),
            "io_series": sum(1 for line in series if line.startswith("mlpstorage_io_duration"))}


def print_cardinality(rows: list[dict]) -> None:
    print(f"(c) the metrics' series, a traced run of 8 ranks per host, {len(IO_OPERATIONS)} I/O operations, 5 epochs")
    for r in rows:
        io = r["points"].get("mlpstorage.io.duration", 0)
        print(f"  {r['hosts']:>5} hosts: OTLP {sum(r['points'].values()):,} data points an export, of which "
              f"{io:,} histograms ({len(METRIC_BOUNDS_S) + 1} buckets each); Prometheus {r['prometheus']:,} series "
              f"({r['io_series']:,} of the histogram), a scrape {r['scrape_bytes'] / MB:.1f} MB")
        print("        " + ", ".join(f"{name} {count:,}" for name, count in sorted(r["points"].items())))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", default="16,128,1024")
    parser.add_argument("--live-seconds", type=float, default=60.0)
    parser.add_argument("--skip-recording", action="store_true")
    parser.add_argument("--skip-live", action="store_true")
    parser.add_argument("--skip-metrics", action="store_true")
    parser.add_argument("--show", type=int, metavar="HOSTS", help="only draw the live display of HOSTS hosts here, "
                        "for --live-seconds (to look at it in a terminal)")
    args = parser.parse_args()
    counts = [int(n) for n in args.hosts.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        if args.show:
            show(args.show, args.live_seconds, Path(tmp))
            return
        if not args.skip_recording:
            print_recording([measure_recording(n, Path(tmp)) for n in counts])
        if not args.skip_live:
            rows = []
            for n in counts:
                setup, window, start = live_events(n, args.live_seconds, Path(tmp))
                rows.append({"hosts": n, "plain": measure_plain(setup, window, args.live_seconds),
                             "debug": measure_plain(setup, window, args.live_seconds, level="debug"),
                             "rich": measure_rich(setup, window, start, args.live_seconds)})
            print_live(rows, args.live_seconds)
        if not args.skip_metrics:
            print_cardinality([measure_cardinality(n) for n in counts])


if __name__ == "__main__":
    main()
