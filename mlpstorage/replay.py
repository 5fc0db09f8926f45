"""`mlpstorage events replay`: a recorded events.jsonl fed back through renderers."""

from __future__ import annotations

import json
from pathlib import Path

from .emitter.events import EVENT_TYPES
from .errors import UsageError


def read_events(path: Path):
    """Yields (event, None) for each good line and (None, problem) for each bad one."""
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
            if not isinstance(event, dict) or event.get("type") not in EVENT_TYPES or "timestamp" not in event:
                yield None, f"{path}:{number}: skipped a line that is not an mlpstorage event"
                continue
            yield event, None


def replay_file(path: Path, renderers: list) -> list[str]:
    """Feeds every readable event to every renderer; returns the problems found, in order."""
    problems = []
    replayed = 0
    for event, problem in read_events(path):
        if problem is not None:
            problems.append(problem)
            continue
        replayed += 1
        for renderer in renderers:
            try:
                renderer.handle(event)
            except Exception as exc:  # a hand-edited or foreign file: say which event, go on
                problems.append(f"{path}: an event of type {event.get('type')!r} could not be rendered ({exc!r})")
                break
    if not replayed:
        problems.append(f"{path}: no events to replay")
    return problems
