"""mlpstorage inside a real Slurm allocation (munge, slurmctld and slurmd on this machine):
hosts from the allocation, the job id in the metadata and the trace's resource, plain lines in
the job log, and ranks launched by mpirun and by srun --mpi=pmix."""

from __future__ import annotations

import json
import re
import os
import socket
import subprocess
import sys

import pytest

from mlpstorage.slurm import tasks_per_node
from support import slurm as slurm_testing
from support.slurm import slurm  # noqa: F401 (a fixture: a real Slurm on this machine)

TINY = ["--params", "dataset.num_files_train=8", "dataset.record_length=65536", "dataset.record_length_stdev=0",
        "dataset.record_length_resize=65536", "checkpoint.model_size=65536"]
TINY_RUN = TINY + ["reader.batch_size=2", "reader.read_threads=1", "train.epochs=2", "train.computation_time=0.05"]


def test_task_counts_in_slurms_format():
    assert tasks_per_node("2(x3),1") == [2, 2, 2, 1]
    assert tasks_per_node("4") == [4]


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("slurm-data")
    result = subprocess.run([sys.executable, "-m", "mlpstorage", "training", "datagen", "--model", "unet3d",
                             "--data-dir", str(root / "data"), "-np", "2", "--results-dir", str(root / "gen"),
                             "--render", "none", *TINY], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return root / "data"


@pytest.mark.slow
@pytest.mark.parametrize("launcher", ["mpirun", "srun"])
def test_a_batch_job_runs_a_tiny_training_run(slurm, tiny_data, tmp_path, launcher):
    results = tmp_path / "results"
    job = slurm.sbatch([sys.executable, "-m", "mlpstorage", "training", "run", "--model", "unet3d",
                        "--data-dir", str(tiny_data), "-na", "2", "--mpi-bin", launcher, "--results-dir", str(results),
                        "--timeseries-interval", "0.5", *TINY_RUN], tasks=2)
    state = slurm.wait(job)
    log = slurm.output(job)
    assert state == "COMPLETED", log[-3000:]
    # auto rendering in a batch job is plain lines: no live frames
    assert "[3/4 Running benchmark] started" in log and "\x1b[" not in log
    assert re.search(r" RESULT  \[4/4 Processing results\] Training AU: [\d.]+%", log), log[-3000:]
    [metadata_file] = results.glob("training/unet3d/run/*/training_*_metadata.json")
    metadata = json.loads(metadata_file.read_text())
    assert metadata["slurm"]["slurm.job.id"] == job
    assert metadata["hosts"] == [f"{socket.gethostname()}:2"]  # the allocation: this node, 2 tasks
    executed = metadata["executed_command"]
    assert executed[0] == launcher and (("--mpi=pmix" in executed) == (launcher == "srun"))
    events = [json.loads(l) for l in (metadata_file.parent / "events.jsonl").read_text().splitlines()]
    ranks = [e for e in events if e["type"] == "task.finished" and e["name"].startswith("dlio rank")]
    assert len(ranks) == 2  # the rank launcher joined the trace under both launchers
    run = next(e for e in events if e["type"] == "run.finished")
    assert {r["trace_id"] for r in ranks} == {run["trace_id"]}


def test_srun_outside_an_allocation_is_one_line(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    result = subprocess.run([sys.executable, "-m", "mlpstorage", "training", "run", "--model", "unet3d", "--data-dir",
                             str(tmp_path), "--mpi-bin", "srun", "--what-if", "--results-dir", str(tmp_path)],
                            env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr == ("mlpstorage: error: --mpi-bin srun runs inside a Slurm allocation (sbatch or salloc); "
                             "use mpirun here\n")
