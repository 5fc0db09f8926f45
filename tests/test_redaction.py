"""Secrets in DLIO params: DLIO gets them, nothing mlpstorage writes or shows does (events,
metadata, OTLP, --what-if, configview, datasize, the debug command line)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from mlpstorage.benchmarks.base import RunOptions
from mlpstorage.benchmarks.dlio import DlioOptions
from mlpstorage.benchmarks.training import TrainingBenchmark
from mlpstorage.emitter import Emitter
from mlpstorage.redaction import REDACTED, is_secret_key, redact, redact_argv

from support.otlp_sink import base_env, start_sink

SECRET = "S3CR3T"
SECRET_PARAM = f"reader.storage_options.secret_key={SECRET}"
TINY = ["dataset.num_files_train=8", "dataset.record_length=65536", "dataset.record_length_stdev=0",
        "dataset.record_length_resize=65536", "checkpoint.model_size=65536"]


def mlpstorage(*args, env=None, timeout=180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mlpstorage", *args], capture_output=True, text=True,
                          env=env or base_env(), timeout=timeout, stdin=subprocess.DEVNULL)


# ----- the rule ----------------------------------------------------------------------------------
@pytest.mark.parametrize("key", [
    "reader.storage_options.secret_key", "secret", "password", "db_passwd", "credentials", "token", "auth_token",
    "sessionToken", "access_key", "aws_access_key_id", "AWSAccessKeyId", "AWS_SECRET_ACCESS_KEY", "api_key", "apikey",
    "x-api-key", "private_key", "privateKeyPath", "auth", "authorization", "oauth_client",
])
def test_secret_keys(key):
    assert is_secret_key(key)


@pytest.mark.parametrize("key", [
    "reader.batch_size", "dataset.data_folder", "checkpoint.model_size", "train.epochs", "key", "access_mode",
    "storage_root", "author", "authority", "tokenizer", "reader.storage_options.endpoint_url",
])
def test_ordinary_keys(key):
    assert not is_secret_key(key)


def test_redact_params_config_and_argv():
    params = {SECRET_PARAM.split("=")[0]: SECRET, "reader.batch_size": "2"}
    assert redact(params) == {"reader.storage_options.secret_key": REDACTED, "reader.batch_size": "2"}
    config = {"reader": {"batch_size": 2, "storage_options": {"secret_key": SECRET, "endpoint": "e"}},
              "hosts": [{"password": SECRET}], "credentials": {"nested": SECRET}}
    assert redact(config) == {"reader": {"batch_size": 2, "storage_options": {"secret_key": REDACTED, "endpoint": "e"}},
                              "hosts": [{"password": REDACTED}], "credentials": REDACTED}
    assert config["reader"]["storage_options"]["secret_key"] == SECRET  # a copy: the original is kept
    argv = ["mpirun", "-x", f"AWS_SECRET_ACCESS_KEY={SECRET}", f"++workload.{SECRET_PARAM}",
            f"++workload.reader.storage_options.api_key='{SECRET} with space'", "++workload.reader.batch_size=2"]
    assert redact_argv(argv) == ["mpirun", "-x", "AWS_SECRET_ACCESS_KEY=***", "++workload.reader.storage_options.secret_key=***",
                                 "++workload.reader.storage_options.api_key=***", "++workload.reader.batch_size=2"]


def test_dlio_gets_the_value_and_everything_shown_hides_it(tmp_path):
    benchmark = TrainingBenchmark(RunOptions(results_dir=tmp_path), "unet3d", "run",
                                  DlioOptions(params={"reader.storage_options.secret_key": SECRET}), tmp_path,
                                  emitter=Emitter())
    assert f"++workload.{SECRET_PARAM}" in benchmark.command_line()  # what mpirun runs
    assert SECRET not in json.dumps([benchmark.shown_command(), benchmark.shown_config()])
    assert "++workload.reader.storage_options.secret_key=***" in benchmark.shown_command()
    assert benchmark.shown_config()["reader"]["storage_options"]["secret_key"] == REDACTED


# ----- the commands --------------------------------------------------------------------------------
@pytest.mark.parametrize("command", [
    ["training", "run", "--model", "unet3d", "--data-dir", "DATA", "--what-if"],
    ["training", "datagen", "--model", "unet3d", "--data-dir", "DATA", "--what-if"],
    ["checkpointing", "run", "--model", "llama3-8b", "-np", "2", "--checkpoint-folder", "DATA", "--what-if"],
    ["training", "configview", "--model", "unet3d"],
    ["training", "datasize", "--model", "unet3d", "-ma", "8", "-cm", "64", "--render", "jsonl"],
], ids=["training-run-what-if", "datagen-what-if", "checkpointing-what-if", "configview", "datasize"])
def test_commands_never_show_the_secret(command, tmp_path):
    command = [str(tmp_path / "data") if arg == "DATA" else arg for arg in command]
    # DLIO 2.0.0 reads no storage_options: an expert passes such a key with --allow-invalid-params
    result = mlpstorage(*command, "--allow-invalid-params", "--params", "reader.batch_size=2", SECRET_PARAM)
    assert result.returncode == 0, result.stderr
    assert SECRET not in result.stdout + result.stderr
    assert "secret_key" in result.stdout  # the key is there, its value is not
    if "--what-if" in command:
        assert "++workload.reader.storage_options.secret_key=***" in result.stdout.splitlines()[1]
        assert "secret_key: '***'" in result.stdout
    assert not (tmp_path / "data").exists()


@pytest.mark.slow
def test_a_real_run_keeps_the_secret_out_of_everything_it_writes(tmp_path):
    """A real DLIO datagen (2 ranks) with a secret param, with --debug (the command line),
    plain lines and a real OTLP receiver. DLIO gets the value: hydra saves it in dlio_config/."""
    server, sink = start_sink("http")
    try:
        result = mlpstorage("training", "datagen", "--model", "unet3d", "--data-dir", str(tmp_path / "data"),
                            "--num-processes", "2", "--results-dir", str(tmp_path / "results"), "--skip-timeseries",
                            "--render", "plain,otlp", "--debug", "--allow-invalid-params", "--params", *TINY,
                            SECRET_PARAM, env=sink.env())
    finally:
        server.stop()
    assert result.returncode == 0, result.stderr
    assert SECRET not in result.stdout + result.stderr
    assert "command: mpirun " in result.stderr and "secret_key=***" in result.stderr

    [run_dir] = (tmp_path / "results").glob("training/unet3d/datagen/*")
    written = [path for path in run_dir.rglob("*") if path.is_file()]
    holding = sorted(str(p.relative_to(run_dir)) for p in written if SECRET in p.read_text(errors="replace"))
    # hydra saves the overrides DLIO got, and the configuration made from them, verbatim
    assert holding == ["dlio_config/config.yaml", "dlio_config/hydra.yaml", "dlio_config/overrides.yaml"]

    [metadata_file] = run_dir.glob("training_*_metadata.json")
    metadata = json.loads(metadata_file.read_text())
    assert metadata["arguments"]["params"]["reader.storage_options.secret_key"] == REDACTED
    assert metadata["resolved_parameters"]["reader"]["storage_options"]["secret_key"] == REDACTED
    assert "++workload.reader.storage_options.secret_key=***" in metadata["executed_command"]
    assert sink.requests
    assert not [r for r in sink.requests if SECRET.encode() in r.pbreq.SerializeToString()]
