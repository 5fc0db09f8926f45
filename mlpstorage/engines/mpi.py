"""mpirun command lines, always as argument lists (never a shell string)."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

from ..errors import UsageError
from ..hosts import Host, is_local_host


@dataclass
class MpiOptions:
    mpi_bin: str = "mpirun"  # or mpiexec, or srun (inside a Slurm allocation)
    oversubscribe: bool | None = None  # None: when all hosts are this one and the ranks outnumber its cores
    allow_run_as_root: bool | None = None  # None: when running as root
    map_by: str = "socket"  # MLPerf Storage uses node or socket
    export_env: list[str] = field(default_factory=list)  # names forwarded to every rank with -x


def host_list(hosts: list[Host], processes: int, oversubscribe: bool = False) -> str:
    """h1:s1,h2:s2: given slots are kept; hosts without slots share the remaining ranks evenly.
    Fewer slots than ranks is an error unless oversubscribing."""
    given = sum(h.slots for h in hosts if h.slots)
    unslotted = [h for h in hosts if not h.slots]
    per_host = max(1, math.ceil((processes - given) / len(unslotted))) if unslotted else 0
    total = given + per_host * len(unslotted)
    if total < processes and not oversubscribe:
        raise UsageError(f"the hosts offer {total} slots for {processes} processes: add slots (host:slots) "
                         "or pass --oversubscribe")
    return ",".join(f"{h.name}:{h.slots or per_host}" for h in hosts)


def srun_command(options: MpiOptions, hosts: list[Host], processes: int, program: list[str]) -> list[str]:
    """srun inside the allocation, through PMIx (what Debian's Slurm and Open MPI speak); srun
    passes the whole environment on (TRACEPARENT and the rest), so there is no -x list."""
    if not os.environ.get("SLURM_JOB_ID"):
        raise UsageError("--mpi-bin srun runs inside a Slurm allocation (sbatch or salloc); use mpirun here")
    names = list(dict.fromkeys(h.name for h in hosts))
    argv = ["srun", "-n", str(processes), "--mpi=pmix", "--export=ALL", f"--nodelist={','.join(names)}",
            f"--distribution={'cyclic' if options.map_by == 'node' else 'block'}"]
    if all(h.slots == 1 for h in hosts) and processes == len(names):
        argv.append("--ntasks-per-node=1")  # one rank per host (the MPI collector)
    return argv + list(program)


def mpi_command(options: MpiOptions, hosts: list[Host], processes: int, program: list[str]) -> list[str]:
    if options.mpi_bin == "srun":
        return srun_command(options, hosts, processes, program)
    oversubscribe = options.oversubscribe
    if oversubscribe is None:  # this machine's cores say nothing about other hosts
        oversubscribe = all(is_local_host(h.name) for h in hosts) and processes > (os.cpu_count() or 1)
    as_root = options.allow_run_as_root
    if as_root is None:
        as_root = os.geteuid() == 0
    argv = [options.mpi_bin, "-n", str(processes), "-host", host_list(hosts, processes, bool(oversubscribe)),
            "--bind-to", "none", "--map-by", options.map_by]
    if oversubscribe:
        argv.append("--oversubscribe")
    if as_root:
        argv.append("--allow-run-as-root")
    for name in options.export_env:
        argv += ["-x", name]
    return argv + list(program)
