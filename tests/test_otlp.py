"""Real OTLP export: the CLI (in a subprocess) sends spans to oteltest's in-process sinks.

Nothing here mocks the exporter: the end-to-end tests run `python -m mlpstorage` with the
standard OTEL_* environment and read back the ExportTraceServiceRequests the sink received,
over OTLP/HTTP (protobuf) and OTLP/gRPC, or export to an endpoint that is dead or never
answers; they are marked slow. The unmarked ones check the renderer's own bounds and the
configuration in-process. Everything is sent to 127.0.0.1 only.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from support.otlp_sink import base_env, by_name, exporter_env, only, silent_endpoint, sink, start_sink  # noqa: F401 (sink: a fixture)
from support.ports import free_port

REPO = Path(__file__).resolve().parents[1]
STAGES = ["Validating environment", "Collecting cluster info", "Running benchmark", "Processing results"]
RUN_NAME = "mlpstorage exec run"
SPINNER = "Collecting cluster info (1 host)..."
STATUS_OK = 1  # opentelemetry.proto.trace.v1.Status.STATUS_CODE_OK
STATUS_ERROR = 2  # STATUS_CODE_ERROR
SECRET = "SECRET123"

# ----- helpers -------------------------------------------------------------------------------
def run_cli(args: list[str], env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mlpstorage", *args],
        env=env, capture_output=True, text=True, timeout=timeout, cwd=REPO, stdin=subprocess.DEVNULL,
    )


def exec_args(results_dir: Path, code: str = "print('hi')", render: str = "plain,otlp") -> list[str]:
    return ["exec", "--render", render, "--results-dir", str(results_dir), "--skip-timeseries", "--",
            sys.executable, "-c", code]


def events_file(results_dir: Path) -> Path:
    files = list(results_dir.glob("exec/*/run/*/events.jsonl"))
    assert len(files) == 1, files
    return files[0]


def read_events(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def warning_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "warning" in line.lower() or "otlp" in line.lower()]


def one_per_signal(warnings: list[str]) -> tuple[str, str]:
    """The warnings of a failed export of a run without metrics points: one for its spans, one
    for its log records, nothing else."""
    assert len(warnings) == 2, warnings
    spans, logs = warnings
    assert spans.startswith("mlpstorage: warning: OTLP export to ") and " spans not delivered" in spans
    assert logs.startswith("mlpstorage: warning: OTLP logs export to ") and " log records not delivered" in logs
    return spans, logs


# ----- 1. the span tree, over HTTP and gRPC ------------------------------------------------------
@pytest.mark.slow
def test_run_exports_span_tree(sink, tmp_path):
    proc = run_cli(exec_args(tmp_path), sink.env())
    assert proc.returncode == 0, proc.stderr
    assert "hi" in proc.stderr.splitlines()  # the plain renderer passes program output through
    assert warning_lines(proc.stderr) == [], proc.stderr
    assert "Traceback" not in proc.stderr

    spans = sink.spans()
    assert len(spans) == 8, [s.name for s in spans]  # run, 4 stages, the cluster spinner, the job's process...
    assert len({s.span_id for s in spans}) == 8, "a span was exported twice"

    run = only(spans, RUN_NAME)
    assert run.parent_span_id == ""
    assert run.attributes["mlpstorage.kind"] == "run"

    stages = [only(spans, name) for name in STAGES]
    for index, stage in enumerate(stages, start=1):
        assert stage.parent_span_id == run.span_id, stage.name
        assert stage.attributes["mlpstorage.kind"] == "stage"
        assert stage.attributes["mlpstorage.stage.index"] == index
        assert stage.attributes["mlpstorage.stage.count"] == 4
    for earlier, later in zip(stages, stages[1:]):
        assert earlier.end <= later.start, (earlier.name, later.name)

    spinners = by_name(spans)[SPINNER]
    assert len(spinners) == 2
    stage_ids = {s.span_id: s for s in stages}
    for spinner in spinners:
        assert spinner.attributes["mlpstorage.kind"] == "spinner"
        assert spinner.parent_span_id in stage_ids
        parent = stage_ids[spinner.parent_span_id]
        assert parent.start <= spinner.start and spinner.end <= parent.end
    # one when the cluster info is collected at the start, one for the end of the run
    assert sorted(stage_ids[s.parent_span_id].name for s in spinners) == ["Collecting cluster info", "Processing results"]

    assert {s.trace_id for s in spans} == {run.trace_id}
    assert run.trace_id != "0" * 32
    for span in spans:
        assert span.end - span.start > 0, span.name
        assert span.status_code == STATUS_OK, (span.name, span.status_code)
        assert run.start <= span.start and span.end <= run.end, span.name

    # The resource is the service; what ran is on the run span (a process may run several).
    resource = run.resource
    assert all(s.resource == resource for s in spans)
    assert resource["service.name"] == "mlpstorage"
    assert resource["service.version"]
    assert not [key for key in resource if key.startswith("mlpstorage.")]
    what = run.attributes
    assert what["mlpstorage.benchmark"] == "exec"
    assert what["mlpstorage.command"] == "run"
    assert what["mlpstorage.model"] == Path(sys.executable).name
    assert what["mlpstorage.hosts"] == ["localhost"]
    assert what["mlpstorage.run_id"].startswith(f"exec-{Path(sys.executable).name}-run-")

    # The exported trace is the one the run recorded: same trace id, span ids and times.
    events = read_events(events_file(tmp_path))
    assert {e["trace_id"] for e in events if "trace_id" in e} == {run.trace_id}
    finished = {e["span_id"]: e for e in events if e["type"].endswith(".finished")}
    assert set(finished) == {s.span_id for s in spans}
    for span in spans:
        event = finished[span.span_id]
        assert (event["name"], event["start_unix_nano"], event["end_unix_nano"]) == (span.name, span.start, span.end)
        assert (event["parent_span_id"] or "") == span.parent_span_id
    run_started = next(e for e in events if e["type"] == "run.started")
    run_finished = next(e for e in events if e["type"] == "run.finished")
    assert run_finished["attributes"]["mlpstorage.run_id"] == what["mlpstorage.run_id"]
    assert run_started["attributes"]["mlpstorage.benchmark"] == "exec"

    if sink.protocol == "http":  # uncompressed protobuf, as the HTTP sink needs
        headers = {k.lower(): v for k, v in sink.requests[0].headers.items()}
        assert headers["content-type"] == "application/x-protobuf"
        assert "content-encoding" not in headers


# ----- 2. a failing program ----------------------------------------------------------------------
@pytest.mark.slow
def test_failing_program_exports_error_status(sink, tmp_path):
    proc = run_cli(exec_args(tmp_path, "import sys; sys.exit(3)"), sink.env())
    assert proc.returncode == 3, proc.stderr
    assert "exited with code 3" in proc.stderr

    spans = sink.spans()
    run = only(spans, RUN_NAME)
    running = only(spans, "Running benchmark")
    assert running.parent_span_id == run.span_id
    for span in (running, run):
        assert span.status_code == STATUS_ERROR, span.name
        assert "exited with code 3" in span.status_message
        assert "exception" in span.events
    for name in ("Validating environment", "Collecting cluster info", "Processing results"):
        assert only(spans, name).status_code == STATUS_OK  # results are processed after a failure too
    processing = only(spans, "Processing results")
    assert processing.parent_span_id == run.span_id and processing.start >= running.end
    assert {s.trace_id for s in spans} == {run.trace_id}
    assert warning_lines(proc.stderr) == [], proc.stderr


# ----- 3. the standard OTEL_* resource and on/off switches --------------------------------------
@pytest.mark.slow
def test_service_name_and_resource_attributes_are_honoured(sink, tmp_path):
    env = sink.env(OTEL_SERVICE_NAME="custom", OTEL_RESOURCE_ATTRIBUTES="deployment.environment=test")
    proc = run_cli(exec_args(tmp_path), env)
    assert proc.returncode == 0, proc.stderr
    spans = sink.spans()
    assert len(spans) == 8
    for span in spans:
        assert span.resource["service.name"] == "custom"
        assert span.resource["deployment.environment"] == "test"
        assert span.resource["service.version"]


@pytest.mark.slow
@pytest.mark.parametrize("render", ["plain,otlp", "auto"])
def test_sdk_disabled_exports_nothing(sink, tmp_path, render):
    proc = run_cli(exec_args(tmp_path, render=render), sink.env(OTEL_SDK_DISABLED="true"))
    assert proc.returncode == 0, proc.stderr
    assert "[4/4 Processing results] done" in proc.stderr  # the plain renderer still ran
    assert warning_lines(proc.stderr) == [], proc.stderr
    assert sink.requests == []
    events_file(tmp_path)  # the run's own record is kept regardless


def test_auto_picks_otlp_only_when_configured_and_enabled(monkeypatch):
    from renderers import resolve

    for key in [k for k in os.environ if k.startswith("OTEL_")]:
        monkeypatch.delenv(key)
    assert resolve("auto", interactive=False) == ["plain"]
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{free_port()}")
    assert resolve("auto", interactive=False) == ["plain", "otlp"]
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    assert resolve("auto", interactive=False) == ["plain"]


@pytest.mark.slow
def test_auto_with_an_endpoint_exports_the_run(sink, tmp_path):
    """And for real: --render auto with an endpoint (and the SDK enabled) exports the run."""
    proc = run_cli(exec_args(tmp_path, render="auto"), sink.env())
    assert proc.returncode == 0, proc.stderr
    assert len(sink.spans()) == 8


# ----- 4. a dead endpoint never holds the run up -------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("protocol", ["http", "grpc"])
@pytest.mark.parametrize("timeout", [None, "1"], ids=["default-timeout", "timeout-1s"])
def test_dead_endpoint_warns_once_and_finishes(tmp_path, protocol, timeout):
    port = free_port()  # nothing listens here
    timeout_env = {"OTEL_EXPORTER_OTLP_TIMEOUT": timeout} if timeout else {}
    env = exporter_env(f"http://127.0.0.1:{port}", protocol, **timeout_env)
    proc = run_cli(exec_args(tmp_path), env, timeout=60)

    assert proc.returncode == 0, proc.stderr
    assert "hi" in proc.stderr.splitlines()  # the plain renderer passes program output through
    assert "Traceback" not in proc.stderr
    warnings = warning_lines(proc.stderr)
    spans, logs = one_per_signal(warnings)
    assert f"127.0.0.1:{port}" in spans and f"127.0.0.1:{port}" in logs
    assert "8 of 8 spans not delivered (no answer from the endpoint)" in spans
    events_file(tmp_path)  # the run itself completed and kept its record


@pytest.mark.slow
@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_silent_endpoint_is_bounded_by_the_timeout(tmp_path, protocol):
    """A listener that accepts connections and never answers (a hung collector)."""
    with silent_endpoint() as endpoint:
        env = exporter_env(endpoint, protocol, OTEL_EXPORTER_OTLP_TIMEOUT="1")
        proc = run_cli(exec_args(tmp_path), env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    warnings = warning_lines(proc.stderr)
    one_per_signal(warnings)
    events_file(tmp_path)  # the run itself completed and kept its record


class InFlight:
    """A SpanExporter in front of a real one that notes when an export starts and returns."""

    def __init__(self, inner):
        self.inner = inner
        self.started = threading.Event()
        self.returned = threading.Event()

    def export(self, spans):
        self.started.set()
        try:
            return self.inner.export(spans)
        finally:
            self.returned.set()

    def shutdown(self):
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000):
        return self.inner.force_flush(timeout_millis)


def test_close_is_bounded_even_when_the_exporter_is_not():
    """BatchSpanProcessor.force_flush ignores its timeout and waits for the export in flight;
    the renderer's close must not.

    A real OTLP/HTTP exporter with a 60 s timeout has a request in flight to a silent listener,
    and the renderer is allowed 0.2 s at close: close returns while that export is still
    running, with one warning."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    from renderers.otlp import OtlpRenderer

    with silent_endpoint() as endpoint:
        warnings: list[str] = []
        exporter = InFlight(OTLPSpanExporter(endpoint=f"{endpoint}/v1/traces", timeout=60))
        renderer = OtlpRenderer(exporter, "http/protobuf test", warn=warnings.append, flush_timeout_s=0.2)
        now = time.time_ns()
        renderer.handle({"type": "task.finished", "name": "t", "trace_id": "1" * 32, "span_id": "2" * 16,
                         "parent_span_id": None, "start_unix_nano": now - 1000, "end_unix_nano": now,
                         "attributes": {}, "status": "ok"})
        assert exporter.started.wait(30), "the processor never exported"  # its schedule: after 1 s
        renderer.close()
        assert not exporter.returned.is_set(), "close waited for the export"
    assert warnings == ["OTLP export to http/protobuf test failed: 1 of 1 spans not delivered (no answer from the endpoint)"]
    # The request left in flight ends with the listener, and the threads close() left behind with it.
    assert exporter.returned.wait(10)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(t.name.startswith("mlpstorage-otlp") for t in threading.enumerate()):
        time.sleep(0.05)
    assert not [t.name for t in threading.enumerate() if t.name.startswith("mlpstorage-otlp")]


