"""A real DLIO run given secrets with --params: each value reaches the ranks in their
environment only. No command line (mpirun's, a rank's, read from /proc while they run), no file
of the run (hydra's dlio_config/, events.jsonl, the metadata, the page, DLIO's logs) and nothing
exported holds it."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from omegaconf import OmegaConf

from mlpstorage.redaction import REDACTED
from support.otlp_sink import start_sink
from test_dlio import TINY, only_run_dir

pytestmark = pytest.mark.slow

# keys DLIO 2.0.0 does not read (none it reads is a secret), so --allow-invalid-params
SECRETS = {"reader.storage_options.secret_key": "s3cr3t-P7k", "storage.password": "pw-Q9x'${y}",
           "storage.auth_token": "tok-Z7yq"}


def watch_tree(proc: subprocess.Popen) -> dict[int, tuple[set[str], dict[str, str], int]]:
    """pid -> (its command lines, its MLPSTORAGE_SECRET_* variables, its parent pid) for every
    process below PROC, read from /proc as any user of the host could, every 20 ms until PROC
    ends (a process read between its fork and its exec still shows its parent's command line)."""
    seen: dict[int, tuple[set[str], dict[str, str], int]] = {}
    while proc.poll() is None:
        try:
            children = psutil.Process(proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            break
        for child in children:
            try:
                cmdline = Path(f"/proc/{child.pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                environ = Path(f"/proc/{child.pid}/environ").read_bytes().split(b"\0")
                parent = child.ppid()
            except (OSError, psutil.Error):
                continue
            cmdlines, secrets, _ = seen.setdefault(child.pid, (set(), {}, parent))
            cmdlines.add(cmdline)
            secrets.update(item.decode().split("=", 1) for item in environ if item.startswith(b"MLPSTORAGE_SECRET_"))
        time.sleep(0.02)
    return seen


def test_a_real_run_gives_dlio_the_secrets_through_the_environment_only(tmp_path, monkeypatch):
    server, sink = start_sink("http")
    try:
        launcher = [sys.executable, "-m", "mlpstorage", "training", "datagen", "--model", "unet3d",
                    "--data-dir", str(tmp_path / "data"), "--num-processes", "2",
                    "--results-dir", str(tmp_path / "results"), "--skip-timeseries", "--render", "plain,otlp", "--debug",
                    "--allow-invalid-params", *TINY, *(f"{key}={value}" for key, value in SECRETS.items())]
        proc = subprocess.Popen(launcher, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                text=True, env=sink.env())
        seen = watch_tree(proc)
        stdout, stderr = proc.communicate(timeout=180)
    finally:
        server.stop()
    assert proc.returncode == 0, stderr
    values = list(SECRETS.values())

    # no command line below the launcher holds a secret: mpirun's and the ranks' (read while they
    # ran); only the launcher's own, as the test typed it, seen in a fork of it before its exec
    own = " ".join(launcher) + " "
    [mpirun_pid] = [pid for pid, (cmdlines, _, parent) in seen.items()
                    if parent == proc.pid and any(c.startswith("mpirun ") for c in cmdlines)]
    [mpirun] = [c for c in seen[mpirun_pid][0] if c.startswith("mpirun ")]
    ranks = {pid: (cmdlines, env) for pid, (cmdlines, env, parent) in seen.items()
             if parent == mpirun_pid and any(" -m mlpstorage.engines.dlio_rank " in c for c in cmdlines)}
    assert len(ranks) == 2, seen
    assert [c for cmdlines, _, _ in seen.values() for c in cmdlines if c != own and any(v in c for v in values)] == []
    assert "-x MLPSTORAGE_SECRET_0 -x MLPSTORAGE_SECRET_1 -x MLPSTORAGE_SECRET_2 " in mpirun
    assert all(any("++workload.storage.password=${oc.env:MLPSTORAGE_SECRET_1}" in c for c in cmdlines)
               for cmdlines, _ in ranks.values())

    # each rank had every value in its environment, and DLIO's configuration (hydra saved the one it
    # composed and handed DLIO) gives the value there when read, as DLIO's reads resolve it
    run_dir = only_run_dir(tmp_path / "results", "training", "unet3d", "datagen")
    first, second = (environment for _, environment in ranks.values())
    assert first == second and sorted(first.values()) == sorted(values)
    for name, value in first.items():
        monkeypatch.setenv(name, value)
    dlio = OmegaConf.load(run_dir / "dlio_config" / "config.yaml").workload
    assert {key: OmegaConf.select(dlio, key) for key in SECRETS} == SECRETS

    # nothing written holds a secret: the run folder (hydra's dlio_config, events.jsonl, the metadata,
    # the page, DLIO's logs), the data folder, the terminal, the OTLP export
    holding = [str(path) for path in tmp_path.rglob("*")
               if path.is_file() and any(value.encode() in path.read_bytes() for value in values)]
    assert holding == []
    assert (run_dir / "dlio_config" / "overrides.yaml").is_file() and (run_dir / "events.jsonl").is_file()
    assert not any(value in stdout + stderr for value in values)
    assert "command: mpirun " in stderr and "secret_key=***" in stderr
    # every signal the receiver got: spans, metrics and the log records (the --debug command line is one)
    telemetry = sink.handler.telemetry
    exported = [*telemetry.trace_requests, *telemetry.metric_requests, *telemetry.log_requests]
    assert sink.requests and telemetry.log_requests
    assert not [r for r in exported if any(value.encode() in r.pbreq.SerializeToString() for value in values)]
    metadata = json.loads(next(run_dir.glob("training_*_metadata.json")).read_text())
    assert metadata["arguments"]["params"]["storage.password"] == REDACTED
    assert metadata["resolved_parameters"]["storage"] == {"password": REDACTED, "auth_token": REDACTED}
    assert "++workload.reader.storage_options.secret_key=***" in metadata["executed_command"]
