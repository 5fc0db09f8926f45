"""The verdict of a run (CLOSED, OPEN, INVALID, with reasons): each rule on its own, the
records it reads (ours and the existing launcher's v2.0 layout), agreement with the verdicts
that launcher gives for a set of its run folders, and the verdict at launch (--closed,
--open, the warning, --what-if, metadata, the run span, RESULT lines, the summary table)."""

import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from mlpstorage.benchmarks.base import RunOptions
from mlpstorage.benchmarks.checkpointing import CheckpointingBenchmark
from mlpstorage.benchmarks.dlio import DlioOptions
from mlpstorage.benchmarks.training import TrainingBenchmark
from mlpstorage.collectors.hostinfo import meminfo
from mlpstorage.emitter import Emitter
from mlpstorage.errors import ValidationError
from mlpstorage.models import LLAMA3
from mlpstorage.reports import CLOSED, INVALID, OPEN, NotARun, RunRecord, judge, read_run, verdict_of_run
from mlpstorage.reports import LAUNCHER, OURS
from mlpstorage.reports.verdict import CLOSED_OVERRIDES, OPEN_OVERRIDES, refusal
from mlpstorage.workloads import load_workload
from renderers.rich import RichRenderer

from support.otlp_sink import base_env

DATA = Path(__file__).parent / "data" / "reportgen"
RESULTS = DATA / "results"
LAUNCHER_VERDICTS = json.loads((DATA / "launcher_verdicts.json").read_text())
GIB = 2**30


def training(overrides=None, *, model="unet3d", files=28000, processes=8, memory=128 * GIB, config=None,
             command="run", **fields):
    """A training run record: by default unet3d on 8 accelerators with 128 GiB of client
    memory and exactly the 28000 files the data-size rule asks for (500 x 8 x 7), checkpointing
    as a unet3d run must."""
    config = config or checkpointing_workload(model)
    return RunRecord(run_dir=Path("run"), run_id="run", layout=OURS, benchmark="training", model=model, command=command,
                     accelerator="h100", processes=processes, overrides=overrides or {}, config=config,
                     num_files=files, client_memory_bytes=memory, **fields)


def checkpointing_workload(model: str = "unet3d") -> dict:
    """The shipped h100 workload with workflow.checkpoint on (as the shipped unet3d one has it)."""
    config = load_workload(f"{model}_h100")
    config.setdefault("workflow", {})["checkpoint"] = True
    return config


def checkpointing(model="llama3-8b", processes=8, layout=OURS, model_size=None, mode=None, hosts=("node1",),
                  data_parallel=None):
    arch = LLAMA3[model]
    shard = arch.shard_bytes(arch.closed_processes if mode == "subset" else processes) if model_size is None \
        else model_size
    config = {"checkpoint": {"model_size": shard, **({"mode": mode} if mode else {})}}
    if data_parallel is not None:
        config["model"] = {"name": model, "parallelism": {"data": data_parallel}}
    return RunRecord(run_dir=Path("run"), run_id="run", layout=layout, benchmark="checkpointing", model=model,
                     command="run", processes=processes, hosts=tuple(hosts), num_hosts=len(hosts) or None,
                     config=config)


# ----- overrides -------------------------------------------------------------------------------
@pytest.mark.parametrize("key", sorted(CLOSED_OVERRIDES - {"reader.odirect"}))
def test_closed_overrides_keep_a_run_closed(key):
    assert judge(training({key: "8"})).category == CLOSED


@pytest.mark.parametrize("key", sorted(OPEN_OVERRIDES))
def test_open_overrides_make_a_run_open_and_say_which(key):
    verdict = judge(training({key: "x"}))
    assert verdict.category == OPEN
    assert verdict.reasons == (f"{key}=x: allowed in OPEN only (OPEN)",)


@pytest.mark.parametrize("key", ["reader.batch_size", "train.epochs", "train.computation_time", "dataset.record_length"])
def test_any_other_override_is_invalid(key):
    verdict = judge(training({key: "1"}, files=10**9))
    assert verdict.category == INVALID
    assert verdict.reasons == (f"{key}=1: may not be changed in either division (INVALID)",)


