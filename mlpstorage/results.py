"""The run's results directory and the files in it, each written whole or not at all."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path


def new_run_dir(results_dir: Path, benchmark: str, model: str, command: str, now: dt.datetime | None = None) -> tuple[Path, str]:
    """<results-dir>/<benchmark>/<model>/<command>/<YYYYMMDD_HHMMSS>/ (not created yet) and
    the datetime string; a second run in the same second gets a _2, _3... suffix."""
    stamp = (now or dt.datetime.now()).strftime("%Y%m%d_%H%M%S")
    base = Path(results_dir) / benchmark / model / command
    candidate, n = base / stamp, 1
    while candidate.exists():
        n += 1
        candidate = base / f"{stamp}_{n}"
    return candidate, candidate.name


def write_json(path: Path, data) -> Path:
    """Writes through a temporary file and a rename, so a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2, default=str)
        handle.write("\n")
    os.replace(tmp, path)
    return path
