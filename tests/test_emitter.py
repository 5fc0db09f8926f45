"""The emitter's contract: stages, spinners, logs and output as spans and events."""

import re
import subprocess
import sys
import threading

import pytest
from opentelemetry.trace import StatusCode

from mlpstorage.emitter.events import SCHEMA_VERSION, ns_from_iso, validate
from mlpstorage.progress import create_stage_progress, progress_context

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


def test_stages_advance_in_order_and_end_on_the_last_advance(mlpstorage_capture):
    em = mlpstorage_capture.emitter
    with em.run("r"):
        with create_stage_progress(["a", "b", "c"]) as advance_stage:
            advance_stage("b renamed")
            advance_stage()
            advance_stage()  # ends the last stage
            advance_stage()  # past the last stage: ignored
    types = [(e["type"], e.get("name")) for e in mlpstorage_capture.of_type("stage.started", "stage.finished")]
    assert types == [
        ("stage.started", "a"), ("stage.finished", "a"),
        ("stage.started", "b renamed"), ("stage.finished", "b renamed"),
        ("stage.started", "c"), ("stage.finished", "c"),
    ]
    started = mlpstorage_capture.of_type("stage.started")
    assert [(e["stage_index"], e["stage_count"]) for e in started] == [(1, 3), (2, 3), (3, 3)]


def test_empty_stage_list_is_a_no_op(mlpstorage_capture):
    with create_stage_progress([]) as advance_stage:
        advance_stage()
        advance_stage("x")
    assert mlpstorage_capture.events == []
    assert mlpstorage_capture.spans == []


def test_open_stage_ends_when_the_block_ends(mlpstorage_capture):
    with create_stage_progress(["a", "b"]):
        pass
    assert [e["name"] for e in mlpstorage_capture.of_type("stage.finished")] == ["a"]


def test_every_event_has_schema_timestamp_and_trace_ids(mlpstorage_capture):
    em = mlpstorage_capture.emitter
    with em.run("r"):
        with create_stage_progress(["a"]):
            em.info("hello")
            em.output(["raw line", "another"], stream="stderr")
            with progress_context("spin") as (update, _):
                update()
    trace_ids = set()
    for event in mlpstorage_capture.events:
        assert event["schema"] == SCHEMA_VERSION == 4
        assert validate(event) is None, event
        assert ISO.match(event["timestamp"]), event
        assert re.fullmatch(r"[0-9a-f]{32}", event["trace_id"])
        assert re.fullmatch(r"[0-9a-f]{16}", event["span_id"])
        trace_ids.add(event["trace_id"])
    assert len(trace_ids) == 1
    log = mlpstorage_capture.of_type("log")[0]
    assert (log["stage_index"], log["stage_count"], log["message"]) == (1, 1, "hello")
    output = mlpstorage_capture.of_type("output")[0]
    assert (output["lines"], output["stream"]) == (["raw line", "another"], "stderr")


def test_finished_events_carry_the_span_duration(mlpstorage_capture):
    em = mlpstorage_capture.emitter
    with em.run("r"):
        with progress_context("spin"):
            pass
    finished = {e["name"]: e for e in mlpstorage_capture.of_type("spinner.finished", "run.finished")}
    spans = {s.name: s for s in mlpstorage_capture.spans}
    for name in ("spin", "r"):
        span = spans[name]
        event = finished[name]
        assert event["start_unix_nano"] == span.start_time
        assert event["end_unix_nano"] == span.end_time
        assert event["duration_s"] == pytest.approx((span.end_time - span.start_time) / 1e9, abs=1e-6)
        assert event["status"] == "ok"
        assert ns_from_iso(event["timestamp"]) == span.end_time // 1000 * 1000


