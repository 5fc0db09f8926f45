"""SSH cluster collection and time series against real sshd hosts
(tests/support/sshd_hosts.py)."""

import json
import subprocess
import sys
import time

import pytest

from mlpstorage.benchmarks.base import Benchmark, RunOptions
from mlpstorage.collectors.ssh import SshOptions
from support.otlp_sink import base_env

pytestmark = pytest.mark.slow


class Quick(Benchmark):
    BENCHMARK_TYPE = "test"

    def __init__(self, options, seconds=0.0):
        super().__init__(options, model="m", command="run")
        self.seconds = seconds

    def _run(self):
        time.sleep(self.seconds)


def test_ssh_collection_of_good_refusing_and_silent_hosts(mlpstorage_capture, ssh_cluster, tmp_path):
    timeout = 3.0
    hosts = ssh_cluster.hosts + [ssh_cluster.refusing, ssh_cluster.silent]
    options = RunOptions(results_dir=tmp_path, hosts=hosts, cluster_collection="ssh", skip_timeseries=True,
                         ssh=SshOptions(config=str(ssh_cluster.config), timeout_s=timeout))
    bench = Quick(options)
    bench.run()
    info = bench.cluster_info_start
    assert [info[h]["hostname"] for h in ssh_cluster.hosts] == ssh_cluster.names  # node2, node3, ...
    assert all(info[h]["schema"] == "mlpstorage.hostinfo/1" for h in ssh_cluster.hosts)
    assert "Connection refused" in info[ssh_cluster.refusing]["error"]
    assert "error" in info[ssh_cluster.silent]
    # the spinner: its text counts hosts, each host is a child span, failures are per host
    spinner = next(e for e in mlpstorage_capture.of_type("spinner.finished"))
    assert spinner["name"] == f"Collecting cluster info ({len(hosts)} hosts)..."
    descriptions = [u["description"] for u in mlpstorage_capture.of_type("spinner.updated")][: len(hosts) + 1]
    assert descriptions[0] == "Collecting via SSH..."
    assert descriptions[1:] == [f"Collecting via SSH... {k}/{len(hosts)} hosts" for k in range(1, len(hosts) + 1)]
    host_spans = [e for e in mlpstorage_capture.of_type("task.finished") if e["name"].startswith("host ")]
    assert len(host_spans) == 2 * len(hosts)  # at start and at end
    first = host_spans[: len(hosts)]
    assert all(e["parent_span_id"] == spinner["span_id"] for e in first)
    status = {e["name"]: e["status"] for e in first}
    assert status[f"host {ssh_cluster.refusing}"] == "error" and status[f"host {ssh_cluster.silent}"] == "error"
    assert all(status[f"host {h}"] == "ok" for h in ssh_cluster.hosts)
    warnings = mlpstorage_capture.messages("warning")
    assert len(warnings) == 4  # one per failing host, at start and at end
    assert sum(ssh_cluster.refusing in w for w in warnings) == 2
    # bounded by the timeout (the hosts run in parallel), not by the number of hosts
    assert spinner["duration_s"] < timeout + 3
    summary = json.loads(next(bench.run_dir.glob("*_metadata.json")).read_text())["cluster"]
    assert summary["host_count"] == len(hosts)
    assert summary["hosts_without_information"] == sorted([ssh_cluster.refusing, ssh_cluster.silent])


def test_time_series_over_ssh_from_every_host(mlpstorage_capture, ssh_cluster, tmp_path):
    hosts = ssh_cluster.hosts[:2] + ["localhost"]
    options = RunOptions(results_dir=tmp_path, hosts=hosts, cluster_collection="none", timeseries_interval=0.25,
                         ssh=SshOptions(config=str(ssh_cluster.config)))
    bench = Quick(options, seconds=2.5)
    bench.run()
    samples = mlpstorage_capture.of_type("sample")
    by_host = {h: [s for s in samples if s["host"] == h] for h in hosts}
    assert all(len(by_host[h]) >= 4 for h in hosts), {h: len(v) for h, v in by_host.items()}
    written = json.loads(next(bench.run_dir.glob("*_timeseries.json")).read_text())
    assert set(written["hosts"]) == set(hosts) and written["errors"] == {}
    for host in ssh_cluster.hosts[:2]:
        series = written["hosts"][host]
        stamps = [s["timestamp_ns"] for s in series]
        assert stamps == sorted(stamps)
        for k, sample in enumerate(series):  # the remote side keeps the fixed schedule too
            assert k * 0.25 - 0.001 <= sample["elapsed_s"] < k * 0.25 + 0.2


def test_time_series_from_an_unreachable_host_is_one_warning(mlpstorage_capture, ssh_cluster, tmp_path):
    options = RunOptions(results_dir=tmp_path, hosts=["localhost", ssh_cluster.refusing], cluster_collection="none",
                         timeseries_interval=0.2, ssh=SshOptions(config=str(ssh_cluster.config), timeout_s=2))
    Quick(options, seconds=0.6).run()
    warnings = mlpstorage_capture.messages("warning")
    assert len(warnings) == 1 and warnings[0].startswith(f"No time series from {ssh_cluster.refusing}: ")
    assert {s["host"] for s in mlpstorage_capture.of_type("sample")} == {"localhost"}


def test_cli_collects_over_ssh_and_refuses_bad_names(ssh_cluster, tmp_path):
    argv = [sys.executable, "-m", "mlpstorage", "exec", "--render", "plain", "--results-dir", str(tmp_path),
            "--ssh-config", str(ssh_cluster.config), "--timeseries-interval", "0.5", "--hosts", *ssh_cluster.hosts,
            "--", sys.executable, "-c", "import time; time.sleep(1.2)"]
    result = subprocess.run(argv, capture_output=True, text=True, env=base_env(), timeout=120)
    assert result.returncode == 0, result.stderr
    assert f"Collecting via SSH... {len(ssh_cluster.hosts)}/{len(ssh_cluster.hosts)} hosts" in result.stderr
    assert f"{ssh_cluster.hosts[0]}: read " in result.stderr  # a plain line per sample
    for bad in ssh_cluster.bad_names:
        refused = subprocess.run([sys.executable, "-m", "mlpstorage", "exec", "--results-dir", str(tmp_path / "bad"),
                                  f"--hosts={bad}", "--", "true"], capture_output=True, text=True, env=base_env())
        assert refused.returncode == 2 and ("invalid host" in refused.stderr or "no hosts given" in refused.stderr), bad
    assert not (tmp_path / "bad").exists()
