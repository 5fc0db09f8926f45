"""Secrets in DLIO params: DLIO gets them (in its environment), nothing mlpstorage writes or
shows does (events, metadata, OTLP, --what-if, configview, datasize, the debug command line).
A real run: tests/test_secrets_real.py."""

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
from mlpstorage.workloads import CONFIG_PATH
from mlpstorage.workloads.overrides import secret_environment, workload_overrides
from support.otlp_sink import base_env

SECRET = "S3CR3T"
SECRET_PARAM = f"reader.storage_options.secret_key={SECRET}"


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


def test_dlio_gets_the_value_in_its_environment_and_everything_shown_hides_it(tmp_path):
    benchmark = TrainingBenchmark(RunOptions(results_dir=tmp_path), "unet3d", "run",
                                  DlioOptions(params={"reader.storage_options.secret_key": SECRET}), tmp_path,
                                  emitter=Emitter())
    argv = benchmark.command_line()  # what mpirun runs, readable by every user in /proc/PID/cmdline
    assert SECRET not in " ".join(argv)
    assert "++workload.reader.storage_options.secret_key=${oc.env:MLPSTORAGE_SECRET_0}" in argv
    assert argv[argv.index("MLPSTORAGE_SECRET_0") - 1] == "-x"  # mpirun forwards it to every rank, by name
    assert secret_environment(benchmark.overrides()) == {"MLPSTORAGE_SECRET_0": SECRET}
    assert SECRET not in json.dumps([benchmark.shown_command(), benchmark.shown_config(), benchmark.config])
    assert "++workload.reader.storage_options.secret_key=***" in benchmark.shown_command()
    assert benchmark.shown_config()["reader"]["storage_options"]["secret_key"] == REDACTED


def test_hydra_gives_dlio_the_secret_from_the_environment_and_saves_only_its_name(monkeypatch):
    """The overrides as DLIO's hydra composes them, with the environment mpirun gives a rank:
    reading the key gives the value verbatim (oc.env interpolates nothing in it); what hydra
    saves in the run folder (the overrides, the configuration) holds the variable's name."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    params = {"reader.storage_options.secret_key": SECRET, "storage.password": "p w'${x}\\", "reader.batch_size": "2"}
    overrides = workload_overrides("unet3d_h100", params)
    environment = secret_environment(params)
    assert environment == {"MLPSTORAGE_SECRET_0": SECRET, "MLPSTORAGE_SECRET_1": "p w'${x}\\"}
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    with initialize_config_dir(config_dir=str(CONFIG_PATH), version_base=None):
        config = compose(config_name="config", overrides=overrides)
    assert config.workload.reader.storage_options.secret_key == SECRET
    assert config.workload.storage.password == "p w'${x}\\"
    assert config.workload.reader.batch_size == 2
    saved = OmegaConf.to_yaml(config) + "\n".join(overrides)
    assert SECRET not in saved and "${x}" not in saved and "MLPSTORAGE_SECRET_1" in saved


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
