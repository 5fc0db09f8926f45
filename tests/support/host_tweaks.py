"""How one sshd test host (sshd_hosts.py) differs from the others, the way a broken cluster
node does: a venv at the same path that lacks DLIO, a data directory that is not shared, a
clock that runs off."""

from __future__ import annotations

import shlex
from dataclasses import dataclass

FAKETIME_LIBRARY = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"  # Debian's faketime package


@dataclass(frozen=True)
class HostTweak:
    """How one host differs from the others. Mounts are made in the host's own mount namespace
    (nothing outside it sees them, and they go with its last process); login_env is set in
    every session's environment (sshd's SetEnv), as a login's shell startup would."""

    empty: tuple[str, ...] = ()  # folders that look empty there (an empty tmpfs over each)
    bind: tuple[tuple[str, str], ...] = ()  # (source, target): target shows source's files there
    login_env: tuple[tuple[str, str], ...] = ()  # (name, value) in every session

    def mount_commands(self) -> list[str]:
        commands = [f"mount -t tmpfs -o size=1m,mode=755 mlpstorage-empty {shlex.quote(path)}" for path in self.empty]
        commands += [f"mount --bind {shlex.quote(source)} {shlex.quote(target)}" for source, target in self.bind]
        return commands


def clock_off(seconds: float) -> HostTweak:
    """A host whose clock runs `seconds` ahead (behind when negative) in its sessions: Debian's
    faketime preloaded into every process of a login (date, Python's time.time(), ...)."""
    return HostTweak(login_env=(("LD_PRELOAD", FAKETIME_LIBRARY), ("FAKETIME", f"{seconds:+g}s")))
