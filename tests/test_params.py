"""--params: every key checked against what DLIO 2.0.0 really reads (a table derived from its
source), and every value reaching DLIO as it is recorded (hydra's grammar, omegaconf's
interpolation), proven with hydra's own compose and DLIO's own LoadConfig."""

import importlib.metadata
import json
import subprocess
import sys
import types

import pytest
import yaml

from mlpstorage.workloads import CONFIG_PATH, dlio_keys, key_problem
from mlpstorage.workloads.overrides import as_dlio_reads, hydra_value
from support.otlp_sink import base_env


def mlpstorage(*args, env=None, timeout=180):
    return subprocess.run([sys.executable, "-m", "mlpstorage", *args], capture_output=True, text=True,
                          env=env or base_env(), timeout=timeout, stdin=subprocess.DEVNULL)


# ----- the table of keys ----------------------------------------------------------------------
def test_the_table_is_what_the_installed_dlio_reads():
    assert importlib.metadata.version("dlio-benchmark") == dlio_keys.DLIO_VERSION
    values, sections = dlio_keys.derive(dlio_keys.installed_source().read_text())
    assert (values, sections) == (dlio_keys.VALUES, dlio_keys.SECTIONS)


def test_derive_reads_lookups_in_and_through_sections():
    source = '''
def LoadConfig(args, config):
    if 'framework' in config:
        args.framework = config['framework']
    if 'storage' in config:
        if 'storage_root' in config['storage']:
            args.storage_root = config['storage']['storage_root']
    reader = None
    if 'data_reader' in config:
        reader = config['data_reader']
    elif 'reader' in config:
        reader = config['reader']
    if reader is not None and 'batch_size' in reader:
        args.batch_size = reader['batch_size']
    if config['workflow']['train']:
        pass

def elsewhere(config):
    return config['ignored']['key']
'''
    values, sections = dlio_keys.derive(source)
    assert values == ("framework",)
    assert sections == {"data_reader": ("batch_size",), "reader": ("batch_size",), "storage": ("storage_root",),
                        "workflow": ("train",)}


def test_every_key_of_the_shipped_workloads_is_one_dlio_reads():
    def keys(node, prefix=""):
        for name, value in node.items():
            if isinstance(value, dict):
                yield from keys(value, f"{prefix}{name}.")
            else:
                yield prefix + name

    for path in sorted((CONFIG_PATH / "workload").glob("*.yaml")):
        for key in keys(yaml.safe_load(path.read_text())):
            assert key_problem(key) is None, (path.name, key)


@pytest.mark.parametrize(
    "key, problem",
    [
        ("reader.batch_size", None),
        ("storage.storage_root", None),
        ("storage.storage_type", None),
        ("model", None),
        ("reader.batchsize", "DLIO 2.0.0 reads no such key (did you mean reader.batch_size?)"),
        ("trian.epochs", "DLIO 2.0.0 reads no such key (did you mean train.epochs?)"),
        ("reader.epochs", "DLIO 2.0.0 reads no such key (did you mean train.epochs?)"),
        ("checkpoint.folder", "DLIO 2.0.0 reads no such key (did you mean checkpoint.checkpoint_folder?)"),
        ("metric.au_target", "DLIO 2.0.0 reads no such key (metric has: au)"),
        ("dataset.data_folder.x", "DLIO 2.0.0 reads dataset.data_folder as one value, nothing below it"),
        ("model.name", "DLIO 2.0.0 reads model as one value, nothing below it"),
        ("reader", "reader is a section; set one of its keys (e.g. reader.batch_size=...)"),
        ("data_reader.batch_size", "DLIO 2.0.0 reads data_reader in place of the workload's whole reader section, "
                                   "dropping its settings; use reader.batch_size"),
        ("bogus", "DLIO 2.0.0 reads no such key (sections: checkpoint, data_reader, dataset"),
    ],
)
def test_key_problems_name_the_key_meant(key, problem):
    found = key_problem(key)
    assert found is None if problem is None else found.startswith(problem), found


# ----- the command line -------------------------------------------------------------------------
@pytest.mark.parametrize(
    "params, message",
    [
        (["reader.batchsize=64"], "--params reader.batchsize: DLIO 2.0.0 reads no such key (did you mean reader.batch_size?)"),
        (["reader.bogus_key=1"], "--params reader.bogus_key: DLIO 2.0.0 reads no such key (reader has: batch_size,"),
        (["storage.storage_options.endpoint=x"], "--params storage.storage_options.endpoint: DLIO 2.0.0 reads no such key"),
        (["workflow.checkpoint=off"], "--params workflow.checkpoint=off: expected true or false"),
        (["train.epochs=nan"], "--params train.epochs=nan: expected a number"),
    ],
)
@pytest.mark.slow  # a CLI process per case: the rule itself is checked fast above
@pytest.mark.parametrize("command", ["run", "datagen", "configview", "checkpointing"])
def test_a_key_or_value_dlio_would_not_read_as_recorded_is_one_error_line(command, params, message, tmp_path):
    if command == "checkpointing":
        args = ["checkpointing", "run", "--model", "llama3-8b", "-np", "1", "--checkpoint-folder", str(tmp_path / "c")]
    else:
        args = ["training", command, "--model", "unet3d"]
        args += ["--data-dir", str(tmp_path / "d")] if command != "configview" else []
    if command != "configview":
        args += ["--results-dir", str(tmp_path / "r"), "--render", "plain"]
    tiny = ["dataset.num_files_train=1", "dataset.record_length=4096", "dataset.record_length_stdev=0"]
    result = mlpstorage(*args, "--params", *tiny, *params)  # tiny: were it not refused, little would be written
    assert result.returncode == 2, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"mlpstorage: error: {message}") and "Traceback" not in result.stderr, result.stderr
    assert list(tmp_path.iterdir()) == []  # refused before anything was written


