"""Inside a Slurm allocation (SLURM_JOB_ID set): the allocation's nodes with their task counts,
and the job's identity for the metadata and the trace's resource.

The node list is expanded by Slurm's own tool (`scontrol show hostnames`), never by hand: its
syntax (ranges, prefixes, nesting) is Slurm's to define.
"""

from __future__ import annotations

import os
import re
import subprocess

from .errors import UsageError

_TASKS = re.compile(r"^(\d+)(?:\(x(\d+)\))?$")


def job_id() -> str | None:
    return os.environ.get("SLURM_JOB_ID") or None


def tasks_per_node(value: str) -> list[int]:
    """SLURM_TASKS_PER_NODE ('2(x3),1') -> [2, 2, 2, 1]."""
    counts: list[int] = []
    for part in value.split(","):
        match = _TASKS.match(part.strip())
        if match is None:
            raise UsageError(f"SLURM_TASKS_PER_NODE={value!r} is not Slurm's task count format")
        counts += [int(match.group(1))] * int(match.group(2) or 1)
    return counts


def expand_nodelist(nodelist: str) -> list[str]:
    from .engines.process import run_collecting

    try:
        code, out, err = run_collecting(["scontrol", "show", "hostnames", nodelist], timeout_s=30)
    except FileNotFoundError:
        raise UsageError("inside a Slurm job, but scontrol is not on PATH to expand SLURM_JOB_NODELIST") from None
    except subprocess.TimeoutExpired:
        raise UsageError("scontrol show hostnames did not answer within 30 s") from None
    if code != 0:
        lines = [line for line in err.splitlines() if line.strip()]
        raise UsageError(f"scontrol show hostnames {nodelist}: {lines[-1] if lines else f'exit code {code}'}")
    return [line.strip() for line in out.splitlines() if line.strip()]


def allocation_hosts() -> list[str]:
    """host:tasks for every node of the allocation, e.g. ['node1:2', 'node2:2']."""
    nodelist = os.environ.get("SLURM_JOB_NODELIST") or os.environ.get("SLURM_NODELIST")
    if not nodelist:
        raise UsageError("SLURM_JOB_ID is set but SLURM_JOB_NODELIST is not: give --hosts")
    names = expand_nodelist(nodelist)
    counts = tasks_per_node(os.environ.get("SLURM_TASKS_PER_NODE", ",".join("1" for _ in names)))
    if len(counts) != len(names):
        return names  # no task counts we can trust: the ranks are spread over the nodes
    return [f"{name}:{count}" for name, count in zip(names, counts)]


def job_attributes() -> dict[str, str]:
    """What identifies the job, for the metadata and the resource (empty outside Slurm)."""
    if job_id() is None:
        return {}
    attributes = {"slurm.job.id": job_id()}
    for variable, key in (("SLURM_JOB_NAME", "slurm.job.name"), ("SLURM_JOB_NODELIST", "slurm.job.nodelist"),
                          ("SLURM_JOB_PARTITION", "slurm.job.partition")):
        if os.environ.get(variable):
            attributes[key] = os.environ[variable]
    return attributes
