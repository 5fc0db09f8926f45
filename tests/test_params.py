"""--params: every key checked against what DLIO 2.0.0 really reads (a table derived from its
source), and every value reaching DLIO as it is recorded (hydra's grammar, omegaconf's
interpolation), proven with hydra's own compose and DLIO's own LoadConfig."""

import importlib.metadata
import json
import subprocess
import sys
import types
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml
from omegaconf import OmegaConf

from mlpstorage.engines.dlio import dlio_program
from mlpstorage.errors import UsageError
from mlpstorage.workloads import CONFIG_PATH, dlio_keys, key_problem, workload_config
from mlpstorage.workloads.overrides import hydra_value
from support.otlp_sink import base_env
from test_dlio import TINY, dataset, only_run_dir  # noqa: F401 (dataset: the tiny data set fixture)


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
    # what configview, the resolved configuration and the metadata record (hydra's composition)
    assert workload_config("unet3d_h100", {"train.seed": text})["train"]["seed"] == expected


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
    # the configuration the launcher composed (the keys it sets for the model, and --params) is DLIO's
    assert flat(metadata["resolved_parameters"]) == flat(dlio_workload(run_dir))


# ----- the configuration: hydra's own composition -------------------------------------------------
def test_the_workload_is_hydras_composition_of_the_overrides_dlio_gets():
    """What configview and the metadata show is what hydra's compose API makes of the very
    overrides on DLIO's command line, in the folder DLIO is pointed at."""
    from hydra import compose, initialize_config_dir

    params = {"reader.batch_size": "3", "dataset.data_folder": "/data/a b", "train.seed": "${x}",
              "train.computation_time": "1e-3", "reader.new_key": "it's"}
    argv = dlio_program("unet3d_h100", Path("/results/run"), params)
    [config_path] = [arg.split("=", 1)[1] for arg in argv if arg.startswith("--config-path=")]
    overrides = argv[argv.index("workload=unet3d_h100"):argv.index(f"--config-path={config_path}")]
    with initialize_config_dir(config_dir=config_path, version_base=None):
        composed = OmegaConf.to_container(compose(config_name="config", overrides=overrides), resolve=True)
    config = workload_config("unet3d_h100", params)
    assert config == composed["workload"]
    assert config["reader"]["batch_size"] == 3 and config["train"]["computation_time"] == 0.001
    assert config["train"]["seed"] == "${x}" and config["reader"]["new_key"] == "it's"


def test_composition_leaves_no_hydra_state_and_threads_may_share_it():
    from hydra.core.global_hydra import GlobalHydra

    with ThreadPoolExecutor(4) as pool:  # hydra's global state is one per process: the lock takes turns
        configs = list(pool.map(lambda n: workload_config("resnet50_h100", {"reader.batch_size": str(n)}), range(1, 9)))
    assert [config["reader"]["batch_size"] for config in configs] == list(range(1, 9))
    assert not GlobalHydra.instance().is_initialized()


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("train.epochs", "nan", "--params train.epochs=nan: expected a number"),
        ("train.computation_time", "fast", "--params train.computation_time=fast: expected a number"),
        ("workflow.checkpoint", "off", "--params workflow.checkpoint=off: expected true or false"),
        ("reader.batch_size", "0", "--params reader.batch_size=0: expected a number greater than 0"),
        # hydra would replace the section, or the value, with what is given: DLIO reads neither
        ("reader", "3", "--params reader: reader is a section; set one of its keys (e.g. reader.data_loader=...)"),
        ("dataset.data_folder.x", "1", "--params dataset.data_folder.x: data_folder is not a section"),
        # a secret reaches DLIO as text (omegaconf's oc.env), which no number key takes
        ("train.secret_key", "12", None),
    ],
)
def test_a_value_keeps_the_kind_the_workload_gives_its_key(key, value, message):
    if message is None:
        assert workload_config("unet3d_h100", {key: value})["train"]["secret_key"] == "***"
        return
    with pytest.raises(UsageError) as refused:
        workload_config("unet3d_h100", {"reader.batch_size": "2", key: value})
    assert str(refused.value) == message


def flat(config: dict, prefix: str = "") -> dict:
    """{dotted key: value} of a nested configuration."""
    items = {}
    for key, value in config.items():
        if isinstance(value, dict):
            items.update(flat(value, f"{prefix}{key}."))
        else:
            items[prefix + key] = value
    return items


def dlio_workload(run_dir: Path) -> dict:
    """The workload section DLIO ran with: the configuration its hydra saved, each key read as
    DLIO reads it (interpolations resolved)."""
    saved = OmegaConf.load(run_dir / "dlio_config" / "config.yaml")
    return OmegaConf.to_container(saved, resolve=True)["workload"]


@pytest.mark.slow
def test_configview_shows_key_by_key_what_a_real_dlio_datagen_got(dataset):
    run_dir = only_run_dir(dataset / "results", "training", "unet3d", "datagen")
    dlio = flat(dlio_workload(run_dir))
    metadata = json.loads(next(run_dir.glob("training_*_metadata.json")).read_text())
    assert flat(metadata["resolved_parameters"]) == dlio
    # configview with the keys the run set for itself (its data and checkpoint folders) as --params
    ran_with = [f"dataset.data_folder={dataset / 'data'}", f"checkpoint.checkpoint_folder={run_dir / 'checkpoints'}"]
    result = mlpstorage("training", "configview", "--model", "unet3d", "--datagen", *TINY, *ran_with)
    assert result.returncode == 0, result.stderr
    shown = flat(yaml.safe_load(result.stdout))
    assert sorted(shown) == sorted(dlio)
    assert [key for key in dlio if shown[key] != dlio[key]] == []