def test_workflow_overrides_are_not_judged():
    assert judge(training({"workflow.train": "True", "workflow.checkpoint": "False"})).category == CLOSED


def test_invalid_wins_over_open_and_every_reason_is_kept():
    verdict = judge(training({"framework": "tensorflow", "reader.batch_size": "2", "reader.read_threads": "8"}))
    assert verdict.category == INVALID
    assert verdict.reasons == ("framework=tensorflow: allowed in OPEN only (OPEN)",
                               "reader.batch_size=2: may not be changed in either division (INVALID)")


def test_a_secret_override_is_judged_but_never_shown():
    verdict = judge(training({"storage.storage_options.secret_key": "hunter2"}))
    assert verdict.category == INVALID
    assert "hunter2" not in " ".join(verdict.reasons) and "secret_key=***" in verdict.reasons[0]


# ----- the data-size rule ------------------------------------------------------------------------
def test_data_size_by_steps_exactly_enough_is_closed_one_fewer_is_invalid():
    assert judge(training(files=28000)).category == CLOSED
    verdict = judge(training(files=27999))
    assert verdict.category == INVALID
    assert verdict.reasons[0].startswith("dataset.num_files_train=27999: fewer than the 28000 files the data-size rule "
                                         "requires (500 steps x 8 accelerators x batch 7 / 1 sample per file = 28000; "
                                         "5 x 128.0 GiB client memory / 139.8 MiB per file = 4687)")


def test_data_size_by_memory_uses_the_runs_total_client_memory():
    # 1 accelerator needs 3500 files by steps; 1 TiB of memory needs 5 x 2^40 // 146600628 = 37500
    assert judge(training(processes=1, memory=2**40, files=37500)).category == CLOSED
    assert judge(training(processes=1, memory=2**40, files=37499)).category == INVALID


def test_data_size_on_the_files_read_and_the_batch_size_the_run_used():
    config = checkpointing_workload()
    config["reader"]["batch_size"] = 14
    assert "56000 files" in judge(training(config=config)).reasons[0]


@pytest.mark.parametrize("unknown, what", [({"memory": None}, "the run's client memory"),
                                           ({"processes": None}, "the run's accelerator count"),
                                           ({"files": None}, "the number of files the run read")])
def test_a_data_size_rule_that_cannot_be_evaluated_is_invalid(unknown, what):
    verdict = judge(training(**unknown))
    assert verdict.category == INVALID
    assert verdict.reasons == (f"data-size rule: cannot be evaluated: {what} not known (INVALID)",)


def test_data_size_reads_newer_dlios_record_length_bytes():
    config = checkpointing_workload()
    config["dataset"]["record_length_bytes"] = config["dataset"].pop("record_length")
    assert judge(training(config=config, files=27999)).category == INVALID
    assert judge(training(config=config)).category == CLOSED


# ----- O_DIRECT --------------------------------------------------------------------------------
def test_odirect_is_for_unet3d_only():
    config = checkpointing_workload()
    config["reader"]["odirect"] = True
    assert judge(training({"reader.odirect": "true"}, config=config)).category == CLOSED
    config = load_workload("resnet50_h100")
    config["reader"]["odirect"] = True
    verdict = judge(training({"reader.odirect": "true"}, model="resnet50", config=config, files=10**6))
    assert verdict.category == INVALID
    assert verdict.reasons == ("reader.odirect=True: O_DIRECT is allowed for unet3d only, not resnet50 (INVALID)",)
    config["reader"]["odirect"] = False
    assert judge(training(model="resnet50", config=config, files=10**6)).category == CLOSED


