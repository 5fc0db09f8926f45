"""OpenTelemetry's semantic conventions where they name what we record: the resource
(service.*, host.*, deployment.environment.name from OTEL_RESOURCE_ATTRIBUTES) and the job's
span (process.*, error.type); and recordings made before the job had a span still read,
replay and render."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from opentelemetry.semconv._incubating.attributes.deployment_attributes import DEPLOYMENT_ENVIRONMENT_NAME
from opentelemetry.semconv._incubating.attributes.host_attributes import HOST_ARCH, HOST_NAME
from opentelemetry.semconv._incubating.attributes.process_attributes import (
    PROCESS_COMMAND_ARGS,
    PROCESS_EXECUTABLE_NAME,
    PROCESS_EXECUTABLE_PATH,
    PROCESS_EXIT_CODE,
    PROCESS_PID,
)
from opentelemetry.semconv.attributes.error_attributes import ERROR_TYPE
from opentelemetry.semconv.attributes.service_attributes import SERVICE_NAME, SERVICE_VERSION

from mlpstorage import __version__
from mlpstorage.benchmarks.base import RunOptions
from mlpstorage.benchmarks.exec import ExecBenchmark
from mlpstorage.emitter.core import default_resource
from mlpstorage.engines.process import exit_attributes
from mlpstorage.errors import CommandFailed
from mlpstorage.reports.page import build_page
from mlpstorage.reports.record import read_run
from mlpstorage.reports.recording import read_recording
from support.otlp_sink import base_env

GOLDEN = Path(__file__).parent / "golden"


# ----- the resource ----------------------------------------------------------------------------
def test_the_resource_names_the_service_and_the_host(monkeypatch):
    monkeypatch.delenv("OTEL_RESOURCE_ATTRIBUTES", raising=False)
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    attributes = default_resource({"slurm.job.id": "42"}).attributes
    assert attributes[SERVICE_NAME] == "mlpstorage" and attributes[SERVICE_VERSION] == __version__
    assert attributes[HOST_NAME] == os.uname().nodename
    assert attributes["slurm.job.id"] == "42"
    assert DEPLOYMENT_ENVIRONMENT_NAME not in attributes  # only when the user sets it


@pytest.mark.parametrize("machine, arch", [("x86_64", "amd64"), ("aarch64", "arm64"), ("ppc64le", "ppc64"),
                                           ("riscv64", "riscv64")])
def test_host_arch_takes_the_conventions_values_and_else_the_kernels(monkeypatch, machine, arch):
    monkeypatch.setattr("platform.machine", lambda: machine)
    assert default_resource().attributes[HOST_ARCH] == arch


def test_the_deployment_environment_and_any_override_come_from_otel_resource_attributes(monkeypatch):
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment.name=staging,host.name=login1")
    attributes = default_resource().attributes
    assert attributes[DEPLOYMENT_ENVIRONMENT_NAME] == "staging"
    assert attributes[HOST_NAME] == "login1"  # the user's word wins


# ----- the job's exit --------------------------------------------------------------------------
def test_exit_attributes_follow_the_cli_conventions():
    assert exit_attributes(0) == {PROCESS_EXIT_CODE: 0}
    assert exit_attributes(3) == {PROCESS_EXIT_CODE: 3, ERROR_TYPE: "3"}
    assert exit_attributes(-9) == {PROCESS_EXIT_CODE: 137, ERROR_TYPE: "137"}  # as a shell says SIGKILL
    assert exit_attributes(-15, KeyboardInterrupt()) == {PROCESS_EXIT_CODE: 143, ERROR_TYPE: "KeyboardInterrupt"}
    assert exit_attributes(None, OSError()) == {ERROR_TYPE: "OSError"}


# ----- the job's span --------------------------------------------------------------------------
@pytest.mark.slow
def test_a_real_jobs_span_has_its_pid_executable_command_and_exit_code(mlpstorage_capture, tmp_path):
    argv = ["sh", "-c", 'echo "$$" > "$1"; sleep 0.3; exit 3', "job", str(tmp_path / "pid"), "aws.secret_key=hunter2"]
    bench = ExecBenchmark(RunOptions(results_dir=tmp_path, skip_timeseries=True, cluster_collection="none"), argv)
    with pytest.raises(CommandFailed):
        bench.run()
    [job] = [e for e in mlpstorage_capture.of_type("task.finished") if PROCESS_PID in e["attributes"]]
    attributes = job["attributes"]
    assert attributes[PROCESS_PID] == int((tmp_path / "pid").read_text())
    assert attributes[PROCESS_EXECUTABLE_PATH] == os.path.realpath(shutil.which("sh"))  # /proc/PID/exe: dash
    assert attributes[PROCESS_EXECUTABLE_NAME] == Path(os.path.realpath(shutil.which("sh"))).name
    assert attributes[PROCESS_COMMAND_ARGS] == [*argv[:-1], "aws.secret_key=***"]
    assert (attributes[PROCESS_EXIT_CODE], attributes[ERROR_TYPE]) == (3, "3")
    assert (job["name"], job["status"], job["error"]) == ("sh", "error", "sh exited with code 3")
    running = next(e for e in mlpstorage_capture.of_type("stage.started") if e["name"] == "Running benchmark")
    assert job["parent_span_id"] == running["span_id"] and job["trace_id"] == running["trace_id"]
    # recorded as it ended: no row for the text displays, and exported like every other span
    assert not [e for e in mlpstorage_capture.of_type("task.started") if e["span_id"] == job["span_id"]]
    [exported] = [s for s in mlpstorage_capture.spans if s.name == "sh"]
    assert exported.attributes[PROCESS_EXIT_CODE] == 3 and exported.resource.attributes[SERVICE_NAME] == "mlpstorage"
    run = mlpstorage_capture.of_type("run.finished")[0]
    assert not [k for k in run["attributes"] if k.startswith("mlpstorage.program")]
    assert "hunter2" not in (bench.run_dir / "events.jsonl").read_text()
    # the reports read the job's command from its span (no --debug line in this run)
    assert read_recording(bench.run_dir / "events.jsonl").command_line == \
        "sh -c 'echo \"$$\" > \"$1\"; sleep 0.3; exit 3' job " + f"{tmp_path / 'pid'} 'aws.secret_key=***'"


@pytest.mark.slow
def test_a_successful_jobs_span_has_no_error_type_and_the_plain_log_does_not_show_it(tmp_path):
    result = subprocess.run([sys.executable, "-m", "mlpstorage", "exec", "--render", "plain", "--results-dir",
                             str(tmp_path), "--skip-timeseries", "--cluster-collection", "none", "--", "sleep", "0.2"],
                            capture_output=True, text=True, env=base_env(), timeout=120)
    assert result.returncode == 0, result.stderr
    [recording] = tmp_path.glob("exec/sleep/run/*/events.jsonl")
    events = [json.loads(line) for line in recording.read_text().splitlines()]
    [job] = [e for e in events if e["type"] == "task.finished" and e["name"] == "sleep"]
    assert job["status"] == "ok" and job["attributes"][PROCESS_EXIT_CODE] == 0 and ERROR_TYPE not in job["attributes"]
    assert job["attributes"][PROCESS_EXECUTABLE_NAME] == "sleep"
    assert " sleep: " not in result.stderr  # the stage's own lines say how the job went
    replayed = subprocess.run([sys.executable, "-m", "mlpstorage", "events", "replay", str(recording), "--render",
                               "plain"], capture_output=True, text=True, env=base_env(), timeout=60)
    assert replayed.returncode == 0 and " sleep: " not in replayed.stderr


# ----- recordings made before the job had a span -----------------------------------------------
@pytest.mark.parametrize("name", ["ok", "failed", "many_hosts"])
def test_a_recording_from_before_still_reads_and_renders(name, tmp_path):
    recording = GOLDEN / f"{name}.events.jsonl"
    found = read_recording(recording)
    assert found.spans and found.command_line is None
    assert "<html" in build_page(read_run(recording)).lower()


def test_an_older_recordings_debug_line_still_gives_the_command(tmp_path):
    """Before the job's span, the command came only from --debug's `command:` line; it still
    does, secrets redacted, and the job's span wins when a recording has both."""
    lines = (GOLDEN / "ok.events.jsonl").read_text().splitlines()
    first = json.loads(lines[0])
    debug = {"schema": 1, "type": "log", "timestamp": first["timestamp"], "level": "debug", "trace_id": first["trace_id"],
             "span_id": first["span_id"], "message": "command: mpirun -n 2 python ++workload.storage.secret_key=abc"}
    older = tmp_path / "older.events.jsonl"
    older.write_text("\n".join([lines[0], json.dumps(debug), *lines[1:]]) + "\n")
    assert read_recording(older).command_line == "mpirun -n 2 python ++workload.storage.secret_key=***"
