"""The preflight: every host checked before mpirun starts (mlpstorage/benchmarks/preflight.py).

The rules first, on reports as hosts send them (they read as the specification), then the
report's wire format, then real hosts: sshd test hosts that differ the way broken cluster
nodes do (a venv without DLIO, a data directory that is not shared, a clock off, a host that
refuses SSH), and the MPI (local mpirun) and Slurm (srun) channels, each passing and failing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mlpstorage.benchmarks.base import RunOptions
from mlpstorage.benchmarks.dlio import DlioOptions
from mlpstorage.benchmarks.preflight import EXIT_CODE, Preflight, PreflightFailed, PreflightResult, conclude
from mlpstorage.benchmarks.preflight_rules import (ERROR, WARNING, Finding, Markers, Needs, judge_host,
                                                   ranks_per_host, unreachable)
from mlpstorage.benchmarks.training import TrainingBenchmark
from mlpstorage.collectors import preflight as remote
from mlpstorage.collectors.ssh import SshConnections, SshOptions
from mlpstorage.emitter import Emitter
from mlpstorage.engines.mpi import MpiOptions
from mlpstorage.hosts import Host
from support.host_tweaks import FAKETIME_LIBRARY, HostTweak, clock_off
from support.otlp_sink import base_env
from support.slurm import slurm  # noqa: F401 (a fixture: a real Slurm on this machine)

VENV = sys.executable
OPEN_MPI = "Open MPI v4.1.4, package: Debian OpenMPI, ident: 4.1.4, repo rev: v4.1.4, May 26, 2022"


def here(**changes) -> dict:
    """A report as this host's script sends it for a training run, with changes."""
    report = {
        "schema": remote.SCHEMA, "hostname": "node1", "cores": 8,
        "memory": {"total_bytes": 64 * 2**30, "available_bytes": 60 * 2**30},
        "interpreter": {"path": VENV, "python": "3.11.7", "mpi_library": OPEN_MPI,
                        "modules": {"dlio_benchmark": {"version": "2.0.0"}, "mpi4py": {"version": "4.1.2"},
                                    "mlpstorage.engines.dlio_rank": {"version": "0.1.0"}}},
        "launcher": {"name": "mpirun", "path": "/usr/bin/mpirun", "version_output": "mpirun (Open MPI) 4.1.4\n"},
        "data": {"path": "/mnt/fs/unet3d", "exists": True, "files": 28000, "bytes": 28000 * 146600628,
                 "sample": {"train/img_00001_of_28000.npz": 146600628, "valid/img_1.npz": 146600628}},
        "writable": {"/mnt/fs/ckpt": {"path": "/mnt/fs/ckpt", "checked": "/mnt/fs/ckpt", "ok": True,
                                      "free_bytes": 10 * 2**40}},
        "markers": {"/results/.m": True, "/mnt/fs/.m": True},
    }
    for path, value in changes.items():  # "interpreter.modules.mpi4py" -> nested key
        *parents, last = path.split(".", 2) if path.startswith("interpreter.modules.") else path.split(".")
        target = report
        for key in parents:
            target = target[key]
        target[last] = value
    return report


def needs(**changes) -> Needs:
    base = Needs(interpreter=VENV, launcher="mpirun", ranks={"node2": 4}, data_dir="/mnt/fs/unet3d")
    for key, value in changes.items():
        setattr(base, key, value)
    return base


def findings(report: dict, reference: dict | None = None, offset: float | None = 0.0, **need) -> list[tuple[str, str]]:
    markers = Markers(results="/results/.m", checkpoint="/mnt/fs/.m" if "checkpoint_folder" in need else None)
    return [(f.severity, f.text) for f in judge_host("node2", report, reference or here(), needs(**need), markers, offset)]


# ----- the rules ---------------------------------------------------------------------------
def test_a_host_like_this_one_passes():
    assert findings(here(hostname="node2")) == []


