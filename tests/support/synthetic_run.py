"""A synthetic run folder of any size, for the report tests and perf/report_size.py: what a
training run of HOSTS hosts that ran for DURATION seconds, sampled every INTERVAL seconds,
leaves behind (events.jsonl, the metadata, the cluster information and the time series),
written with the schema's own constructors so that it reads exactly as a real one does.

The run has the four stages, a collection spinner with a span per host at start and end,
EPOCHS epochs, a checkpoint after every second epoch, a span per MPI rank, one sample per host
and interval, a batch of DLIO output lines per interval, and a few things a report must show:
one host that differs from the others (less memory), one host whose end-of-run collection
failed (a red span), and secrets in the parameters. With io_trace=True, the run was traced
(--io-trace): its io_trace.json (synthetic_io_trace.py) and the metadata that says so.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from pathlib import Path

from mlpstorage.emitter import events as ev
from mlpstorage.results import write_json

from .synthetic_io_trace import synthetic_io_trace

T0_NS = 1_795_774_200_000_000_000  # 2026-11-27T10:10:00Z
GIB = 2**30


@dataclass
class SyntheticRun:
    hosts: int = 16
    duration_s: float = 3600.0
    interval_s: float = 10.0
    ranks_per_host: int = 8
    epochs: int = 5
    seed: int = 1
    status: str = "ok"  # ok | failed | cut (the launcher killed: the recording stops mid-run, nothing else written)
    io_trace: bool = False  # traced with --io-trace: an io_trace.json and metadata["io_trace"]


class _Spans:
    """Makes span ids and the started/finished event pairs, in the order they are written."""

    def __init__(self, rng: random.Random, trace_id: str):
        self.rng, self.trace_id = rng, trace_id

    def new_id(self) -> str:
        return format(self.rng.getrandbits(64) | 1, "016x")

    def pair(self, name, kind, parent, start_ns, end_ns, attributes=None, error=None, span_id=None, **fields):
        span_id = span_id or self.new_id()
        attributes = {ev.KIND: kind, **(attributes or {})}
        common = dict(name=name, trace_id=self.trace_id, span_id=span_id, parent_span_id=parent, attributes=attributes,
                      start_unix_nano=start_ns)
        started = ev.span_started(**common)
        finished = ev.span_finished(**common, end_unix_nano=end_ns, error=error)
        started.update(fields)
        finished.update(fields)
        return span_id, started, finished


def host_names(count: int) -> list[str]:
    return [f"node{i + 1:02d}" for i in range(count)]


def write_synthetic_run(folder: Path, spec: SyntheticRun = SyntheticRun()) -> Path:
    """Writes the run into folder (created) and returns it."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(spec.seed)
    stamp = "20261127_101000"
    hosts = host_names(spec.hosts)
    processes = spec.hosts * spec.ranks_per_host
    spans = _Spans(rng, format(rng.getrandbits(128) | 1, "032x"))
    timed: list[tuple[int, int, dict]] = []  # (ns, order, event): sorted at the end
    order = [0]

    def add(ns: int, event: dict) -> None:
        order[0] += 1
        timed.append((ns, order[0], event))

    def add_pair(started: dict, finished: dict) -> None:
        add(started["start_unix_nano"], started)
        add(finished["end_unix_nano"], finished)

    def at(seconds: float) -> int:
        return T0_NS + int(seconds * 1e9)

    def stage_fields(index: int) -> dict:
        return {"stage_index": index, "stage_count": 4}

    run_id = f"training-unet3d-run-{stamp}"
    run_attrs = {"mlpstorage.benchmark": "training", "mlpstorage.model": "unet3d", "mlpstorage.command": "run",
                 "mlpstorage.hosts": [f"{h}:{spec.ranks_per_host}" for h in hosts], "mlpstorage.run_id": run_id,
                 "mlpstorage.results_dir": str(folder), "mlpstorage.workload": "unet3d_h100",
                 "mlpstorage.processes": processes}
    run_id_hex = spans.new_id()
    collect_s = 0.05 * spec.hosts + 0.3
    bounds = [0.0, 0.2, 0.2 + collect_s, 0.2 + collect_s + spec.duration_s, 0.2 + 2 * collect_s + spec.duration_s + 0.4]
    stage_ids = []
    stage_events = []
    failed = spec.status == "failed"
    for index, name in enumerate(("Validating environment", "Collecting cluster info", "Running benchmark",
                                  "Processing results"), 1):
        error = None
        if spec.status == "failed" and index == 3:
            error = "mpirun exited with code 1"
        attrs = {ev.STAGE_INDEX: index, ev.STAGE_COUNT: 4}
        span_id, started, finished = spans.pair(name, "stage", run_id_hex, at(bounds[index - 1]), at(bounds[index]),
                                                attrs, error=error)
        stage_ids.append(span_id)
        stage_events.append((started, finished))
        add_pair(started, finished)
    add(at(0.1), {**ev.log("info", "Environment validation passed"), "timestamp": ev.iso_from_ns(at(0.1))})

    def collection(stage: int, start_s: float, fail_host: str | None) -> None:
        name = f"Collecting cluster info ({spec.hosts} hosts)..."
        spinner_id, started, finished = spans.pair(name, "spinner", stage_ids[stage - 1], at(start_s),
                                                   at(start_s + collect_s - 0.01),
                                                   {ev.DESCRIPTION: "Collecting via SSH...", ev.COMPLETED: spec.hosts},
                                                   **stage_fields(stage))
        add_pair(started, finished)
        for i, host in enumerate(hosts):
            begin = start_s + 0.01 + 0.02 * (i % 4)
            error = "timed out after 10.0s" if host == fail_host else None
            _, started, finished = spans.pair(f"host {host}", "task", spinner_id, at(begin),
                                              at(begin + 0.2 + 0.01 * i), {"host.name": host}, error=error,
                                              **stage_fields(stage))
            add_pair(started, finished)

    collection(2, bounds[1], None)
    end_failure = hosts[-1] if spec.hosts > 1 else None
    collection(4, bounds[3] + 0.05, end_failure)

    # Running benchmark: epochs, checkpoints, ranks, samples, output.
    running = stage_ids[2]
    run_start, run_end = bounds[2], bounds[3]
    epoch_s = (spec.duration_s - 10) / spec.epochs
    for epoch in range(1, spec.epochs + 1):
        begin = run_start + 5 + (epoch - 1) * epoch_s
        error = "mpirun exited with code 1" if failed and epoch == spec.epochs else None
        epoch_id, started, finished = spans.pair(
            f"epoch {epoch}/{spec.epochs}", "task", running, at(begin), at(begin + epoch_s - 1),
            {"dlio.epoch": epoch, "dlio.steps_expected": 500}, error=error, **stage_fields(3))
        add_pair(started, finished)
        if epoch % 2 == 0:
            _, started, finished = spans.pair(f"checkpoint {epoch // 2}", "task", epoch_id, at(begin + epoch_s - 40),
                                              at(begin + epoch_s - 2), {"dlio.checkpoint": epoch // 2,
                                                                        "dlio.epoch": epoch}, **stage_fields(3))
            add_pair(started, finished)
    for rank in range(processes):
        host = hosts[rank % spec.hosts]
        error = "exited with code 1" if failed and rank == 0 else None
        _, _, finished = spans.pair(f"dlio rank {rank}", "task", running, at(run_start + 2 + 0.01 * rank),
                                    at(run_end - 0.5 - 0.005 * rank),
                                    {"mlpstorage.rank": rank, "host.name": host, "process.pid": 1000 + rank},
                                    error=error)
        add(finished["end_unix_nano"], finished)

    series: dict[str, list[dict]] = {h: [] for h in hosts}
    ticks = int(spec.duration_s // spec.interval_s) + 1
    for h, host in enumerate(hosts):
        counters = {"read_bytes": 0, "write_bytes": 0, "rx_bytes": 0, "tx_bytes": 0}
        memory = (256 if h == 6 else 512) * GIB
        phase = rng.random() * math.tau
        for tick in range(ticks):
            t = run_start + tick * spec.interval_s + 0.003 * h
            busy = 0.8 + 0.2 * math.sin(tick / 7 + phase)
            rates = {"read_Bps": 0.0 if tick == 0 else 1.2e9 * busy + rng.uniform(-5e7, 5e7),
                     "write_Bps": 0.0 if tick == 0 else 2e7 * rng.random(),
                     "rx_Bps": 0.0 if tick == 0 else 1.1e9 * busy + rng.uniform(-5e7, 5e7),
                     "tx_Bps": 0.0 if tick == 0 else 3e7 * rng.random()}
            for counter, rate in zip(counters, rates):
                counters[counter] += int(rates[rate] * spec.interval_s)
            values = {"elapsed_s": round(tick * spec.interval_s, 6), **counters,
                      "mem_available_bytes": int(memory * (0.6 + 0.1 * math.cos(tick / 30 + phase))),
                      "load1": round(6 + 2 * busy + rng.random(), 2), **rates}
            ns = at(t)
            series[host].append({"timestamp_ns": ns, **values, "host": host})
            event = ev.sample(host, values, ev.iso_from_ns(ns))
            event.update(trace_id=spans.trace_id, span_id=running, **stage_fields(3))
            add(ns, event)
    for tick in range(ticks):
        ns = at(run_start + tick * spec.interval_s + 0.5)
        lines = [f"[INFO] {ev.iso_from_ns(ns)[:-1]} Rank {r} step {tick} processed 7 samples in 0.3249 s "
                 "[/dlio_benchmark/utils/statscounter.py:325]" for r in range(4)]
        add(ns, {**ev.output(lines, "stderr", "dlio", ev.iso_from_ns(ns)), "trace_id": spans.trace_id,
                 "span_id": running, **stage_fields(3)})

    metrics = {"train_au_mean_percentage": 93.12, "train_au_meet_expectation": "success",
               "train_throughput_mean_samples_per_second": 2410.5, "train_io_mean_MB_per_second": 16870.2,
               "num_accelerators": processes} if spec.status == "ok" else {}
    if spec.status == "ok":
        for message in ("Training AU: 93.12% (target 90%: success)",
                        "Training throughput: 2410.50 samples/s, 16870.20 MB/s"):
            add(at(bounds[3] + 0.3), {**ev.log("result", message), "timestamp": ev.iso_from_ns(at(bounds[3] + 0.3)),
                                      "trace_id": spans.trace_id, "span_id": stage_ids[3], **stage_fields(4)})
    if end_failure:
        add(at(bounds[3] + 0.3), {**ev.log("warning", f"No cluster information from {end_failure}: timed out after "
                                           "10.0s"), "timestamp": ev.iso_from_ns(at(bounds[3] + 0.3)),
                                  "host": end_failure})
    run_error = "mpirun exited with code 1" if failed else None
    _, run_started, run_finished = spans.pair(
        "mlpstorage training run", "run", None, at(0), at(bounds[4]),
        {**run_attrs, **{f"mlpstorage.metric.{k}": v for k, v in metrics.items()}}, error=run_error,
        span_id=run_id_hex)
    run_started["attributes"] = {ev.KIND: "run", **run_attrs}
    add(at(0) - 1, run_started)
    add(at(bounds[4]) + 1, run_finished)

    timed.sort(key=lambda item: (item[0], item[1]))
    events = [event for _, _, event in timed]
    if spec.status == "cut":
        cut = at(run_start + 0.8 * spec.duration_s)
        events = [e for ns, _, e in timed if ns <= cut]
        for host in hosts:
            series[host] = [s for s in series[host] if s["timestamp_ns"] <= cut]
    with open(folder / "events.jsonl", "w", encoding="utf-8") as handle:
        handle.writelines(ev.to_json_line(e) for e in events)

    params = {"dataset.num_files_train": "28000", "reader.batch_size": "7",
              "reader.storage_options.secret_key": "***", "train.epochs": str(spec.epochs)}
    cluster = {host: _host_info(host, 256 * GIB if h == 6 else 512 * GIB) for h, host in enumerate(hosts)}
    write_json(folder / f"training_{stamp}_cluster_start.json", cluster)
    if spec.status == "cut":
        return folder
    end_cluster = dict(cluster)
    if end_failure:
        end_cluster[end_failure] = {"error": "timed out after 10.0s"}
    write_json(folder / f"training_{stamp}_cluster_end.json", end_cluster)
    write_json(folder / f"training_{stamp}_timeseries.json",
               {"interval_s": spec.interval_s, "max_samples": 3600, "hosts": series, "errors": {}})
    io_trace = None
    if spec.io_trace:
        windows = [(5 + (e - 1) * epoch_s, 5 + e * epoch_s - 1) for e in range(1, spec.epochs + 1)]
        document = synthetic_io_trace(hosts, spec.ranks_per_host, (T0_NS + int(run_start * 1e9)) // 1000,
                                      spec.duration_s, windows, spec.seed)
        write_json(folder / "io_trace.json", document)
        io_trace = {"requested": True, "file": "io_trace.json", "events": document["events"], "bad_lines": 0,
                    "ranks_traced": processes, "ranks_expected": processes, "missing": []}
    write_json(folder / f"training_{stamp}_metadata.json", {
        "benchmark": "training", "model": "unet3d", "command": "run", "run_id": run_id,
        "hosts": run_attrs["mlpstorage.hosts"], "status": spec.status,
        **({"error": "CommandFailed: mpirun exited with code 1"} if spec.status == "failed" else {}),
        "runtime_s": spec.duration_s,
        "stage_durations_s": {started["name"]: finished["duration_s"] for started, finished in stage_events[:3]},
        "cluster": {"host_count": spec.hosts, "hosts_without_information": [], "differing_hosts": hosts[6:7]},
        "files": [], "arguments": {"processes": processes, "accelerator": "h100", "params": params,
                                   "hosts": run_attrs["mlpstorage.hosts"]},
        "workload": "unet3d_h100",
        "resolved_parameters": {"model": "unet3d", "framework": "pytorch",
                                "workflow": {"generate_data": False, "train": True, "checkpoint": True},
                                "dataset": {"num_files_train": 28000, "format": "npz"},
                                "reader": {"batch_size": 7, "storage_options": {"secret_key": "***"}},
                                "train": {"epochs": spec.epochs, "computation_time": 0.323}, "metric": {"au": 0.90}},
        "executed_command": ["mpirun", "-n", str(processes), "-host",
                             ",".join(f"{h}:{spec.ranks_per_host}" for h in hosts), "--bind-to", "none",
                             "python", "-m", "mlpstorage.engines.dlio_rank", "workload=unet3d_h100",
                             "++workload.reader.storage_options.secret_key=***"],
        "returncode": 0 if spec.status == "ok" else 1, "metrics": metrics, "dlio_summary": None,
        **({"io_trace": io_trace} if io_trace else {}),
    })
    return folder


def _host_info(host: str, memory: int) -> dict:
    return {"schema": "mlpstorage.hostinfo/1", "hostname": host, "cpu": {"model": "AMD EPYC 9654", "cores": 96},
            "memory": {"total_bytes": memory, "available_bytes": int(memory * 0.7)},
            "os": {"name": "Debian GNU/Linux 12 (bookworm)", "kernel": "6.1.0-27-amd64", "python": "3.11.2"},
            "load": [0.1, 0.2, 0.3], "disks": {"nvme0n1": {"reads": 1, "read_sectors": 8, "writes": 1,
                                                          "write_sectors": 8, "io_ms": 1}},
            "network": {"eth0": {"rx_bytes": 1, "rx_packets": 1, "tx_bytes": 1, "tx_packets": 1}},
            "data_mount": {"device": "fs:/export", "mount_point": "/mnt/fs", "fstype": "nfs4"}}

