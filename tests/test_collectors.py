"""Host information and time series: the /proc readers, the fixed-rate sampler, and
collection under real MPI (SSH collection against real sshd hosts: test_ssh_collection.py)."""

import json
import sys
import threading

import pytest

from mlpstorage.benchmarks.base import Benchmark, RunOptions
from mlpstorage.benchmarks.cluster import summarise_hosts
from mlpstorage.collectors import hostinfo
from mlpstorage.collectors.timeseries import Timeseries
from mlpstorage.engines.mpi import MpiOptions
from mlpstorage.hosts import is_local_host, parse_hosts
from mlpstorage.errors import UsageError


class Quick(Benchmark):
    BENCHMARK_TYPE = "test"

    def __init__(self, options):
        super().__init__(options, model="m", command="run")

    def _run(self):
        pass


def test_local_host_information_has_the_schema(tmp_path):
    info = hostinfo.collect_local(str(tmp_path))
    assert info["schema"] == hostinfo.SCHEMA
    assert info["cpu"]["cores"] >= 1 and info["memory"]["total_bytes"] > 0
    assert info["os"]["kernel"] and len(info["load"]) == 3
    assert isinstance(info["disks"], dict) and "lo" in info["network"]
    assert info["data_mount"]["mount_point"] in [p for p in ["/", *map(str, tmp_path.parents)] if p]


class FakeTime:
    """The sampler's clocks and its wait, moved by hand: time passes only while the sampler
    waits, and each wait ends `late` seconds after it was due (scheduler jitter, a slow
    sample)."""

    WALL_START_NS = 1_800_000_000_000_000_000

    def __init__(self, lateness: list[float]):
        self.now = 500.0
        self.lateness = list(lateness)
        self.waits: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def wall_ns(self) -> int:
        return self.WALL_START_NS + round((self.now - 500.0) * 1e9)

    def wait(self, timeout: float) -> bool:  # stop(timeout): never asked to stop
        self.waits.append(timeout)
        self.now += timeout + self.lateness.pop(0)
        return False


def test_samples_come_at_a_fixed_rate_without_drift():
    interval = 0.2
    # the fifth wait overruns into the next tick, which then comes at once
    fake = FakeTime([0.0, 0.05, 0.13, 0.0, 0.3, 0.02, 0.0])
    got = list(hostinfo.samples(interval, 8, stop=fake.wait, clock=fake.monotonic, wall_clock_ns=fake.wall_ns))
    assert len(got) == 8 and fake.lateness == []
    # every wait aims at start + k * interval, not at the previous sample + interval ...
    assert fake.waits == pytest.approx([0.2, 0.2, 0.15, 0.07, 0.2, 0.0, 0.08])
    # ... so a sample is never early, late only by its own wait's lateness, and nothing adds up
    elapsed = [s["elapsed_s"] for s in got]
    assert elapsed == pytest.approx([0.0, 0.2, 0.45, 0.73, 0.8, 1.3, 1.32, 1.4])
    assert [s["timestamp_ns"] for s in got] == [FakeTime.WALL_START_NS + round(e * 1e9) for e in elapsed]
    assert got[0]["read_Bps"] == 0.0 and all(s["read_Bps"] >= 0 for s in got)


def test_sample_rates_are_per_second_since_the_previous_sample(monkeypatch):
    reads = iter(range(0, 10_000, 1000))
    monkeypatch.setattr(hostinfo, "snapshot", lambda: {"read_bytes": next(reads), "write_bytes": 0, "rx_bytes": 0,
                                                       "tx_bytes": 0, "mem_available_bytes": 1, "load1": 0.0})
    fake = FakeTime([0.0, 0.3, 0.0])
    got = list(hostinfo.samples(0.5, 4, stop=fake.wait, clock=fake.monotonic))
    # 1000 bytes between samples 0.5, 0.8 and 0.2 s apart
    assert [s["read_Bps"] for s in got] == pytest.approx([0.0, 2000.0, 1250.0, 5000.0])


def test_stop_ends_sampling_early():
    waits = []
    got = list(hostinfo.samples(10.0, 5, stop=lambda timeout: waits.append(timeout) or len(waits) == 2))
    assert len(got) == 2 and len(waits) == 2


def test_sample_limit_stops_sampling_with_one_warning():
    seen, warnings = [], []
    series = Timeseries(["localhost"], 0.02, 3, on_sample=lambda h, s: seen.append(h), on_limit=warnings.append)
    series.start()
    [sampler] = series.samplers
    sampler._thread.join(timeout=5)
    result = series.stop()
    assert seen == ["localhost"] * 3 and len(result["localhost"]) == 3
    assert warnings == [3]