def test_storage_section_is_accepted():
    result = mlpstorage("training", "configview", "--model", "unet3d", "-p", "storage.storage_root=/mnt/x",
                        "storage.storage_type=local_fs")
    assert result.returncode == 0, result.stderr
    assert yaml.safe_load(result.stdout)["storage"] == {"storage_root": "/mnt/x", "storage_type": "local_fs"}


@pytest.mark.slow
@pytest.mark.parametrize("command", ["datagen", "run", "checkpointing"])
def test_allow_invalid_params_passes_the_key_on_with_one_warning(command, tmp_path):
    if command == "checkpointing":
        args = ["checkpointing", "run", "--model", "llama3-8b", "-np", "1", "--checkpoint-folder", str(tmp_path)]
    else:
        args = ["training", command, "--model", "unet3d", "--data-dir", str(tmp_path)]
    result = mlpstorage(*args, "--what-if", "--allow-invalid-params", "-p", "reader.bogus_key=1", "train.epochs=1")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ("mlpstorage: warning: --params reader.bogus_key: DLIO 2.0.0 reads no such key (reader has: "
                             + ", ".join(dlio_keys.SECTIONS["reader"]) + "); passed to DLIO anyway "
                             "(--allow-invalid-params)\n")
    assert "++workload.reader.bogus_key=1 " in result.stdout
    assert yaml.safe_load(result.stdout.split("\n", 3)[3])["reader"]["bogus_key"] == 1


# ----- values: what DLIO reads is what is recorded ---------------------------------------------
PASSED = [
    # (what the user passes, what DLIO must hold)
    ("dlio-${oc.env:MLPS_TAG}.log", "dlio-${oc.env:MLPS_TAG}.log"),
    ("${workload.model}", "${workload.model}"),
    ("a\\${x}", "a\\${x}"),
    ("a\\\\${x}", "a\\\\${x}"),
    ("$HOME/{x}", "$HOME/{x}"),
    ("it's", "it's"),
    ("ends\\", "ends\\"),
    ("'", "'"),
    ("a=b", "a=b"),
    ("back\\'quote", "back\\'quote"),
    ("/data/a,b c", "/data/a,b c"),
    ("/data/日本", "/data/日本"),
    ("[1,2]", "[1,2]"),
    ("off", "off"),
    ("true", True),
    ("null", None),
    ("12", 12),
    ("1e-3", 0.001),
    ("0x10", "0x10"),
]


@pytest.fixture(scope="module")
def dlio_reads():
    """text -> the value DLIO 2.0.0's LoadConfig takes from the configuration hydra composes
    (the project's config.yaml and workload) with mlpstorage's override for it."""
    from dlio_benchmark.utils.config import LoadConfig
    from hydra import compose, initialize_config_dir

    def read(text: str):
        overrides = ["workload=unet3d_h100", f"++workload.train.seed={hydra_value(text)}"]
        with initialize_config_dir(config_dir=str(CONFIG_PATH), version_base=None):
            config = compose(config_name="config", overrides=overrides)
        args = types.SimpleNamespace(output_folder="out", log_file="dlio.log")
        LoadConfig(args, config["workload"])
        return args.seed

    return read


@pytest.mark.parametrize("text, expected", PASSED)
def test_dlio_holds_the_value_the_configuration_records(text, expected, dlio_reads, monkeypatch):
    monkeypatch.setenv("MLPS_TAG", "interpolated")
    assert dlio_reads(text) == expected
    assert as_dlio_reads(text) == expected  # what the resolved configuration and the metadata record


@pytest.mark.slow
def test_a_real_dlio_run_writes_the_log_file_named_literally(tmp_path):
    log_file = "dlio-${oc.env:MLPS_TAG}.log"
    result = mlpstorage("checkpointing", "run", "--model", "llama3-8b", "-np", "1", "--num-checkpoints", "1",
                        "--checkpoint-folder", str(tmp_path / "ckpt"), "--results-dir", str(tmp_path / "results"),
                        "--render", "plain", "--skip-timeseries", "-p", "checkpoint.model_size=4096",
                        f"output.log_file={log_file}", env=base_env(MLPS_TAG="interpolated"))
    assert result.returncode == 0, result.stderr
    [run_dir] = (tmp_path / "results").glob("checkpointing/llama3-8b/run/*")
    assert (run_dir / log_file).is_file() and not (run_dir / "dlio-interpolated.log").exists()
    metadata = json.loads(next(run_dir.glob("*_metadata.json")).read_text())
    assert metadata["resolved_parameters"]["output"]["log_file"] == log_file
    assert metadata["arguments"]["params"]["output.log_file"] == log_file
