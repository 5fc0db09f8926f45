"""`mlpstorage events replay` of untrusted recordings, end to end in subprocesses: what is not
a recording, escape sequences in a recording, and a recording cut short by SIGKILL (exported
to a real OTLP receiver)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from mlpstorage.emitter.events import ns_from_iso, validate
from mlpstorage.replay import MAX_WARNINGS, UNFINISHED, harmless

from support.otlp_sink import base_env, only, start_sink

GOLDEN = Path(__file__).parent / "golden"
STATUS_OK, STATUS_ERROR = 1, 2  # opentelemetry.proto.trace.v1.Status codes
EVIL = "\x1b]0;pwned\x07\x1b[2J"  # sets the window title, clears the screen
EVIL_SHOWN = "\\x1b]0;pwned\\x07\\x1b[2J"
# What may reach the terminal from a replay: text, newlines, tabs and colour (SGR) sequences.
SGR = re.compile(r"\x1b\[[0-9;:]*m")
UNSAFE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def mlpstorage(*args, env=None, timeout=60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mlpstorage", *args], capture_output=True, text=True,
                          env=env or base_env(), timeout=timeout, stdin=subprocess.DEVNULL)


def replay(path: Path, render: str, env=None) -> subprocess.CompletedProcess:
    return mlpstorage("events", "replay", str(path), "--render", render, env=env)


def replay_to_otlp(path: Path) -> list:
    """The spans a real OTLP receiver got from a replay (which must say nothing)."""
    server, sink = start_sink("http")
    try:
        result = replay(path, "otlp", env=sink.env())
    finally:
        server.stop()
    assert result.returncode == 0 and result.stderr == "", result.stderr
    return sink.spans()


def golden_lines(name: str = "ok") -> list[str]:
    return (GOLDEN / f"{name}.events.jsonl").read_text().splitlines()


def unsafe_characters(text: str) -> list[str]:
    return UNSAFE.findall(SGR.sub("", text))


# ----- what is not a recording ---------------------------------------------------------------
NOT_RECORDINGS = {
    "binary": bytes(range(256)) * 40 + b"\n\x00\xff\xfe garbage\n" * 37,
    "empty": b"",
    "blank lines": b"\n  \n\t\n",
    "other JSON lines": b'{"a": 1}\n{"b": 2}\n',
    "a plain log": (GOLDEN / "ok.plain.txt").read_bytes(),
    "first line truncated": golden_lines()[0][:50].encode() + b"\n" + "\n".join(golden_lines()[1:]).encode(),
}


@pytest.mark.parametrize("render", ["plain", "jsonl"])
@pytest.mark.parametrize("name", list(NOT_RECORDINGS))
def test_a_file_that_is_no_recording_is_one_error_and_exit_code_2(tmp_path, name, render):
    path = tmp_path / "events.jsonl"
    path.write_bytes(NOT_RECORDINGS[name])
    result = replay(path, render)
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith(f"mlpstorage: error: {path}: not an mlpstorage recording (") and line.endswith(")"), line
    assert not unsafe_characters(line)


def test_a_truncated_last_line_is_one_warning(tmp_path):
    lines = golden_lines()
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(lines[:-1] + [lines[-1][:60]]))  # a crash mid-write, no newline
    result = replay(path, "plain")
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("mlpstorage:")]
    assert warnings == [f"mlpstorage: warning: {path}:{len(lines)}: skipped a line that is not JSON: "
                        "Unterminated string starting at"]


def test_garbage_after_a_valid_first_line_is_skipped_with_bounded_warnings(tmp_path):
    """The rule: a file is a recording when its first non-empty line is a valid event. Bad
    lines after it are skipped: MAX_WARNINGS named, the rest counted on one line."""
    lines = golden_lines()
    garbage = [f"garbage {i} \x1b[2J" for i in range(MAX_WARNINGS + 5)]
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(lines[:3] + garbage + lines[3:]) + "\n")
    result = replay(path, "plain")
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("mlpstorage:")]
    assert len(warnings) == MAX_WARNINGS + 1
    assert warnings[0].startswith(f"mlpstorage: warning: {path}:4: skipped a line that is not JSON")
    assert warnings[-1] == f"mlpstorage: warning: {path}: skipped 5 more lines that are not events"
    expected = (GOLDEN / "ok.plain.txt").read_text()
    assert result.stderr.startswith(expected)  # every event rendered as if the garbage were not there


def test_a_line_that_breaks_the_schema_deep_inside_is_skipped(tmp_path):
    lines = golden_lines()
    bad = [json.loads(line) for line in lines[:3]]
    bad[1]["parent_span_id"] = "not hex"
    bad[2]["nested"] = json.loads("[" * 100 + "]" * 100)
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join([lines[0], json.dumps(bad[1]), json.dumps(bad[2]), *lines[3:]]) + "\n")
    result = replay(path, "jsonl")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    warnings = result.stderr.splitlines()
    assert len(warnings) == 2
    assert "malformed 'parent_span_id'" in warnings[0] and "nested deeper than" in warnings[1]


# ----- escape sequences in a recording -------------------------------------------------------
def evil_recording(path: Path) -> Path:
    """The golden run with escape sequences in an output line, log messages, a stage name and
    an error text, as a crafted recording would have them."""
    events = []
    for line in golden_lines("failed"):
        event = json.loads(line)
        if event["type"] == "output":
            event["line"] = EVIL + "epoch output \x1b[31mred"
        elif event["type"] == "log":
            event["message"] += EVIL
        elif event["type"].startswith("stage.") and event["name"] == "Running benchmark":
            event["name"] += EVIL
        if event.get("error"):
            event["error"] += "\r\x9b2J\u202e"
        events.append(event)
    path.write_text("".join(json.dumps(event) + "\n" for event in events))
    return path


@pytest.mark.parametrize("render", ["plain", "rich"])
def test_escape_sequences_in_a_recording_never_reach_the_terminal(tmp_path, render):
    recording = evil_recording(tmp_path / "events.jsonl")
    result = replay(recording, render, env=base_env(FORCE_COLOR="1"))
    assert result.returncode == 0, result.stderr
    assert unsafe_characters(result.stderr) == []
    assert EVIL_SHOWN in result.stderr  # shown, harmlessly
    assert "\\r\\x9b2J\\u202e" in result.stderr  # the error text, with its carriage return
    if render == "plain":
        lines = result.stderr.splitlines()
        # colour stays, and ends with its line
        assert f"{EVIL_SHOWN}epoch output \x1b[31mred\x1b[0m" in lines
        assert "\x1b[31;1mERROR\x1b[0m" in result.stderr  # the renderer's own colours are untouched
        assert any(f"[3/4 Running benchmark{EVIL_SHOWN}] started" in line for line in lines)


@pytest.mark.slow
def test_replay_to_data_renderers_keeps_a_crafted_recording_as_it_is(tmp_path):
    recording = evil_recording(tmp_path / "events.jsonl")
    result = replay(recording, "jsonl")
    assert result.returncode == 0 and result.stderr == ""
    assert [json.loads(line) for line in result.stdout.splitlines()] == [
        json.loads(line) for line in recording.read_text().splitlines()]

    running = only(replay_to_otlp(recording), "Running benchmark" + EVIL)
    assert running.status_message.endswith("\r\x9b2J\u202e")


def test_live_output_passes_through_byte_for_byte_and_replays_escaped(tmp_path):
    code = f"import sys; sys.stdout.write({EVIL + 'hi'!r} + '\\n')"
    result = mlpstorage("exec", "--render", "plain", "--results-dir", str(tmp_path), "--skip-timeseries", "--",
                        sys.executable, "-c", code)
    assert result.returncode == 0, result.stderr
    assert EVIL + "hi" in result.stderr.splitlines()  # the user's own program: untouched
    [recording] = tmp_path.glob("exec/*/run/*/events.jsonl")
    replayed = replay(recording, "plain")
    assert replayed.returncode == 0, replayed.stderr
    assert EVIL_SHOWN + "hi" in replayed.stderr.splitlines()
    assert unsafe_characters(replayed.stderr) == []


@pytest.mark.parametrize("text, shown", [
    ("plain text\twith a tab", "plain text\twith a tab"),
    (EVIL, EVIL_SHOWN),
    ("\x1b[1;31mbold red\x1b[0m", "\x1b[1;31mbold red\x1b[0m"),
    ("\x1b[32mgreen", "\x1b[32mgreen\x1b[0m"),  # a colour never leaks past its text
    ("\x1b[?25lhidden cursor", "\\x1b[?25lhidden cursor"),
    ("line\nforged line\r", "line\\nforged line\\r"),
    ("\u202edesrever", "\\u202edesrever"),
    ("C1 \x9b2J and DEL \x7f", "C1 \\x9b2J and DEL \\x7f"),
])
def test_harmless(text, shown):
    assert harmless(text) == shown


# ----- a recording cut short -----------------------------------------------------------------
def test_a_recording_cut_short_ends_its_open_spans_innermost_first(tmp_path):
    """Cut after a spinner's update: the replayed stream (jsonl) is the recording, then a
    finished event for the spinner, its stage and the run, in that order."""
    lines = golden_lines()
    cut = next(i for i, line in enumerate(lines) if '"spinner.updated"' in line) + 1
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(lines[:cut]) + "\n")
    result = replay(path, "jsonl")
    assert result.returncode == 0 and result.stderr == "", result.stderr
    replayed = [json.loads(line) for line in result.stdout.splitlines()]
    recorded = [json.loads(line) for line in lines[:cut]]
    assert replayed[:cut] == recorded
    ends = replayed[cut:]
    assert [e["type"] for e in ends] == ["spinner.finished", "stage.finished", "run.finished"]
    last = max(ns_from_iso(e["timestamp"]) for e in recorded)
    for end in ends:
        assert validate(end) is None
        assert (end["status"], end["error"], end["level"]) == ("error", UNFINISHED, "error")
        started = next(e for e in recorded if e["span_id"] == end["span_id"] and e["type"].endswith(".started"))
        assert end["parent_span_id"] == started["parent_span_id"] and end["start_unix_nano"] == started["start_unix_nano"]
        assert 0 <= end["end_unix_nano"] - last < 1000  # the recording's last moment (kept to the microsecond)
    spinner = ends[0]
    assert (spinner["stage_index"], spinner["stage_count"]) == (2, 4)
    assert spinner["description"] == "Collecting via SSH..."  # as last updated


@pytest.fixture
def killed_run(tmp_path) -> Path:
    """The events.jsonl of a real run whose launcher was killed with SIGKILL while "Running
    benchmark" was open and had recorded a time-series sample and the program's output."""
    results = tmp_path / "results"
    proc = subprocess.Popen([sys.executable, "-m", "mlpstorage", "exec", "--render", "none", "--results-dir", str(results),
                             "--timeseries-interval", "0.1", "--", "sh", "-c", "echo hi; sleep 30"],
                            env=base_env(), stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            recorded = [json.loads(line) for path in results.glob("exec/*/run/*/events.jsonl")
                        for line in path.read_text().splitlines() if line.endswith("}")]
            types = {(e["type"], e.get("name")) for e in recorded}
            if {("stage.started", "Running benchmark"), ("sample", None), ("output", None)} <= types:
                break
            time.sleep(0.05)
        else:
            raise AssertionError("the run never reached 'Running benchmark' with a sample and output")
    finally:
        left_behind = psutil.Process(proc.pid).children(recursive=True)  # sh and sleep: a session of their own
        proc.kill()
        proc.wait(timeout=30)
        for child in left_behind:
            try:
                child.kill()
            except psutil.NoSuchProcess:
                pass
    [recording] = results.glob("exec/*/run/*/events.jsonl")
    return recording


@pytest.mark.slow
def test_a_killed_run_replays_into_otlp_with_its_root(killed_run):
    recorded = [json.loads(line) for line in killed_run.read_text().splitlines() if line.endswith("}")]
    assert not any(e["type"] == "run.finished" for e in recorded)
    spans = replay_to_otlp(killed_run)

    run = only(spans, "mlpstorage exec run")
    assert run.parent_span_id == ""
    assert (run.status_code, run.status_message) == (STATUS_ERROR, UNFINISHED)
    assert {s.trace_id for s in spans} == {run.trace_id} == {e["trace_id"] for e in recorded if "trace_id" in e}
    stages = [only(spans, name) for name in ("Validating environment", "Collecting cluster info", "Running benchmark")]
    assert all(stage.parent_span_id == run.span_id for stage in stages)
    assert [s.status_code for s in stages] == [STATUS_OK, STATUS_OK, STATUS_ERROR]
    running = stages[-1]
    assert running.status_message == UNFINISHED
    # the open stage keeps the samples recorded while it ran, as a live export would
    samples = [e for e in recorded if e["type"] == "sample"]
    assert running.events == ["timeseries.sample"] * len(samples)
    # both end where the recording ends
    last = max(ns_from_iso(e["timestamp"]) for e in recorded)
    assert run.end == running.end and 0 <= run.end - last < 1000
    assert {s.span_id for s in spans} == {e["span_id"] for e in recorded if e["type"].endswith(".started")}

    plain = replay(killed_run, "plain")
    assert plain.returncode == 0, plain.stderr
    assert "hi" in plain.stderr.splitlines()
    assert plain.stderr.splitlines()[-1].endswith(f"run mlpstorage exec run: failed after "
                                                  f"{(run.end - run.start) / 1e9:.1f}s")
    assert plain.stderr.count(UNFINISHED) == 1  # once: on the innermost span it ended
