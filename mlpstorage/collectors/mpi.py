"""Cluster information under MPI: one rank per unique host runs the collector, and rank 0
gathers every host's information and prints it as one JSON list.

    launcher side: collect_via_mpi(...)
    rank side:     python -m mlpstorage.collectors.mpi [DATA_DIR]
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

from ..engines.mpi import MpiOptions, mpi_command
from ..engines.process import run_collecting
from ..hosts import Host


class MpiCollectionError(Exception):
    """MPI collection did not produce every host's information (the caller falls back)."""


def collect_via_mpi(hosts: list[Host], data_dir: str | None, options: MpiOptions, timeout_s: float) -> dict[str, dict]:
    unique = list(dict.fromkeys(h.name for h in hosts))
    mpi = dataclasses.replace(options, map_by="node", export_env=[])
    program = [sys.executable, "-m", __name__] + ([data_dir] if data_dir else [])
    argv = mpi_command(mpi, [Host(name, 1) for name in unique], len(unique), program)
    try:
        returncode, stdout, stderr = run_collecting(argv, timeout_s)
    except subprocess.TimeoutExpired:
        raise MpiCollectionError(f"no answer within {timeout_s:g}s") from None
    except OSError as exc:
        raise MpiCollectionError(f"cannot run {argv[0]}: {exc.strerror}") from None
    if returncode != 0:
        lines = [line for line in stderr.splitlines() if line.strip()]
        raise MpiCollectionError(lines[-1].strip() if lines else f"{argv[0]} exited with code {returncode}")
    try:
        infos = json.loads(stdout.strip().splitlines()[-1])
    except (json.JSONDecodeError, IndexError):
        raise MpiCollectionError("rank 0 printed no JSON") from None
    if len(infos) != len(unique):
        raise MpiCollectionError(f"{len(infos)} of {len(unique)} hosts answered")
    return dict(zip(unique, infos))


def _gather(data_dir: str | None) -> None:
    from mpi4py import MPI

    from ..engines.parent_death import die_with_parent

    die_with_parent()  # if mpirun goes (the launcher was killed), this rank goes too

    from .hostinfo import collect_local

    infos = MPI.COMM_WORLD.gather(collect_local(data_dir), root=0)
    if MPI.COMM_WORLD.Get_rank() == 0:
        print(json.dumps(infos), flush=True)


if __name__ == "__main__":
    _gather(sys.argv[1] if len(sys.argv) > 1 else None)
