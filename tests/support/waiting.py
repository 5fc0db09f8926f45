"""Waiting for a condition instead of sleeping for a guessed time."""

from __future__ import annotations

import time


def wait_for(predicate, what: str, timeout: float = 10.0, interval: float = 0.01):
    """predicate()'s first true value, polled every interval; TimeoutError naming `what` when
    none comes within timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


def sleeping_in_nanosleep(pid: int) -> bool:
    """Whether pid is blocked in a sleep call (time.sleep, `sleep`), as /proc/PID/wchan says."""
    try:
        with open(f"/proc/{pid}/wchan") as f:
            return "nanosleep" in f.read()
    except OSError:
        return False
