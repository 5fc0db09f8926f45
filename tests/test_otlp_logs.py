"""The logs signal, dead endpoints and traces-only backends, on real receivers.

The slow tests run `python -m mlpstorage` against oteltest's HTTP and gRPC sinks (real
OpenTelemetry software), a port nothing listens on, a listener that never answers, and real
HTTP and gRPC servers that take traces only; they compare what arrived with the run's own
events.jsonl. The unmarked ones check the pieces in-process. Everything goes to 127.0.0.1.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from mlpstorage.emitter.events import LEVELS, ns_from_iso
from support.otlp_log_records import received_logs, traces_only_backend, traces_only_grpc_backend
from support.otlp_sink import base_env, exporter_env, silent_endpoint, sink, start_sink  # noqa: F401 (sink: a fixture)
from support.ports import free_port

REPO = Path(__file__).resolve().parents[1]
SEVERITY_NUMBERS = {"debug": 5, "info": 9, "status": 10, "result": 12, "warning": 13, "error": 17}


def run_cli(args: list[str], env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mlpstorage", *args], env=env, capture_output=True, text=True,
                          timeout=timeout, cwd=REPO, stdin=subprocess.DEVNULL)


def exec_args(results_dir: Path, *program: str, render: str = "plain,otlp", timeseries: bool = False) -> list[str]:
    return ["exec", "--render", render, "--results-dir", str(results_dir),
            *([] if timeseries else ["--skip-timeseries"]), "--", *(program or ("sh", "-c", "echo hi"))]


def recorded_events(results_dir: Path) -> list[dict]:
    files = list(results_dir.glob("exec/*/run/*/events.jsonl"))
    assert len(files) == 1, files
    return [json.loads(line) for line in files[0].read_text().splitlines() if line.strip()]


def otlp_warnings(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("mlpstorage: warning:")]


# ----- the pieces ------------------------------------------------------------------------------
def test_every_level_has_a_severity():
    from renderers.otlp_logs import SEVERITY

    assert {level: SEVERITY[level][0].value for level in LEVELS} == SEVERITY_NUMBERS
    assert {level: SEVERITY[level][1] for level in LEVELS} == {level: level.upper() for level in LEVELS}


def test_log_attributes_are_otel_values():
    from renderers.otlp_logs import log_attributes

    event = {"schema": 4, "type": "log", "timestamp": "2026-11-27T10:00:00.000001Z", "level": "info",
             "message": "m", "trace_id": "1" * 32, "span_id": "2" * 16, "logger": "my.lib",
             "stage_index": 3, "stage_count": 4, "exception": "Traceback ...", "host": "node1",
             "sizes": {"read": 1, "write": {"MB": 2.5}}, "hosts": ["a", "b"], "mixed": [1, "a"],
             "nested": [{"a": 1}], "nothing": None, "huge": 2**70, "flag": True}
    assert log_attributes(event) == {
        "mlpstorage.stage.index": 3, "mlpstorage.stage.count": 4, "exception.stacktrace": "Traceback ...",
        "host": "node1", "sizes.read": 1, "sizes.write.MB": 2.5, "hosts": ["a", "b"], "mixed": '[1, "a"]',
        "nested": '[{"a": 1}]', "huge": str(2**70), "flag": True,
    }


def test_malformed_ids_give_a_record_without_a_span():
    from renderers.otlp_logs import span_context

    assert span_context({"trace_id": "zz", "span_id": "2" * 16}) is None
    assert span_context({"trace_id": "0" * 32, "span_id": "2" * 16}) is None
    assert span_context({}) is None
    assert span_context({"trace_id": "1" * 32, "span_id": "2" * 16}) is not None


@pytest.mark.parametrize("value, names", [(None, {"otlp"}), ("none", set()), ("console", {"console"}),
                                          ("otlp, console", {"otlp", "console"}), ("otlp,none", set())])
def test_otel_logs_exporter(monkeypatch, value, names):
    from renderers.otlp import exporter_names

    if value is None:
        monkeypatch.delenv("OTEL_LOGS_EXPORTER", raising=False)
    else:
        monkeypatch.setenv("OTEL_LOGS_EXPORTER", value)
    assert exporter_names("LOGS") == names


def test_an_unknown_logs_exporter_is_one_usage_error(tmp_path):
    proc = run_cli(exec_args(tmp_path), base_env(OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{free_port()}",
                                                 OTEL_LOGS_EXPORTER="zipkin"))
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "OTEL_LOGS_EXPORTER='zipkin' is not supported" in proc.stderr


def test_console_logs_exporter_prints_records(monkeypatch, capsys):
    """OTEL_LOGS_EXPORTER=console: the SDK's console exporter, on stdout, as the specification says."""
    from renderers.otlp import OtlpRenderer

    for key in [k for k in __import__("os").environ if k.startswith("OTEL_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("OTEL_LOGS_EXPORTER", "console")
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "none")
    monkeypatch.setenv("OTEL_METRICS_EXPORTER", "none")
    warnings: list[str] = []
    renderer = OtlpRenderer(warn=warnings.append)
    assert renderer.span_processor() is None  # OTEL_TRACES_EXPORTER=none
    renderer.handle({"schema": 4, "type": "log", "timestamp": "2026-11-27T10:00:00.000001Z", "level": "warning",
                     "message": "disk almost full", "trace_id": "1" * 32, "span_id": "2" * 16})
    renderer.close()
    printed = json.loads(capsys.readouterr().out)
    assert (printed["body"], printed["severity_number"], printed["severity_text"]) == ("disk almost full", 13, "WARNING")
    assert (printed["trace_id"], printed["span_id"]) == ("0x" + "1" * 32, "0x" + "2" * 16)
    assert printed["timestamp"].startswith("2026-11-27T10:00:00.000001")
    assert warnings == []


def test_close_waits_a_grace_for_a_backend_that_never_answered():
    """Live, a signal whose backend has answered nothing is abandoned after GRACE_S (its exporter
    stopped while its export still hangs); one that has answered is waited for up to its budget;
    a replay waits the budget either way."""
    from renderers.otlp_delivery import Closing, Delivery, close_all

    def hanging(release: threading.Event, abandoned: list, delivery: Delivery, answered: bool) -> Closing:
        def work():
            if answered:
                delivery.answered.set()
            release.wait(30)

        return Closing(delivery, work, lambda: (abandoned.append(delivery.signal), release.set()), budget_s=0.5)

    release, abandoned = threading.Event(), []
    silent = Delivery("LOGS", "log records", "http/protobuf http://x", label="logs ")
    silent.hand(3)
    problems = close_all([hanging(release, abandoned, silent, answered=False)], live=True)
    assert abandoned == ["LOGS"]
    assert problems == ["OTLP logs export to http/protobuf http://x failed: 3 of 3 log records not delivered "
                        "(no answer from the endpoint)"]

    quick = Delivery("METRICS", "metrics", "grpc x", label="metrics ")
    done = Closing(quick, lambda: None, lambda: pytest.fail("a finished closing is not abandoned"), 5.0, counted=False)
    assert close_all([done], live=True) == []


# ----- logs reach a real receiver, tied to their spans ------------------------------------------
@pytest.mark.slow
def test_log_records_reach_the_receiver_with_their_spans(sink, tmp_path):
    proc = run_cli(exec_args(tmp_path), sink.env())
    assert proc.returncode == 0, proc.stderr
    assert otlp_warnings(proc.stderr) == [], proc.stderr

    spans = {s.span_id: s for s in sink.spans()}
    records = received_logs(sink)
    logged = [e for e in recorded_events(tmp_path) if e["type"] == "log"]
    assert len(records) == len(logged) >= 5
    by_time = sorted(records, key=lambda r: r.time_ns)
    for record, event in zip(by_time, sorted(logged, key=lambda e: ns_from_iso(e["timestamp"]))):
        assert record.body == event["message"]
        assert record.time_ns == ns_from_iso(event["timestamp"])
        assert (record.severity_number, record.severity_text) == (SEVERITY_NUMBERS[event["level"]],
                                                                  event["level"].upper())
        assert (record.trace_id, record.span_id) == (event["trace_id"], event["span_id"])
        span = spans[record.span_id]  # the span it was logged in, exported by the same run
        assert span.trace_id == record.trace_id and span.start <= record.time_ns <= span.end
        assert record.resource == span.resource
        assert record.scope == "mlpstorage"
        assert record.attributes["mlpstorage.stage.index"] == event["stage_index"]
    result = next(r for r in records if r.severity_text == "RESULT")
    assert result.body.startswith("sh finished in ") and spans[result.span_id].name == "Processing results"
    status = next(r for r in records if r.severity_text == "STATUS")
    assert spans[status.span_id].name == "Running benchmark"
    assert "hi" not in {r.body for r in records}  # output lines only with MLPSTORAGE_OTLP_OUTPUT_LOGS=1


@pytest.mark.slow
def test_output_lines_become_records_with_the_switch(tmp_path):
    server, sink = start_sink("http")
    try:
        proc = run_cli(exec_args(tmp_path, "sh", "-c", "echo hi; echo oops >&2"),
                       sink.env(MLPSTORAGE_OTLP_OUTPUT_LOGS="1"))
    finally:
        server.stop()
    assert proc.returncode == 0, proc.stderr
    running = next(s for s in sink.spans() if s.name == "Running benchmark")
    lines = {r.body: r for r in received_logs(sink) if r.body in ("hi", "oops")}
    assert set(lines) == {"hi", "oops"}
    assert lines["hi"].attributes["log.iostream"] == "stdout"
    assert lines["oops"].attributes["log.iostream"] == "stderr"
    for record in lines.values():
        assert (record.trace_id, record.span_id) == (running.trace_id, running.span_id)
        assert record.severity_number == 0  # a child's line says nothing we could trust of its level


@pytest.mark.slow
def test_stdlib_and_structlog_records_in_process(tmp_path, monkeypatch):
    """In-process code logging with the standard library and with structlog: its records carry
    the span they were logged in, the stdlib logger's name as their scope, and their fields."""
    import structlog

    from mlpstorage.emitter import Emitter
    from mlpstorage.emitter.core import use_emitter
    from renderers.otlp import OtlpRenderer

    server, sink = start_sink("http")
    try:
        for key, value in sink.env().items():
            if key.startswith("OTEL_"):
                monkeypatch.setenv(key, value)
        emitter = Emitter([OtlpRenderer()])
        with use_emitter(emitter), emitter.run("in-process run"):
            with emitter.span("loading"):
                logging.getLogger("my.library").warning("cache miss for %s", "file1")
                structlog.get_logger().error("read failed", path="/data/x", sizes={"want": 4096, "got": 0})
        emitter.close()
    finally:
        server.stop()
    loading = next(s for s in sink.spans() if s.name == "loading")
    records = {r.body: r for r in received_logs(sink)}
    stdlib, structured = records["cache miss for file1"], records["read failed"]
    assert (stdlib.scope, stdlib.severity_number, stdlib.severity_text) == ("my.library", 13, "WARNING")
    assert structured.scope == "mlpstorage" and structured.severity_number == 17
    assert structured.attributes == {"path": "/data/x", "sizes.want": 4096, "sizes.got": 0}
    for record in (stdlib, structured):
        assert (record.trace_id, record.span_id) == (loading.trace_id, loading.span_id)


@pytest.mark.slow
def test_otel_logs_exporter_none_sends_no_logs(tmp_path):
    server, sink = start_sink("http")
    try:
        proc = run_cli(exec_args(tmp_path), sink.env(OTEL_LOGS_EXPORTER="none"))
    finally:
        server.stop()
    assert proc.returncode == 0 and otlp_warnings(proc.stderr) == [], proc.stderr
    assert sink.spans() and sink.handler.telemetry.log_requests == []


@pytest.mark.slow
def test_replay_sends_the_logs_with_their_original_ids_and_times(sink, tmp_path):
    proc = run_cli(exec_args(tmp_path / "results", render="none"), base_env())
    assert proc.returncode == 0, proc.stderr
    files = list((tmp_path / "results").glob("exec/*/run/*/events.jsonl"))
    logged = [e for e in recorded_events(tmp_path / "results") if e["type"] == "log"]
    assert sink.handler.telemetry.log_requests == []  # recording sent nothing

    proc = run_cli(["events", "replay", str(files[0]), "--render", "otlp"], sink.env())
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    spans = {s.span_id for s in sink.spans()}
    sent = sorted((r.time_ns, r.trace_id, r.span_id, r.body, r.severity_text) for r in received_logs(sink))
    assert sent == sorted((ns_from_iso(e["timestamp"]), e["trace_id"], e["span_id"], e["message"], e["level"].upper())
                          for e in logged)
    assert {span_id for _, _, span_id, _, _ in sent} <= spans


# ----- a dead or silent endpoint: one warning per signal, and the run ends ------------------------
@pytest.mark.slow
@pytest.mark.parametrize("protocol", ["http", "grpc"])
@pytest.mark.parametrize("where", ["dead", "silent"])
def test_an_endpoint_that_never_answers_is_one_warning_per_signal(tmp_path, protocol, where):
    """Spans, metrics (the time series on) and logs each say once what was lost. How long the
    run is held up is in perf/otlp_dead_endpoint.py; the timeout here only catches a hang."""
    with silent_endpoint() as silent:
        endpoint = silent if where == "silent" else f"http://127.0.0.1:{free_port()}"
        proc = run_cli(exec_args(tmp_path, "true", timeseries=True), exporter_env(endpoint, protocol), timeout=20)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    warnings = otlp_warnings(proc.stderr)
    assert len(warnings) == 3, proc.stderr
    spans, metrics, logs = warnings
    assert spans.startswith("mlpstorage: warning: OTLP export to ") and " spans not delivered" in spans
    assert metrics.startswith("mlpstorage: warning: OTLP metrics export to ")
    assert logs.startswith("mlpstorage: warning: OTLP logs export to ") and " log records not delivered" in logs
    assert all(line.endswith("(no answer from the endpoint)") for line in warnings)
    recorded_events(tmp_path)  # the run itself completed and kept its record


# ----- a traces-only backend: said once, not sent to again ---------------------------------------
@pytest.mark.slow
def test_a_traces_only_http_backend_is_said_once(tmp_path):
    """405 on /v1/metrics and /v1/logs (as Arize Phoenix answers /v1/metrics): one line per
    signal naming the variable to set, and neither is sent again in the run, though the run
    goes on collecting metrics every 300 ms and logging."""
    with traces_only_backend() as (endpoint, posts):
        env = exporter_env(endpoint, "http", OTEL_METRIC_EXPORT_INTERVAL="300", OTEL_BLRP_SCHEDULE_DELAY="200")
        proc = run_cli(exec_args(tmp_path, "sleep", "2", timeseries=True), env)
        posts = dict(posts)
    assert proc.returncode == 0, proc.stderr
    assert otlp_warnings(proc.stderr) == [
        f"mlpstorage: warning: the OTLP backend does not accept metrics (HTTP 405 on {endpoint}/v1/metrics): "
        "set OTEL_METRICS_EXPORTER=none to stop sending them",
        f"mlpstorage: warning: the OTLP backend does not accept logs (HTTP 405 on {endpoint}/v1/logs): "
        "set OTEL_LOGS_EXPORTER=none to stop sending them",
    ], proc.stderr
    assert posts["/v1/metrics"] == 1 and posts["/v1/logs"] == 1, posts
    assert posts["/v1/traces"] >= 1


@pytest.mark.slow
def test_a_traces_only_grpc_backend_is_said_once(tmp_path):
    with traces_only_grpc_backend() as (endpoint, calls):
        proc = run_cli(exec_args(tmp_path, "true", timeseries=True), exporter_env(endpoint, "grpc"))
    assert proc.returncode == 0, proc.stderr
    host = endpoint.removeprefix("http://")
    assert otlp_warnings(proc.stderr) == [
        f"mlpstorage: warning: the OTLP backend does not accept metrics (gRPC UNIMPLEMENTED from {endpoint}): "
        "set OTEL_METRICS_EXPORTER=none to stop sending them",
        f"mlpstorage: warning: the OTLP backend does not accept logs (gRPC UNIMPLEMENTED from {endpoint}): "
        "set OTEL_LOGS_EXPORTER=none to stop sending them",
    ], (proc.stderr, host)
    assert calls["traces"] >= 1