# ----- checkpointing ---------------------------------------------------------------------------
# ----- unet3d must checkpoint --------------------------------------------------------------------
def test_a_unet3d_run_without_checkpointing_is_invalid():
    config = load_workload("unet3d_h100")  # shipped with workflow.checkpoint True, as the rules ask
    assert judge(training(config=config)).category == CLOSED
    config["workflow"]["checkpoint"] = False  # -p workflow.checkpoint=False
    verdict = judge(training(config=config))
    assert verdict.category == INVALID
    assert verdict.reasons == ("workflow.checkpoint=False: Unet3D training requires executing a checkpoint "
                               "(INVALID)",)
    assert judge(training(config=checkpointing_workload())).category == CLOSED
    del config["workflow"]["checkpoint"]  # unset: DLIO does not checkpoint
    assert judge(training(config=config)).reasons == ("workflow.checkpoint=None: Unet3D training requires executing "
                                                      "a checkpoint (unset: DLIO does not checkpoint) (INVALID)",)


def test_only_unet3d_runs_must_checkpoint():
    config = load_workload("resnet50_h100")
    config["workflow"]["checkpoint"] = False
    assert judge(training(model="resnet50", config=config, files=10**6)).category == CLOSED
    datagen = training(config=load_workload("unet3d_h100"), command="datagen")
    assert not [f for f in judge(datagen).findings if f.subject.startswith("workflow.")]


def test_a_training_datagen_gets_no_verdict_on_its_page():
    from mlpstorage.reports.verdict import verdict_of

    assert verdict_of(training(command="datagen")) == (None, None)
    assert verdict_of(training())[0].category == CLOSED


