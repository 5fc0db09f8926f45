"""The jsonl renderer: one JSON object per event (the schema in the README), flushed as it is
written. `--events-file PATH` uses the same writer; every run also keeps its own
events.jsonl (mlpstorage/emitter/recording.py)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import IO

from mlpstorage.emitter.events import to_json_line


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
        self._stream.write(to_json_line(event))
        self._stream.flush()

    def close(self) -> None:
        if self._owns:
            self._stream.close()
        else:
            self._stream.flush()
