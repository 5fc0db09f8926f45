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
