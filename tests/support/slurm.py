"""A real Slurm on this one machine for tests: munge, slurmctld and slurmd from Debian's
slurm-wlm, loopback only, with a configuration of their own (SLURM_CONF in a temporary
folder; nothing under /etc is read or changed). Jobs inherit SLURM_CONF.

    with slurm_on_this_machine(folder) as slurm:
        job = slurm.sbatch(["mlpstorage", "training", "run", ...], tasks=2)
        slurm.wait(job)
        log = slurm.output(job)
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest
from dataclasses import dataclass
from pathlib import Path

from .ports import free_port

PROGRAMS = ("munged", "mungekey", "slurmctld", "slurmd", "sbatch", "squeue", "sinfo", "scontrol")

CONFIG = """ClusterName=mlpstorage-test
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={d_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={run}/munge.sock
StateSaveLocation={folder}/state
SlurmdSpoolDir={folder}/spool
SlurmctldPidFile={run}/slurmctld.pid
SlurmdPidFile={run}/slurmd.pid
SlurmctldLogFile={folder}/log/slurmctld.log
SlurmdLogFile={folder}/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SchedulerParameters=batch_sched_delay=0
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
MpiDefault=pmix
TmpFS={folder}/tmp
MailProg=/bin/true
ReturnToService=2
{node} NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=test Nodes={host} Default=YES MaxTime=INFINITE State=UP
"""


def missing() -> list[str]:
    return [p for p in PROGRAMS if shutil.which(p) is None]


@dataclass
class Slurm:
    folder: Path
    env: dict[str, str]

    def sbatch(self, argv: list[str], tasks: int, env: dict[str, str] | None = None) -> str:
        """Submits argv (quoted into the job script, never a user's shell string) as a batch job."""
        script = self.folder / f"job-{time.monotonic_ns()}.sh"
        script.write_text("#!/bin/sh\nexec " + shlex.join(argv) + "\n")
        out = subprocess.run(["sbatch", "--parsable", "-n", str(tasks), "-o", str(self.folder / "job-%j.out"),
                              str(script)], env={**self.env, **(env or {})}, capture_output=True, text=True,
                             timeout=30)
        if out.returncode != 0:
            raise RuntimeError(f"sbatch failed: {out.stderr.strip()}")
        return out.stdout.strip().split(";")[0]

    def wait(self, job: str, timeout: float = 300) -> str:
        """Waits until the job has left the queue; returns its final state (as scontrol says)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            queued = subprocess.run(["squeue", "-h", "-j", job], env=self.env, capture_output=True, text=True)
            if queued.returncode != 0 or not queued.stdout.strip():
                break
            time.sleep(0.5)
        else:
            raise TimeoutError(f"job {job} still queued or running after {timeout:g} s")
        info = subprocess.run(["scontrol", "show", "job", job, "-o"], env=self.env, capture_output=True, text=True)
        for field in info.stdout.split():
            if field.startswith("JobState="):
                return field.split("=", 1)[1]
        return "UNKNOWN"

    def output(self, job: str) -> str:
        return (self.folder / f"job-{job}.out").read_text(errors="replace")


@contextlib.contextmanager
def slurm_on_this_machine(folder: Path):
    folder = Path(folder)
    # munged wants every folder above its socket to be searchable by all (a test's own temporary
    # folder is private): the sockets and pid files go in a folder of their own in /tmp.
    run = Path(tempfile.mkdtemp(prefix="mlpstorage-slurm-run-"))
    os.chmod(run, 0o755)
    for sub in ("state", "spool", "log", "tmp", "munge"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    os.chmod(folder / "munge", 0o700)
    host = socket.gethostname()
    node = subprocess.run(["slurmd", "-C"], capture_output=True, text=True, timeout=30).stdout.splitlines()[0]
    (folder / "slurm.conf").write_text(CONFIG.format(host=host, node=node, folder=folder, run=run,
                                                     ctld_port=free_port(), d_port=free_port()))
    env = {**os.environ, "SLURM_CONF": str(folder / "slurm.conf")}
    key = folder / "munge" / "munge.key"
    subprocess.run(["mungekey", "-c", "-k", str(key)], check=True, capture_output=True, timeout=30)
    subprocess.run(["munged", "-S", str(run / "munge.sock"), f"--key-file={key}", f"--pid-file={run / 'munged.pid'}",
                    f"--log-file={folder / 'log' / 'munged.log'}", f"--seed-file={folder / 'munge' / 'seed'}"],
                   check=True, capture_output=True, timeout=30)
    daemons = [subprocess.Popen([name, "-D"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True) for name in ("slurmctld", "slurmd")]
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            state = subprocess.run(["sinfo", "-h", "-o", "%T"], env=env, capture_output=True, text=True).stdout.strip()
            if state == "idle":
                break
            time.sleep(0.3)
        else:
            raise RuntimeError(f"Slurm never became idle; slurmctld log:\n{(folder / 'log' / 'slurmctld.log').read_text()[-2000:]}")
        yield Slurm(folder, env)
    finally:
        for daemon in daemons:
            if daemon.poll() is None:
                daemon.send_signal(signal.SIGTERM)
        for daemon in daemons:
            try:
                daemon.wait(timeout=20)
            except subprocess.TimeoutExpired:
                daemon.kill()
                daemon.wait()
        pid_file = run / "munged.pid"
        if pid_file.exists():
            try:
                os.kill(int(pid_file.read_text().strip()), signal.SIGTERM)
            except (ValueError, ProcessLookupError):
                pass
        shutil.rmtree(run, ignore_errors=True)


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    """A real Slurm on this machine for a test module (skipped when it is not installed; a
    failure under CI, where scripts/setup.sh installs it)."""
    absent = missing()
    if absent:
        if os.environ.get("CI"):
            pytest.fail(f"{', '.join(absent)} not installed (scripts/setup.sh installs slurm-wlm and munge)")
        pytest.skip(f"{', '.join(absent)} not installed: run scripts/setup.sh")
    with slurm_on_this_machine(tmp_path_factory.mktemp("slurm")) as cluster:
        yield cluster
