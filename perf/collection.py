"""Cluster collection and sampling costs (run as root: it starts real sshd hosts on
127.0.0.2.. with mlpstorage.testing.sshd_hosts).

    .venv/bin/python perf/collection.py [--repeat 5] [--samples 2000]

(a) SSH collection time for 1, 4 and 8 hosts, measured alternating in one run (goal: 8 hosts
    within 1.5x the time of 1, since hosts are collected in parallel), with the machine's CPU
    time per host: here every "host" is an sshd on the same 2 cores, so the logins' own CPU
    (key exchange, the login shell, python3) sets a floor that separate machines would not;
(b) the same for hosts that never answer (timeout 2 s): pure waiting, so the parallelism shows;
(c) the time-series sampler's CPU cost per sample (reading and summing /proc);
(d) how late the sampler's ticks come on this machine (tick k is due at start + k * interval;
    the tests check the schedule with a fake clock, this is the real one).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from mlpstorage.collectors import hostinfo
from mlpstorage.collectors.ssh import SshOptions, collect_via_ssh
from mlpstorage.testing.sshd_hosts import start_hosts


def machine_cpu_s() -> float:
    """CPU seconds the whole machine has spent (all processes, all cores), from /proc/stat."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    busy = sum(int(v) for i, v in enumerate(fields) if i not in (3, 4))  # all but idle and iowait
    return busy / os.sysconf("SC_CLK_TCK")


def collection_times(repeat: int) -> tuple[dict[int, list[float]], dict[int, list[float]], dict[int, float]]:
    times: dict[int, list[float]] = {1: [], 4: [], 8: []}
    cpu: dict[int, list[float]] = {1: [], 4: [], 8: []}
    silent: dict[int, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        cluster = start_hosts(tmp, 8)
        try:
            options = SshOptions(config=str(cluster.config), timeout_s=10)
            collect_via_ssh(cluster.hosts, None, options)  # warm up
            for _ in range(repeat):
                for count in times:
                    cpu0, started = machine_cpu_s(), time.perf_counter()
                    infos = collect_via_ssh(cluster.hosts[:count], None, options)
                    times[count].append(time.perf_counter() - started)
                    cpu[count].append((machine_cpu_s() - cpu0) / count)
                    assert all("error" not in info for info in infos.values()), infos
            waiting = SshOptions(config=str(cluster.config), timeout_s=2)
            for count in (1, 8):
                started = time.perf_counter()
                infos = collect_via_ssh([cluster.silent] * count, None, waiting)
                silent[count] = time.perf_counter() - started
                assert all("error" in info for info in infos.values())
        finally:
            cluster.stop()
    return times, cpu, silent


def sample_cpu_ms(samples: int) -> float:
    started = time.process_time()
    for _ in range(samples):
        hostinfo.snapshot()
    return (time.process_time() - started) / samples * 1000


def tick_lateness_ms(interval: float, count: int) -> list[float]:
    """How long after start + k * interval each of `count` real samples was taken."""
    return [(sample["elapsed_s"] - k * interval) * 1000
            for k, sample in enumerate(hostinfo.samples(interval, count))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--ticks", type=int, default=40, help="real sampler ticks for (d), 0.05 s apart (default 40)")
    args = parser.parse_args()

    times, cpu, silent = collection_times(args.repeat)
    one = statistics.median(times[1])
    cores = os.cpu_count() or 1
    print(f"(a) SSH collection, median of {args.repeat} (alternating 1, 4, 8 hosts on one {cores}-core machine):")
    for count, values in times.items():
        median = statistics.median(values)
        per_host = statistics.median(cpu[count])
        floor = max(one, count * per_host / cores)
        print(f"    {count} host{'s' if count > 1 else ' '}  {median * 1000:6.0f} ms  {median / one:4.2f}x of 1 host   "
              f"machine CPU {per_host * 1000:4.0f} ms per host -> floor on {cores} cores {floor * 1000:5.0f} ms")
    print(f"(b) hosts that never answer (timeout 2 s): 1 host {silent[1]:.2f} s, 8 hosts {silent[8]:.2f} s "
          f"({silent[8] / silent[1]:.2f}x)")
    print(f"(c) sampler: {sample_cpu_ms(args.samples):.3f} ms CPU per sample ({args.samples} samples)")
    late = tick_lateness_ms(0.05, args.ticks)
    print(f"(d) sampler ticks, {args.ticks} at 0.05 s: late by median {statistics.median(late):.2f} ms, "
          f"max {max(late):.2f} ms, the last tick {late[-1]:.2f} ms")


if __name__ == "__main__":
    main()
