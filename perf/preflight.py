"""How long the preflight takes over SSH for N hosts (run as root: it starts real sshd hosts on
127.0.0.2.. with support.sshd_hosts).

    .venv/bin/python perf/preflight.py [--hosts 1 4 8 16 32] [--repeat 2]

For each host count, the preflight of a training run (a 64-file data set) over SSH, as a run's
"Validating environment" does it: the masters' logins, every host's report (its interpreter
importing DLIO's main, mpi4py and the rank module; mpirun --version; the data set listed),
this host's own report, and the rules. Measured twice per count: the full check, and without
the interpreter probe (what the channel and the script cost alone). Every "host" is an sshd on
this machine's cores, so the probes' CPU (~0.7 s each, importing torch) is shared by all hosts:
separate machines would do that work in parallel, and the second column is the better guide
to what a real cluster's preflight costs beyond its slowest host's imports.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from mlpstorage.benchmarks.base import RunOptions  # noqa: E402
from mlpstorage.benchmarks.preflight import Preflight  # noqa: E402
from mlpstorage.benchmarks.preflight_rules import Needs  # noqa: E402
from mlpstorage.collectors.ssh import SshConnections, SshOptions  # noqa: E402
from mlpstorage.emitter import Emitter  # noqa: E402
from support.sshd_hosts import start_hosts  # noqa: E402


def data_set(folder: Path, files: int) -> Path:
    (folder / "train").mkdir(parents=True)
    (folder / "valid").mkdir()
    for i in range(files):
        (folder / "train" / f"img_{i}_of_{files}.npz").write_bytes(b"x" * 4096)
    return folder


def one_preflight(hosts: list[str], config: Path, data: Path, results: Path, probe: bool) -> tuple[float, int]:
    options = RunOptions(results_dir=results, hosts=hosts, cluster_collection="ssh",
                         ssh=SshOptions(config=str(config), timeout_s=30, max_parallel=32))
    needs = Needs(interpreter=sys.executable if probe else None, launcher="mpirun" if probe else None,
                  ranks={hosts[0]: 1}, data_dir=str(data))
    with SshConnections(options.ssh) as connections:
        started = time.perf_counter()
        result = Preflight(Emitter(), options, dataclasses.replace(needs), "ssh", connections).run()
        return time.perf_counter() - started, result.passed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", type=int, nargs="+", default=[1, 4, 8, 16, 32])
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mlpstorage-perf-preflight-") as tmp:
        root = Path(tmp)
        data = data_set(root / "data", 64)
        cluster = start_hosts(root / "sshd", max(args.hosts), silent=None)
        try:
            print(f"{'hosts':>5}  {'full check (s)':>15}  {'without the probe (s)':>22}  passed")
            for count in args.hosts:
                hosts = cluster.hosts[:count]
                full = [one_preflight(hosts, cluster.config, data, root / "results", True) for _ in range(args.repeat)]
                bare = [one_preflight(hosts, cluster.config, data, root / "results", False)
                        for _ in range(args.repeat)]
                print(f"{count:>5}  {min(t for t, _ in full):>15.2f}  {min(t for t, _ in bare):>22.2f}  "
                      f"{full[-1][1]}/{count}", flush=True)
        finally:
            cluster.stop()


if __name__ == "__main__":
    main()
