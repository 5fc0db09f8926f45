"""mpirun command lines, always as argument lists (never a shell string)."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

from ..hosts import Host


@dataclass
class MpiOptions:
    mpi_bin: str = "mpirun"  # or mpiexec
    oversubscribe: bool | None = None  # None: when the ranks outnumber this machine's cores
    allow_run_as_root: bool | None = None  # None: when running as root
    map_by: str = "socket"  # MLPerf Storage uses node or socket
    export_env: list[str] = field(default_factory=list)  # names forwarded to every rank with -x


def host_list(hosts: list[Host], processes: int) -> str:
    """h1:s1,h2:s2: given slots are kept; hosts without slots share the ranks evenly."""
    per_host = math.ceil(processes / len(hosts))
    return ",".join(f"{h.name}:{h.slots or per_host}" for h in hosts)


def mpi_command(options: MpiOptions, hosts: list[Host], processes: int, program: list[str]) -> list[str]:
    oversubscribe = options.oversubscribe
    if oversubscribe is None:
        oversubscribe = processes > (os.cpu_count() or 1)
    as_root = options.allow_run_as_root
    if as_root is None:
        as_root = os.geteuid() == 0
    argv = [options.mpi_bin, "-n", str(processes), "-host", host_list(hosts, processes),
            "--bind-to", "none", "--map-by", options.map_by]
    if oversubscribe:
        argv.append("--oversubscribe")
    if as_root:
        argv.append("--allow-run-as-root")
    for name in options.export_env:
        argv += ["-x", name]
    return argv + list(program)