def test_samples_are_events_span_events_and_a_file(mlpstorage_capture, tmp_path):
    bench = Quick(RunOptions(results_dir=tmp_path, timeseries_interval=0.05))
    ran = threading.Event()
    bench._run = lambda: ran.wait(0.4)
    bench.run()
    samples = mlpstorage_capture.of_type("sample")
    assert len(samples) >= 3 and {s["host"] for s in samples} == {"localhost"}
    assert all(s["stage_index"] == 3 for s in samples)
    running = next(s for s in mlpstorage_capture.spans if s.name == "Running benchmark")
    series = [e for e in running.events if e.name == "timeseries.sample"]
    assert len(series) == len(samples) and series[0].attributes["host"] == "localhost"
    written = json.loads(next(bench.run_dir.glob("*_timeseries.json")).read_text())
    assert len(written["hosts"]["localhost"]) == len(samples) and written["interval_s"] == 0.05


@pytest.mark.slow
def test_collection_under_real_mpi(mlpstorage_capture, tmp_path):
    bench = Quick(RunOptions(results_dir=tmp_path, cluster_collection="mpi", skip_timeseries=True))
    bench.run()
    assert [u["description"] for u in mlpstorage_capture.of_type("spinner.updated")] == ["Collecting via MPI..."] * 2
    [info] = bench.cluster_info_start.values()
    assert info["schema"] == hostinfo.SCHEMA and info["memory"]["total_bytes"] > 0
    assert mlpstorage_capture.messages("warning") == []


def test_failed_mpi_collection_falls_back_with_a_warning(mlpstorage_capture, tmp_path):
    options = RunOptions(results_dir=tmp_path, cluster_collection="mpi", skip_timeseries=True,
                         mpi=MpiOptions(mpi_bin="no-such-mpirun"))
    bench = Quick(options)
    bench.run()
    warnings = mlpstorage_capture.messages("warning")
    assert len(warnings) == 2  # once at start, once at end
    assert warnings[0].startswith("MPI collection failed (cannot run no-such-mpirun") and "locally instead" in warnings[0]
    assert bench.cluster_info_start and "error" not in next(iter(bench.cluster_info_start.values()))


def test_dlio_workloads_collect_via_mpi_when_hosts_are_remote(tmp_path):
    from mlpstorage.benchmarks.dlio import DlioOptions
    from mlpstorage.benchmarks.training import TrainingBenchmark

    def method(hosts):
        options = RunOptions(results_dir=tmp_path, hosts=hosts)
        return TrainingBenchmark(options, "unet3d", "run", DlioOptions(), tmp_path).collection_method()

    assert method(["localhost"]) == "local"
    assert method(["node1", "node2"]) == "mpi"
    assert Quick(RunOptions(results_dir=tmp_path, hosts=["node1"])).collection_method() == "ssh"


@pytest.mark.parametrize("bad", ["-oProxyCommand=x", "node;rm", "a b", "$(id)", "node:0", "node:x", "", "a" * 64])
def test_bad_host_strings_are_refused(bad):
    with pytest.raises(UsageError):
        parse_hosts([bad])


def test_host_strings_and_local_names():
    assert [str(h) for h in parse_hosts(["node1:4,node2", "10.0.0.7"])] == ["node1:4", "node2", "10.0.0.7"]
    assert is_local_host("localhost:8") and is_local_host("127.0.0.1")
    assert not is_local_host("127.0.0.2")


def test_summary_names_hosts_that_differ_or_failed():
    base = {"cpu": {"model": "X", "cores": 8}, "memory": {"total_bytes": 64}, "os": {"kernel": "6.1"}}
    infos = {"a": base, "b": base, "c": {**base, "memory": {"total_bytes": 32}}, "d": {"hostname": "d", "error": "x"}}
    summary = summarise_hosts(infos)
    assert summary == {"host_count": 4, "hosts_without_information": ["d"], "total_memory_bytes": 160,
                       "total_cores": 24, "differing_hosts": ["c"]}


def test_the_collector_script_runs_with_python_alone(tmp_path):
    import subprocess

    from mlpstorage.collectors.ssh import remote_script

    # what a remote host runs: the module's source on stdin, no mlpstorage installed
    result = subprocess.run([sys.executable, "-I", "-"], input=remote_script("collect", str(tmp_path)),
                            capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["schema"] == hostinfo.SCHEMA


def test_mpi_host_list_spreads_ranks_and_counts_slots():
    from mlpstorage.engines.mpi import host_list

    assert host_list(parse_hosts(["node1", "node2"]), 4) == "node1:2,node2:2"
    assert host_list(parse_hosts(["node1:1", "node2"]), 4) == "node1:1,node2:3"
    assert host_list(parse_hosts(["node1:3", "node2:3"]), 4) == "node1:3,node2:3"
    with pytest.raises(UsageError, match="the hosts offer 3 slots for 4 processes"):
        host_list(parse_hosts(["node1:1", "node2:2"]), 4)
    assert host_list(parse_hosts(["node1:1", "node2:2"]), 4, oversubscribe=True) == "node1:1,node2:2"
