"""Golden tests: recorded event streams rendered by plain and rich, compared with checked-in
files. After a deliberate change: `pytest tests/test_golden.py --update-goldens`, then review
the diff of tests/golden/ like any other change."""

import io
import json
import time
from pathlib import Path

import pytest
from rich.console import Console

from renderers.plain import LINE_PATTERN, PlainRenderer
from renderers.rich import RichRenderer

GOLDEN = Path(__file__).parent / "golden"
STREAMS = ["ok", "failed"]


def load(name):
    return [json.loads(line) for line in (GOLDEN / f"{name}.events.jsonl").read_text().splitlines()]


def compare(actual: str, golden: Path, update: bool):
    if update:
        golden.write_text(actual)
    assert golden.exists(), f"{golden} is missing: run with --update-goldens"
    assert actual == golden.read_text()


@pytest.fixture
def utc(monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.parametrize("name", STREAMS)
def test_plain_golden(name, update_goldens):
    out = io.StringIO()
    renderer = PlainRenderer(out, heartbeat_s=0)
    for event in load(name):
        renderer.handle(event)
    renderer.close()
    text = out.getvalue()
    compare(text, GOLDEN / f"{name}.plain.txt", update_goldens)
    for line in text.splitlines():
        assert LINE_PATTERN.match(line) or line.startswith("[INFO]"), line
        assert "...." not in line and ".." not in line.replace("...", "")


@pytest.mark.parametrize("name", STREAMS)
def test_rich_golden(name, update_goldens, utc):
    events = load(name)
    run_end = events[-1]["end_unix_nano"]
    console = Console(file=io.StringIO(), width=100, color_system=None, force_terminal=False, get_time=lambda: 0.0)
    renderer = RichRenderer(console, live=False, clock_ns=lambda: run_end)
    frames = []
    for event in events:
        renderer.handle(event)
        if event["type"] in ("spinner.updated", "task.started"):
            # the live display as it stood one second after this event
            frame_console = Console(file=io.StringIO(), width=100, color_system=None, get_time=lambda: 0.0)
            frame_console.print(renderer.frame(event["start_unix_nano"] + 1_000_000_000))
            frames.append(f"--- frame after {event['type']} ---\n" + frame_console.file.getvalue())
    renderer.close()
    text = console.file.getvalue() + "".join(frames)
    compare(text, GOLDEN / f"{name}.rich.txt", update_goldens)


def test_heartbeat_names_the_open_stage_and_spinners():
    """The 'still running' line, driven by the renderer's injected clock: none before an
    interval has passed in the stage, then one each time it is asked, with the elapsed times."""
    from mlpstorage.emitter.events import iso_from_ns

    events = load("ok")
    running = next(i for i, e in enumerate(events) if e["type"] == "stage.started" and e["name"] == "Running benchmark")
    spinner = next(i for i, e in enumerate(events) if i > running and e["type"] == "spinner.started")
    stage_ns, spinner_ns = events[running]["start_unix_nano"], events[spinner]["start_unix_nano"]
    now = [0]
    plain = PlainRenderer(io.StringIO(), heartbeat_s=30, clock=lambda: now[0])
    try:
        for event in events[: spinner + 1]:
            plain.handle(event)
        now[0] = stage_ns + 29_900_000_000
        assert plain.heartbeat_line() is None
        beats = {}
        for seconds in (30, 60, 95):
            now[0] = stage_ns + seconds * 10**9
            beats[seconds] = plain.heartbeat_line()
    finally:
        plain.close()
    for seconds, beat in beats.items():
        match = LINE_PATTERN.match(beat)
        assert (match.group("stage_index"), match.group("stage")) == ("3", "Running benchmark")
        spinner_s = (stage_ns + seconds * 10**9 - spinner_ns) / 1e9
        assert match.group("message") == f"still running after {seconds}.0s; {events[spinner]['name']} {spinner_s:.1f}s"
        assert match.group("timestamp") == iso_from_ns(stage_ns + seconds * 10**9)[:23] + "Z"
