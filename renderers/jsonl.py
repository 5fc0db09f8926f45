"""The jsonl renderer: one JSON object per event (the schema in docs/events.md), flushed as it is
written. `--events-file PATH` uses the same writer; every run also keeps its own
events.jsonl (mlpstorage/emitter/recording.py)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import IO

from mlpstorage.emitter.events import to_json_line
from mlpstorage.errors import UsageError
from mlpstorage.results import check_writable


class JsonlRenderer:
    def __init__(self, stream: IO[str], owns_stream: bool = False):
        self._stream = stream
        self._owns = owns_stream

    @classmethod
    def from_options(cls, options) -> "JsonlRenderer":
        return cls(options.stream or sys.stdout)

    @classmethod
    def to_file(cls, path: str | Path) -> "EventsFile":
        return EventsFile(Path(path))

    def handle(self, event: dict) -> None:
        self._stream.write(to_json_line(event))
        self._stream.flush()

    def close(self) -> None:
        if self._owns:
            self._stream.close()
        else:
            self._stream.flush()


class EventsFile:
    """`--events-file PATH`: the same JSON lines in a file of the user's choosing.

    Like the run's own recording, nothing is created before validation has passed: the path
    is only checked at start, events are held until the run has claimed its directory
    (on_run_directory) or the command ends, and then written and flushed event by event. A
    run that fails validation leaves no file and no folder behind."""

    def __init__(self, path: Path):
        check_writable(path.parent, "--events-file folder")
        if path.is_dir():
            raise UsageError(f"--events-file {path}: is a directory")
        self.path = path
        self._pending: list[dict] | None = []
        self._writer: JsonlRenderer | None = None

    def handle(self, event: dict) -> None:
        if self._writer is not None:
            self._writer.handle(event)
        elif self._pending is not None:
            self._pending.append(event)

    def on_run_directory(self, run_dir: Path) -> None:
        if self._writer is None:
            self._open()

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._writer = JsonlRenderer(open(self.path, "w", encoding="utf-8"), owns_stream=True)
        for event in self._pending or []:
            self._writer.handle(event)
        self._pending = None

    def close(self) -> None:
        # A command without a run (datasize, replay) writes its events now; a run that never
        # claimed its directory (it failed validation) leaves nothing.
        if self._writer is None and self._pending and not any(e["type"] == "run.started" for e in self._pending):
            self._open()
        if self._writer is not None:
            self._writer.close()
