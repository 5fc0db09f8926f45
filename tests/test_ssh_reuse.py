"""One SSH login per remote host per run: the collection at the start, the sampler and the
collection at the end are sessions on one master connection per host (collectors/ssh.py,
SshConnections). Against real sshd hosts (tests/support/sshd_hosts.py), whose logs
count the logins."""

from __future__ import annotations

import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import pytest

from mlpstorage.benchmarks.base import Benchmark, RunOptions
from mlpstorage.collectors import ssh as ssh_module
from mlpstorage.collectors.ssh import SshOptions
from mlpstorage.engines.process import CHILDREN
from support.otlp_sink import base_env

pytestmark = pytest.mark.slow


class Observed(Benchmark):
    """A run that looks at its SSH connections while "Running benchmark" is open."""

    BENCHMARK_TYPE = "test"

    def __init__(self, options, samples: int = 0, fail: BaseException | None = None):
        super().__init__(options, model="m", command="run")
        self.wanted_samples, self.fail = samples, fail
        self.control_dir: str | None = None
        self.control_dir_mode: int | None = None
        self.sockets: list[str] = []
        self.masters: list[psutil.Process] = []

    def _run(self):
        self.control_dir = self.ssh_connections.dir
        self.control_dir_mode = stat.S_IMODE(os.stat(self.control_dir).st_mode)
        self.sockets = [e.name for e in os.scandir(self.control_dir) if stat.S_ISSOCK(e.stat().st_mode)]
        self.masters = [psutil.Process(p.pid) for p in CHILDREN.running() if "ControlMaster=yes" in p.args]
        deadline = time.monotonic() + 60  # the run lasts until every host has sent this many samples
        samplers = [s for s in self.sampler.samplers if s.error is None] if self.sampler is not None else []
        while any(len(s.samples) < self.wanted_samples for s in samplers):
            assert time.monotonic() < deadline, {s.host: len(s.samples) for s in samplers}
            time.sleep(0.01)
        if self.fail is not None:
            raise self.fail


def masters_of(control_dir: str) -> list[psutil.Process]:
    """ssh processes, anywhere, whose command line names the directory."""
    found = []
    for process in psutil.process_iter(["cmdline"]):
        if any(control_dir in arg for arg in process.info["cmdline"] or ()):
            found.append(process)
    return found


def run_options(cluster, hosts, tmp_path, timeout_s=10.0, **kw) -> RunOptions:
    kw.setdefault("timeseries_interval", 0.2)
    return RunOptions(results_dir=tmp_path, hosts=hosts, cluster_collection="ssh",
                      ssh=SshOptions(config=str(cluster.config), timeout_s=timeout_s), **kw)


def logins_since(cluster, before: dict[str, int]) -> dict[str, int]:
    return {host: count - before[host] for host, count in cluster.logins().items()}


def check_torn_down(bench: Observed, hosts: list[str]) -> None:
    assert len(bench.sockets) == len(hosts) and len(bench.masters) == len(hosts)
    assert not os.path.exists(bench.control_dir) and bench.ssh_connections.dir is None
    assert not any(m.is_running() and m.status() != psutil.STATUS_ZOMBIE for m in bench.masters)
    assert masters_of(bench.control_dir) == []
    assert CHILDREN.running() == []


def test_a_run_logs_in_once_per_host(mlpstorage_capture, ssh_cluster, tmp_path):
    hosts = ssh_cluster.hosts[:3]
    before = ssh_cluster.logins()
    bench = Observed(run_options(ssh_cluster, hosts, tmp_path), samples=2)
    bench.run()
    assert logins_since(ssh_cluster, before) == {h: 1 if h in hosts else 0 for h in ssh_cluster.hosts}
    for info in (bench.cluster_info_start, bench.cluster_info_end):
        assert [info[h]["hostname"] for h in hosts] == ssh_cluster.names[:3]
    assert all(len(bench.timeseries[h]) >= 2 for h in hosts), {h: len(s) for h, s in bench.timeseries.items()}
    assert mlpstorage_capture.messages("warning") == []
    # the sockets: in a private directory with a random name in the temporary area
    control_dir = Path(bench.control_dir)
    assert control_dir.parent == Path(tempfile.gettempdir()) and control_dir.name.startswith("mlpstorage-ssh-")
    assert bench.control_dir_mode == 0o700
    check_torn_down(bench, hosts)


@pytest.mark.parametrize("failure", [RuntimeError("the benchmark broke"), KeyboardInterrupt()],
                         ids=["exception", "interrupt"])
def test_a_failing_run_leaves_no_socket_and_no_master(mlpstorage_capture, ssh_cluster, tmp_path, failure):
    hosts = ssh_cluster.hosts[:2]
    before = ssh_cluster.logins()
    bench = Observed(run_options(ssh_cluster, hosts, tmp_path), samples=1, fail=failure)
    with pytest.raises(type(failure)):
        bench.run()
    assert logins_since(ssh_cluster, before) == {h: 1 if h in hosts else 0 for h in ssh_cluster.hosts}
    # the end-of-run collection ran after an exception (and was skipped after an interrupt)
    assert (bench.cluster_info_end is None) == isinstance(failure, KeyboardInterrupt)
    check_torn_down(bench, hosts)