def test_the_interpreter_missing_or_lacking_a_module_names_it_and_the_install():
    [(severity, text)] = findings(here(interpreter={"path": VENV, "error": "does not exist"}))
    assert severity == ERROR and text.startswith(f"the ranks' interpreter {VENV} does not exist: install the same venv")
    lacking = here(**{"interpreter.modules.dlio_benchmark": {"error": "ModuleNotFoundError: No module named 'x'"}})
    [(severity, text)] = findings(lacking)
    assert text == (f"{VENV} cannot import dlio_benchmark (ModuleNotFoundError: No module named 'x'): pip install "
                    "--no-deps dlio-benchmark==2.0.0 (and what it imports: scripts/setup.sh)")


def test_a_version_that_differs_from_this_hosts_fails():
    [(severity, text)] = findings(here(**{"interpreter.modules.mpi4py": {"version": "3.1.6"}}))
    assert severity == ERROR and text == f"mpi4py 3.1.6 there, 4.1.2 here: install mpi4py==4.1.2 into {VENV} on that host"


def test_one_mpi_everywhere_the_library_and_the_launcher():
    mpich = "MPICH Version:      4.0\nMPICH Release date: ..."
    library = here()
    library["interpreter"]["mpi_library"] = mpich
    [(_, text)] = findings(library)
    assert text.startswith("mpi4py there loads MPICH 4.0, but the run's MPI is Open MPI 4.1.4: load the same MPI")
    launcher = here(launcher={"name": "mpirun", "path": "/opt/ompi5/bin/mpirun",
                              "version_output": "mpirun (Open MPI) 5.0.3\n"})
    [(_, text)] = findings(launcher)
    assert text.startswith("mpirun there is Open MPI 5.0.3, here Open MPI 4.1.4:")
    [(_, text)] = findings(here(launcher={"name": "mpirun", "error": "not on PATH", "path_variable": "/usr/bin"}))
    assert text.startswith("mpirun not on PATH there (mpirun starts its daemon on each host from the PATH")
    assert findings(here(launcher=None), launcher=None) == []  # srun: no mpirun on the hosts


def test_a_data_set_that_differs_is_not_a_shared_directory():
    [(_, text)] = findings(here(data={"path": "/mnt/fs/unet3d", "exists": False}))
    assert text == ("no data directory /mnt/fs/unet3d (28000 files, 3822.91 GiB here): mount the same shared file "
                    "system at /mnt/fs/unet3d on every host")
    fewer = here(data={**here()["data"], "files": 27999})
    [(_, text)] = findings(fewer)
    assert "holds 27999 files" in text and "not the same data set, so not a shared directory" in text
    other = here()
    other["data"]["sample"]["valid/img_1.npz"] = None
    [(_, text)] = findings(other)
    assert text.startswith("1 of 2 sampled files differ from here (e.g. valid/img_1.npz): not the same data set")


def test_clock_offsets_warn_past_a_second_and_fail_past_the_limit():
    assert findings(here(), offset=0.9) == []
    [(severity, text)] = findings(here(), offset=-2.5)
    assert severity == WARNING and text.startswith("its clock is -2.5 s off this host's: its time series")
    [(severity, text)] = findings(here(), offset=45.0)
    assert severity == ERROR and text.startswith("its clock is +45.0 s off this host's (more than 30 s)")
    assert findings(here(), offset=None) == []  # not measured


def test_slots_beyond_the_cores_fail_unless_oversubscribing():
    small = here(cores=2)
    [(severity, text)] = findings(small)
    assert severity == ERROR and text.startswith("4 ranks are mapped to its 2 cores: give it fewer slots (HOST:2)")
    assert findings(small, oversubscribe=True) == []


