"""Host strings from the command line: `name` or `name:slots`, checked before any use.

A host name is passed to ssh and mpirun as an argument, never through a shell; still, a
name that starts with '-' would be read as an option, and shell metacharacters have no
business in a host name, so both are refused here with a clear message.
"""

from __future__ import annotations

import re
import socket
from dataclasses import dataclass

from .errors import UsageError

# RFC 1123 labels, dotted; or an IPv4 address (which that pattern also matches).
_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$")


@dataclass(frozen=True)
class Host:
    name: str
    slots: int | None = None

    def __str__(self) -> str:
        return self.name if self.slots is None else f"{self.name}:{self.slots}"


def parse_host(text: str) -> Host:
    name, sep, slots = text.strip().partition(":")
    if not _NAME.match(name):
        raise UsageError(f"invalid host {text!r}: expected a host name or address, optionally with :slots")
    if sep:
        if not slots.isdigit() or int(slots) < 1:
            raise UsageError(f"invalid host {text!r}: slots must be a positive number")
        return Host(name, int(slots))
    return Host(name)


def parse_hosts(values: list[str]) -> list[Host]:
    """Accepts repeated values and comma-separated lists: -s a b, -s a,b:2."""
    hosts = [parse_host(part) for value in values for part in value.split(",") if part.strip()]
    if not hosts:
        raise UsageError("no hosts given")
    return hosts


def host_names(hosts: list[str]) -> list[str]:
    """The distinct names of host strings, without their slots: [a:4, b, a] -> [a, b]."""
    return list(dict.fromkeys(host.split(":", 1)[0] for host in hosts))


def is_local_host(host: str) -> bool:
    """Is host (name or name:slots) this machine? localhost, its loopback address, or one of
    its own names. Other loopback addresses (127.0.0.2...) count as other hosts."""
    name = host.split(":", 1)[0]
    return name in ("localhost", "127.0.0.1", "::1", socket.gethostname(), socket.getfqdn())
