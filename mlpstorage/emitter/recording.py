"""A run's own recording: every event of the run in <run dir>/events.jsonl.

The benchmark attaches it explicitly once it has claimed the run's directory (after
validation), so a run that fails validation leaves nothing behind. Events from the run's start
until then are held in memory and written first. Each event is flushed as it is written, so a
crashed run keeps everything emitted before the crash (program output arrives in batches of
whatever the pipe held, so nothing waits in a buffer either)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import IO

from . import events as ev

FILE_NAME = "events.jsonl"
# Held before the directory is known: validation and the first log lines, a few dozen events.
# The bound only matters for a library user who never attaches a recording.
MAX_PENDING = 10_000


class RunRecording:
    def __init__(self):
        self._lock = threading.Lock()
        self._pending: list[dict] | None = None  # a list while a run is open and not yet attached
        self._file: IO[str] | None = None
        self.path: Path | None = None

    def handle(self, event: dict) -> None:
        with self._lock:
            if event["type"] == ev.RUN_STARTED:
                self._close()
                self._pending = []
            if self._file is not None:
                self._file.write(ev.to_json_line(event))
                self._file.flush()
            elif self._pending is not None and len(self._pending) < MAX_PENDING:
                self._pending.append(event)
            if event["type"] == ev.RUN_FINISHED:  # the next run (--loops) has a directory of its own
                self._close()

    def attach(self, run_dir: Path) -> Path:
        """Starts writing <run_dir>/events.jsonl with every event of the open run so far."""
        with self._lock:
            pending = self._pending or []
            self._close()
            self.path = Path(run_dir) / FILE_NAME
            self._file = open(self.path, "w", encoding="utf-8")
            self._file.write("".join(map(ev.to_json_line, pending)))
            self._file.flush()
        return self.path

    def _close(self) -> None:
        if self._file is not None:
            self._file.close()
        self._file, self._pending = None, None

    def close(self) -> None:
        with self._lock:
            self._close()
