"""Host information from /proc and the OS, in one schema for every collection method.

This module is also what remote hosts run (`python3 -m mlpstorage.collectors.hostinfo`
prints the same dict as JSON), so it uses the standard library only.
"""

from __future__ import annotations

import json
import os
import platform
import socket
import sys
from pathlib import Path

SCHEMA = "mlpstorage.hostinfo/1"


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def meminfo() -> dict[str, int]:
    """/proc/meminfo in bytes."""
    values = {}
    for line in _read("/proc/meminfo").splitlines():
        key, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            values[key] = int(parts[0]) * (1024 if len(parts) > 1 and parts[1] == "kB" else 1)
    return values


def cpu() -> dict:
    model = ""
    for line in _read("/proc/cpuinfo").splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    return {"model": model or platform.processor(), "cores": os.cpu_count() or 0}


def os_release() -> str:
    for line in _read("/etc/os-release").splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.split("=", 1)[1].strip().strip('"')
    return platform.system()


def diskstats() -> dict[str, dict[str, int]]:
    """Per block device: reads/writes completed and sectors read/written (whole devices
    and partitions as the kernel lists them)."""
    disks = {}
    for line in _read("/proc/diskstats").splitlines():
        f = line.split()
        if len(f) >= 14 and not f[2].startswith(("loop", "ram")):
            disks[f[2]] = {
                "reads": int(f[3]), "read_sectors": int(f[5]),
                "writes": int(f[7]), "write_sectors": int(f[9]),
                "io_ms": int(f[12]),
            }
    return disks


def net_dev() -> dict[str, dict[str, int]]:
    interfaces = {}
    for line in _read("/proc/net/dev").splitlines()[2:]:
        name, _, rest = line.partition(":")
        f = rest.split()
        if len(f) >= 16:
            interfaces[name.strip()] = {"rx_bytes": int(f[0]), "rx_packets": int(f[1]),
                                        "tx_bytes": int(f[8]), "tx_packets": int(f[9])}
    return interfaces


def mount_of(path: str | None) -> dict | None:
    """The mount (device, mount point, file system type) that holds path."""
    if not path:
        return None
    target = os.path.realpath(path)
    best = None
    for line in _read("/proc/self/mounts").splitlines():
        f = line.split()
        if len(f) >= 3:
            point = f[1].replace("\\040", " ")
            if (target == point or target.startswith(point.rstrip("/") + "/")) and (
                best is None or len(point) > len(best["mount_point"])
            ):
                best = {"device": f[0], "mount_point": point, "fstype": f[2]}
    return best


def loadavg() -> list[float]:
    parts = _read("/proc/loadavg").split()
    return [float(x) for x in parts[:3]] if len(parts) >= 3 else []


def collect_local(data_dir: str | None = None) -> dict:
    """This host's information."""
    memory = meminfo()
    return {
        "schema": SCHEMA,
        "hostname": socket.gethostname(),
        "cpu": cpu(),
        "memory": {"total_bytes": memory.get("MemTotal", 0), "available_bytes": memory.get("MemAvailable", 0)},
        "os": {"name": os_release(), "kernel": platform.release(), "python": platform.python_version()},
        "load": loadavg(),
        "disks": diskstats(),
        "network": net_dev(),
        "data_mount": mount_of(data_dir),
    }


if __name__ == "__main__":
    json.dump(collect_local(sys.argv[1] if len(sys.argv) > 1 else None), sys.stdout)
    sys.stdout.write("\n")
