"""Stall detection, fast: the detector's rules with an injected clock (on DLIO's recorded
output and on made-up samples), the stall event through the schema, the renderers and the
trace, and the evidence of a real process. The real hangs are in test_stalls_real.py."""

from __future__ import annotations

import io
import re
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from mlpstorage.emitter.events import ns_from_iso, stall, validate
from mlpstorage.engines.dlio import DlioProgress
from mlpstorage.stalls import evidence
from mlpstorage.stalls.detector import IO_FLOOR_BPS, StallDetector, default_timeout
from renderers.plain import LINE_PATTERN, STALL_PATTERN, PlainRenderer
from renderers.rich import RichRenderer

from support.waiting import sleeping_in_nanosleep, wait_for

DATA = Path(__file__).parent / "data"
_STAMP = re.compile(r"^\[\w+\] (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+)")


class Clock:
    def __init__(self, now: float = 1000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


def checked(detector: StallDetector, clock: Clock, until: float, every: float = 0.5) -> list:
    """Advances the clock to `until` in ticks, as the watch does, collecting the findings."""
    found = []
    while clock.now < until:
        clock.now = min(until, clock.now + every)
        found += detector.check()
    return found


# ----- the rules -----------------------------------------------------------------------------
def test_a_rank_behind_the_others_is_flagged_once_then_resumed():
    clock = Clock()
    detector = StallDetector(timeout_s=10, ranks=2, clock=clock)
    detector.rank_process(1, "node3", 4242)
    detector.epoch_started(3, 128)
    for step in range(1, 42):
        detector.step(0, step)
        detector.step(1, step)
        clock.now += 0.3
    quiet_since = clock.now - 0.3
    found = []
    for step in range(42, 55):  # rank 0 goes on; rank 1 stopped at 41
        detector.step(0, step)
        found += checked(detector, clock, clock.now + 1)
        if found:
            break
    [found] = found
    assert clock.now - quiet_since > 10 and clock.now - quiet_since <= 11  # not before the timeout, and at once
    assert (found.condition, found.state, found.key) == ("rank", "stalled", "rank:1")
    assert found.subject == "rank 1 on node3 (pid 4242)"
    assert found.message.startswith("rank 1 on node3 (pid 4242): no step for 10 s") and \
        "last step 41/128 of epoch 3; rank 0 is at step 51/128" in found.message
    assert found.fields["pid"] == 4242 and found.fields["step"] == 41 and found.fields["idle_s"] > 10
    assert found.fields["detail"] == "no step; last step 41/128 of epoch 3; rank 0 is at step 51/128"
    later = checked(detector, clock, clock.now + 30)
    assert [f.key for f in later] == ["job"]  # the rank is not said again; the job stalls too
    detector.step(1, 42)
    resumed = detector.check()
    assert [(f.key, f.state) for f in resumed] == [("rank:1", "resumed"), ("job", "resumed")]
    assert resumed[0].message == "rank 1 on node3 (pid 4242): step 42/128 after 40 s without a step"


def test_ranks_at_the_same_step_are_a_job_stall_not_a_rank_stall():
    clock = Clock()
    detector = StallDetector(timeout_s=5, ranks=2, clock=clock)
    detector.step(0, 1)
    detector.step(1, 1)
    found = checked(detector, clock, clock.now + 6)
    assert [(f.condition, f.key) for f in found] == [("job", "job")]
    assert found[0].message.startswith("the whole job: no step from any rank, no output and no I/O for 5 s")
    assert detector.check() == []  # once


def test_any_sign_of_life_keeps_the_job_going():
    clock = Clock()
    detector = StallDetector(timeout_s=5, clock=clock)  # exec: no ranks, output and I/O only
    for _ in range(20):
        clock.now += 4
        detector.activity("output")
        assert detector.check() == []
    clock.now += 6
    [found] = detector.check()
    assert found.message.startswith("the whole job: no output and no I/O for 6 s")
    detector.activity("I/O of the job on this host")
    [resumed] = detector.check()
    assert resumed.state == "resumed" and "moving again after 6 s (I/O of the job on this host)" in resumed.message


def test_an_epoch_past_twice_the_median_is_flagged_and_ends_with_it():
    clock = Clock()
    detector = StallDetector(timeout_s=5, clock=clock)
    for epoch, seconds in ((1, 10.0), (2, 12.0), (3, 11.0)):
        detector.epoch_started(epoch, 100)
        clock.now += seconds
        detector.activity()
        detector.epoch_ended(epoch)
    detector.epoch_started(4, 100)
    for _ in range(22):  # the job keeps moving: only the epoch is late
        clock.now += 1
        detector.activity()
        assert detector.check() == []
    clock.now += 1
    detector.activity()
    [late] = detector.check()
    assert (late.condition, late.key) == ("epoch", "epoch:4")
    assert late.message == "epoch 4 is late: 23 s so far, 2.1x the median of epochs 1-3 (11.0 s)"
    detector.epoch_ended(4)
    [done] = detector.check()
    assert done.state == "resumed" and done.message == "epoch 4: done after 23 s"


def test_epochs_that_differ_by_30_percent_raise_nothing():
    clock = Clock()
    detector = StallDetector(timeout_s=1, ranks=1, clock=clock)
    found = []
    for epoch in range(1, 9):
        detector.epoch_started(epoch, 10)
        for step in range(1, 11):
            clock.now += 0.13 if epoch % 2 else 0.1  # epochs of 1.3 s and 1.0 s
            detector.step(0, step)
            found += detector.check()
        detector.epoch_ended(epoch)
    assert found == []


def test_the_first_epoch_is_judged_by_its_steps_times_the_computation_time():
    clock = Clock()
    detector = StallDetector(timeout_s=5, clock=clock)
    detector.epoch_started(1, 10, expected_s=10 * 0.5)  # 5 s expected: late past max(10, 5 + 5)
    for _ in range(10):
        clock.now += 1
        detector.activity()
    assert detector.check() == []
    clock.now += 1
    detector.activity()
    [late] = detector.check()
    assert late.message == "epoch 1 is late: 11 s so far, 2.2x its expected 5.0 s (steps x computation time)"


def test_a_host_that_stops_reading_while_the_others_read():
    clock = Clock()
    detector = StallDetector(timeout_s=20, interval_s=10, clock=clock)
    found = []
    for tick in range(6):
        clock.now += 10
        detector.host_rates("node1", 50e6, 50e6)
        detector.host_rates("node2", 40e6 if tick < 2 else 0.0, 40e6 if tick < 2 else 0.0)
        found += detector.check()
    [host] = found
    assert (host.condition, host.key) == ("host", "host:node2")
    assert host.message.startswith("host node2: read under 0.1 MB/s for 30 s while 1 other host read (50.0 MB/s)")
    detector.host_rates("node2", 30e6, 30e6)
    [resumed] = detector.check()
    assert resumed.message == "host node2: reads again (30.0 MB/s) after 40 s"


def test_a_host_that_never_read_is_not_flagged():
    clock = Clock()
    detector = StallDetector(timeout_s=20, interval_s=10, clock=clock)
    found = []
    for _ in range(10):  # node2 runs no rank (or its data is cached): it never reads
        clock.now += 10
        detector.host_rates("node1", 50e6, 50e6)
        detector.host_rates("node2", 0.0, 0.0)
        found += detector.check()
    assert found == []


def test_a_rank_behind_in_count_only_is_not_flagged():
    clock = Clock()
    detector = StallDetector(timeout_s=5, ranks=2, clock=clock)
    detector.step(1, 1)  # rank 0's step 1 line never arrived, say: it is one behind in count
    for step in range(2, 6):
        clock.now += 0.3
        detector.step(1, step)
        detector.step(0, step, at=clock.now + 0.001)  # but it stepped last
    found = checked(detector, clock, clock.now + 8)
    assert [f.key for f in found] == ["job"]  # all quiet (a checkpoint, say): the job, not rank 0


def test_one_host_or_all_hosts_quiet_is_no_host_stall():
    clock = Clock()
    detector = StallDetector(timeout_s=20, interval_s=10, clock=clock)
    found = []
    for _ in range(6):
        clock.now += 10
        detector.activity()
        detector.host_rates("node1", 0.0, 0.0)
        detector.host_rates("node2", IO_FLOOR_BPS / 2, 0.0)
        found += detector.check()
    assert found == []


def test_the_default_timeout_follows_the_workload():
    assert default_timeout(0.323, 500 * 0.323) == 60  # unet3d on h100: 20 steps are 6.5 s
    assert default_timeout(5.0, 100 * 5.0) == 100  # 20 steps of 5 s
    assert default_timeout(0.2, 40000 * 0.2) == 600  # a tenth of an 8000 s epoch, capped
    assert default_timeout(None, None, "checkpointing") == 300
    assert default_timeout(None, None, "exec") == 120


# ----- on DLIO's recorded output -------------------------------------------------------------
def _replay(lines: list[str], timeout_s: float, drop=lambda line: False):
    """DLIO's recorded lines through DlioProgress into a detector, the clock following the
    lines' own timestamps, checked every 0.25 s as the watch would."""
    from mlpstorage.emitter import Emitter

    clock = Clock(0.0)
    detector = StallDetector(timeout_s=timeout_s, ranks=2, clock=clock)
    progress = DlioProgress(Emitter(), epochs=2, detector=detector, ranks=2, computation_time_s=0.323,
                            clock=clock)
    found = []
    for line in lines:
        match = _STAMP.match(line)
        if match:
            at = ns_from_iso(match.group(1) + "Z") / 1e9
            if clock.now == 0.0:
                clock.now = at
            found += checked(detector, clock, at, every=0.25)
        if not drop(line):
            progress.observe("stderr", [line])
    found += checked(detector, clock, clock.now + 3 * timeout_s, every=0.25)
    return found


def test_a_healthy_recorded_run_raises_nothing_until_it_ends():
    lines = (DATA / "dlio_train_checkpoint.stderr").read_text().splitlines()
    found = _replay(lines, timeout_s=2.0)
    assert [f.key for f in found] == ["job"]  # only once the recording is over and time runs on
    assert found[0].message.startswith("the whole job: no step from any rank, no output and no I/O for 2 s")


def test_a_rank_that_goes_quiet_in_the_recording_is_named():
    lines = (DATA / "dlio_train_checkpoint.stderr").read_text().splitlines()
    started = [i for i, line in enumerate(lines) if "Starting epoch 2" in line][0]
    cut = started + 3  # rank 1's lines stop a few lines into epoch 2
    quiet = {i for i, line in enumerate(lines) if i > cut and "Rank 1 step" in line}
    numbered = list(enumerate(lines))
    found = _replay([line for _, line in numbered], timeout_s=0.5,
                    drop=lambda line, q={lines[i] for i in quiet}: line in q)
    rank = [f for f in found if f.key == "rank:1"]
    assert rank and rank[0].state == "stalled" and "rank 0 is at step" in rank[0].message


# ----- the event, the renderers, the trace ---------------------------------------------------
STALLED = stall("rank", "stalled", "rank:5", "rank 5 on node3 (pid 4242)",
                "rank 5 on node3 (pid 4242): no step for 62 s, last step 41/128 of epoch 3; rank 0 is at step 42/128",
                timestamp="2026-11-28T10:00:02.000000Z", rank=5, host="node3", pid=4242, step=41, idle_s=62.0,
                since_unix_nano=ns_from_iso("2026-11-28T09:59:00.000000Z"))
RESUMED = stall("rank", "resumed", "rank:5", "rank 5 on node3 (pid 4242)",
                "rank 5 on node3 (pid 4242): step 42/128 after 75 s without a step",
                timestamp="2026-11-28T10:00:15.000000Z", rank=5, idle_s=75.0)


def test_the_stall_event_is_in_the_schema():
    assert validate(STALLED) is None and STALLED["level"] == "warning"
    assert validate(RESUMED) is None and RESUMED["level"] == "info"
    assert "unknown condition" in validate({**STALLED, "condition": "mood"})
    assert "without a valid 'subject'" in validate({k: v for k, v in STALLED.items() if k != "subject"})


def _run_events(stage_ns: int) -> list[dict]:
    head = {"schema": 3, "level": "info", "trace_id": "1" * 32}
    return [
        {**head, "type": "run.started", "timestamp": "2026-11-28T09:58:00.000000Z", "name": "r", "span_id": "a" * 16,
         "start_unix_nano": stage_ns, "attributes": {"mlpstorage.kind": "run"}},
        {**head, "type": "stage.started", "timestamp": "2026-11-28T09:58:00.000000Z", "name": "Running benchmark",
         "span_id": "b" * 16, "start_unix_nano": stage_ns, "stage_index": 3, "stage_count": 4,
         "attributes": {"mlpstorage.kind": "stage"}},
        {**head, "type": "task.started", "timestamp": "2026-11-28T09:58:10.000000Z", "name": "epoch 3/5",
         "span_id": "c" * 16, "start_unix_nano": stage_ns + 10 * 10**9, "stage_index": 3, "stage_count": 4,
         "attributes": {"mlpstorage.kind": "task"}},
        {**head, "type": "task.updated", "timestamp": "2026-11-28T09:59:00.000000Z", "name": "epoch 3/5",
         "span_id": "c" * 16, "description": "epoch 3/5", "completed": 41, "total": 128,
         "start_unix_nano": stage_ns + 10 * 10**9, "stage_index": 3, "stage_count": 4},
    ]


def test_plain_lines_and_heartbeat_say_the_stall_and_the_last_progress():
    stage_ns = ns_from_iso("2026-11-28T09:58:00.000000Z")
    now = [ns_from_iso("2026-11-28T10:00:30.000000Z")]
    out = io.StringIO()
    plain = PlainRenderer(out, heartbeat_s=30, clock=lambda: now[0])
    for event in _run_events(stage_ns):
        plain.handle(event)
    plain.handle({**STALLED, "stage_index": 3, "stage_count": 4})
    beat = plain.heartbeat_line()
    plain.handle({**RESUMED, "stage_index": 3, "stage_count": 4})
    after = plain.heartbeat_line()
    plain.close()
    lines = [LINE_PATTERN.match(line) for line in out.getvalue().splitlines()]
    stalled, resumed = [m for m in lines if m and STALL_PATTERN.match(m.group("message"))]
    assert stalled.group("level") == "WARNING" and stalled.group("stage") == "Running benchmark"
    assert stalled.group("message") == f"stalled: {STALLED['message']}"
    assert resumed.group("level") == "INFO" and resumed.group("message") == f"resumed: {RESUMED['message']}"
    assert not any("41/128" in line and "epoch 3/5:" in line for line in out.getvalue().splitlines())  # no bar lines
    message = LINE_PATTERN.match(beat).group("message")
    assert message == ("still running after 150.0s; epoch 3/5 140.0s, at 41/128 90.0s ago; "
                       "stalled: rank 5 on node3 (pid 4242) for 90.0s")
    assert "stalled" not in LINE_PATTERN.match(after).group("message")


def test_the_live_display_highlights_the_stall_under_the_stage():
    stage_ns = ns_from_iso("2026-11-28T09:58:00.000000Z")
    now_ns = ns_from_iso("2026-11-28T10:00:30.000000Z")
    console = Console(file=io.StringIO(), width=120, height=30, force_terminal=True, color_system="standard")
    rich = RichRenderer(console, live=False, clock_ns=lambda: now_ns)
    for event in _run_events(stage_ns):
        rich.handle(event)
    rich.handle({**STALLED, "stage_index": 3, "stage_count": 4})
    console.begin_capture()
    console.print(rich.frame(now_ns, spinner_step=0))
    frame = console.end_capture()
    plain_rows = [re.sub(r"\x1b\[[0-9;]*m", "", row) for row in frame.splitlines()]
    assert plain_rows[0].startswith("Stage 3/4  Running benchmark")
    assert plain_rows[1].startswith(" ⚠ rank 5 on node3 (pid 4242): no step for 62 s, last step 41/128")
    assert plain_rows[1].rstrip().endswith("0:01:30")  # idle since its last step, counted on
    assert "\x1b[1;30;43m" in frame.splitlines()[1]  # black on yellow: highlighted
    assert "epoch 3/5 41/128" in plain_rows[2]
    rich.handle({**RESUMED, "stage_index": 3, "stage_count": 4})
    console.begin_capture()
    console.print(rich.frame(now_ns, spinner_step=0))
    assert "⚠" not in console.end_capture()


def test_a_stall_is_a_span_event_on_the_stage_in_the_trace(mlpstorage_capture):
    emitter = mlpstorage_capture.emitter
    with emitter.run("r"), emitter.stages(["Running benchmark"]):
        emitter.stall("job", "stalled", "job", "the whole job", "the whole job: no output and no I/O for 60 s",
                      idle_s=60.0)
    [event] = mlpstorage_capture.of_type("stall")
    assert event["stage_index"] == 1 and validate(event) is None
    [stage] = [s for s in mlpstorage_capture.spans if s.name == "Running benchmark"]
    [span_event] = [e for e in stage.events if e.name == "mlpstorage.stall"]
    assert span_event.attributes["mlpstorage.stall.condition"] == "job"
    assert span_event.attributes["mlpstorage.stall.idle_s"] == 60.0


def test_an_epoch_counts_the_steps_of_its_slowest_rank(mlpstorage_capture):
    emitter = mlpstorage_capture.emitter
    clock = Clock()
    with emitter.run("r"), emitter.stages(["Running benchmark"]):
        progress = DlioProgress(emitter, epochs=5, ranks=2, clock=clock)
        progress.observe_line("stderr", "[INFO] 2026-11-28T10:00:00.000000 Starting epoch 1: 4 steps expected [x]")
        for step in (1, 2, 3):
            clock.now += 1
            progress.observe("stderr", [f"[INFO] x Rank 0 step {step} processed 2 samples in 0.3 s [x]",
                                        f"[INFO] x Rank 1 step {step - 1 or 1} processed 2 samples in 0.3 s [x]"])
        progress.close()
    counts = [(e["completed"], e["total"]) for e in mlpstorage_capture.of_type("task.updated")]
    assert counts == [(1, 4), (2, 4)]  # rank 1 is one behind rank 0


# ----- evidence of a real process ------------------------------------------------------------
def test_evidence_of_a_real_python_process_has_its_stack_and_proc_state(tmp_path):
    script = "import time\ndef waiting_for_godot():\n    time.sleep(60)\nwaiting_for_godot()\n"
    proc = subprocess.Popen([sys.executable, "-c", script])
    try:
        wait_for(lambda: sleeping_in_nanosleep(proc.pid), "the process to sleep in waiting_for_godot")
        path, why = evidence.record(tmp_path / "stalls", "01-job.txt", proc.pid, "the job's process")
    finally:
        proc.kill()
        proc.wait()
    text = path.read_text()
    assert why is None and "waiting_for_godot" in text
    assert f"-- /proc/{proc.pid}/status" in text and "State:" in text and "-- open files" in text


def test_evidence_without_py_spy_says_why_in_one_line(tmp_path, monkeypatch):
    monkeypatch.setattr(evidence, "py_spy", lambda: None)
    proc = subprocess.Popen(["sleep", "30"])
    try:
        path, why = evidence.record(tmp_path, "01.txt", proc.pid, "sleep")
    finally:
        proc.kill()
        proc.wait()
    assert why == "py-spy is not installed (pip install py-spy)"
    assert "not recorded: py-spy is not installed" in path.read_text()


@pytest.mark.parametrize("text", ["-1", "0.5", "nan", "soon"])
def test_a_bad_stall_timeout_is_one_line_and_exit_2(text, capsys):
    from mlpstorage.cli import main

    assert main(["exec", "--stall-timeout", text, "--", "true"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--stall-timeout" in err[0]


def test_a_recording_cut_short_keeps_its_stalls_on_the_stage_it_finishes(tmp_path):
    from mlpstorage.emitter.events import to_json_line
    from mlpstorage.replay import Recording, replay

    stage_ns = ns_from_iso("2026-11-28T09:58:00.000000Z")
    events = _run_events(stage_ns) + [{**STALLED, "trace_id": "1" * 32, "stage_index": 3, "stage_count": 4}]
    path = tmp_path / "events.jsonl"
    path.write_text("".join(to_json_line(e) for e in events))  # no stage.finished: the launcher died

    class Keep:
        def __init__(self):
            self.events = []

        def handle(self, event):
            self.events.append(event)

        def close(self):
            pass

    kept = Keep()
    with Recording(path) as recording:
        assert replay(recording, [kept]) == []
    [stage] = [e for e in kept.events if e["type"] == "stage.finished"]
    [span_event] = stage["span_events"]
    assert span_event["name"] == "mlpstorage.stall" and span_event["attributes"]["mlpstorage.stall.rank"] == 5
    assert [e["message"] for e in kept.events if e["type"] == "stall"] == [STALLED["message"]]


def test_many_stalls_take_a_few_rows_and_a_count():
    stage_ns = ns_from_iso("2026-11-28T09:58:00.000000Z")
    now_ns = ns_from_iso("2026-11-28T10:00:30.000000Z")
    console = Console(file=io.StringIO(), width=120, height=40, force_terminal=True, color_system="standard")
    rich = RichRenderer(console, live=False, clock_ns=lambda: now_ns)
    for event in _run_events(stage_ns):
        rich.handle(event)
    for rank in range(10):
        rich.handle({**STALLED, "key": f"rank:{rank}", "message": f"rank {rank}: no step for 62 s",
                     "stage_index": 3, "stage_count": 4})
    console.begin_capture()
    console.print(rich.frame(now_ns, spinner_step=0))
    rows = [re.sub(r"\x1b\[[0-9;]*m", "", row) for row in console.end_capture().splitlines()]
    warned = [row for row in rows if row.startswith(" ⚠")]
    assert [row.split(":")[0] for row in warned[:4]] == [" ⚠ rank 0", " ⚠ rank 1", " ⚠ rank 2", " ⚠ rank 3"]
    assert warned[4].startswith(" ⚠ and 6 more stalls") and len(warned) == 5