def test_spinner_total_none_is_indeterminate_and_updates_are_events(mlpstorage_capture):
    with progress_context("Collecting cluster info (2 hosts)...") as (update, set_description):
        set_description("Collecting via SSH...")
        update(advance=2)
        update(completed=5)
    started = mlpstorage_capture.of_type("spinner.started")[0]
    assert "total" not in started
    updates = mlpstorage_capture.of_type("spinner.updated")
    assert [(u["description"], u["completed"], u["total"]) for u in updates] == [
        ("Collecting via SSH...", 0, None), ("Collecting via SSH...", 2, None), ("Collecting via SSH...", 5, None)]
    span = mlpstorage_capture.spans[0]
    assert span.attributes["mlpstorage.description"] == "Collecting via SSH..."
    assert span.attributes["mlpstorage.completed"] == 5


def test_determinate_bar_has_its_total(mlpstorage_capture):
    with progress_context("hosts", total=8) as (update, _):
        update()
    assert mlpstorage_capture.of_type("spinner.started")[0]["total"] == 8
    assert mlpstorage_capture.of_type("spinner.updated")[0]["total"] == 8


def test_spans_nest_run_stage_spinner(mlpstorage_capture):
    em = mlpstorage_capture.emitter
    with em.run("r"):
        with create_stage_progress(["a"]):
            with progress_context("spin"):
                with em.span("task"):
                    pass
    spans = {s.name: s for s in mlpstorage_capture.spans}
    assert spans["r"].parent is None
    assert spans["a"].parent.span_id == spans["r"].context.span_id
    assert spans["spin"].parent.span_id == spans["a"].context.span_id
    assert spans["task"].parent.span_id == spans["spin"].context.span_id


def test_spinners_from_worker_threads_belong_to_the_open_stage(mlpstorage_capture):
    em = mlpstorage_capture.emitter

    def work(i):
        with progress_context(f"worker {i}") as (update, _):
            update()

    with em.run("r"):
        with create_stage_progress(["a"]):
            threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
    spans = {s.name: s for s in mlpstorage_capture.spans}
    stage_id = spans["a"].context.span_id
    workers = [s for n, s in spans.items() if n.startswith("worker")]
    assert len(workers) == 8
    assert all(s.parent.span_id == stage_id for s in workers)
    assert len(mlpstorage_capture.of_type("spinner.finished")) == 8


def test_an_exception_ends_every_open_span_with_error_and_reraises(mlpstorage_capture):
    em = mlpstorage_capture.emitter
    with pytest.raises(RuntimeError, match="boom"):
        with em.run("r"):
            with create_stage_progress(["a", "b"]) as advance_stage:
                advance_stage()
                with progress_context("spin"):
                    raise RuntimeError("boom")
    spans = {s.name: s for s in mlpstorage_capture.spans}
    assert set(spans) == {"r", "a", "b", "spin"}
    for name in ("r", "b", "spin"):
        assert spans[name].status.status_code is StatusCode.ERROR
        assert [e.name for e in spans[name].events] == ["exception"]
        assert spans[name].end_time is not None
    assert spans["a"].status.status_code is StatusCode.OK
    finished = mlpstorage_capture.of_type("stage.finished")
    assert finished[-1]["status"] == "error"
    assert finished[-1]["error"] == "RuntimeError: boom"
    assert finished[-1]["level"] == "error"
    assert finished[-1]["span_events"][0]["attributes"]["exception.type"] == "RuntimeError"


def test_keyboard_interrupt_also_ends_spans_in_error(mlpstorage_capture):
    em = mlpstorage_capture.emitter
    with pytest.raises(KeyboardInterrupt):
        with em.run("r"):
            with create_stage_progress(["a"]):
                raise KeyboardInterrupt
    assert {e["status"] for e in mlpstorage_capture.of_type("stage.finished", "run.finished")} == {"error"}


def test_levels_are_checked_and_result_is_a_level(mlpstorage_capture):
    em = mlpstorage_capture.emitter
    em.result("AU 99%")
    em.status("s")
    with pytest.raises(ValueError):
        em.log("loud", "x")
    assert [(e["level"], e["message"]) for e in mlpstorage_capture.of_type("log")] == [("result", "AU 99%"), ("status", "s")]


