"""The console script end to end, in subprocesses, as users and batch jobs run it."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from renderers.plain import LINE_PATTERN

pytestmark = pytest.mark.slow  # each test runs the real CLI in a process of its own

PYTHON = sys.executable


def cli_env(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "MLPSTORAGE_", "TTY_", "FORCE_COLOR", "NO_COLOR"))}
    env.update(extra)
    return env


def mlpstorage(*args, env=None, timeout=60):
    return subprocess.run([PYTHON, "-m", "mlpstorage", *args], capture_output=True, text=True,
                          env=env or cli_env(), timeout=timeout, stdin=subprocess.DEVNULL)


def run_dirs(results: Path):
    return sorted(results.glob("exec/*/run/*"))


def test_version_and_help():
    version = mlpstorage("--version")
    assert version.returncode == 0 and version.stdout.startswith("mlpstorage ")
    help_text = mlpstorage("--help").stdout
    for word in ("exec", "events", "rich", "plain", "jsonl", "otlp", "exit codes"):
        assert word in help_text
    assert "--render" in mlpstorage("exec", "--help").stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["--bogus", "events", "replay", "x"], "unrecognized arguments: --bogus"),
        (["exec", "--bogus", "--", "true"], "unrecognized arguments: --bogus"),
        (["exec", "--render", "fancy", "--", "true"], "--render: unknown renderer 'fancy'"),
        (["exec", "--render", "rich,plain", "--", "true"], "rich and plain both write to stderr"),
        (["exec", "--render", "rich", "--", "true"], "--render rich needs an interactive terminal"),
        (["exec", "--timeseries-interval", "-1", "--", "true"], "must be a number greater than 0"),
        (["exec", "--timeseries-interval", "nan", "--", "true"], "must be a number greater than 0"),
        (["exec", "--timeseries-interval", "0.001", "--", "true"], "must be at least 0.1 seconds"),
        (["exec", "--ssh-port", "99999", "--", "true"], "is not a port"),
        (["exec", "--ssh-config", "/no/such/config", "--", "true"], "--ssh-config /no/such/config: no such file"),
        (["exec", "--", "--"], "no PROGRAM given"),
        (["exec", "--hosts", "-oProxyCommand=x", "--", "true"], "expected at least one argument"),
        (["exec", "--hosts=-oProxyCommand=x", "--", "true"], "invalid host '-oProxyCommand=x'"),
        (["exec", "--hosts", "node1;reboot", "--", "true"], "invalid host 'node1;reboot'"),
        (["exec", "--render", "plain", "--", "no-such-program-xyz"], "no-such-program-xyz: command not found"),
        (["events", "replay", "/no/such/file.jsonl"], "No such file or directory"),
        ([], "the following arguments are required: COMMAND"),
    ],
)
def test_bad_input_is_one_line_and_exit_code_2(args, message, tmp_path):
    if args[:1] == ["exec"]:
        args = ["exec", "--results-dir", str(tmp_path), *args[1:]]
    result = mlpstorage(*args)
    assert result.returncode == 2, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("mlpstorage: error: ") and message in last, result.stderr
    assert "Traceback" not in result.stderr


def test_validation_failure_leaves_nothing_behind(tmp_path):
    result = mlpstorage("exec", "--render", "plain", "--results-dir", str(tmp_path / "r"), "--", "no-such-program-xyz")
    assert result.returncode == 2
    assert not (tmp_path / "r").exists()


def test_plain_run_end_to_end_keeps_output_and_events(tmp_path):
    script = "import sys; print('to stdout'); print('to stderr', file=sys.stderr)"
    result = mlpstorage("exec", "--render", "plain", "--results-dir", str(tmp_path), "--skip-timeseries", "--", PYTHON, "-c", script)
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    assert "to stdout" in lines and "to stderr" in lines  # passed through unchanged
    structured = [l for l in lines if LINE_PATTERN.match(l)]
    assert len(structured) == len(lines) - 2
    assert "\x1b" not in result.stderr  # not a terminal: no escape codes
    [run_dir] = run_dirs(tmp_path)
    assert (run_dir / "stdout.log").read_text() == "to stdout\n"
    assert (run_dir / "stderr.log").read_text() == "to stderr\n"
    events = [json.loads(l) for l in (run_dir / "events.jsonl").read_text().splitlines()]
    assert events[0]["type"] == "run.started" and events[-1]["type"] == "run.finished"
    assert [e["name"] for e in events if e["type"] == "stage.finished"] == [
        "Validating environment", "Collecting cluster info", "Running benchmark", "Processing results"]
    metadata = json.loads(next(run_dir.glob("exec_*_metadata.json")).read_text())
    assert metadata["executed_command"] == [PYTHON, "-c", script]
    assert metadata["returncode"] == 0


def test_child_gets_the_trace_context(tmp_path):
    script = "import os; print(os.environ.get('TRACEPARENT'))"
    result = mlpstorage("exec", "--render", "jsonl", "--results-dir", str(tmp_path), "--", PYTHON, "-c", script)
    events = [json.loads(l) for l in result.stdout.splitlines()]
    traceparent = next(e["lines"][0] for e in events if e["type"] == "output")
    stage = next(e for e in events if e["type"] == "stage.started" and e["name"] == "Running benchmark")
    assert traceparent.startswith(f"00-{stage['trace_id']}-{stage['span_id']}-")


def test_failing_program_exits_with_its_own_code_and_one_error_line(tmp_path):
    result = mlpstorage("exec", "--render", "plain", "--results-dir", str(tmp_path), "--", PYTHON, "-c", "raise SystemExit(3)")
    assert result.returncode == 3  # as time(1), timeout(1) and nice(1) do
    assert result.stderr.splitlines()[-1] == f"mlpstorage: error: {PYTHON} exited with code 3"
    assert "failed after" in result.stderr
    [run_dir] = run_dirs(tmp_path)
    last = json.loads((run_dir / "events.jsonl").read_text().splitlines()[-1])
    assert last["type"] == "run.finished" and last["status"] == "error"


def test_jsonl_on_stdout_and_events_file_tee(tmp_path):
    tee = tmp_path / "tee" / "events.jsonl"
    result = mlpstorage("exec", "--render", "jsonl", "--events-file", str(tee), "--results-dir", str(tmp_path), "--", "true")
    assert result.returncode == 0
    stdout_events = [json.loads(l) for l in result.stdout.splitlines()]
    assert stdout_events == [json.loads(l) for l in tee.read_text().splitlines()]
    assert all(e["schema"] == 4 and "type" in e for e in stdout_events)
    assert result.stderr == ""


def test_render_env_default_and_none(tmp_path):
    result = mlpstorage("exec", "--results-dir", str(tmp_path), "--", "true", env=cli_env(MLPSTORAGE_RENDER="none"))
    assert result.returncode == 0 and result.stderr == "" and result.stdout == ""
    assert len(run_dirs(tmp_path)) == 1


def test_force_color_colours_plain_lines_but_draws_no_frames(tmp_path):
    result = mlpstorage("exec", "--results-dir", str(tmp_path), "--", "true", env=cli_env(FORCE_COLOR="1"))
    assert result.returncode == 0
    assert "\x1b[32;1mRESULT\x1b[0m" in result.stderr  # colour
    assert "\x1b[?25l" not in result.stderr and "\x1b[2K" not in result.stderr  # no live frames / cursor games
    assert result.stderr.count("[3/4 Running benchmark] started") == 1


def test_heartbeat_names_the_running_stage(tmp_path):
    """--heartbeat reaches the plain renderer, whose thread writes "still running" lines that
    name the open stage: the program runs until the test has read two such lines."""
    release = tmp_path / "release"
    program = (f"import os, time\n"
               f"for _ in range(6000):  # 60 s at most, should the lines never come\n"
               f"    if os.path.exists({str(release)!r}):\n"
               f"        break\n"
               f"    time.sleep(0.01)\n")
    proc = subprocess.Popen([PYTHON, "-m", "mlpstorage", "exec", "--render", "plain", "--heartbeat", "0.1",
                             "--results-dir", str(tmp_path / "results"), "--", PYTHON, "-c", program],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env=cli_env())
    lines, beats, stage = [], [], None  # beats: (the stage a beat names, the stage open then)
    for line in proc.stderr:
        lines.append(line.rstrip("\n"))
        match = LINE_PATTERN.match(lines[-1])
        if match and match.group("message") == "started" and match.group("stage"):
            stage = match.group("stage")
        elif match and match.group("message").startswith("still running after"):
            beats.append((match.group("stage"), stage))
            if [named for named, _ in beats].count("Running benchmark") == 2:
                release.touch()
    assert proc.wait(timeout=60) == 0, "\n".join(lines)
    assert [named for named, _ in beats].count("Running benchmark") >= 2, "\n".join(lines)
    assert all(named == open_stage for named, open_stage in beats), beats


def _wait_until(condition, failure: str, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.02)
    raise AssertionError(failure)


def _wait_for(path: Path, text: str):
    _wait_until(lambda: path.exists() and text in path.read_text(), f"{text!r} never appeared in {path}")


def _wait_for_process(command_line: str):
    _wait_until(lambda: subprocess.run(["pgrep", "-f", command_line], capture_output=True).returncode == 0,
                f"no process {command_line!r} appeared")


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signals_stop_the_child_end_spans_and_exit(sig, code, tmp_path):
    marker = f"{31 + code / 1000:.3f}"  # a unique sleep argument to find the child by
    log = tmp_path / "stderr.txt"
    with open(log, "w") as err:
        proc = subprocess.Popen([PYTHON, "-m", "mlpstorage", "exec", "--render", "plain", "--results-dir", str(tmp_path),
                                 "--skip-timeseries", "--", "sleep", marker], stderr=err, env=cli_env())
        _wait_for(log, "[3/4 Running benchmark] started")
        _wait_for_process(f"sleep {marker}")
        proc.send_signal(sig)
        assert proc.wait(timeout=30) == code
    assert subprocess.run(["pgrep", "-f", f"sleep {marker}"], capture_output=True).returncode == 1  # no survivor
    [run_dir] = run_dirs(tmp_path)
    events = [json.loads(l) for l in (run_dir / "events.jsonl").read_text().splitlines()]
    assert events[-1]["type"] == "run.finished" and events[-1]["status"] == "error"
    stages = {e["name"]: e for e in events if e["type"] == "stage.finished"}
    assert stages["Running benchmark"]["status"] == "error"
    assert list(stages)[-1] == "Processing results"  # reached, with the end-of-run collection skipped
    started = {e["span_id"] for e in events if e["type"].endswith(".started")}
    finished = {e["span_id"] for e in events if e["type"].endswith(".finished")}
    assert started <= finished
    # the one recorded only as it ended: the job's process (as MPI ranks are)
    assert all(e["attributes"].get("process.pid") for e in events
               if e["type"] == "task.finished" and e["span_id"] not in started)


def test_replay_renders_a_recording_and_warns_on_bad_lines(tmp_path):
    golden = Path(__file__).parent / "golden"
    lines = (golden / "ok.events.jsonl").read_text().splitlines()
    damaged = tmp_path / "damaged.jsonl"
    damaged.write_text("\n".join(lines[:5] + ["{not json"] + lines[5:] + [lines[-1][:40]]) + "\n")
    result = mlpstorage("events", "replay", str(damaged), "--render", "plain")
    assert result.returncode == 0
    expected = (golden / "ok.plain.txt").read_text()
    assert result.stderr.startswith(expected.rsplit("\n", 2)[0])  # all but the truncated last event
    warnings = [l for l in result.stderr.splitlines() if l.startswith("mlpstorage: warning:")]
    assert len(warnings) == 2
    assert f"{damaged}:6:" in warnings[0] and f"{damaged}:{len(lines) + 2}:" in warnings[1]


def test_replay_to_jsonl_is_the_identity(tmp_path):
    recording = Path(__file__).parent / "golden" / "failed.events.jsonl"
    result = mlpstorage("events", "replay", str(recording), "--render", "jsonl")
    assert [json.loads(l) for l in result.stdout.splitlines()] == [json.loads(l) for l in recording.read_text().splitlines()]


def test_a_program_killed_by_a_signal_is_named_so(tmp_path):
    result = mlpstorage("exec", "--render", "plain", "--results-dir", str(tmp_path), "--", "sh", "-c", "kill -9 $$")
    assert result.returncode == 128 + 9
    assert result.stderr.splitlines()[-1] == "mlpstorage: error: sh was killed by SIGKILL"


def test_output_of_a_left_behind_grandchild_is_kept(tmp_path):
    # The grandchild writes only once the launcher has reaped the child ($$ is gone: a zombie
    # still counts for kill -0), or after 10 s should that never happen.
    script = "echo first; (i=0; while kill -0 $$ 2>/dev/null && [ $i -lt 1000 ]; do i=$((i+1)); sleep 0.01; done; echo late) & exit 0"
    result = mlpstorage("exec", "--render", "plain", "--results-dir", str(tmp_path), "--", "sh", "-c", script)
    assert result.returncode == 0
    [run_dir] = run_dirs(tmp_path)
    assert (run_dir / "stdout.log").read_text() == "first\nlate\n"


def test_malformed_otlp_headers_are_refused_without_showing_them(tmp_path):
    env = cli_env(OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:9", OTEL_EXPORTER_OTLP_HEADERS="Bearer%20s3cr3t")
    result = mlpstorage("exec", "--render", "plain,otlp", "--results-dir", str(tmp_path), "--", "true", env=env)
    assert result.returncode == 2
    assert "OTEL_EXPORTER_OTLP_HEADERS is not a comma-separated list of key=value pairs" in result.stderr
    assert "s3cr3t" not in result.stderr + result.stdout


def test_replay_of_an_empty_file_says_so(tmp_path):
    empty = tmp_path / "events.jsonl"
    empty.write_text("")
    result = mlpstorage("events", "replay", str(empty), "--render", "plain")
    assert result.returncode == 2 and result.stderr.strip() == (
        f"mlpstorage: error: {empty}: not an mlpstorage recording (no events: the file is empty or blank)")


@pytest.mark.slow
def test_output_is_on_disk_while_the_child_still_runs(tmp_path):
    """Nothing waits in a buffer: a line is in stdout.log and events.jsonl while the child is
    still running (so a crash of the launcher would lose none of it), and lines written in one
    go arrive as one batched output event."""
    code = "import sys, time; sys.stdout.write('line 1\\nline 2\\n'); sys.stdout.flush(); time.sleep(30)"
    with open(tmp_path / "stderr.txt", "w") as err:
        proc = subprocess.Popen([PYTHON, "-m", "mlpstorage", "exec", "--render", "plain", "--results-dir", str(tmp_path),
                                 "--skip-timeseries", "--", PYTHON, "-c", code], stderr=err, env=cli_env())
        try:
            _wait_for(tmp_path / "stderr.txt", "line 2")
            [run_dir] = run_dirs(tmp_path)
            assert (run_dir / "stdout.log").read_bytes() == b"line 1\nline 2\n"
            events = [json.loads(l) for l in (run_dir / "events.jsonl").read_text().splitlines()]
            outputs = [e for e in events if e["type"] == "output"]
            assert [line for e in outputs for line in e["lines"]] == ["line 1", "line 2"]
            assert len(outputs) == 1 and outputs[0]["schema"] == 4
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)


def test_a_validation_error_says_its_text_once(tmp_path):
    result = mlpstorage("training", "run", "--model", "unet3d", "--data-dir", str(tmp_path / "none"),
                        "--results-dir", str(tmp_path / "results"), "--render", "plain")
    assert result.returncode == 2
    assert result.stderr.count("no training data in") == 1, result.stderr
    assert result.stderr.splitlines()[-1].startswith("mlpstorage: error: no training data in")
    assert "[1/4 Validating environment] failed after" in result.stderr  # the lifecycle lines stay


@pytest.mark.parametrize("where", ["before", "after"])
def test_global_options_go_before_or_after_the_command(tmp_path, where):
    options = ["--render", "jsonl", "--results-dir", str(tmp_path), "--verbose"]
    command = ["exec", "--skip-timeseries"]
    args = [*options, *command] if where == "before" else [*command, *options]
    result = mlpstorage(*args, "--", "true")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[0])["type"] == "run.started"
    assert len(run_dirs(tmp_path)) == 1


def test_an_option_after_the_command_wins_over_one_before(tmp_path):
    result = mlpstorage("--render", "plain", "exec", "--render", "jsonl", "--results-dir", str(tmp_path),
                        "--skip-timeseries", "--", "true")
    assert result.returncode == 0 and result.stdout.startswith("{")


def test_results_dir_defaults_to_mlperf_results_dir(tmp_path):
    result = mlpstorage("exec", "--render", "none", "--skip-timeseries", "--", "true",
                        env=cli_env(MLPERF_RESULTS_DIR=str(tmp_path / "from-env")))
    assert result.returncode == 0, result.stderr
    assert len(run_dirs(tmp_path / "from-env")) == 1


def test_config_file_gives_defaults_and_the_command_line_wins(tmp_path):
    config = tmp_path / "mlps.yaml"
    config.write_text(f"render: jsonl\nresults-dir: {tmp_path / 'from-config'}\nskip_timeseries: true\n")
    result = mlpstorage("--config-file", str(config), "exec", "--", "true")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("{") and len(run_dirs(tmp_path / "from-config")) == 1
    result = mlpstorage("--config-file", str(config), "exec", "--render", "none", "--", "true")
    assert result.returncode == 0 and result.stdout == ""


@pytest.mark.parametrize("content, message", [
    ("bogus: 1\n", "--bogus is not an option of 'mlpstorage exec'"),
    ("- a list\n", "expected a mapping"),
    ("render: [unclosed\n", "not YAML"),
])
def test_a_bad_config_file_is_one_line(tmp_path, content, message):
    config = tmp_path / "mlps.yaml"
    config.write_text(content)
    result = mlpstorage("exec", "--config-file", str(config), "--", "true")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and message in result.stderr, result.stderr


def test_stream_log_level_hides_lesser_messages_but_never_stage_lines_or_results(tmp_path):
    result = mlpstorage("exec", "--render", "plain", "--stream-log-level", "warning", "--results-dir", str(tmp_path),
                        "--skip-timeseries", "--", "true")
    assert result.returncode == 0
    assert "Environment validation passed" not in result.stderr  # info
    assert "[1/4 Validating environment] done in" in result.stderr and "RESULT" in result.stderr


def test_top_level_help_lists_auto_and_the_global_options():
    result = mlpstorage("--help")
    assert "  auto " in result.stdout and "--config-file" in result.stdout and "--stream-log-level" in result.stdout


HEAVY = ("mlpstorage.cli.commands", "mlpstorage.benchmarks", "mlpstorage.emitter.core", "mlpstorage.models",
         "opentelemetry", "structlog", "rich", "yaml", "psutil", "dataclasses", "shutil")


# a command's help reads the models for its choices (plain data); nothing else of HEAVY
@pytest.mark.parametrize("argv, built", [(["--help"], []),
                                         (["training", "run", "--help"], ["dataclasses", "mlpstorage.models"])])
def test_help_imports_no_handler_benchmark_or_telemetry(argv, built):
    probe = ("import sys\nfrom mlpstorage.cli import main\ntry:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
             f"print(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r} or m.startswith({HEAVY!r})))")
    result = subprocess.run([PYTHON, "-c", probe, *argv], capture_output=True, text=True, env=cli_env(), timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == repr(built)


def test_a_plain_run_imports_no_rich(tmp_path):
    # structlog would import Rich for a console renderer the launcher never uses
    probe = ("import sys\nfrom mlpstorage.cli import main\nrc = main(sys.argv[1:])\n"
             "print(rc, sorted(m for m in sys.modules if m.split('.')[0] == 'rich'))")
    result = subprocess.run([PYTHON, "-c", probe, "exec", "--render", "plain", "--results-dir", str(tmp_path),
                             "--skip-timeseries", "--", "true"], capture_output=True, text=True, env=cli_env(), timeout=60)
    assert result.stdout.splitlines()[-1] == "0 []", result.stderr
    [run_dir] = run_dirs(tmp_path)
    assert (run_dir / "report.html").exists()


def test_a_command_help_has_every_option_of_the_command():
    text = mlpstorage("training", "run", "--help").stdout
    for option in ("--model", "--data-dir", "--num-accelerators", "--hosts", "--ssh-user", "--stall-timeout",
                   "--params", "--what-if", "--closed", "--render", "--config-file", "--skip-page"):
        assert option in text, option
    assert text.startswith("usage: mlpstorage training run [-h] [--hosts HOST[:SLOTS] [HOST[:SLOTS] ...]]")


def test_skip_page_leaves_no_page_and_says_none(tmp_path):
    result = mlpstorage("exec", "--render", "plain", "--results-dir", str(tmp_path), "--skip-timeseries", "--skip-page",
                        "--", "true")
    assert result.returncode == 0, result.stderr
    [run_dir] = run_dirs(tmp_path)
    assert not (run_dir / "report.html").exists() and "Report:" not in result.stderr
    assert list(run_dir.glob("exec_*_metadata.json")) and (run_dir / "events.jsonl").exists()
    page = mlpstorage("reports", "html", str(run_dir))  # written later, on demand
    assert page.returncode == 0 and (run_dir / "report.html").exists()


def test_events_file_creates_nothing_before_validation_passes(tmp_path):
    events = tmp_path / "deep" / "er" / "events.jsonl"
    result = mlpstorage("training", "run", "--model", "unet3d", "--data-dir", str(tmp_path / "none"),
                        "--results-dir", str(tmp_path / "results"), "--events-file", str(events), "--render", "none")
    assert result.returncode == 2
    assert not (tmp_path / "deep").exists() and not (tmp_path / "results").exists()
    result = mlpstorage("exec", "--render", "none", "--skip-timeseries", "--results-dir", str(tmp_path / "results"),
                        "--events-file", str(events), "--", "true")
    assert result.returncode == 0
    assert json.loads(events.read_text().splitlines()[0])["type"] == "run.started"


def test_events_file_under_a_regular_file_says_so(tmp_path):
    (tmp_path / "plain-file").write_text("x")
    result = mlpstorage("exec", "--events-file", str(tmp_path / "plain-file" / "events.jsonl"), "--", "true")
    assert result.returncode == 2
    assert result.stderr == f"mlpstorage: error: --events-file folder {tmp_path / 'plain-file'} cannot be created: " \
                            f"{tmp_path / 'plain-file'} is not a directory\n"


def test_datasize_leaves_a_small_record_of_its_own(tmp_path):
    result = mlpstorage("training", "datasize", "--model", "unet3d", "-ma", "8", "-cm", "64", "-nc", "2",
                        "--results-dir", str(tmp_path), "--render", "plain")
    assert result.returncode == 0, result.stderr
    [run_dir] = list(tmp_path.glob("training/unet3d/datasize/*"))
    metadata = json.loads(next(run_dir.glob("*_metadata.json")).read_text())
    assert metadata["results"]["files"] == 28000 and metadata["command"] == "datasize"
    events = [json.loads(l) for l in (run_dir / "events.jsonl").read_text().splitlines()]
    assert events[0]["type"] == "run.started" and events[-1]["type"] == "run.finished"
    assert any(e.get("message") == "Files needed: 28000" for e in events)
