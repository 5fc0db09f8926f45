"""Dying with one's parent (Linux's PR_SET_PDEATHSIG), standard library only.

The launcher sets it on every child it starts, so even a SIGKILLed launcher takes its children
with it. mpirun, told so, does not always take its ranks down (killed while the launcher
waits for it, it dies at once and leaves them running, reparented to init), so the programs
mlpstorage runs as MPI ranks (the DLIO rank launcher, the MPI collector) set it for
themselves as well: when mpirun goes, they go.
"""

from __future__ import annotations

import signal

_PR_SET_PDEATHSIG = 1

try:
    import ctypes

    _prctl = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):  # not Linux
    _prctl = None


def available() -> bool:
    return _prctl is not None


def die_with_parent(sig: int = signal.SIGTERM) -> None:
    """From now on, this process gets `sig` when its parent dies. Safe between fork and exec:
    one foreign call, nothing allocated."""
    if _prctl is not None:
        _prctl(_PR_SET_PDEATHSIG, int(sig))


_PR_SET_PTRACER = 0x59616D61  # "Yama"


def allow_tracing_by(pid: int) -> None:
    """Lets pid and its descendants trace this process where Yama's ptrace_scope=1 (Ubuntu's
    default) would allow only its ancestors: the launcher's py-spy, which records a stalled
    rank's stacks (mlpstorage/stalls/evidence.py), is the launcher's child, not the rank's
    ancestor. Without Yama the call fails harmlessly."""
    if _prctl is not None and pid > 0:
        _prctl(_PR_SET_PTRACER, int(pid), 0, 0, 0)
