"""Stall detection against real hangs: a tiny real DLIO run under real OpenMPI whose rank
processes the test freezes with SIGSTOP, and real programs under `mlpstorage exec`.

The detector is told the timeout (2 s) and the time-series interval (1 s); a stall must be
flagged within their sum and the watch's tick (1 s), with some slack for a loaded machine."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from mlpstorage.emitter.events import ns_from_iso
from test_dlio import TINY, dataset, events_of, only_run_dir  # noqa: F401 (dataset: the tiny data set fixture)

from support.otlp_sink import base_env
from support.waiting import wait_for

pytestmark = pytest.mark.slow

DATA = Path(__file__).parent / "data"
TIMEOUT_S, INTERVAL_S, TICK_S, SLACK_S = 2.0, 1.0, 1.0, 2.0
RUN = TINY + ["reader.batch_size=2", "reader.read_threads=1", "train.epochs=30", "train.computation_time=0.1"]


def start_run(data: Path, results: Path, on_stall: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "mlpstorage", "training", "run", "--model", "unet3d", "--data-dir", str(data),
         "-na", "2", "--results-dir", str(results), "--render", "plain", "--timeseries-interval", str(INTERVAL_S),
         "--stall-timeout", str(TIMEOUT_S), "--on-stall", on_stall, *RUN],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=base_env(), stdin=subprocess.DEVNULL)


def recorded(run_dir: Path) -> list[dict]:
    """The run's events so far: none before the recording is opened, and the last line may be
    half written."""
    events = []
    path = run_dir / "events.jsonl"
    for line in (path.read_text() if path.exists() else "").splitlines():
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:
            break
    return events


def freeze_ranks_in_epoch_2(results: Path, ranks: list[int]) -> tuple[Path, dict[int, int], float]:
    """Waits for epoch 2 of the run, then SIGSTOPs the given ranks: (run dir, pids, when)."""
    run_dir = wait_for(lambda: next(iter(results.glob("training/unet3d/run/*")), None), "the run directory", 60)
    wait_for(lambda: any(e["type"] == "task.started" and e["name"].startswith("epoch 2")
                         for e in recorded(run_dir)),
             "epoch 2", 60)
    pids = {rank: json.loads((run_dir / "ranks" / f"process-{rank}.json").read_text())["pid"] for rank in (0, 1)}
    for rank in ranks:
        os.kill(pids[rank], signal.SIGSTOP)
    return run_dir, pids, time.time()


def stalls_of(events: list[dict]) -> list[dict]:
    return [e for e in events if e["type"] == "stall"]


def test_a_frozen_rank_is_named_with_its_pid_its_stack_kept_and_its_resumption_said(dataset, tmp_path):
    proc = start_run(dataset / "data", tmp_path / "results", "dump")
    try:
        run_dir, pids, frozen_at = freeze_ranks_in_epoch_2(tmp_path / "results", [1])
        flagged = wait_for(lambda: [e for e in stalls_of(recorded(run_dir)) if e["key"] == "rank:1"],
                           "the rank's stall", 30)[0]
        evidence = wait_for(lambda: sorted((run_dir / "stalls").glob("*rank-1*.txt")), "the evidence", 30)
    finally:
        os.kill(pids[1], signal.SIGCONT) if "pids" in locals() else None
    stderr = proc.communicate(timeout=120)[1]
    assert proc.returncode == 0, stderr[-2000:]
    assert flagged["state"] == "stalled" and flagged["pid"] == pids[1] and flagged["rank"] == 1
    assert flagged["subject"] == f"rank 1 on {os.uname().nodename} (pid {pids[1]})"
    assert ns_from_iso(flagged["timestamp"]) / 1e9 - frozen_at <= TIMEOUT_S + INTERVAL_S + TICK_S + SLACK_S
    stack = evidence[0].read_text()
    assert "dlio_benchmark/main.py" in stack and f"-- /proc/{pids[1]}/status" in stack and "State:\tT" in stack
    events = events_of(run_dir)
    stalls = stalls_of(events)
    assert all(ns_from_iso(e["timestamp"]) / 1e9 >= frozen_at for e in stalls)  # nothing before the freeze
    assert any(e["key"] == "rank:1" and e["state"] == "resumed" for e in stalls)
    assert "WARNING [3/4 Running benchmark] stalled: rank 1 on" in stderr and "resumed: rank 1 on" in stderr
    [metadata] = run_dir.glob("*_metadata.json")
    flagged_in_metadata = json.loads(metadata.read_text())["stalls"]["flagged"]
    [rank_entry] = [s for s in flagged_in_metadata if s["key"] == "rank:1"]
    assert rank_entry["resumed_at"] and rank_entry["evidence"] == [str(evidence[0].relative_to(run_dir))]
    [rank_span] = [e for e in events if e["type"] == "task.finished" and e["name"] == "dlio rank 1"]
    assert rank_span["attributes"]["mlpstorage.stall.count"] == 1
    [stage] = [e for e in events if e["type"] == "stage.finished" and e["name"] == "Running benchmark"]
    assert any(s["name"] == "mlpstorage.stall" for s in stage["span_events"])
    page = (run_dir / "report.html").read_text()
    assert f"stalled: rank 1 on {os.uname().nodename} (pid {pids[1]})" in page and "resumed: rank 1 on" in page


def test_a_whole_frozen_job_is_flagged_and_abort_leaves_no_process(dataset, tmp_path):
    proc = start_run(dataset / "data", tmp_path / "results", "abort")
    run_dir, pids, frozen_at = freeze_ranks_in_epoch_2(tmp_path / "results", [0, 1])
    try:
        stderr = proc.communicate(timeout=120)[1]
    finally:
        for pid in pids.values():  # never leave a stopped process behind, whatever happened
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    assert proc.returncode == 3, stderr[-2000:]
    assert stderr.strip().splitlines()[-1].startswith("mlpstorage: error: the job was stopped on a stall")
    [job] = [e for e in stalls_of(events_of(run_dir)) if e["key"] == "job" and e["state"] == "stalled"]
    assert job["message"].startswith("the whole job: no step from any rank, no output and no I/O for 2 s")
    assert ns_from_iso(job["timestamp"]) / 1e9 - frozen_at <= TIMEOUT_S + INTERVAL_S + TICK_S + SLACK_S
    assert not [pid for pid in pids.values() if psutil.pid_exists(pid) and
                psutil.Process(pid).status() != psutil.STATUS_ZOMBIE]
    [metadata] = run_dir.glob("*_metadata.json")
    saved = json.loads(metadata.read_text())
    assert saved["status"] == "stalled"
    assert sorted(Path(p).name.split("-", 1)[1] for p in saved["stalls"]["flagged"][0]["evidence"]) == \
        ["job-rank-0.txt", "job-rank-1.txt"]


def exec_run(tmp_path: Path, *program: str, stall_timeout: float = 1.0, on_stall: str = "warn"):
    result = subprocess.run(
        [sys.executable, "-m", "mlpstorage", "exec", "--results-dir", str(tmp_path / "results"), "--render", "plain",
         "--stall-timeout", str(stall_timeout), "--on-stall", on_stall, "--", *program],
        capture_output=True, text=True, env=base_env(), timeout=120, stdin=subprocess.DEVNULL)
    run_dir = only_run_dir(tmp_path / "results", "exec", Path(program[0]).name, "run")
    return result, run_dir, stalls_of(events_of(run_dir))


def test_exec_finds_the_rank_that_stops_in_dlio_shaped_output(tmp_path):
    result, run_dir, stalls = exec_run(tmp_path, sys.executable, str(DATA / "dlio_shaped.py"), "3", "20", "0.1",
                                       "--rank-quits-at", "2:5")
    assert result.returncode == 0, result.stderr
    [rank] = [e for e in stalls if e["state"] == "stalled"]
    assert rank["key"] == "rank:1" and "last step 5/20 of epoch 2" in rank["message"]
    epochs = [e for e in events_of(run_dir) if e["type"] == "task.finished" and e["name"].startswith("epoch ")]
    assert [e["name"] for e in epochs] == ["epoch 1", "epoch 2", "epoch 3"]  # DLIO's epochs, from exec too


def test_exec_flags_a_silent_program_and_keeps_its_stack(tmp_path):
    script = "import time\ndef sitting_still():\n    time.sleep(4)\nsitting_still()\n"
    result, run_dir, stalls = exec_run(tmp_path, sys.executable, "-c", script, on_stall="dump")
    assert result.returncode == 0, result.stderr
    [job] = [e for e in stalls if e["state"] == "stalled"]
    assert job["key"] == "job" and job["message"].startswith("the whole job: no output and no I/O for 1 s")
    [evidence] = (run_dir / "stalls").glob("*.txt")
    assert "sitting_still" in evidence.read_text()


def test_epochs_that_differ_by_30_percent_raise_no_alarm(tmp_path):
    result, _, stalls = exec_run(tmp_path, sys.executable, str(DATA / "dlio_shaped.py"), "6", "10", "0.1",
                                 "--uneven", "1.3")
    assert result.returncode == 0, result.stderr
    assert stalls == []


def test_a_silent_program_doing_io_is_alive_until_its_io_stops(tmp_path):
    stopped = tmp_path / "stopped"
    script = (
        "import os, sys, time\n"
        f"out = open({str(tmp_path / 'data')!r}, 'wb')\n"
        "end = time.time() + 4\n"
        "while time.time() < end:\n"
        "    out.write(os.urandom(65536)); out.flush(); time.sleep(0.05)\n"
        f"open({str(stopped)!r}, 'w').write(repr(time.time()))\n"
        "time.sleep(6)\n"
    )
    result, _, stalls = exec_run(tmp_path, sys.executable, "-c", script, stall_timeout=2)
    assert result.returncode == 0, result.stderr
    [job] = [e for e in stalls if e["state"] == "stalled"]  # none while it wrote, with no output at all
    assert "(last: I/O of the job on this host)" in job["message"]
    flagged_after = ns_from_iso(job["timestamp"]) / 1e9 - float(stopped.read_text())
    assert 2.0 <= flagged_after + 0.1 and flagged_after <= TIMEOUT_S + TICK_S + SLACK_S
