"""The jsonl renderer: one JSON object per event, flushed as it is written.

The same writer keeps each run's events.jsonl, so a crashed run keeps every event emitted
before the crash, and `mlpstorage events replay` can feed the file to any renderer.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import IO


class JsonlRenderer:
    def __init__(self, stream: IO[str], owns_stream: bool = False):
        self._stream = stream
        self._owns = owns_stream

    @classmethod
    def from_options(cls, options) -> "JsonlRenderer":
        return cls(options.stream or sys.stdout)

    @classmethod
    def to_file(cls, path: str | Path) -> "JsonlRenderer":
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        return cls(open(path, "w", encoding="utf-8"), owns_stream=True)

    def handle(self, event: dict) -> None:
        self._stream.write(json.dumps(event, separators=(",", ":"), default=str) + "\n")
        self._stream.flush()

    def close(self) -> None:
        if self._owns:
            self._stream.close()
        else:
            self._stream.flush()


class RunEventsFile:
    """Keeps every run's events.jsonl in that run's results directory.

    Events are held in memory until the benchmark announces its results directory (a log
    event with a `results_dir` field, sent once validation has passed), then written there and
    flushed event by event. A run that fails validation therefore leaves no directory behind,
    and a run that crashes later keeps everything emitted before the crash."""

    FILE_NAME = "events.jsonl"

    def __init__(self):
        self._pending: list[dict] = []
        self._writer: JsonlRenderer | None = None

    def handle(self, event: dict) -> None:
        if self._writer is None:
            self._pending.append(event)
            if event["type"] == "log" and event.get("results_dir"):
                self._writer = JsonlRenderer.to_file(Path(event["results_dir"]) / self.FILE_NAME)
                for pending in self._pending:
                    self._writer.handle(pending)
                self._pending = []
        else:
            self._writer.handle(event)
        if event["type"] == "run.finished":  # the next run (--loops) has a directory of its own
            self.close()
            self._writer, self._pending = None, []

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
