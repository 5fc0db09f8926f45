"""--io-trace on real runs: a tiny 2-rank DLIO run under real OpenMPI traced by DFTracer, its
counts and bytes against the data set it read; one rank's reads made slow for real (strace
injects a 20 ms delay into every read of the data files by that rank's processes) and named as
the slow one; a checkpointing run's write latencies; a stall's evidence with the rank's last
traced calls; and the flag's wiring."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from mlpstorage.cli.parser import build_parser
from mlpstorage.cli.wiring import dlio_options_from
from mlpstorage.errors import UsageError
from mlpstorage.reports import timeline as tl
from mlpstorage.reports.record import read_run
from test_dlio import TINY, TINY_RUN, dataset, events_of, mlpstorage, only_run_dir  # noqa: F401 (dataset: a fixture)

from support.otlp_sink import base_env
from support.waiting import wait_for

FILES, RANKS, EPOCHS = 8, 2, 2  # TINY's data set; TINY_RUN's epochs
HEADERS = 8192  # what numpy reads of an npz file's zip headers again, at most, each time it opens one


def metadata_of(run_dir: Path) -> dict:
    [path] = run_dir.glob("*_metadata.json")
    return json.loads(path.read_text())


def results(events: list[dict]) -> list[str]:
    return [e["message"] for e in events if e["type"] == "log" and e["level"] == "result"]


def rows(document: dict, operation: str) -> dict[int, dict]:
    return {r["rank"]: r for r in document["operations"] if r["operation"] == operation}


def traced_run(data: Path, results_dir: Path, *extra: str, env=None) -> subprocess.CompletedProcess:
    return mlpstorage("training", "run", "--model", "unet3d", "--data-dir", str(data), "-na", str(RANKS),
                      "--results-dir", str(results_dir), "--render", "plain", "--skip-timeseries", "--io-trace",
                      *TINY_RUN, *extra, env=env)


# ----- the flag --------------------------------------------------------------------------
@pytest.mark.parametrize("command", [["training", "run", "--model", "unet3d", "--data-dir", "d"],
                                     ["training", "datagen", "--model", "unet3d", "--data-dir", "d"],
                                     ["checkpointing", "run", "--model", "llama3-8b", "--checkpoint-folder", "c"]])
def test_the_flag_reaches_the_ranks_environment_on_the_three_dlio_commands(command):
    from mlpstorage.benchmarks.dlio import RANK_ENV
    from mlpstorage.benchmarks.io_trace import tracer_environment

    parser = build_parser()
    assert parser.parse_args(command).io_trace is False
    args = parser.parse_args([*command, "--io-trace"])
    assert dlio_options_from(args, 2).io_trace is True
    # what the ranks get, each forwarded by name with mpirun -x
    assert tracer_environment(True) == {"DFTRACER_ENABLE": "1", "DFTRACER_INC_METADATA": "1"}
    assert tracer_environment(False) == {"DFTRACER_ENABLE": "0", "DFTRACER_INC_METADATA": "0"}
    assert {"DFTRACER_ENABLE", "DFTRACER_INC_METADATA"} <= set(RANK_ENV)


def test_exec_has_no_io_trace():
    with pytest.raises(UsageError):
        build_parser().parse_args(["exec", "--io-trace", "--", "true"])


# ----- a real traced run -----------------------------------------------------------------
@pytest.fixture(scope="module")
def traced(dataset):
    result = traced_run(dataset / "data", dataset / "traced")
    assert result.returncode == 0, result.stderr
    run_dir = only_run_dir(dataset / "traced", "training", "unet3d", "run")
    return result, run_dir, json.loads((run_dir / "io_trace.json").read_text())


@pytest.mark.slow
def test_counts_and_bytes_agree_with_what_dlio_read(dataset, traced):
    _, _, document = traced
    files = sorted((dataset / "data" / "train").glob("*.npz"))
    assert len(files) == FILES
    data_bytes = sum(f.stat().st_size for f in files)
    # each rank opens its half of the files in every epoch; together they read the data set each epoch
    opens = rows(document, "open")
    assert {rank: row["count"] for rank, row in opens.items()} == {0: FILES // RANKS * EPOCHS, 1: FILES // RANKS * EPOCHS}
    # numpy reads an npz's zip headers (the central directory, a member's local header) more than
    # once: a few KiB a file above its size, each time it is opened
    read = sum(row["bytes"] for row in rows(document, "read").values())
    assert data_bytes * EPOCHS <= read <= (data_bytes + FILES * HEADERS) * EPOCHS
    hottest = {Path(f["file"]).name: f for f in document["files"]["hottest"]}
    for f in files:
        assert hottest[f.name]["opens"] == EPOCHS
        assert f.stat().st_size * EPOCHS <= hottest[f.name]["read_bytes"] <= (f.stat().st_size + HEADERS) * EPOCHS
    assert document["events"] > 0 and document["bad_lines"] == 0


@pytest.mark.slow
def test_the_run_says_it_is_traced_and_keeps_it_in_its_metadata_events_and_results(traced):
    result, run_dir, document = traced
    events = events_of(run_dir)
    assert any(e["type"] == "log" and e["level"] == "status" and "DFTracer I/O trace on in every rank" in e["message"]
               for e in events)
    meta = metadata_of(run_dir)["io_trace"]
    assert meta == {"requested": True, "file": "io_trace.json", "events": document["events"], "bad_lines": 0,
                    "ranks_traced": RANKS, "ranks_expected": RANKS, "missing": [], "slowest_rank": meta["slowest_rank"]}
    assert meta["slowest_rank"]["operation"] == "read" and meta["slowest_rank"]["rank"] in (0, 1)
    [summary] = [e for e in events if e["type"] == "io.summary"]
    processing = next(e for e in events if e["type"] == "stage.started" and e["name"] == "Processing results")
    assert summary["span_id"] == processing["span_id"]
    assert summary["io"]["events"] == document["events"]
    assert {(r["operation"], r["rank"]) for r in summary["io"]["operations"]} >= {("read", 0), ("read", 1)}
    lines = results(events)
    start = next(i for i, line in enumerate(lines) if line.startswith("I/O trace: "))
    table = lines[start + 1:start + 6]
    assert [line.split()[:4] for line in table[:4]] == [["read", os.uname().nodename, "rank", "0"],
                                                        ["read", os.uname().nodename, "rank", "1"],
                                                        ["open", os.uname().nodename, "rank", "0"],
                                                        ["open", os.uname().nodename, "rank", "1"]]
    assert len({line.index("p50") for line in table[:4]}) == 1  # aligned
    assert table[4].startswith("  slowest rank: rank ")
    assert "RESULT" in result.stderr and "I/O trace: " in result.stderr


@pytest.mark.slow
def test_epoch_spans_carry_their_io_and_the_slowest_calls_hang_under_their_ranks(traced):
    result, run_dir, document = traced
    events = events_of(run_dir)
    epochs = [e for e in events if e["type"] == "task.finished" and e["name"].startswith("epoch ")]
    assert len(epochs) == EPOCHS
    for epoch in epochs:
        attributes = epoch["attributes"]
        assert attributes["mlpstorage.io.ranks"] == RANKS
        assert attributes["mlpstorage.io.read_bytes"] > FILES * 65536  # the data set, read in every epoch
        assert len(attributes["mlpstorage.io.time_s_by_rank"]) == RANKS
        assert attributes["mlpstorage.compute.time_s"] > 0
        # and the terminal says it as the epoch ends
        assert re.search(rf"\] {epoch['name']}: done in [\d.]+s \(\d+/\d+\); {RANKS} ranks traced: computing "
                         rf"[\d.]+ s, waiting for data [\d.]+ s, in I/O calls [\d.]+ s, read [\d,.]+ MB", result.stderr)
    ranks = {e["attributes"]["mlpstorage.rank"]: e["span_id"] for e in events
             if e["type"] == "task.finished" and e["name"].startswith("dlio rank ")}
    slowest = [e for e in events if e["type"] == "task.finished" and "(slowest " in e["name"]]
    assert len(slowest) == 10
    assert all(e["parent_span_id"] == ranks[e["attributes"]["mlpstorage.io.rank"]] for e in slowest)
    durations = [e["attributes"]["mlpstorage.io.duration_us"] for e in slowest]
    assert durations == sorted(durations, reverse=True) == [c["duration_us"] for c in document["slowest"][:10]]
    # on the page's timeline they share one lane (not a lane each)
    lanes = {lane.label: lane for lane in tl.lanes(read_run(run_dir))}
    assert len(lanes["slowest I/O calls"].bars) == 10 and lanes["slowest I/O calls"].kind == "io"
    assert not [label for label in lanes if "(slowest " in label]


# ----- slow storage made real -------------------------------------------------------------
def slow_down_reads(pid: int, files: list[Path]) -> subprocess.Popen:
    """strace on the process and every child it forks from now on (the DataLoader workers),
    delaying each read of the data files by 20 ms in the kernel (-P: only calls on those files)."""
    paths = [arg for f in files for arg in ("-P", str(f))]
    return subprocess.Popen(["strace", "-f", "-o", "/dev/null", "-e", "inject=read:delay_enter=20ms", *paths,
                             "-p", str(pid)], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed (scripts/setup.sh --tests)")
def test_a_rank_with_slow_reads_is_named_with_its_host_and_p99(dataset, tmp_path):
    files = sorted((dataset / "data" / "train").glob("*.npz"))
    results_dir = tmp_path / "results"
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlpstorage", "training", "run", "--model", "unet3d", "--data-dir",
         str(dataset / "data"), "-na", str(RANKS), "--results-dir", str(results_dir), "--render", "plain",
         "--skip-timeseries", "--io-trace", *TINY_RUN],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=base_env(), stdin=subprocess.DEVNULL)
    tracer = None
    try:
        run_dir = wait_for(lambda: next(iter(results_dir.glob("training/unet3d/run/*")), None), "the run folder", 60)
        process = wait_for(lambda: (run_dir / "ranks" / "process-1.json").exists() and
                           json.loads((run_dir / "ranks" / "process-1.json").read_text()), "rank 1 starting", 60)
        tracer = slow_down_reads(process["pid"], files)
        stderr = proc.communicate(timeout=240)[1]
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)
        if tracer is not None:
            tracer.wait(30)
    assert proc.returncode == 0, stderr[-3000:]
    host = os.uname().nodename
    document = json.loads((run_dir / "io_trace.json").read_text())
    reads = rows(document, "read")
    assert reads[1]["p99_us"] >= 20_000 and reads[1]["max_us"] >= 20_000
    assert reads[0]["p99_us"] < 5_000  # the other rank's reads stayed fast
    slowest = metadata_of(run_dir)["io_trace"]["slowest_rank"]
    assert (slowest["rank"], slowest["host"], slowest["operation"]) == (1, host, "read")
    assert all(call["rank"] == 1 and call["duration_us"] >= 20_000 for call in document["slowest"][:10])
    line = next(m for m in results(events_of(run_dir)) if m.startswith("  slowest rank: "))
    assert line.startswith(f"  slowest rank: rank 1 on {host}, read p99 ")
    assert float(line.split("read p99 ")[1].split(" ms")[0]) >= 20.0
    shown = mlpstorage("reports", "show", str(run_dir))
    assert shown.returncode == 0, shown.stderr
    read_row = next(line for line in shown.stdout.splitlines() if f"slowest: rank 1 ({host})" in line)
    assert max(float(v) for v in re.findall(r"([\d.]+) ms", read_row)) >= 20.0  # its p99, p99.9 and max


# ----- checkpointing ------------------------------------------------------------------------
@pytest.mark.slow
def test_a_checkpointing_run_traces_its_writes(tmp_path):
    shard = 1 << 20
    result = mlpstorage("checkpointing", "run", "--model", "llama3-8b", "--num-processes", str(RANKS),
                        "--num-checkpoints", "2", "--checkpoint-folder", str(tmp_path / "ckpt"),
                        "--results-dir", str(tmp_path / "results"), "--render", "plain", "--skip-timeseries",
                        "--io-trace", "--params", f"checkpoint.model_size={shard}")
    assert result.returncode == 0, result.stderr
    run_dir = only_run_dir(tmp_path / "results", "checkpointing", "llama3-8b", "run")
    document = json.loads((run_dir / "io_trace.json").read_text())
    written = {p.name: p.stat().st_size for p in (tmp_path / "ckpt").rglob("*.pt")}
    assert len(written) == 2 * RANKS
    writes = rows(document, "write")
    assert set(writes) == {0, 1}
    for rank, row in writes.items():
        shards = sum(size for name, size in written.items() if name.endswith(f"-{rank}.pt"))
        assert shards <= row["bytes"] < shards + 65536  # the shards, and little else
        assert 0 < row["p50_us"] <= row["p99_us"] <= row["max_us"]
    hottest = {Path(f["file"]).name: f for f in document["files"]["hottest"]}
    assert all(hottest[name]["written_bytes"] == size for name, size in written.items())
    lines = results(events_of(run_dir))
    assert sum(1 for line in lines if line.split()[:1] == ["write"]) == RANKS
    table = lines[next(i for i, line in enumerate(lines) if line.startswith("I/O trace: ")) + 1:]
    assert [line.split()[0] for line in table[:RANKS]] == ["write"] * RANKS  # a run that writes: its writes first
    assert metadata_of(run_dir)["io_trace"]["slowest_rank"]["operation"] == "write"
    epochs = [e for e in events_of(run_dir) if e["type"] == "task.finished" and e["name"].startswith("epoch ")]
    # Each epoch's live figures count what the tracers had written when it ended. Here an epoch
    # lasts 9-115 ms and ends with its checkpoint, while a tracer writes a call's line 7-46 ms
    # after it returns, so an epoch may end before its writes are read: the live figures are
    # there for every rank and never more than was written; the exact totals are io_trace.json's
    # (checked above).
    assert epochs and all(e["attributes"]["mlpstorage.io.ranks"] == RANKS for e in epochs)
    assert sum(e["attributes"]["mlpstorage.io.written_bytes"] for e in epochs) <= sum(r["bytes"] for r in writes.values())


# ----- a stall's evidence -----------------------------------------------------------------
@pytest.mark.slow
def test_a_stalled_ranks_evidence_holds_its_last_traced_calls(dataset, tmp_path):
    results_dir = tmp_path / "results"
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlpstorage", "training", "run", "--model", "unet3d", "--data-dir",
         str(dataset / "data"), "-na", str(RANKS), "--results-dir", str(results_dir), "--render", "plain",
         "--timeseries-interval", "1", "--stall-timeout", "2", "--on-stall", "dump", "--io-trace",
         *TINY, "reader.batch_size=2", "reader.read_threads=1", "train.epochs=30", "train.computation_time=0.1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=base_env(), stdin=subprocess.DEVNULL)
    pid = None
    try:
        run_dir = wait_for(lambda: next(iter(results_dir.glob("training/unet3d/run/*")), None), "the run folder", 60)
        wait_for(lambda: (run_dir / "events.jsonl").exists() and '"epoch 2/30"' in (run_dir / "events.jsonl").read_text(),
                 "epoch 2", 90)
        pid = json.loads((run_dir / "ranks" / "process-1.json").read_text())["pid"]
        os.kill(pid, signal.SIGSTOP)
        [evidence] = wait_for(lambda: sorted((run_dir / "stalls").glob("*rank-1*.txt")), "the evidence", 60)
        text = wait_for(lambda: "== the last" in evidence.read_text() and evidence.read_text(), "its traced calls", 30)
    finally:
        if pid is not None:
            os.kill(pid, signal.SIGCONT)
    stderr = proc.communicate(timeout=240)[1]
    assert proc.returncode == 0, stderr[-2000:]
    section = text.split("== the last ", 1)[1]
    assert section.startswith("20 calls in the I/O trace of rank 1 (trace-1-of-2.pfw")
    assert len(section.strip().splitlines()) == 21
    assert "its last traced calls" in stderr


# ----- several hosts: a trace left where its rank ran ---------------------------------------
RECORDED = Path(__file__).parent / "data" / "iotrace"  # a real 2-rank run's traces


def run_folder_with_rank_0_only(tmp_path: Path) -> Path:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    shutil.copy(RECORDED / "trace-0-of-2.pfw", run_dir)
    return run_dir


def test_a_trace_that_stayed_on_another_host_is_named_with_its_host_and_folder(mlpstorage_capture, tmp_path):
    from mlpstorage.benchmarks.io_trace import RunIoTrace

    run_dir = run_folder_with_rank_0_only(tmp_path)
    trace = RunIoTrace(mlpstorage_capture.emitter, run_dir, True, 2, ["localhost", "node7"])
    with mlpstorage_capture.emitter.run("run"):
        trace.process({})
    [warning] = [e["message"] for e in mlpstorage_capture.of_type("log") if e["level"] == "warning"]
    assert warning == (f"I/O trace of rank 1 not in the run folder: it stayed on node7 in {run_dir} (the results "
                       "folder is not shared with that host); io_trace.json covers the other ranks")
    meta = trace.metadata()
    assert meta["ranks_traced"] == 1 and meta["ranks_expected"] == 2
    assert meta["missing"] == [{"rank": 1, "hosts": ["node7"], "file": str(run_dir / "trace-1-of-2.pfw")}]
    assert [s["rank"] for s in json.loads((run_dir / "io_trace.json").read_text())["sources"]] == [0]


@pytest.mark.slow
def test_a_trace_left_on_a_remote_host_comes_back_over_ssh(mlpstorage_capture, ssh_cluster, tmp_path):
    """The remote host's copy lives in another folder of this machine (the sshd hosts share its
    file system); an odd name shows the path reaches the remote shell quoted."""
    from mlpstorage.benchmarks.io_trace import RunIoTrace, fetch_over_ssh
    from mlpstorage.collectors.ssh import SshConnections, SshOptions

    run_dir = run_folder_with_rank_0_only(tmp_path)
    remote_dir = tmp_path / "on node2 $HOME; echo"
    remote_dir.mkdir()
    shutil.copy(RECORDED / "trace-1-of-2.pfw", remote_dir)
    host = ssh_cluster.hosts[0]
    emitter = mlpstorage_capture.emitter
    with SshConnections(SshOptions(config=str(ssh_cluster.config), timeout_s=10)) as connections:
        connections.open([host])
        trace = RunIoTrace(emitter, run_dir, True, 2, ["localhost", host])
        with emitter.run("run"):
            trace.process({}, fetch_over_ssh(connections, ["localhost", host], run_dir, 2, emitter.info, remote_dir))
    assert (run_dir / "trace-1-of-2.pfw").read_bytes() == (RECORDED / "trace-1-of-2.pfw").read_bytes()
    assert not list(run_dir.glob("*.partial"))
    said = [e["message"] for e in mlpstorage_capture.of_type("log")]
    assert f"I/O trace of rank 1 from {host} brought back over ssh into {run_dir}" in said
    assert not any(e["level"] == "warning" for e in mlpstorage_capture.of_type("log"))
    assert trace.metadata()["missing"] == [] and trace.metadata()["ranks_traced"] == 2