def test_checkpoints_need_room_and_memory_for_the_hosts_share():
    gib = 2**30
    checkpoint = {"data_dir": None, "checkpoint_folder": "/mnt/fs/ckpt", "shard_bytes": 10 * gib, "checkpoints": 3,
                  "ranks": {"node2": 4, "node3": 4}}
    assert findings(here(), **checkpoint) == []
    tight = here(writable={"/mnt/fs/ckpt": {"ok": True, "free_bytes": 200 * gib, "checked": "/mnt/fs/ckpt"}})
    [(_, text)] = findings(tight, **checkpoint)  # shared: room for every rank's 3 checkpoints (240 GiB)
    assert text.startswith("/mnt/fs/ckpt has 200.00 GiB free for the 240.00 GiB the run writes (all ranks")
    tight["markers"]["/mnt/fs/.m"] = False  # node-local: its own 4 ranks' (120 GiB) fit
    assert findings(tight, **checkpoint) == []
    [(_, text)] = findings(here(memory={"total_bytes": 64 * gib, "available_bytes": 30 * gib}), **checkpoint)
    assert text.startswith("30.00 GiB of memory available for the 40.00 GiB its 4 ranks hold (DLIO keeps")
    unwritable = here(writable={"/mnt/fs/ckpt": {"ok": False, "error": "Read-only file system", "checked": "/mnt"}})
    [(_, text)] = findings(unwritable, **checkpoint)
    assert text.startswith("the checkpoint folder /mnt/fs/ckpt cannot be written there (/mnt: Read-only file system)")


def test_datagen_needs_a_writable_directory_and_warns_when_it_is_not_shared():
    gen = {"data_dir": None, "generate_into": "/mnt/fs/unet3d"}
    ok = here(writable={"/mnt/fs/unet3d": {"ok": True, "free_bytes": 1, "checked": "/mnt/fs"}})
    assert findings(ok, **gen) == []
    markers = Markers(results="/results/.m", data="/mnt/fs/.d")
    [found] = judge_host("node2", ok, here(), needs(**gen), markers, 0.0)
    assert found.severity == WARNING and "the files generated there stay on that host" in found.text


def test_a_results_folder_that_is_not_shared_is_a_warning():
    [(severity, text)] = findings(here(markers={"/results/.m": False}))
    assert severity == WARNING and text.startswith("the results folder is not shared with it")


def test_an_unreachable_host_says_how_to_reach_it():
    finding = unreachable("node9", "ssh: connect to host node9 port 22: Connection refused", "ssh")
    assert finding.line.startswith("node9: no preflight report over SSH (ssh: connect to host node9 port 22: "
                                   "Connection refused): check that it is up and that `ssh` logs in")


def test_ranks_are_mapped_by_slots_host_by_host_or_round_the_hosts():
    hosts = [Host("a", 4), Host("b", 4)]
    assert ranks_per_host(hosts, 6, "socket", False) == {"a": 4, "b": 2}
    assert ranks_per_host(hosts, 6, "node", False) == {"a": 3, "b": 3}
    assert ranks_per_host([Host("a"), Host("b")], 3, "socket", False) == {"a": 2, "b": 1}
    assert ranks_per_host([Host("a", 1), Host("b", 1)], 5, "socket", True) == {"a": 3, "b": 2}


def test_what_the_stage_says_and_when_it_stops(mlpstorage_capture):
    result = PreflightResult("ssh", ["node1", "node2", "node3"], {}, {},
                             [Finding("node2", ERROR, "broken"), Finding("node3", WARNING, "clock")], 1.5)
    emitter = Emitter()
    with pytest.raises(PreflightFailed) as raised:
        conclude(emitter, result, ignore=False)
    assert raised.value.exit_code == EXIT_CODE == 4
    assert str(raised.value).startswith("preflight: 1 of 3 hosts cannot run the benchmark (node2): fix what the lines")
    conclude(emitter, result, ignore=True)
    assert result.ignored and result.metadata()["failed"] == ["node2"]
    assert result.metadata()["per_host"]["node3"]["status"] == "warning"


