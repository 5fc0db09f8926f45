"""The run's results directory and the files in it, each written whole or not at all."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from .errors import ValidationError


def run_dir_base(results_dir: Path, benchmark: str, model: str, command: str) -> Path:
    return Path(results_dir).absolute() / benchmark / model / command


def claim_run_dir(base: Path, stamp: str) -> Path:
    """Creates <base>/<YYYYMMDD_HHMMSS>/ (a run in the same second gets _2, _3...). mkdir is the
    claim, so runs started together (a batch job array) never share a directory."""
    n = 1
    while True:
        candidate = base / (stamp if n == 1 else f"{stamp}_{n}")
        try:
            candidate.mkdir(parents=True)
            return candidate
        except FileExistsError:
            n += 1
        except OSError as exc:
            raise ValidationError(f"cannot create the results directory {candidate}: {exc.strerror}") from None


def check_writable(path: Path, what: str) -> None:
    """Can `path` be created (or written, if it exists)? Tried for real, in the nearest existing
    folder, leaving nothing behind: permission bits alone say yes to root everywhere."""
    existing = Path(path).absolute()
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise ValidationError(f"{what} {path} cannot be created: {existing} is not a directory")
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".mlpstorage-check-", dir=existing))
    except OSError as exc:
        raise ValidationError(f"{what} {path} is not writable ({existing}: {exc.strerror})") from None


def write_json(path: Path, data) -> Path:
    """Writes through a temporary file and a rename, so a reader never sees half a file."""
    return write_text(path, json.dumps(data, indent=2, default=str) + "\n")


def write_text(path: Path, text: str) -> Path:
    """Writes through a temporary file and a rename, so a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8", newline="") as handle:
        handle.write(text)
    os.replace(tmp, path)
    return path
