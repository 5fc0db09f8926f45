"""structlog as the front door: the emitter's messages, structlog.get_logger() and stdlib
logging from any code all land in the one stream, with the run's ids and stage."""

from __future__ import annotations

import ast
import logging
import subprocess
import sys
import threading
from pathlib import Path

import structlog
import structlog.testing

from mlpstorage.emitter import Emitter, use_emitter
from mlpstorage.progress import create_stage_progress, progress_context
from renderers.capture import CaptureRenderer

REPO = Path(__file__).resolve().parents[1]


def test_structlog_get_logger_lands_in_the_stream_with_stage_and_span_ids(mlpstorage_capture):
    em = mlpstorage_capture.emitter
    log = structlog.get_logger("my.benchmark")
    with em.run("r"):
        with create_stage_progress(["a", "b"]) as advance_stage:
            advance_stage()
            log.warning("disk is slow", device="nvme0")
            with progress_context("spin"):
                log.info("inside the spinner")
    logs = {e["message"]: e for e in mlpstorage_capture.of_type("log")}
    slow = logs["disk is slow"]
    assert (slow["level"], slow["device"], slow["stage_index"], slow["stage_count"]) == ("warning", "nvme0", 2, 2)
    stage_b = next(e for e in mlpstorage_capture.of_type("stage.started") if e["name"] == "b")
    assert (slow["trace_id"], slow["span_id"]) == (stage_b["trace_id"], stage_b["span_id"])
    spinner = mlpstorage_capture.of_type("spinner.started")[0]
    assert logs["inside the spinner"]["span_id"] == spinner["span_id"]


def test_structlog_contextvars_travel_with_the_event(mlpstorage_capture):
    with structlog.contextvars.bound_contextvars(job="slurm-42"):
        structlog.get_logger().info("bound")
    assert mlpstorage_capture.of_type("log")[0]["job"] == "slurm-42"


def test_stdlib_logging_lands_in_the_stream_with_stage_ids(mlpstorage_capture):
    em = mlpstorage_capture.emitter
    with em.run("r"):
        with create_stage_progress(["a"]):
            logging.getLogger("some.library").warning("retrying %s", "connect")
            try:
                raise ValueError("bad")
            except ValueError:
                logging.getLogger("some.library").exception("it failed")
    retry, failed = mlpstorage_capture.of_type("log")
    assert (retry["message"], retry["level"], retry["logger"], retry["stage_index"]) == (
        "retrying connect", "warning", "some.library", 1)
    assert failed["level"] == "error" and "ValueError: bad" in failed["exception"]


def test_logging_from_a_worker_thread_reaches_the_installed_emitter(mlpstorage_capture):
    em = mlpstorage_capture.emitter
    with em.run("r"):
        with create_stage_progress(["a"]):
            worker = threading.Thread(target=lambda: structlog.get_logger().info("from a thread"))
            worker.start()
            worker.join()
    [event] = mlpstorage_capture.of_type("log")
    assert (event["message"], event["stage_index"]) == ("from a thread", 1)


def test_capture_logs_works_in_a_users_test(mlpstorage_capture):
    with structlog.testing.capture_logs() as captured:
        structlog.get_logger().info("captured", answer=42)
    assert captured == [{"event": "captured", "answer": 42, "log_level": "info"}]
    assert mlpstorage_capture.of_type("log") == []  # captured instead of rendered, as structlog users expect
    structlog.get_logger().info("after")
    assert mlpstorage_capture.messages() == ["after"]


def test_levels_filter_as_structlog_users_expect():
    capture = CaptureRenderer()
    emitter = Emitter([capture], min_level="info")
    with use_emitter(emitter):
        structlog.get_logger().debug("hidden")
        emitter.debug("hidden too")
        structlog.get_logger().info("shown")
        emitter.result("result lines always pass an info filter")
    emitter.close()
    assert [e["message"] for e in capture.events] == ["shown", "result lines always pass an info filter"]


def test_the_previous_structlog_configuration_comes_back():
    before = structlog.get_config()["processors"]
    with use_emitter(Emitter()):
        assert structlog.get_config()["processors"] is not before
    assert structlog.get_config()["processors"] is before


def test_without_an_installed_emitter_nothing_is_silent():
    code = ("from mlpstorage.progress import progress_context\n"
            "import structlog\n"
            "with progress_context('Collecting via SSH...') as (update, set_description):\n"
            "    update()\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "Collecting via SSH: started" in result.stderr and "Collecting via SSH: done in" in result.stderr


def test_no_private_attribute_of_another_object_is_touched():
    """x._name is allowed on self, cls, super() and our own classes only (NamedTuple's public
    _replace excepted): no private attribute of any library's object."""
    allowed_bases = {"self", "cls", "Benchmark"}
    found = []
    for root in ("mlpstorage", "renderers"):
        for path in (REPO / root).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if not (isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__")):
                    continue
                base = node.value
                if node.attr == "_replace" or (isinstance(base, ast.Name) and base.id in allowed_bases):
                    continue
                if isinstance(base, ast.Call) and ast.unparse(base.func) == "super":
                    continue
                found.append(f"{path.relative_to(REPO)}:{node.lineno}: {ast.unparse(node)}")
    assert found == []