def test_mpiruns_failure_is_said_in_its_own_words_not_its_banner():
    from mlpstorage.collectors.mpi import launcher_error

    refused = ("ssh: connect to host node3 port 22: Connection refused\n" + "-" * 74 +
               "\nORTE was unable to reliably start one or more daemons.\nThis usually is caused by:\n" + "-" * 74)
    assert launcher_error(refused) == "ssh: connect to host node3 port 22: Connection refused"
    assert launcher_error("-" * 74 + "\nmpirun was unable to launch the specified application\n" + "-" * 74) == (
        "mpirun was unable to launch the specified application")
    assert launcher_error("srun: error: Unable to create step\n") == "srun: error: Unable to create step"


# ----- the report on the wire ---------------------------------------------------------------
def test_pieces_of_many_ranks_come_back_whole_among_other_output():
    written: dict[int, list[str]] = {}
    reports = {rank: here(hostname=f"node{rank}", note="é" * 3000) for rank in (0, 1)}
    for rank, report in reports.items():
        remote.emit(report, rank, write=lambda data, r=rank: written.setdefault(r, []).append(data.decode()))
    assert len(written[0]) == len(written[1]) > 3 and all(len(p) < 4096 for p in written[0])
    # interleaved as mpirun forwards them, tagged, with a pty's \r\n and other lines between
    lines = ["[1,1]<stdout>:warning from a rank\r\n"]
    for k, (first, second) in enumerate(zip(written[1], written[0])):
        lines += [(k, f"[1,1]<stdout>:{first.rstrip()}\r\n"), (k, second)]
    got = remote.read_reports(lines)
    assert {rank: report for rank, (report, _) in got.items()} == reports
    assert got[0][1] == len(written[0]) - 1  # the arrival of the last piece
    assert remote.read_reports(lines[:-1]).keys() == {1}  # a rank with a piece missing is left out


def test_the_script_runs_with_the_standard_library_alone(tmp_path):
    (tmp_path / "d" / "train").mkdir(parents=True)
    (tmp_path / "d" / "train" / "a.npz").write_bytes(b"x" * 10)
    request = {"data": {"path": str(tmp_path / "d"), "sample": ["train/a.npz", "train/b.npz"]},
               "writable": [str(tmp_path / "new" / "folder")], "markers": [[str(tmp_path / "m"), "t"]]}
    (tmp_path / "m").write_text("t")
    done = subprocess.run([sys.executable, "-I", "-S", "-c", Path(remote.__file__).read_text(), json.dumps(request)],
                          capture_output=True, text=True, timeout=60)
    [(report, _)] = remote.read_reports(done.stdout.splitlines()).values()
    assert report["data"] == {"path": str(tmp_path / "d"), "exists": True, "files": 1, "bytes": 10,
                              "sample": {"train/a.npz": 10, "train/b.npz": None}}
    assert report["writable"][str(tmp_path / "new" / "folder")]["checked"] == str(tmp_path)
    assert report["markers"] == {str(tmp_path / "m"): True} and not list(tmp_path.glob(".mlpstorage-check-*"))



