"""Cluster collection and sampling costs (run as root: it starts real sshd hosts on
127.0.0.2.. with support.sshd_hosts).

    .venv/bin/python perf/collection.py [--repeat 5] [--samples 2000]

(a) A run's SSH work for 1, 4, 8 and 16 hosts, measured alternating in one run: collection
    at the start, the time-series sampler until every host has sent a sample, collection at
    the end; once with one connection per host for the whole run (SshConnections, as a run
    does it) and once with a login per use (as runs did before). Logins per host are counted
    from the sshd logs. CPU is that of the launcher, its ssh children and the sshd hosts with
    their sessions (from /proc, so other work on the machine does not count): every "host" is
    an sshd on the same cores, so the hosts' own CPU (key exchange, the login shell, python3)
    sets a floor, CPU / cores, that separate machines would not (goal: 8 hosts within 1.5x
    the time of 1, since hosts run in parallel);
(a2) one collection when the connections are up (the start and end collections of a run);
(a3) where a host's CPU goes: one login (key exchange, authentication) against one session on
    it (the remote account's shell starting, python3, the collector);
(b) hosts that never answer (timeout 2 s): pure waiting, so the parallelism shows;
(c) the time-series sampler's CPU cost per sample (reading and summing /proc);
(d) how late the sampler's ticks come on this machine (tick k is due at start + k * interval;
    the tests check the schedule with a fake clock, this is the real one).
"""

from __future__ import annotations

import argparse
import ctypes
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable

from mlpstorage.collectors import hostinfo
from mlpstorage.collectors.ssh import SshConnections, SshOptions, collect_one, collect_via_ssh
from mlpstorage.collectors.timeseries import Timeseries
from mlpstorage.engines.process import CHILDREN, run_collecting

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # `support`: tests/support

from support.sshd_hosts import SshCluster, start_hosts  # noqa: E402

COUNTS = (1, 4, 8, 16)
MODES = ("one login", "a login per use")
CLK_TCK = os.sysconf("SC_CLK_TCK")
PR_SET_CHILD_SUBREAPER = 36


def adopt_orphans() -> None:
    """Become a subreaper: a host's session process that outlives its sshd (a sampler whose
    connection closed writes once more before it notices) comes to this process, which reaps
    it in settle(), so its CPU is counted too (os.times' children)."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1)


def cpu_s(cluster: SshCluster) -> float:
    """CPU seconds of this process, its waited-for children (ssh clients and masters, adopted
    orphans) and the sshd hosts with the connections they have waited for (utime, stime,
    cutime, cstime of each listening sshd)."""
    own = os.times()
    total = own.user + own.system + own.children_user + own.children_system
    for pid in cluster.pids:
        total += sum(_stat(pid)[11:15]) / CLK_TCK
    return total


def _stat(pid: int) -> list[int]:
    """The numeric fields of /proc/PID/stat from the 4th (ppid) on, at index 1."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return [0] + [int(v) for v in fields[1:]]


def settle(cluster: SshCluster) -> None:
    """Until the hosts have finished with every connection and session (each process reaped,
    so that its CPU is counted)."""
    me, listeners = os.getpid(), set(cluster.pids)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        busy = False
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) in listeners:
                continue
            try:
                ppid = _stat(int(entry))[1]
            except (OSError, IndexError, ValueError):
                continue
            if ppid == me and not any(p.pid == int(entry) for p in CHILDREN.running()):
                os.wait4(int(entry), 0)  # an adopted orphan: its CPU joins os.times' children
            busy = busy or ppid in listeners
        if not busy:
            return
        time.sleep(0.01)


def run_shaped(hosts: list[str], options: SshOptions, reuse: bool) -> None:
    """What a run does over SSH: collect, sample until every host has answered, collect."""
    with SshConnections(options) as connections:
        if reuse:
            connections.open(hosts)
        infos = collect_via_ssh(hosts, None, options, connections=connections)
        sampled, every_host = set(), threading.Event()

        def on_sample(host: str, sample: dict) -> None:
            sampled.add(host)
            if len(sampled) == len(hosts):
                every_host.set()

        series = Timeseries(hosts, 0.2, 1000, on_sample, on_limit=lambda n: None, connections=connections)
        series.start()
        every_host.wait(timeout=60)
        series.stop()
        infos.update(collect_via_ssh(hosts, None, options, connections=connections))
    assert every_host.is_set() and not series.errors(), series.errors()
    assert all("error" not in info for info in infos.values()), infos


def run_figures(cluster: SshCluster, repeat: int) -> dict:
    options = SshOptions(config=str(cluster.config), timeout_s=10)
    times = {(mode, n): [] for mode in MODES for n in COUNTS}
    cpu = {(mode, n): [] for mode in MODES for n in COUNTS}
    logins = {mode: [] for mode in MODES}  # per host per run
    run_shaped(cluster.hosts, options, reuse=True)  # warm up
    settle(cluster)
    for _ in range(repeat):
        for n in COUNTS:
            for mode in MODES:
                hosts = cluster.hosts[:n]
                before, cpu0, started = cluster.logins(), cpu_s(cluster), time.perf_counter()
                run_shaped(hosts, options, reuse=mode == MODES[0])
                times[mode, n].append(time.perf_counter() - started)
                settle(cluster)
                cpu[mode, n].append(cpu_s(cluster) - cpu0)
                after = cluster.logins()
                logins[mode] += [after[h] - before[h] for h in hosts]
    return {"times": times, "cpu": cpu, "logins": logins}