# ----- checkpointing ---------------------------------------------------------------------------
@pytest.mark.parametrize("model", list(LLAMA3))
def test_checkpointing_closed_uses_the_guidelines_process_count(model):
    closed = LLAMA3[model].closed_processes
    assert judge(checkpointing(model, closed)).category == CLOSED
    assert judge(checkpointing(model, closed, mode="default")).category == CLOSED
    verdict = judge(checkpointing(model, closed // 2))
    assert verdict.category == OPEN
    assert verdict.reasons == (f"processes={closed // 2}: CLOSED runs {model} with exactly {closed} processes, or "
                               "with 8 on one host in checkpoint.mode=subset (submission guidelines) (OPEN)",)


@pytest.mark.parametrize("model", list(LLAMA3))
def test_checkpointing_in_subset_mode_on_one_host_with_8_processes_is_closed_for_every_model(model):
    verdict = judge(checkpointing(model, 8, mode="subset"))
    assert verdict.category == CLOSED, verdict.reasons
    assert [str(f) for f in verdict.findings] == [
        f"checkpoint.mode=subset, processes=8, hosts=1: the CLOSED subset configuration (node-local storage) for "
        f"{model} (CLOSED)"]


@pytest.mark.parametrize("processes, hosts", [(4, ("node1",)), (16, ("node1",)), (8, ("node1", "node2"))])
def test_checkpointing_in_subset_mode_with_any_other_count_is_open(processes, hosts):
    verdict = judge(checkpointing("llama3-70b", processes, mode="subset", hosts=hosts))
    assert verdict.category == OPEN
    assert verdict.reasons == (f"checkpoint.mode=subset, processes={processes}, hosts={len(hosts)}: CLOSED runs "
                               "subset mode with 8 processes on one host (submission guidelines) (OPEN)",)


def test_subset_mode_from_the_params_its_host_count_unknown_and_its_data_parallelism():
    record = checkpointing("llama3-405b", 8, hosts=(), model_size=LLAMA3["llama3-405b"].shard_bytes(512))
    record.overrides = {"checkpoint.mode": "subset"}
    assert judge(record).reasons == ("checkpoint.mode=subset, processes=8, hosts=?: cannot be evaluated: the run's "
                                     "host count is unknown (INVALID)",)
    assert judge(checkpointing("llama3-405b", 8, mode="subset", data_parallel=2)).category == CLOSED
    verdict = judge(checkpointing("llama3-405b", 8, mode="subset", data_parallel=64))
    assert verdict.reasons == ("model.parallelism.data=64: a CLOSED subset run of llama3-405b has data parallelism 2 "
                               "(OPEN)",)


def test_the_default_mode_with_the_subset_count_is_open_for_the_larger_models():
    assert judge(checkpointing("llama3-8b", 8, mode="default")).category == CLOSED  # 8 is 8b's own CLOSED count
    assert judge(checkpointing("llama3-70b", 8)).category == OPEN


def test_in_subset_mode_each_of_our_ranks_writes_its_share_of_the_closed_count():
    arch = LLAMA3["llama3-70b"]
    whole = checkpointing("llama3-70b", 8, mode="subset", model_size=arch.shard_bytes(8))
    assert judge(whole).category == INVALID  # 8 ranks writing the whole checkpoint is not the subset
    assert judge(checkpointing("llama3-70b", 8, mode="subset")).category == CLOSED  # each 1/64 of it


def test_a_checkpoint_of_another_size_than_the_models_is_invalid_for_our_runs():
    verdict = judge(checkpointing(model_size=1048576))
    assert verdict.category == INVALID
    assert "checkpoint.model_size=1048576: each rank writes 1048576 bytes, not its" in verdict.reasons[0]
    # the existing launcher's layout has no such key: only the process count is judged
    assert judge(checkpointing(layout=LAUNCHER, model_size=1048576)).category == CLOSED


def test_an_unknown_benchmark_or_model_is_invalid():
    assert judge(RunRecord(Path("r"), "r", OURS, None, None, None)).category == INVALID
    assert judge(RunRecord(Path("r"), "r", OURS, "checkpointing", "llama2", "run", processes=8)).category == INVALID


# ----- refusing at launch ----------------------------------------------------------------------
def test_refusal_under_closed_lists_every_reason_and_under_open_the_invalid_ones():
    verdict = judge(training({"framework": "tensorflow", "reader.batch_size": "2"}))
    assert refusal(verdict, "closed") == ("--closed: this run would be INVALID: framework=tensorflow: allowed in OPEN "
                                          "only (OPEN); reader.batch_size=2: may not be changed in either division "
                                          "(INVALID)")
    assert refusal(verdict, "open") == ("--open: this run would be INVALID: reader.batch_size=2: may not be changed "
                                        "in either division (INVALID) (--allow-invalid-params runs it anyway)")
    assert refusal(verdict, "open", allow_invalid=True) is None
    assert refusal(verdict, None) is None
    assert refusal(judge(training({"framework": "tensorflow"})), "open") is None
    assert refusal(judge(training()), "closed") is None


# ----- records -----------------------------------------------------------------------------------
def test_the_existing_launchers_layout_reads_as_its_reportgen_reads_it():
    record = read_run(RESULTS / "training/unet3d/run/20250601_100000", RESULTS)
    assert (record.layout, record.benchmark, record.command, record.model, record.accelerator) == \
        (LAUNCHER, "training", "run", "unet3d", "h100")
    assert record.run_id == "training/unet3d/run/20250601_100000"
    assert record.processes == 8 and record.num_hosts == 2 and record.hosts == ("node1", "node2")
    assert record.client_memory_bytes == 128 * GIB and record.total_cores == 64 and record.num_files == 28000
    assert record.overrides == {"workflow.generate_data": "False", "workflow.train": "True",
                                "dataset.num_files_train": "28000", "dataset.data_folder": "/mnt/fs/unet3d",
                                "checkpoint.checkpoint_folder": "checkpoints/unet3d", "reader.read_threads": "8"}
    assert record.accelerators_per_host() == {"node1": 4, "node2": 4}
    assert record.headline() == ["AU 97.00 %", "165.20 samples/s", "23,096.49 MB/s"]  # one format per figure
    ckpt = read_run(RESULTS / "checkpointing/llama3-8b/run/20250606_110000")
    assert (ckpt.benchmark, ckpt.command, ckpt.model) == ("checkpointing", "checkpointing", "llama3-8b")
    assert (ckpt.checkpoints_written, ckpt.checkpoints_read) == (0, 10)


def test_our_layout_reads_from_our_metadata():
    record = read_run(RESULTS / "training/unet3d/run/20261128_072446", RESULTS)
    assert (record.layout, record.benchmark, record.command, record.model, record.accelerator) == \
        (OURS, "training", "run", "unet3d", "h100")
    assert record.processes == 2 and record.hosts == ("localhost:2",)
    assert record.overrides["reader.batch_size"] == "2" and "dataset.data_folder" in record.overrides
    assert record.num_files == 16 and record.metrics["train_au_mean_percentage"] > 0
    assert len(record.throughput_series) == 3
    ckpt = read_run(RESULTS / "checkpointing/llama3-8b/run/20261128_072456")
    assert (ckpt.checkpoints_written, ckpt.checkpoints_read) == (2, 0)
    assert "train_au_mean_percentage" not in ckpt.metrics  # DLIO's driver loop, not the benchmark
    assert ckpt.headline()[0].startswith("write ") and len(ckpt.throughput_series) == 2


def test_the_verdict_recorded_in_our_metadata_is_what_the_folder_says():
    for folder in ("training/unet3d/run/20261128_072446", "checkpointing/llama3-8b/run/20261128_072456"):
        [metadata] = (RESULTS / folder).glob("*_metadata.json")
        recorded = json.loads(metadata.read_text())["verdict"]
        verdict = verdict_of_run(RESULTS / folder)
        assert [recorded["category"], recorded["reasons"]] == [verdict.category, list(verdict.reasons)]


def test_secrets_in_the_launchers_overrides_are_redacted_as_they_are_read(tmp_path):
    run = tmp_path / "run"
    shutil.copytree(RESULTS / "training/unet3d/run/20250601_100000", run)
    overrides = run / "dlio_config/overrides.yaml"
    overrides.write_text(overrides.read_text() + "- ++workload.storage.storage_options.secret_key=hunter2\n")
    config = run / "dlio_config/config.yaml"
    config.write_text(config.read_text() + "  storage:\n    storage_options:\n      secret_key: hunter2\n")
    record = read_run(run)
    assert "hunter2" not in repr(record) and "hunter2" not in repr(judge(record))


@pytest.mark.parametrize("setup, message", [
    (lambda d: None, "no *_metadata.json (not a run folder)"),
    (lambda d: (d / "a_metadata.json").write_text("{not json"), "a_metadata.json is not JSON"),
    (lambda d: ((d / "a_metadata.json").write_text("{}"), (d / "b_metadata.json").write_text("{}")),
     "2 metadata files (a_metadata.json, b_metadata.json); a run folder holds one"),
    (lambda d: (d / "a_metadata.json").write_text("{}"), "no summary.json (the run did not finish)"),
])
def test_a_folder_that_holds_no_run_is_one_line(tmp_path, setup, message):
    folder = tmp_path / "r"
    folder.mkdir()
    setup(folder)
    with pytest.raises(NotARun) as caught:
        verdict_of_run(folder)
    assert str(caught.value).startswith(f"r: {message}")
    assert caught.value.exit_code == 2


# ----- agreement with the existing launcher ----------------------------------------------------
@pytest.mark.parametrize("folder", sorted(LAUNCHER_VERDICTS))
def test_verdicts_agree_with_the_existing_launcher_or_say_why_not(folder):
    expected = LAUNCHER_VERDICTS[folder]
    assert verdict_of_run(RESULTS / folder).category == expected["ours"]
    if expected["ours"] != expected["launcher"]:
        assert expected.get("why"), f"{folder}: a difference from the existing launcher must say why"


def test_the_differences_from_the_existing_launcher_are_the_documented_ones():
    differ = {f: v for f, v in LAUNCHER_VERDICTS.items() if v["ours"] != v["launcher"]}
    assert sorted((v["launcher"], v["ours"]) for v in differ.values()) == [("CLOSED", "OPEN"), ("INVALID", "CLOSED")]
    root = Path(__file__).parent.parent  # the README, or the document in docs/ it links to
    docs = "".join(page.read_text() for page in [root / "README.md", *sorted((root / "docs").glob("*.md"))])
    for why in ("total_mem_kB", "checks nothing for checkpointing"):
        assert why in docs


# ----- at launch ---------------------------------------------------------------------------------
def fake_data(folder: Path, files: int) -> Path:
    """A data folder that passes validation (DLIO only counts the names here)."""
    (folder / "train").mkdir(parents=True)
    (folder / "valid").mkdir()
    for i in range(files):
        (folder / "train" / f"img_{i}.npz").touch()
    return folder


CHECKPOINT_ON = {"workflow.checkpoint": "True"}  # as the shipped unet3d workloads have it: said anyway


def training_benchmark(tmp_path, params=None, processes=1, division=None, allow_invalid=False, hosts=("localhost",)):
    dlio = DlioOptions(processes=processes, params=params or {}, division=division, allow_invalid=allow_invalid)
    options = RunOptions(results_dir=tmp_path / "results", hosts=list(hosts), cluster_collection="none")
    return TrainingBenchmark(options, "unet3d", "run", dlio, tmp_path / "data", emitter=Emitter())


def test_closed_accepts_a_closed_run_with_this_machines_memory(tmp_path):
    needed = max(3500, int(5 * meminfo()["MemTotal"] // 146600628))  # 500 steps x 1 accelerator x batch 7
    fake_data(tmp_path / "data", needed)
    benchmark = training_benchmark(tmp_path, {"dataset.num_files_train": str(needed), **CHECKPOINT_ON},
                                   division="closed")
    benchmark._validate()
    assert benchmark.launch_verdict.category == CLOSED
    assert benchmark.launch_memory_bytes == meminfo()["MemTotal"]


def test_closed_refuses_a_unet3d_run_that_does_not_checkpoint(tmp_path):
    needed = max(3500, int(5 * meminfo()["MemTotal"] // 146600628))
    fake_data(tmp_path / "data", needed)
    benchmark = training_benchmark(tmp_path, {"dataset.num_files_train": str(needed), "workflow.checkpoint": "False"},
                                   division="closed")
    with pytest.raises(ValidationError, match=r"^--closed: this run would be INVALID: workflow.checkpoint=False: "
                                              r"Unet3D training requires executing a checkpoint \(INVALID\)$"):
        benchmark._validate()


def test_open_with_allow_invalid_params_starts_an_invalid_run(tmp_path):
    fake_data(tmp_path / "data", 168)
    benchmark = training_benchmark(tmp_path, {"reader.batch_size": "2"}, division="open", allow_invalid=True)
    benchmark._validate()
    assert benchmark.launch_verdict.category == INVALID
    with pytest.raises(ValidationError, match=r"^--open: this run would be INVALID: reader.batch_size=2"):
        training_benchmark(tmp_path, {"reader.batch_size": "2"}, division="open")._validate()


def test_other_hosts_memory_is_unknown_without_collection_so_closed_refuses(tmp_path):
    fake_data(tmp_path / "data", 168)
    benchmark = training_benchmark(tmp_path, division="closed", hosts=("node1", "node2"))
    with pytest.raises(ValidationError, match="data-size rule: cannot be evaluated: the run's client memory not known"):
        benchmark._validate()


def test_under_a_division_other_hosts_memory_is_collected_once_during_validation(tmp_path):
    needed = max(3500, int(5 * meminfo()["MemTotal"] // 146600628))
    fake_data(tmp_path / "data", needed)
    benchmark = training_benchmark(tmp_path, {"dataset.num_files_train": str(needed), **CHECKPOINT_ON},
                                   division="closed", hosts=("node1",))
    benchmark.options.cluster_collection = "local"  # this machine stands for node1: no ssh, no mpirun
    collected = []
    collect = benchmark.collectors["local"]
    benchmark.collectors["local"] = lambda *args: collected.append(args) or collect(*args)
    benchmark._validate()
    assert benchmark.launch_verdict.category == CLOSED and len(collected) == 1
    benchmark.run_dir.mkdir(parents=True)
    assert benchmark._collect_cluster_start() is benchmark.early_cluster_info
    assert len(collected) == 1  # the start information is what validation collected
    assert list(benchmark.run_dir.glob("*_cluster_start.json"))


def test_without_a_division_other_hosts_are_judged_after_the_collection(tmp_path):
    fake_data(tmp_path / "data", 168)
    benchmark = training_benchmark(tmp_path, hosts=("node1", "node2"))
    benchmark._validate()
    assert benchmark.launch_verdict is None  # waits for the hosts' memory
    benchmark.run_dir.mkdir(parents=True)
    benchmark._collect_cluster_start()
    assert benchmark.launch_verdict.category == INVALID  # --cluster-collection none: the memory stays unknown


def test_checkpointing_is_judged_at_launch(tmp_path):
    dlio = DlioOptions(processes=4, division="closed")
    benchmark = CheckpointingBenchmark(RunOptions(results_dir=tmp_path), "llama3-8b", dlio, tmp_path / "ckpt",
                                       emitter=Emitter())
    with pytest.raises(ValidationError, match=r"--closed: this run would be OPEN: processes=4: CLOSED runs llama3-8b "
                                              r"with exactly 8 processes, or with 8 on one host in "
                                              r"checkpoint.mode=subset \(submission guidelines\) \(OPEN\)$"):
        benchmark._validate()


def mlpstorage(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "mlpstorage", *args], capture_output=True, text=True,
                          env=base_env(), timeout=timeout, stdin=subprocess.DEVNULL)


def test_closed_stops_before_anything_runs_with_one_line_and_leaves_nothing(tmp_path):
    needed = max(1000, int(5 * meminfo()["MemTotal"] // 146600628))  # the data-size rule holds
    fake_data(tmp_path / "data", needed)
    result = mlpstorage("training", "run", "--model", "unet3d", "--data-dir", str(tmp_path / "data"),
                        "--results-dir", str(tmp_path / "results"), "--render", "plain", "--closed",
                        "-p", "reader.batch_size=2", "framework=tensorflow", f"dataset.num_files_train={needed}",
                        "workflow.checkpoint=False")
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("mlpstorage: error:")]
    assert errors == ["mlpstorage: error: --closed: this run would be INVALID: reader.batch_size=2: may not be changed "
                      "in either division (INVALID); framework=tensorflow: allowed in OPEN only (OPEN); "
                      "workflow.checkpoint=False: Unet3D training requires executing a checkpoint (INVALID)"]
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "results").exists()


def test_what_if_prints_the_verdict_and_datagen_takes_no_division(tmp_path):
    result = mlpstorage("training", "run", "--model", "unet3d", "--data-dir", str(tmp_path), "--what-if",
                        "-p", "framework=tensorflow", "dataset.num_files_train=3500", "workflow.checkpoint=True")
    assert result.returncode == 0
    assert result.stdout.splitlines()[-2:] == ["# verdict at launch: OPEN",
                                               "#   framework=tensorflow: allowed in OPEN only (OPEN)"]
    result = mlpstorage("training", "run", "--model", "unet3d", "--data-dir", str(tmp_path), "--what-if",
                        "-p", "dataset.num_files_train=3500", "workflow.checkpoint=False")
    assert result.stdout.splitlines()[-2:] == ["# verdict at launch: INVALID",
                                               "#   workflow.checkpoint=False: Unet3D training requires executing a "
                                               "checkpoint (INVALID)"]
    result = mlpstorage("training", "datagen", "--model", "unet3d", "--data-dir", str(tmp_path), "--open")
    assert (result.returncode, result.stderr) == (2, "mlpstorage: error: --open: datagen gets no verdict; only runs "
                                                     "are judged (training run, checkpointing run)\n")
    result = mlpstorage("training", "run", "--model", "unet3d", "--data-dir", str(tmp_path), "--open", "--closed")
    assert result.returncode == 2 and "not allowed with argument" in result.stderr


def test_the_summary_table_shows_the_verdict_and_its_reasons():
    out = io.StringIO()
    renderer = RichRenderer(Console(file=out, width=120, color_system=None), live=False)
    base = {"schema": 2, "timestamp": "2026-11-27T10:10:02.336106Z", "level": "info", "trace_id": "0" * 32}
    renderer.handle({**base, "type": "run.started", "span_id": "1" * 16, "name": "mlpstorage training run",
                     "start_unix_nano": 1, "attributes": {}})
    renderer.handle({**base, "type": "stage.started", "span_id": "2" * 16, "name": "Validating environment",
                     "start_unix_nano": 1, "stage_index": 1, "stage_count": 4, "attributes": {}})
    renderer.handle({**base, "type": "stage.finished", "span_id": "2" * 16, "name": "Validating environment",
                     "start_unix_nano": 1, "end_unix_nano": 2, "duration_s": 0.0, "status": "ok",
                     "stage_index": 1, "stage_count": 4, "attributes": {}})
    renderer.handle({**base, "type": "run.finished", "span_id": "1" * 16, "name": "mlpstorage training run",
                     "start_unix_nano": 1, "end_unix_nano": 2, "duration_s": 6.7, "status": "ok",
                     "attributes": {"mlpstorage.verdict": "OPEN",
                                    "mlpstorage.verdict.reasons": ["framework=tensorflow: allowed in OPEN only (OPEN)"]}})
    renderer.close()
    lines = [line.rstrip() for line in out.getvalue().splitlines()]
    assert lines[-2].split() == ["verdict", "OPEN"]
    assert lines[-1].strip() == "framework=tensorflow: allowed in OPEN only (OPEN)"


# ----- a real run ------------------------------------------------------------------------------
@pytest.mark.slow
def test_a_real_run_carries_its_verdict_everywhere_and_reportgen_agrees(tmp_path):
    tiny = ["dataset.num_files_train=8", "dataset.record_length=65536", "dataset.record_length_stdev=0",
            "dataset.record_length_resize=65536", "checkpoint.model_size=65536"]
    common = ["--data-dir", str(tmp_path / "data"), "--results-dir", str(tmp_path / "results"), "--render", "plain"]
    made = mlpstorage("training", "datagen", "--model", "unet3d", "--num-processes", "2", *common, "-p", *tiny)
    assert made.returncode == 0, made.stderr
    run = mlpstorage("training", "run", "--model", "unet3d", "--num-accelerators", "2", "--skip-timeseries",
                     "--open", "--allow-invalid-params", *common, "-p", *tiny,
                     "reader.batch_size=2", "reader.read_threads=1", "train.epochs=1", "train.computation_time=0.01",
                     "workflow.checkpoint=False")
    assert run.returncode == 0, run.stderr
    [run_dir] = (tmp_path / "results" / "training" / "unet3d" / "run").iterdir()
    verdict = verdict_of_run(run_dir)
    assert verdict.category == INVALID and any(r.startswith("train.epochs=1:") for r in verdict.reasons)
    # a unet3d run that does not checkpoint: INVALID at launch and after alike (at_launch below)
    assert "workflow.checkpoint=False: Unet3D training requires executing a checkpoint (INVALID)" in verdict.reasons
    [metadata] = run_dir.glob("*_metadata.json")
    recorded = json.loads(metadata.read_text())
    assert recorded["verdict"] == {"category": INVALID, "reasons": list(verdict.reasons), "notes": [],
                                   "division": "open",
                                   "at_launch": {"category": INVALID, "reasons": list(verdict.reasons), "notes": []}}
    assert recorded["arguments"]["division"] == "open"
    events = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    attributes = events[-1]["attributes"]
    assert (attributes["mlpstorage.verdict"], attributes["mlpstorage.division"]) == (INVALID, "open")
    assert attributes["mlpstorage.verdict.reasons"] == list(verdict.reasons)
    results = [e["message"] for e in events if e["type"] == "log" and e["level"] == "result"]
    assert results[-1 - len(verdict.reasons):] == ["Verdict: INVALID", *(f"- {r}" for r in verdict.reasons)]
    assert "Running an INVALID run (--allow-invalid-params): " in run.stderr
    report = mlpstorage("reports", "reportgen", "--results-dir", str(tmp_path / "results"),
                        "--output-dir", str(tmp_path / "out"))
    assert report.returncode == 0, report.stderr
    [record] = json.loads((tmp_path / "out" / "results.json").read_text())
    assert (record["category"], record["issues"]) == (INVALID, list(verdict.reasons))
    assert report.stderr.startswith("mlpstorage: warning: skipped training/unet3d/datagen/")
