"""Cluster information under MPI: one rank per unique host runs the collector, and rank 0
gathers every host's information and prints it as one JSON list.

    launcher side: collect_via_mpi(...)
    rank side:     python -m mlpstorage.collectors.mpi [DATA_DIR]

run_on_each_host() starts any program once per host (mpirun, or srun inside a Slurm
allocation) and hands back its output lines with the time each arrived: the collection runs
so, and the preflight (mlpstorage/collectors/preflight.py), with no mpi4py needed on the hosts.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import threading
import time

from ..engines.mpi import MpiOptions, mpi_command
from ..engines.process import CHILDREN
from ..hosts import Host


class MpiCollectionError(Exception):
    """MPI collection did not produce every host's information (the caller falls back)."""


def collect_via_mpi(hosts: list[Host], data_dir: str | None, options: MpiOptions, timeout_s: float) -> dict[str, dict]:
    unique = list(dict.fromkeys(h.name for h in hosts))
    program = [sys.executable, "-m", __name__] + ([data_dir] if data_dir else [])
    printed = [line for _, line in run_on_each_host(unique, program, options, timeout_s) if line.strip()]
    try:
        infos = json.loads(printed[-1])
    except (json.JSONDecodeError, IndexError):
        raise MpiCollectionError("rank 0 printed no JSON") from None
    if len(infos) != len(unique):
        raise MpiCollectionError(f"{len(infos)} of {len(unique)} hosts answered")
    return dict(zip(unique, infos))


def run_on_each_host(hosts: list[str], program: list[str], options: MpiOptions,
                     timeout_s: float) -> list[tuple[int, str]]:
    """program started once on each of hosts, one rank per host in their order (mpirun, or srun
    as options.mpi_bin says); its output lines, each with the wall clock (ns) at which it
    arrived here. Raises MpiCollectionError when the launcher fails or overruns timeout_s."""
    unique = list(dict.fromkeys(hosts))
    mpi = dataclasses.replace(options, map_by="node", export_env=[])
    argv = mpi_command(mpi, [Host(name, 1) for name in unique], len(unique), program)
    try:
        proc = CHILDREN.spawn(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, errors="replace")
    except OSError as exc:
        raise MpiCollectionError(f"cannot run {argv[0]}: {exc.strerror}") from None
    stderr: list[str] = []
    drain = threading.Thread(target=lambda: stderr.append(proc.stderr.read()), daemon=True)
    overran = threading.Event()
    # The read below blocks; a timer ends the launcher (its whole tree) when time is up.
    timer = threading.Timer(timeout_s, lambda: (overran.set(), CHILDREN.stop(proc, grace_s=2.0)))
    lines: list[tuple[int, str]] = []
    try:
        drain.start()
        timer.start()
        for line in proc.stdout:
            lines.append((time.time_ns(), line))
        proc.wait()
        drain.join(timeout=5)
    except BaseException:
        CHILDREN.stop(proc, grace_s=2.0)
        raise
    finally:
        timer.cancel()
    CHILDREN.forget(proc)
    if overran.is_set():
        raise MpiCollectionError(f"no answer within {timeout_s:g}s")
    if proc.returncode != 0:
        raise MpiCollectionError(launcher_error("".join(stderr)) or f"{argv[0]} exited with code {proc.returncode}")
    return lines


def launcher_error(stderr: str) -> str:
    """What went wrong, from mpirun's (or srun's) error output: the lines before Open MPI's
    first banner (ssh's own words, one per host), else the banner's first line, else the last."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    banner = next((i for i, line in enumerate(lines) if set(line) <= {"-", "*"}), None)
    if banner:
        return "; ".join(dict.fromkeys(lines[:banner][-3:]))
    if banner is not None and banner + 1 < len(lines):
        return lines[banner + 1]
    return lines[-1] if lines else ""


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