def test_without_mpirun_the_preflight_checks_here_and_says_so(mlpstorage_capture, tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a.npz").write_bytes(b"x" * 10)
    options = RunOptions(results_dir=tmp_path, hosts=["localhost"], mpi=MpiOptions(mpi_bin="no-such-mpirun"))
    needs = Needs(interpreter=None, launcher=None, data_dir=str(tmp_path / "d"))
    with SshConnections(options.ssh) as connections:
        result = Preflight(mlpstorage_capture.emitter, options, needs, "mpi", connections).run()
    [warning] = mlpstorage_capture.messages("warning")
    assert warning.startswith("Preflight via MPI failed (cannot run no-such-mpirun") and "checking locally" in warning
    assert result.channel == "local" and result.failed_hosts == [] and result.offsets == {"localhost": 0.0}
    # this host's data set, described from the one listing that also picked the sample
    assert result.reference["data"] == {"path": str(tmp_path / "d"), "exists": True, "files": 1, "bytes": 10,
                                        "sample": {"a.npz": 10}}
    assert result.reports["localhost"] is result.reference
    descriptions = [u["description"] for u in mlpstorage_capture.of_type("spinner.updated")]
    assert descriptions[-1] == "Checking locally... 1/1 hosts"

# ----- real hosts ----------------------------------------------------------------------------
def fake_data(folder: Path, files: int) -> Path:
    """A data folder that passes this host's validation (it counts names; nothing reads them)."""
    (folder / "train").mkdir(parents=True)
    (folder / "valid").mkdir()
    for i in range(files):
        (folder / "train" / f"img_{i}_of_{files}.npz").write_bytes(b"npz" * (i + 1))
    return folder


def training_run(tmp_path: Path, hosts: list[str], ssh_config, ignore: bool = False, collection: str = "ssh"):
    options = RunOptions(results_dir=tmp_path / "results", hosts=hosts, cluster_collection=collection,
                         skip_timeseries=True, ignore_preflight=ignore,
                         ssh=SshOptions(config=str(ssh_config) if ssh_config else None, timeout_s=5))
    dlio = DlioOptions(processes=1, params={"dataset.num_files_train": "4"})
    return NoLaunch(options, "unet3d", "run", dlio, tmp_path / "data")


class NoLaunch(TrainingBenchmark):
    """Everything of a training run but DLIO itself (mpirun onto the test hosts is not the point)."""

    launched = False

    def _run(self) -> None:
        self.launched = True


def require_faketime() -> None:
    if not os.path.exists(FAKETIME_LIBRARY):
        if os.environ.get("CI"):
            pytest.fail("faketime is not installed (scripts/setup.sh --tests installs it)")
        pytest.skip("faketime is not installed: apt-get install faketime")


def dlio_folder() -> str:
    import importlib.util

    return importlib.util.find_spec("dlio_benchmark").submodule_search_locations[0]


@pytest.mark.slow
def test_broken_hosts_over_ssh_each_one_line_and_the_run_stops_before_mpirun(mlpstorage_capture, make_ssh_cluster,
                                                                              tmp_path):
    require_faketime()
    data, other = fake_data(tmp_path / "data", 4), fake_data(tmp_path / "other", 3)
    addresses = [f"127.0.0.{i}" for i in range(2, 6)]
    cluster = make_ssh_cluster(4, silent=None, tweaks={
        addresses[1]: HostTweak(empty=(dlio_folder(),)),  # the venv at the same path lacks DLIO there
        addresses[2]: HostTweak(bind=((str(other), str(data)),)),  # a data directory of its own
        addresses[3]: clock_off(5),
    })
    good, no_dlio, own_data, late = cluster.hosts
    hosts = [*cluster.hosts, cluster.refusing]
    benchmark = training_run(tmp_path, hosts, cluster.config)
    with pytest.raises(PreflightFailed) as raised:
        benchmark.run()
    assert raised.value.exit_code == 4 and not benchmark.launched
    errors = mlpstorage_capture.messages("error")
    assert errors[0] == (f"{no_dlio}: {VENV} cannot import dlio_benchmark (ModuleNotFoundError: No module named "
                         "'dlio_benchmark.main'): pip install --no-deps dlio-benchmark==2.0.0 (and what it imports: "
                         "scripts/setup.sh)")
    assert errors[1] == (f"{own_data}: {data} holds 3 files, 18 bytes (4 files, 30 bytes here): not the same data "
                         f"set, so not a shared directory: mount the same shared file system at {data} on every host")
    assert errors[2].startswith(f"{cluster.refusing}: no preflight report over SSH (") and "refused" in errors[2]
    assert len(errors) == 3  # good and late pass
    [clock] = [w for w in mlpstorage_capture.messages("warning") if "clock" in w]
    offset = float(clock.split("its clock is ")[1].split(" s")[0])
    assert clock.startswith(f"{late}: its clock is +") and 4.5 < offset < 5.5, clock
    assert any(m.startswith("Preflight via SSH: 2 of 5 hosts passed in ") for m in mlpstorage_capture.messages("info"))
    descriptions = [u["description"] for u in mlpstorage_capture.of_type("spinner.updated")]
    assert descriptions[0] == "Checking via SSH..." and descriptions[-1] == "Checking via SSH... 5/5 hosts"
    spans = {e["name"]: e["status"] for e in mlpstorage_capture.of_type("task.finished")}
    assert spans[f"preflight {cluster.refusing}"] == "error" and spans[f"preflight {good}"] == "ok"
    # stopped in validation: no run folder, and the marker files are gone
    assert not (tmp_path / "results").exists() and not list(tmp_path.glob(".mlpstorage-preflight-*"))

    benchmark = training_run(tmp_path, hosts, cluster.config, ignore=True)  # --ignore-preflight: it goes on
    benchmark.run()
    assert benchmark.launched
    preflight = json.loads(next(benchmark.run_dir.glob("*_metadata.json")).read_text())["preflight"]
    assert preflight["channel"] == "ssh" and preflight["ignored"] and preflight["passed"] == 2
    assert preflight["failed"] == [no_dlio, own_data, cluster.refusing]
    per_host = preflight["per_host"]
    assert [per_host[h]["status"] for h in hosts] == ["ok", "failed", "failed", "warning", "failed"]
    assert per_host[good]["hostname"] == "node2" and abs(per_host[good]["clock_offset_s"]) < 0.5
    assert per_host[good]["versions"]["dlio_benchmark"] == "2.0.0"
    [(marker, shared)] = per_host[good]["shared"].items()  # the results folder, seen from there
    assert shared and Path(marker).parent == tmp_path and not Path(marker).exists()
    assert per_host[own_data]["data"] == {"exists": True, "files": 3, "bytes": 18}
    assert preflight["this_host"]["data"] == {"exists": True, "files": 4, "bytes": 30}
    assert preflight["this_host"]["launcher"] == per_host[good]["launcher"]


@pytest.mark.slow
def test_the_cli_checks_over_ssh_and_only_checks(ssh_cluster, tmp_path):
    fake_data(tmp_path / "data", 4)

    def preflight_only(*hosts):
        argv = [sys.executable, "-m", "mlpstorage", "training", "run", "--model", "unet3d", "--data-dir",
                str(tmp_path / "data"), "-p", "dataset.num_files_train=4", "--hosts", *hosts, "--cluster-collection",
                "ssh", "--ssh-config", str(ssh_cluster.config), "--ssh-timeout", "3", "--preflight-only",
                "--render", "plain", "--results-dir", str(tmp_path / "results")]
        return subprocess.run(argv, capture_output=True, text=True, env=base_env(), timeout=120)

    passing = preflight_only(ssh_cluster.hosts[0])
    assert passing.returncode == 0, passing.stderr
    assert "Preflight via SSH: 1 of 1 host passed in " in passing.stderr
    assert "Preflight only: nothing was run" in passing.stderr
    failing = preflight_only(ssh_cluster.hosts[0], ssh_cluster.refusing)
    assert failing.returncode == 4
    assert f"ERROR   [1/4 Validating environment] {ssh_cluster.refusing}: no preflight report over SSH" in failing.stderr
    assert failing.stderr.splitlines()[-1] == (
        f"mlpstorage: error: preflight: 1 of 2 hosts cannot run the benchmark ({ssh_cluster.refusing}): fix what the "
        "lines above say, or pass --ignore-preflight to run anyway")
    assert not (tmp_path / "results").exists()


def mlpstorage(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mlpstorage", *args, "--render", "plain"], capture_output=True,
                          text=True, env=base_env(), timeout=timeout, stdin=subprocess.DEVNULL)


@pytest.mark.slow
def test_through_local_mpirun_a_run_that_fits_and_a_checkpoint_that_does_not(tmp_path):
    fake_data(tmp_path / "data", 4)
    passing = mlpstorage("training", "run", "--model", "unet3d", "--data-dir", str(tmp_path / "data"), "-p",
                         "dataset.num_files_train=4", "--cluster-collection", "mpi", "--preflight-only",
                         "--results-dir", str(tmp_path / "results"))
    assert passing.returncode == 0, passing.stderr
    assert "Preflight via MPI: 1 of 1 host passed in " in passing.stderr
    # llama3-1t's checkpoint from one rank: 14 TB, more than this machine's disk and memory
    failing = mlpstorage("checkpointing", "run", "--model", "llama3-1t", "-np", "1", "--num-checkpoints", "1",
                         "--checkpoint-folder", str(tmp_path / "ckpt"), "--cluster-collection", "mpi",
                         "--preflight-only", "--results-dir", str(tmp_path / "results"))
    assert failing.returncode == 4, failing.stderr
    errors = [line.split("] ", 1)[1] for line in failing.stderr.splitlines() if " ERROR " in line and "] " in line]
    assert errors[0].startswith(f"localhost: {tmp_path / 'ckpt'} has ") and "free for the " in errors[0]
    assert errors[1].startswith("localhost: ") and "of memory available for the " in errors[1]
    assert not (tmp_path / "results").exists() and not (tmp_path / "ckpt").exists()


@pytest.mark.slow
def test_through_local_mpirun_an_interpreter_without_dlio(mlpstorage_capture, tmp_path):
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(tmp_path / "bare")], check=True, timeout=120)
    bare = str(tmp_path / "bare" / "bin" / "python")
    options = RunOptions(results_dir=tmp_path, hosts=["localhost"], mpi=MpiOptions())
    needs = Needs(interpreter=bare, launcher="mpirun", ranks={"localhost": 1})
    with SshConnections(options.ssh) as connections:
        result = Preflight(Emitter(), options, needs, "mpi", connections).run()
    assert result.channel == "mpi" and result.failed_hosts == ["localhost"]
    texts = [f.text for f in result.findings]
    assert texts[0].startswith(f"{bare} cannot import dlio_benchmark (ModuleNotFoundError")
    assert any(t.startswith(f"{bare} cannot import mpi4py") for t in texts)
    assert abs(result.offsets["localhost"]) < 0.5  # measured from when its report arrived


