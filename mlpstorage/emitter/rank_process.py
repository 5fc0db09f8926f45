"""ranks/process-<rank>.json: who and where each MPI rank is, written by the rank as it starts
(engines/dlio_rank.py) and read by the stall watch. Standard library only."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

from ..results import write_text  # standard library only, as this module

PROCESS_FILE = "process-{rank}.json"


def write_rank_process(folder: str, rank: int) -> None:
    """Best effort: a rank on another host reaches the launcher's folder only through a shared
    file system, and a rank must never fail for it."""
    try:
        write_text(Path(folder) / PROCESS_FILE.format(rank=rank),
                   json.dumps({"rank": rank, "host": socket.gethostname(), "pid": os.getpid()}))
    except OSError:
        pass


def read_rank_processes(folder: Path) -> dict[int, dict]:
    """{rank: {"rank", "host", "pid"}} from the files the ranks wrote so far."""
    found = {}
    for path in folder.glob(PROCESS_FILE.format(rank="*")):
        try:
            info = json.loads(path.read_text())
            rank, host, pid = int(info["rank"]), str(info["host"]), int(info["pid"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        found[rank] = {"rank": rank, "host": host, "pid": pid}
    return found