def test_otlp_timeout_sets_the_wait_at_close(monkeypatch):
    """OTEL_EXPORTER_OTLP_[TRACES_]TIMEOUT is the exporter's timeout, and close() waits one
    second more at most for a backend that has answered (one that never did gets
    renderers.otlp_delivery.GRACE_S in a live run: tests/test_otlp_logs.py)."""
    from renderers.otlp import DEFAULT_TIMEOUT_S, OtlpRenderer, export_timeout_s

    for key in [k for k in os.environ if k.startswith("OTEL_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{free_port()}")

    def wait_at_close() -> float:
        renderer = OtlpRenderer(warn=pytest.fail)
        renderer.close()  # nothing to send: no warning
        return renderer._flush_timeout_s

    assert (export_timeout_s(), wait_at_close()) == (DEFAULT_TIMEOUT_S, DEFAULT_TIMEOUT_S + 1)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "1")
    assert (export_timeout_s(), wait_at_close()) == (1.0, 2.0)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "0.5")
    assert (export_timeout_s(), wait_at_close()) == (0.5, 1.5)


def test_bad_timeout_is_one_usage_error(tmp_path):
    env = base_env(OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{free_port()}", OTEL_EXPORTER_OTLP_TIMEOUT="abc")
    proc = run_cli(exec_args(tmp_path), env)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "mlpstorage: error: OTEL_EXPORTER_OTLP_TIMEOUT='abc' is not a positive number of seconds"


# ----- 5. replay of a recorded run ---------------------------------------------------------------
def record(tmp_path: Path) -> Path:
    proc = run_cli(exec_args(tmp_path / "results", render="none"), base_env())
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    return events_file(tmp_path / "results")


@pytest.mark.slow
def test_replay_exports_original_ids_and_times(sink, tmp_path):
    recorded = record(tmp_path)
    assert sink.requests == []  # recording sent nothing
    events = read_events(recorded)
    finished = {e["span_id"]: e for e in events if e["type"].endswith(".finished")}
    trace_ids = {e["trace_id"] for e in events if "trace_id" in e}
    assert len(trace_ids) == 1

    proc = run_cli(["events", "replay", str(recorded), "--render", "otlp"], sink.env())
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "" and proc.stdout == ""

    spans = sink.spans()
    assert {s.span_id for s in spans} == set(finished)
    assert {s.trace_id for s in spans} == trace_ids
    for span in spans:
        event = finished[span.span_id]
        assert span.name == event["name"]
        assert span.start == event["start_unix_nano"]
        assert span.end == event["end_unix_nano"]
        assert span.parent_span_id == (event["parent_span_id"] or "")
        assert span.status_code == STATUS_OK
    run = only(spans, RUN_NAME)
    assert run.attributes["mlpstorage.run_id"] == finished[run.span_id]["attributes"]["mlpstorage.run_id"]
    assert run.resource["service.name"] == "mlpstorage"


@pytest.mark.slow
def test_replay_of_a_damaged_file_exports_the_rest(sink, tmp_path):
    lines = record(tmp_path).read_text().splitlines()
    garbage_at = len(lines) // 2  # 0-based index in the damaged file
    damaged_lines = lines[:garbage_at] + ["this is not json {"] + lines[garbage_at:]
    last = damaged_lines[-1]
    assert json.loads(last)["type"] == "run.finished"
    damaged_lines[-1] = last[: len(last) // 2]  # truncated mid-write, no newline
    damaged = tmp_path / "damaged.jsonl"
    damaged.write_text("\n".join(damaged_lines))

    proc = run_cli(["events", "replay", str(damaged), "--render", "otlp"], sink.env())
    assert proc.returncode == 0, proc.stderr
    warnings = [line for line in proc.stderr.splitlines() if line]
    assert len(warnings) == 2, proc.stderr
    assert warnings[0].startswith(f"mlpstorage: warning: {damaged}:{garbage_at + 1}: ")
    assert warnings[1].startswith(f"mlpstorage: warning: {damaged}:{len(damaged_lines)}: ")
    assert all("not JSON" in w for w in warnings)

    intact = [json.loads(line) for i, line in enumerate(damaged_lines[:-1]) if i != garbage_at]
    expected = {e["span_id"]: e for e in intact if e["type"].endswith(".finished")}
    spans = sink.spans()
    run = only(spans, RUN_NAME)  # only the run's end was lost: replay ends it where the recording ends
    assert (run.status_code, run.status_message) == (STATUS_ERROR, "unfinished (recording ends)")
    spans.remove(run)
    assert {s.span_id for s in spans} == set(expected)
    assert len(spans) == 7
    for span in spans:
        assert (span.start, span.end) == (expected[span.span_id]["start_unix_nano"], expected[span.span_id]["end_unix_nano"])


# ----- 6. secrets in OTEL_EXPORTER_OTLP_HEADERS ---------------------------------------------------
def assert_no_secret(proc: subprocess.CompletedProcess, results_dir: Path) -> None:
    assert SECRET not in proc.stdout
    assert SECRET not in proc.stderr
    for path in results_dir.rglob("*"):
        if path.is_file():
            assert SECRET not in path.read_text(errors="replace"), path


@pytest.mark.slow
def test_headers_are_sent_but_never_recorded(sink, tmp_path):
    env = sink.env(OTEL_EXPORTER_OTLP_HEADERS=f"authorization=Bearer%20{SECRET}")
    proc = run_cli(exec_args(tmp_path), env)
    assert proc.returncode == 0, proc.stderr
    assert SECRET not in events_file(tmp_path).read_text()
    assert_no_secret(proc, tmp_path)

    requests = sink.requests
    assert requests
    for request in requests:
        headers = {k.lower(): v for k, v in request.headers.items()}
        assert headers["authorization"] == f"Bearer {SECRET}"  # the header did reach the backend...
        assert SECRET.encode() not in request.pbreq.SerializeToString()  # ...but no attribute holds it
    for span in sink.spans():
        assert SECRET not in json.dumps([span.attributes, span.resource, span.status_message])


@pytest.mark.slow
@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_headers_stay_secret_when_export_fails(tmp_path, protocol):
    env = exporter_env(f"http://127.0.0.1:{free_port()}", protocol,
                       OTEL_EXPORTER_OTLP_HEADERS=f"authorization=Bearer%20{SECRET}", OTEL_EXPORTER_OTLP_TIMEOUT="1")
    proc = run_cli(exec_args(tmp_path), env)
    assert proc.returncode == 0, proc.stderr
    one_per_signal(warning_lines(proc.stderr))
    assert_no_secret(proc, tmp_path)


# ----- 6. two runs in one second, in one process ------------------------------------------------
@pytest.mark.slow
def test_two_runs_in_one_second_export_their_own_run_ids(sink, tmp_path, monkeypatch):
    """The second run's directory gets the _2 suffix; its exported run span says so, and no
    resource carries the first run's id (the resource holds no run id at all)."""
    from mlpstorage.benchmarks.base import RunOptions
    from mlpstorage.benchmarks.exec import ExecBenchmark
    from mlpstorage.emitter import Emitter
    from renderers.otlp import OtlpRenderer

    for key, value in sink.env().items():
        if key.startswith("OTEL_"):
            monkeypatch.setenv(key, value)
    emitter = Emitter([OtlpRenderer()])
    options = RunOptions(results_dir=tmp_path, skip_timeseries=True)
    first = ExecBenchmark(options, ["true"], emitter=emitter)
    second = ExecBenchmark(options, ["true"], emitter=emitter)
    second.run_datetime, second.run_dir = first.run_datetime, first.run_dir  # the same second
    first.run()
    second.run()
    emitter.close()
    assert second.run_dir.name == f"{first.run_dir.name}_2"

    runs = [s for s in sink.spans() if s.name == RUN_NAME]
    assert sorted(r.attributes["mlpstorage.run_id"] for r in runs) == sorted([first.run_id, second.run_id])
    assert first.run_id != second.run_id
    for run in runs:
        bench = first if run.attributes["mlpstorage.run_id"] == first.run_id else second
        assert run.attributes["mlpstorage.results_dir"] == str(bench.run_dir)
        assert not [key for key in run.resource if key.startswith("mlpstorage.")]
        assert run.resource["service.name"] == "mlpstorage"
    assert len({r.trace_id for r in runs}) == 2


# ----- 7. endpoints checked at start, as the specification reads them ---------------------------
@pytest.mark.parametrize("protocol, endpoint, message", [
    ("http/protobuf", "not a url", "is not an OTLP endpoint"),
    ("http/protobuf", "collector:4318", "has no scheme: use http://collector:4318"),
    ("http/protobuf", "ftp://collector:4318", "is not an OTLP endpoint"),
    ("grpc", "http://collector:99999", "is not an OTLP endpoint"),
])
def test_a_bad_endpoint_is_one_line_at_start(tmp_path, protocol, endpoint, message):
    env = {**base_env(), "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "OTEL_EXPORTER_OTLP_PROTOCOL": protocol}
    proc = run_cli(exec_args(tmp_path), env)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and message in proc.stderr, proc.stderr
    assert not list(tmp_path.iterdir())  # nothing ran, nothing was written


def test_grpc_endpoint_without_a_scheme_follows_otel_exporter_otlp_insecure(monkeypatch):
    from renderers.otlp import check_endpoint

    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "127.0.0.1:4317")
    assert check_endpoint("grpc") == "https://127.0.0.1:4317"  # TLS unless told otherwise
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_INSECURE", "true")
    assert check_endpoint("grpc") == "http://127.0.0.1:4317"


@pytest.mark.slow
def test_grpc_without_a_scheme_and_insecure_exports_without_chatter(tmp_path):
    """'127.0.0.1:4317' with OTEL_EXPORTER_OTLP_INSECURE=true reaches a plaintext gRPC receiver."""
    server, sink = start_sink("grpc")
    try:
        endpoint = sink.endpoint.removeprefix("http://")
        proc = run_cli(exec_args(tmp_path), sink.env(OTEL_EXPORTER_OTLP_ENDPOINT=endpoint, OTEL_EXPORTER_OTLP_INSECURE="true"))
        assert proc.returncode == 0, proc.stderr
        assert only(sink.spans(), RUN_NAME)
        from renderers.plain import LINE_PATTERN

        chatter = [l for l in proc.stderr.splitlines() if not LINE_PATTERN.match(l) and l != "hi"]
        assert chatter == [], proc.stderr
    finally:
        server.stop()


@pytest.mark.slow
def test_a_failing_grpc_export_is_one_warning_and_no_grpc_chatter(tmp_path):
    """TLS to a plaintext receiver fails the handshake: one warning line, nothing from gRPC."""
    server, sink = start_sink("grpc")
    try:
        endpoint = sink.endpoint.removeprefix("http://")  # no scheme, not insecure: TLS
        proc = run_cli(exec_args(tmp_path), sink.env(OTEL_EXPORTER_OTLP_ENDPOINT=endpoint, OTEL_EXPORTER_OTLP_TIMEOUT="2"))
    finally:
        server.stop()
    from renderers.plain import LINE_PATTERN

    others = [l for l in proc.stderr.splitlines() if not LINE_PATTERN.match(l) and l != "hi"]
    one_per_signal(others)