@pytest.mark.slow
def test_through_srun_in_a_slurm_allocation(slurm, tmp_path):
    fake_data(tmp_path / "data", 4)
    common = ["--cluster-collection", "mpi", "--mpi-bin", "srun", "--preflight-only", "--render", "plain",
              "--results-dir", str(tmp_path / "results")]
    run = [sys.executable, "-m", "mlpstorage", "training", "run", "--model", "unet3d", "--data-dir",
           str(tmp_path / "data"), "-p", "dataset.num_files_train=4", *common]
    checkpoint = [sys.executable, "-m", "mlpstorage", "checkpointing", "run", "--model", "llama3-1t", "-np", "1",
                  "--num-checkpoints", "1", "--checkpoint-folder", str(tmp_path / "ckpt"), *common]
    passing, failing = slurm.sbatch(run, tasks=1), slurm.sbatch(checkpoint, tasks=1)
    assert slurm.wait(passing) == "COMPLETED", slurm.output(passing)[-3000:]
    assert "Preflight via Slurm (srun): 1 of 1 host passed in " in slurm.output(passing)
    assert slurm.wait(failing) == "FAILED"
    log = slurm.output(failing)
    assert "free for the " in log and "of memory available for the " in log
    assert "mlpstorage: error: preflight: 1 of 1 hosts cannot run the benchmark" in log
