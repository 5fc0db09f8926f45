"""TCP ports on loopback addresses: a free one to hand to a server, and what a connect finds."""

from __future__ import annotations

import errno
import ipaddress
import random
import socket

# Ports picked for several addresses at once come from below the kernel's ephemeral range
# (32768-60999 by default), so no client socket holds them, and away from well-known services.
_SHARED_RANGE = (20000, 32000)


def loopback(addr: str) -> str:
    """addr, checked to be in 127.0.0.0/8 (the only addresses test servers ever use)."""
    if ipaddress.ip_address(addr) not in ipaddress.ip_network("127.0.0.0/8"):
        raise ValueError(f"{addr} is not a loopback address; test servers only use 127.0.0.0/8")
    return addr


def bindable(addr: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((addr, port))
            return True
        except OSError:
            return False


def free_port(*addrs: str) -> int:
    """A TCP port nothing is bound to on every one of addrs (127.0.0.1 when none are given).

    One address: the kernel's pick. Several: one port free on all of them, as servers on
    several addresses sharing a port need. Nothing holds the port afterwards, so a server that
    cannot bind it after all should pick again."""
    addrs = tuple(loopback(a) for a in addrs) or ("127.0.0.1",)
    if len(addrs) == 1:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((addrs[0], 0))
            return s.getsockname()[1]
    rng = random.Random()
    for _ in range(200):
        port = rng.randrange(*_SHARED_RANGE)
        if all(bindable(a, port) for a in addrs):
            return port
    raise RuntimeError(f"no TCP port free on all of {', '.join(addrs)}")


def port_state(addr: str, port: int, timeout: float = 0.5) -> str:
    """'open', 'refused', 'timeout' or an errno name for a TCP connect to addr:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        try:
            s.connect((loopback(addr), port))
            return "open"
        except ConnectionRefusedError:
            return "refused"
        except socket.timeout:
            return "timeout"
        except OSError as e:
            return errno.errorcode.get(e.errno or 0, str(e))


def is_listening(addr: str, port: int) -> bool:
    return port_state(addr, port) == "open"