def test_trace_environment_points_children_at_the_current_stage(mlpstorage_capture):
    em = mlpstorage_capture.emitter
    with em.run("r"):
        with create_stage_progress(["a"]):
            env = em.trace_environment()
    stage = mlpstorage_capture.of_type("stage.started")[0]
    assert re.fullmatch(f"00-{stage['trace_id']}-{stage['span_id']}-0[0-9a-f]", env["TRACEPARENT"])


def test_a_broken_renderer_is_dropped_and_the_run_goes_on(mlpstorage_capture, capsys):
    class Broken:
        def handle(self, event):
            raise OSError("disk full")

        def close(self):
            pass

    em = mlpstorage_capture.emitter
    em.add_renderer(Broken())
    em.info("one")
    em.info("two")
    assert mlpstorage_capture.messages() == ["one", "two"]
    assert capsys.readouterr().err.count("renderer Broken stopped: disk full") == 1


TWO_TESTS = """
from mlpstorage.emitter import current_emitter


def test_emits(mlpstorage_capture):
    with mlpstorage_capture.emitter.run("r"):
        mlpstorage_capture.emitter.info("only in this test")
    assert mlpstorage_capture.messages() == ["only in this test"] and len(mlpstorage_capture.spans) == 1


def test_sees_nothing_of_another(mlpstorage_capture):
    assert current_emitter() is mlpstorage_capture.emitter
    assert mlpstorage_capture.events == [] and mlpstorage_capture.spans == []
"""


@pytest.mark.parametrize("order", [("test_emits", "test_sees_nothing_of_another"),
                                   ("test_sees_nothing_of_another", "test_emits")])
def test_captures_are_isolated_between_tests(pytester, order):
    """Two tests in one session, in either order (pytest runs node ids in the order given):
    neither sees the other's emitter, events or spans."""
    pytester.makepyfile(test_two=TWO_TESTS)
    result = pytester.runpytest("-p", "no:cacheprovider", "-v", *(f"test_two.py::{name}" for name in order))
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines([f"*::{order[0]} PASSED*", f"*::{order[1]} PASSED*"])


def test_close_ends_every_span_still_open_innermost_first(mlpstorage_capture):
    """A signal can land between a span's start and the block that would end it: closing the
    emitter ends whatever is still open, with the reason, before the renderers close."""
    em = mlpstorage_capture.emitter
    run_block, stages = em.run("r"), em.stages(["a"])  # kept: a collected block would end its span
    run = run_block.__enter__()
    stages.__enter__()
    em.start_task("epoch 1")
    em.close("terminated")
    finished = mlpstorage_capture.of_type("task.finished", "stage.finished", "run.finished")
    assert [e["type"] for e in finished] == ["task.finished", "stage.finished", "run.finished"]
    assert {(e["status"], e["error"]) for e in finished} == {("error", "terminated")}
    assert run.end_time is not None


def test_the_plugin_loads_nothing_until_a_test_asks_for_its_fixture(tmp_path):
    """pytest imports the plugin in every session of every project installed beside
    mlpstorage: in a session that does not use the fixture it must cost nothing (no
    OpenTelemetry, no structlog, no emitter); asking for the fixture loads them."""
    (tmp_path / "test_plain.py").write_text(
        "import sys\n\ndef test_plain():\n"
        "    assert not [m for m in sys.modules if m.startswith(('opentelemetry', 'structlog', 'mlpstorage'))]\n"
        "    assert 'renderers.capture' in sys.modules\n")
    (tmp_path / "test_uses.py").write_text(
        "import sys\n\ndef test_uses(mlpstorage_capture):\n"
        "    assert 'opentelemetry.sdk.trace' in sys.modules and mlpstorage_capture.events == []\n")
    for name in ("test_plain.py", "test_uses.py"):
        result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", name], cwd=tmp_path,
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stdout + result.stderr