def test_an_unreachable_host_is_tried_once_per_run(mlpstorage_capture, ssh_cluster, tmp_path):
    """Its master fails: each use of it (start, sampler, end) is one warning, with no new
    attempt; the good host proceeds on its one login."""
    good, bad = ssh_cluster.hosts[0], [ssh_cluster.refusing, ssh_cluster.silent]
    before, silent_before = ssh_cluster.logins(), ssh_cluster.silent_server.accepted
    bench = Observed(run_options(ssh_cluster, [good, *bad], tmp_path, timeout_s=2.0), samples=1)
    bench.run()
    assert logins_since(ssh_cluster, before)[good] == 1
    assert ssh_cluster.silent_server.accepted - silent_before == 1
    assert "error" not in bench.cluster_info_start[good] and "error" not in bench.cluster_info_end[good]
    assert "Connection refused" in bench.cluster_info_end[ssh_cluster.refusing]["error"]
    warnings = mlpstorage_capture.messages("warning")
    for host in bad:
        assert [w.split(":")[0] for w in warnings if host in w] == [
            f"No cluster information from {host}", f"No time series from {host}", f"No cluster information from {host}"]
    assert len(warnings) == 6
    assert len(bench.sockets) == 1 and not os.path.exists(bench.control_dir) and masters_of(bench.control_dir) == []


def test_a_master_lost_mid_run_is_replaced_by_a_direct_login(mlpstorage_capture, ssh_cluster, tmp_path):
    """A master that dies (here: killed, its socket left stale) is not restarted: the host's
    later uses connect directly, as without shared connections."""
    hosts = ssh_cluster.hosts[:2]

    class LosesOne(Observed):
        def _run(self):
            super()._run()
            lost = next(m for m in self.masters if hosts[0] in m.cmdline())
            lost.kill()
            lost.wait()

    before = ssh_cluster.logins()
    bench = LosesOne(run_options(ssh_cluster, hosts, tmp_path, skip_timeseries=True))
    bench.run()
    assert [logins_since(ssh_cluster, before)[h] for h in hosts] == [2, 1]
    assert [bench.cluster_info_end[h]["hostname"] for h in hosts] == ssh_cluster.names[:2]
    assert mlpstorage_capture.messages("warning") == []
    check_torn_down(bench, hosts)


def test_stopping_the_sampler_does_not_wait_for_the_remote_tick(mlpstorage_capture, ssh_cluster, tmp_path):
    """A session on a master lasts until its remote command ends, whatever its ssh is sent, and
    a remote sampler ends at its next write. So the sampler kills its ssh and reads no further:
    with a 60 s interval, the run is over while the remote samplers still sleep."""
    hosts = ssh_cluster.hosts[:2]

    def remote_samplers() -> set[int]:
        return {p for p in ssh_cluster.session_pids() if psutil.Process(p).cmdline()[-1:] == ["-"]}

    before = remote_samplers()
    bench = Observed(run_options(ssh_cluster, hosts, tmp_path, timeseries_interval=60.0), samples=1)
    bench.run()
    sleeping = remote_samplers() - before
    try:
        assert len(sleeping) == len(hosts)
        assert [len(bench.timeseries[h]) for h in hosts] == [1, 1]  # the sample at 0 s
        assert mlpstorage_capture.messages("warning") == []
        check_torn_down(bench, hosts)
    finally:
        for pid in sleeping:
            os.kill(pid, signal.SIGKILL)


def test_a_long_temporary_path_puts_the_sockets_in_tmp(tmp_path, monkeypatch):
    """A Unix socket's path is short (107 bytes): with a long $TMPDIR the directory goes to /tmp."""
    long_dir = tmp_path / ("x" * 80)
    long_dir.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(long_dir))
    path = ssh_module._private_dir()
    try:
        assert Path(path).parent == Path("/tmp") and stat.S_IMODE(os.stat(path).st_mode) == 0o700
    finally:
        os.rmdir(path)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL], ids=["SIGINT", "SIGTERM", "SIGKILL"])
def test_the_launcher_stopped_by_a_signal_leaves_no_master(ssh_cluster, tmp_path, sig):
    """Stopped mid-run, the CLI removes the sockets' directory; killed outright, its masters get
    SIGTERM from the kernel and remove their sockets (the empty directory stays)."""
    hosts = ssh_cluster.hosts[:2]
    temp = Path(tempfile.mkdtemp(prefix="t", dir="/tmp"))  # the launcher's $TMPDIR, short enough for sockets
    log = tmp_path / "stderr.txt"
    argv = [sys.executable, "-m", "mlpstorage", "exec", "--render", "plain", "--results-dir", str(tmp_path / "r"),
            "--ssh-config", str(ssh_cluster.config), "--timeseries-interval", "0.2", "--hosts", *hosts,
            "--", "sleep", "300"]
    try:
        with open(log, "w") as err:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                                    env={**base_env(), "TMPDIR": str(temp)})
            try:
                deadline = time.monotonic() + 60
                while not all(f"{h}: read " in log.read_text() for h in hosts):  # both samplers run
                    assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
                    time.sleep(0.05)
                [control_dir] = temp.glob("mlpstorage-ssh-*")
                masters = masters_of(str(control_dir))
                assert len([m for m in masters if "ControlMaster=yes" in m.cmdline()]) == len(hosts)
                proc.send_signal(sig)
                proc.wait(timeout=60)
            finally:
                if proc.poll() is None:
                    proc.kill()
        gone, alive = psutil.wait_procs(masters, timeout=15)
        assert alive == [], [m.cmdline() for m in alive]
        if sig == signal.SIGKILL:
            assert list(control_dir.iterdir()) == []
        else:
            assert not control_dir.exists()
    finally:
        shutil.rmtree(temp)
