"""Host information and time-series samples from /proc, in one schema for every method.

This module is also what remote hosts run: its source is sent over SSH to `python3 -` (so a
remote host needs python3 and nothing of mlpstorage), and it runs as a script:

    python3 hostinfo.py collect [DATA_DIR]          one JSON object: this host's information
    python3 hostinfo.py sample INTERVAL MAX_SAMPLES  one JSON line per sample, at a fixed rate

so it uses the standard library only.
"""

from __future__ import annotations

import json
import os
import platform
import socket
import sys
import time
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


def snapshot() -> dict:
    """The counters a time-series sample is made of, summed over devices and interfaces."""
    disks = diskstats()
    nets = net_dev()
    memory = meminfo()
    return {
        "read_bytes": sum(d["read_sectors"] for d in disks.values()) * 512,
        "write_bytes": sum(d["write_sectors"] for d in disks.values()) * 512,
        "rx_bytes": sum(n["rx_bytes"] for n in nets.values()),
        "tx_bytes": sum(n["tx_bytes"] for n in nets.values()),
        "mem_available_bytes": memory.get("MemAvailable", 0),
        "load1": (loadavg() or [0.0])[0],
    }


RATES = {"read_bytes": "read_Bps", "write_bytes": "write_Bps", "rx_bytes": "rx_Bps", "tx_bytes": "tx_Bps"}


def samples(interval_s: float, max_samples: int, stop=None, clock=time.monotonic, wall_clock_ns=time.time_ns):
    """Yields up to max_samples samples, one every interval_s, each with per-second rates
    since the previous one. Ticks are scheduled from the start (start + k * interval), so
    they do not drift however long a sample takes. stop(timeout) -> bool ends it early.
    clock (seconds, monotonic) and wall_clock_ns (the samples' timestamps) are for tests."""
    start = clock()
    previous, previous_t = None, start
    for tick in range(max_samples):
        if tick:
            delay = max(0.0, start + tick * interval_s - clock())
            if stop is None:
                time.sleep(delay)
            elif stop(delay):
                return
        now = clock()
        counters = snapshot()
        sample = {"timestamp_ns": wall_clock_ns(), "elapsed_s": round(now - start, 6), **counters}
        for counter, rate in RATES.items():
            seconds = now - previous_t
            sample[rate] = (counters[counter] - previous[counter]) / seconds if previous and seconds > 0 else 0.0
        previous, previous_t = counters, now
        yield sample


def main(argv: list[str]) -> int:
    if argv[:1] == ["collect"]:
        print(json.dumps(collect_local(argv[1] if len(argv) > 1 else None)))
    elif argv[:1] == ["sample"] and len(argv) == 3:
        for sample in samples(float(argv[1]), int(argv[2])):
            print(json.dumps(sample), flush=True)
    else:
        print("usage: hostinfo.py collect [DATA_DIR] | sample INTERVAL MAX_SAMPLES", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
