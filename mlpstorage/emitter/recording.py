"""A run's own recording: every event of the run in <run dir>/events.jsonl.

The benchmark attaches it explicitly once it has claimed the run's directory (after
validation), so a run that fails validation leaves nothing behind. Events from the run's start
until then are held in memory and written first. Each event is flushed as it is written, so a
crashed run keeps everything emitted before the crash (program output arrives in batches of
whatever the pipe held, so nothing waits in a buffer either).

While the run lasts the recording is plain text (tail -f and grep work on it). Once the run
has ended (its run.finished event, however it ended) and the recording closes (the launcher
exits, or the next run of --loops starts), a recording past COMPRESS_ABOVE_BYTES becomes
events.jsonl.gz: gzip, which zcat and zgrep read, and so does every reader of ours
(reading.py). In between, the run's page is written from the plain file. Most of a large
recording is time-series samples, one per host and interval, and they compress about
fivefold. A launcher killed before its run ends leaves the plain file.
"""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path
from typing import IO

from . import events as ev

FILE_NAME = "events.jsonl"
COMPRESSED_NAME = FILE_NAME + ".gz"
# A recording this large is compressed when its run ends: about 90 host-hours sampled every
# 10 s (docs/performance.md, A thousand hosts). A smaller one stays plain, to read as it is.
COMPRESS_ABOVE_BYTES = 16 * 2**20
# isal's fastest level: 480 MB/s here, against 115 MB/s for zlib's, and as small (4.8x for 4.5x).
COMPRESS_LEVEL = 1
# Held before the directory is known: validation and the first log lines, a few dozen events.
# The bound only matters for a library user who never attaches a recording.
MAX_PENDING = 10_000


class RunRecording:
    """compress_above: the size (bytes) past which a finished run's recording is compressed;
    None never compresses."""

    def __init__(self, compress_above: int | None = COMPRESS_ABOVE_BYTES):
        self._lock = threading.Lock()
        self._pending: list[dict] | None = None  # a list while a run is open and not yet attached
        self._file: IO[str] | None = None
        self._compress_above = compress_above
        self._finished: Path | None = None  # a finished run's recording, compressed when it closes
        self.path: Path | None = None

    def handle(self, event: dict) -> None:
        with self._lock:
            if event["type"] == ev.RUN_STARTED:
                self._close()
                self._compress_finished()
                self._pending = []
            if self._file is not None:
                self._file.write(ev.to_json_line(event))
                self._file.flush()
            elif self._pending is not None and len(self._pending) < MAX_PENDING:
                self._pending.append(event)
            if event["type"] == ev.RUN_FINISHED:  # the next run (--loops) has a directory of its own
                self._close(run_ended=True)

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

    def _close(self, run_ended: bool = False) -> None:
        if self._file is not None:
            self._file.close()
            if run_ended:
                self._finished = self.path
        self._file, self._pending = None, None

    def _compress_finished(self) -> None:
        finished, self._finished = self._finished, None
        if finished is None or self._compress_above is None:
            return
        compressed = compress(finished) if finished.stat().st_size > self._compress_above else finished
        if self.path == finished:
            self.path = compressed

    def close(self) -> None:
        """Closes the file; a finished run's recording past the bound is compressed."""
        with self._lock:
            self._close()
            self._compress_finished()


def compress(path: Path) -> Path:
    """path (a finished recording) as path.gz, written whole or not at all, and path removed;
    returns the recording's path. If it cannot be written (a full disk), the plain recording
    stays as it is: it is whole, only larger."""
    from isal import igzip  # imported here: most runs never compress

    target = path.with_name(path.name + ".gz")
    partial = path.with_name(f".{target.name}.partial")
    try:
        with open(path, "rb") as source, igzip.open(partial, "wb", compresslevel=COMPRESS_LEVEL) as sink:
            shutil.copyfileobj(source, sink, 1 << 20)
        os.replace(partial, target)
    except OSError:
        partial.unlink(missing_ok=True)
        return path
    path.unlink()
    return target