def collection_riding(cluster: SshCluster, repeat: int) -> dict[int, list[float]]:
    """One collection over connections that are already up."""
    options = SshOptions(config=str(cluster.config), timeout_s=10)
    times: dict[int, list[float]] = {n: [] for n in COUNTS}
    with SshConnections(options) as connections:
        connections.open(cluster.hosts)
        collect_via_ssh(cluster.hosts, None, options, connections=connections)  # every master up
        for _ in range(repeat):
            for n in COUNTS:
                started = time.perf_counter()
                infos = collect_via_ssh(cluster.hosts[:n], None, options, connections=connections)
                times[n].append(time.perf_counter() - started)
                assert all("error" not in info for info in infos.values()), infos
    return times


def cpu_breakdown(cluster: SshCluster, repeat: int, sessions: int = 10) -> dict[str, float]:
    """CPU seconds of one login (a master opened and closed, no session) and of one session
    on a master: `true` (what the remote account's shell costs to start) and a collection."""
    options = SshOptions(config=str(cluster.config), timeout_s=10)
    host = cluster.hosts[0]

    def cpu_of(use: Callable[[SshConnections], object] | None, times: int) -> float:
        settle(cluster)
        cpu0 = cpu_s(cluster)
        with SshConnections(options) as connections:
            connections.open([host])
            assert connections.ready(host) is None
            for _ in range(times):
                use(connections)
        settle(cluster)
        return cpu_s(cluster) - cpu0

    login = sum(cpu_of(None, 0) for _ in range(repeat)) / repeat
    shell = lambda c: run_collecting(c.argv(host)[:-2] + ["true"], 30)  # the fixed `python3 -` less python
    collect = lambda c: collect_one(host, None, c)
    return {"login": login, "shell": (cpu_of(shell, sessions) - login) / sessions,
            "collection": (cpu_of(collect, sessions) - login) / sessions}


def silent_times(cluster: SshCluster) -> dict[int, float]:
    silent: dict[int, float] = {}
    waiting = SshOptions(config=str(cluster.config), timeout_s=2)
    for count in (1, 8):
        started = time.perf_counter()
        infos = collect_via_ssh([cluster.silent] * count, None, waiting)
        silent[count] = time.perf_counter() - started
        assert all("error" in info for info in infos.values())
    return silent


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

    adopt_orphans()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        cluster = start_hosts(tmp, max(COUNTS))
        try:
            figures = run_figures(cluster, args.repeat)
            riding = collection_riding(cluster, args.repeat)
            breakdown = cpu_breakdown(cluster, args.repeat)
            silent = silent_times(cluster)
        finally:
            cluster.stop()
    cores = os.cpu_count() or 1
    print(f"load average before starting: {load_before:.2f} (times are wall clock, which other work on the "
          f"machine stretches; the CPU figures are this work's own)")
    print(f"(a) a run's SSH work (collect, sample, collect), median of {args.repeat}, alternating, "
          f"on one {cores}-core machine:")
    for mode in MODES:
        per_host = figures["logins"][mode]
        print(f"    {mode}: logins per host per run {min(per_host)}..{max(per_host)} "
              f"(mean {statistics.mean(per_host):.2f})")
        one = statistics.median(figures["times"][mode, 1])
        for n in COUNTS:
            median = statistics.median(figures["times"][mode, n])
            cpu = statistics.median(figures["cpu"][mode, n])
            floor = max(one, cpu / cores)
            print(f"      {n:2d} host{'s' if n > 1 else ' '}  {median * 1000:6.0f} ms  {median / one:5.2f}x of 1 host   "
                  f"CPU {cpu / n * 1000:4.0f} ms per host -> floor {floor * 1000:5.0f} ms ({floor / one:4.2f}x), "
                  f"{median / floor:4.2f}x the floor")
    one = statistics.median(riding[1])
    print("(a2) one collection, connections up: " + ", ".join(
        f"{n} host{'s' if n > 1 else ''} {statistics.median(riding[n]) * 1000:.0f} ms "
        f"({statistics.median(riding[n]) / one:.2f}x)" for n in COUNTS))
    print(f"(a3) CPU of one login (no session) {breakdown['login'] * 1000:.0f} ms; of one session on it: "
          f"`true` {breakdown['shell'] * 1000:.0f} ms (the remote shell starting), "
          f"a collection {breakdown['collection'] * 1000:.0f} ms")
    print(f"(b) hosts that never answer (timeout 2 s): 1 host {silent[1]:.2f} s, 8 hosts {silent[8]:.2f} s "
          f"({silent[8] / silent[1]:.2f}x)")
    print(f"(c) sampler: {sample_cpu_ms(args.samples):.3f} ms CPU per sample ({args.samples} samples)")
    late = tick_lateness_ms(0.05, args.ticks)
    print(f"(d) sampler ticks, {args.ticks} at 0.05 s: late by median {statistics.median(late):.2f} ms, "
          f"max {max(late):.2f} ms, the last tick {late[-1]:.2f} ms")


if __name__ == "__main__":
    main()
