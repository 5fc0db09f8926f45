"""`mlpstorage events replay`: a recorded events.jsonl fed back through renderers."""

from __future__ import annotations

import json
from pathlib import Path

from .emitter.events import validate
from .emitter.fanout import Fanout
from .errors import UsageError


def read_events(path: Path):
    """Yields (event, None) for each good line and (None, problem) for each bad one; every
    line is checked against the schema (mlpstorage/emitter/events.py)."""
    try:
        handle = open(path, encoding="utf-8", errors="replace")
    except OSError as exc:
        raise UsageError(f"{path}: {exc.strerror}") from None
    with handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                event = json.loads(line)
            except json.JSONDecodeError as exc:
                yield None, f"{path}:{number}: skipped a line that is not JSON ({exc.msg}; truncated?)"
                continue
            problem = validate(event)
            if problem is not None:
                yield None, f"{path}:{number}: skipped a line that is not an mlpstorage event ({problem})"
                continue
            yield event, None


def replay_file(path: Path, renderers: list) -> list[str]:
    """Feeds every valid event to every renderer, then closes them; returns the problems
    found, in order. A renderer that fails is dropped with one problem (as in a live run)."""
    problems: list[str] = []
    fanout = Fanout(renderers, warn=problems.append)
    replayed = 0
    try:
        for event, problem in read_events(path):
            if problem is not None:
                problems.append(problem)
                continue
            replayed += 1
            fanout.publish(event)
    finally:
        fanout.close()
    if not replayed:
        problems.append(f"{path}: no events to replay")
    return problems
