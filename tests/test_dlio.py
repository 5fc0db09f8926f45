"""DLIO 2.0.0 under real OpenMPI: datagen, run, checkpointing, what-if, validation, signals,
and the lifecycle they produce (captured events and a real OTLP receiver)."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mlpstorage.engines.dlio import DlioProgress
from support.otlp_sink import base_env, start_sink

DATA = Path(__file__).parent / "data"
STAGES = ["Validating environment", "Collecting cluster info", "Running benchmark", "Processing results"]
TINY = ["--params", "dataset.num_files_train=8", "dataset.record_length=65536", "dataset.record_length_stdev=0",
        "dataset.record_length_resize=65536", "checkpoint.model_size=65536"]
TINY_RUN = TINY + ["reader.batch_size=2", "reader.read_threads=1", "train.epochs=2", "train.computation_time=0.05"]

pytestmark = pytest.mark.slow


def mlpstorage(*args, env=None, timeout=180):
    return subprocess.run([sys.executable, "-m", "mlpstorage", *args], capture_output=True, text=True,
                          env=env or base_env(), timeout=timeout, stdin=subprocess.DEVNULL)


def events_of(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]


def only_run_dir(results: Path, benchmark: str, model: str, command: str) -> Path:
    [run_dir] = sorted(results.glob(f"{benchmark}/{model}/{command}/*"))
    return run_dir


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """A tiny unet3d data set made by a real `mlpstorage training datagen` with 2 ranks."""
    root = tmp_path_factory.mktemp("dlio")
    result = mlpstorage("training", "datagen", "--model", "unet3d", "--data-dir", str(root / "data"),
                        "--num-processes", "2", "--results-dir", str(root / "results"), "--render", "plain", *TINY)
    assert result.returncode == 0, result.stderr
    return root


# ----- datagen and run -------------------------------------------------------------------------
def test_datagen_writes_the_files_and_reports_them(dataset):
    assert len(list((dataset / "data" / "train").glob("*.npz"))) == 8
    assert (dataset / "data" / "valid").is_dir()
    run_dir = only_run_dir(dataset / "results", "training", "unet3d", "datagen")
    events = events_of(run_dir)
    assert [e["name"] for e in events if e["type"] == "stage.finished" and e["status"] == "ok"] == STAGES
    assert any(e["type"] == "log" and e["level"] == "result" and e["message"].startswith("8 training files")
               for e in events)
    generating = [e for e in events if e["type"] == "task.finished" and e["name"] == "generating files"]
    assert generating and generating[0]["status"] == "ok"


@pytest.fixture(scope="module")
def tiny_run(dataset):
    """A real 2-rank unet3d run, exported to a real OTLP receiver as it happens."""
    server, sink = start_sink("http")
    try:
        result = mlpstorage("training", "run", "--model", "unet3d", "--data-dir", str(dataset / "data"),
                            "--num-accelerators", "2", "--results-dir", str(dataset / "results"),
                            "--render", "plain,otlp", "--timeseries-interval", "0.5", *TINY_RUN,
                            env=sink.env())
    finally:
        server.stop()
    assert result.returncode == 0, result.stderr
    run_dir = only_run_dir(dataset / "results", "training", "unet3d", "run")
    return result, run_dir, sink.spans()


def test_run_shows_four_stages_epochs_as_child_spans_and_metrics(tiny_run):
    result, run_dir, _ = tiny_run
    events = events_of(run_dir)
    assert [e["name"] for e in events if e["type"] == "stage.started"] == STAGES
    running = next(e for e in events if e["type"] == "stage.started" and e["name"] == "Running benchmark")
    epochs = [e for e in events if e["type"] == "task.finished" and e["name"].startswith("epoch ")]
    assert [e["name"] for e in epochs] == ["epoch 1/2", "epoch 2/2"]
    assert all(e["parent_span_id"] == running["span_id"] and e["status"] == "ok" for e in epochs)
    assert all(e["attributes"]["dlio.steps_completed"] == 2 for e in epochs)
    run = events[-1]
    assert run["type"] == "run.finished" and run["status"] == "ok"
    metrics = {k: v for k, v in run["attributes"].items() if k.startswith("mlpstorage.metric.")}
    assert 0 < metrics["mlpstorage.metric.train_au_mean_percentage"] <= 100
    assert metrics["mlpstorage.metric.train_throughput_mean_samples_per_second"] > 0
    results = [e["message"] for e in events if e["type"] == "log" and e["level"] == "result"]
    assert any(m.startswith("Training AU: ") for m in results)
    assert any(m.startswith("Training throughput: ") and "samples/s" in m for m in results)
    # DLIO's output went through untouched and is kept in full
    assert "Starting epoch 1: 2 steps expected" in result.stderr
    stderr_log = (run_dir / "stderr.log").read_text()
    assert "[METRIC] Training Accelerator Utilization [AU] (%)" in stderr_log
    outputs = [line for e in events if e["type"] == "output" for line in e["lines"]]
    assert outputs == stderr_log.splitlines()
    # untraced, DFTracer says nothing (it warned of DFTRACER_INC_METADATA unset in every run)
    assert "DFTRACER" not in (run_dir / "stdout.log").read_text() + stderr_log


def test_run_writes_results_and_metadata(tiny_run):
    _, run_dir, _ = tiny_run
    names = {p.name for p in run_dir.iterdir()}
    stamp = run_dir.name
    for name in ("summary.json", "per_epoch_stats.json", "dlio.log", "stdout.log", "stderr.log", "events.jsonl",
                 f"training_{stamp}_metadata.json", f"training_{stamp}_timeseries.json",
                 f"training_{stamp}_cluster_start.json", f"training_{stamp}_cluster_end.json"):
        assert name in names, name
    metadata = json.loads((run_dir / f"training_{stamp}_metadata.json").read_text())
    assert metadata["executed_command"][0] == "mpirun"
    assert metadata["executed_command"][metadata["executed_command"].index("-n") + 1] == "2"
    assert metadata["resolved_parameters"]["dataset"]["num_files_train"] == 8
    assert metadata["arguments"]["params"]["train.epochs"] == "2"
    assert list(metadata["stage_durations_s"]) == STAGES[:3]
    assert metadata["metrics"]["train_au_mean_percentage"] > 0
    assert metadata["cluster"]["host_count"] == 1
    [samples] = json.loads((run_dir / f"training_{stamp}_timeseries.json").read_text())["hosts"].values()
    assert len(samples) >= 2
    # a healthy run with the default stall settings (the quickstart's): watched, and no alarm
    assert metadata["stalls"] == {"timeout_s": 60.0, "on_stall": "warn", "flagged": []}
    assert not [e for e in events_of(run_dir) if e["type"] == "stall"]
    epochs = [e for e in events_of(run_dir) if e["type"] == "task.updated" and e["name"].startswith("epoch ")]
    assert epochs and all(e["total"] == 2 and 1 <= e["completed"] <= 2 for e in epochs)  # steps of the slowest rank
    last = {e["name"]: e["completed"] for e in epochs}  # each epoch's last count: where it ended, not held back
    assert last == {"epoch 1/2": 2, "epoch 2/2": 2}


def test_otlp_receiver_gets_the_same_tree_with_the_ranks_in_the_trace(tiny_run):
    _, run_dir, spans = tiny_run
    events = events_of(run_dir)
    trace_id = events[0]["trace_id"]
    assert {s.trace_id for s in spans} == {trace_id}
    by_id = {s.span_id: s for s in spans}
    running = next(s for s in spans if s.name == "Running benchmark")
    run = next(s for s in spans if s.name == "mlpstorage training run")
    assert by_id[running.parent_span_id] is run
    epochs = [s for s in spans if s.name.startswith("epoch ")]
    assert len(epochs) == 2 and all(s.parent_span_id == running.span_id for s in epochs)
    ranks = sorted((s for s in spans if s.name.startswith("dlio rank ")), key=lambda s: s.name)
    assert [s.name for s in ranks] == ["dlio rank 0", "dlio rank 1"]
    assert all(s.parent_span_id == running.span_id and s.attributes["mlpstorage.rank"] in (0, 1) for s in ranks)
    assert all(running.start <= s.start and s.end <= running.end for s in ranks)
    assert run.attributes["mlpstorage.metric.train_au_mean_percentage"] > 0
    assert run.attributes["mlpstorage.model"] == "unet3d" and run.attributes["mlpstorage.command"] == "run"


# ----- checkpointing ---------------------------------------------------------------------------
def test_checkpointing_writes_checkpoints_as_spans(tmp_path):
    result = mlpstorage("checkpointing", "run", "--model", "llama3-8b", "--num-processes", "2",
                        "--num-checkpoints", "2", "--checkpoint-folder", str(tmp_path / "ckpt"),
                        "--results-dir", str(tmp_path / "results"), "--render", "plain", "--skip-timeseries",
                        "--params", "checkpoint.model_size=1048576")
    assert result.returncode == 0, result.stderr
    run_dir = only_run_dir(tmp_path / "results", "checkpointing", "llama3-8b", "run")
    events = events_of(run_dir)
    checkpoints = [e for e in events if e["type"] == "task.finished" and e["name"].startswith("checkpoint ")]
    assert [e["name"] for e in checkpoints] == ["checkpoint 1", "checkpoint 2"]
    epochs = {e["span_id"]: e for e in events if e["type"] == "task.finished" and e["name"].startswith("epoch ")}
    assert all(c["parent_span_id"] in epochs for c in checkpoints)
    written = sorted(p.name for p in (tmp_path / "ckpt").rglob("*.pt"))
    assert len(written) == 4  # 2 checkpoints x 2 ranks (every rank writes its shard)
    run = events[-1]["attributes"]
    assert run["mlpstorage.metric.checkpoints_written"] == 2
    assert run["mlpstorage.metric.checkpoint_write_GB_per_second"] > 0
    assert "Checkpoints: 2 written" in result.stderr


def test_checkpoint_size_follows_the_llama3_architecture():
    from mlpstorage.models import LLAMA3

    # 8.03e9 parameters x 14 bytes (fp16 weights + fp32 master weights and two Adam moments)
    assert LLAMA3["llama3-8b"].parameters() == 8_030_261_248
    assert round(LLAMA3["llama3-8b"].checkpoint_bytes() / 2**30, 1) == 104.7
    assert round(LLAMA3["llama3-70b"].parameters() / 1e9, 1) == 70.6
    assert round(LLAMA3["llama3-405b"].parameters() / 1e9, 1) == 405.9


# ----- datasize, what-if, configview -----------------------------------------------------------
@pytest.mark.parametrize(
    "args, files, gib",
    [
        # the MLPerf Storage example: the step rule wins (500 x 8 x 7 = 28000; memory gives 4687)
        (["--model", "unet3d", "-ma", "8", "-cm", "64", "-nc", "2"], 28000, "3822.91"),
        # memory rule wins: 5 x 4 x 512 GiB / 146600628 B = 75000.7 -> 75000 files
        (["--model", "unet3d", "-ma", "8", "-cm", "512", "-nc", "4"], 75000, "10239.94"),
        # resnet50: 1251 samples of 114660.07 B per file; 5 x 64 GiB / 143439747.57 B = 2395.4 -> 2395
        (["--model", "resnet50", "-ma", "8", "-cm", "64", "-nc", "1"], 2395, "319.94"),
    ],
)
def test_datasize_matches_hand_computed_examples(args, files, gib):
    result = mlpstorage("training", "datasize", *args, "--render", "plain")
    assert result.returncode == 0, result.stderr
    assert f"Files needed: {files}" in result.stderr
    assert f"Disk space needed: {gib} GiB" in result.stderr
    assert f"mlpstorage training datagen --model {args[1]}" in result.stderr
    assert f"dataset.num_files_train={files}" in result.stderr


def test_what_if_prints_the_command_and_config_and_runs_nothing(tmp_path):
    result = mlpstorage("training", "run", "--model", "unet3d", "--data-dir", str(tmp_path / "nodata"), "-na", "4",
                        "--hosts", "node1:2", "node2:2", "--results-dir", str(tmp_path / "r"), "--what-if",
                        "--params", "train.epochs=3")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    command = lines[1]
    assert command.startswith("mpirun -n 4 -host node1:2,node2:2 --bind-to none --map-by socket ")
    assert "-x TRACEPARENT" in command and "mlpstorage.engines.dlio_rank workload=unet3d_h100" in command
    assert "++workload.train.epochs=3" in command and command.endswith("/mlpstorage/workloads/configs")
    assert "  epochs: 3" in result.stdout and "record_length: 146600628" in result.stdout
    assert not (tmp_path / "r").exists() and not (tmp_path / "nodata").exists()


def test_configview_shows_overrides():
    result = mlpstorage("training", "configview", "--model", "unet3d", "-g", "a100", "-p", "reader.batch_size=3")
    assert result.returncode == 0
    assert "computation_time: 0.636" in result.stdout and "batch_size: 3" in result.stdout


# ----- validation: one line, exit code 2, nothing written --------------------------------------
def _run_args(tmp_path, data):
    return ["training", "run", "--model", "unet3d", "--data-dir", str(data), "-na", "2",
            "--results-dir", str(tmp_path / "results"), "--render", "plain", *TINY_RUN]


@pytest.mark.parametrize("case", ["missing", "too-few", "no-mpirun", "results-not-writable", "tensorflow",
                                  "bad-param", "checkpoint-folder"])
def test_validation_failures(case, tmp_path, dataset):
    env = None
    args = _run_args(tmp_path, dataset / "data")
    if case == "missing":
        args = _run_args(tmp_path, tmp_path / "nowhere")
        expected = "no training data in"
    elif case == "too-few":
        args += ["dataset.num_files_train=9"]
        expected = "holds 8 npz files but the run needs 9; generate them with: mlpstorage training datagen"
    elif case == "no-mpirun":
        env = base_env(PATH=str(Path(sys.executable).parent))
        expected = "mpirun not found"
    elif case == "results-not-writable":
        args[args.index("--results-dir") + 1] = "/proc/mlpstorage-results"  # refused even to root
        expected = "results directory /proc/mlpstorage-results is not writable"
    elif case == "tensorflow":
        args[args.index("unet3d")] = "resnet50"
        expected = "resnet50 reads tfrecord files through tensorflow: pip install tensorflow-cpu"
    elif case == "bad-param":
        args += ["reader.batch_size=two"]
        expected = "--params reader.batch_size=two: expected a number"
    else:
        args = ["checkpointing", "run", "--model", "llama3-8b", "-np", "2", "--checkpoint-folder", "/proc/ck",
                "--results-dir", str(tmp_path / "results")]
        expected = "checkpoint folder /proc/ck is not writable"
    before = sorted(p.name for p in tmp_path.iterdir())
    result = mlpstorage(*args, env=env)
    assert result.returncode == 2, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("mlpstorage: error: ") and expected in last, result.stderr
    assert "Traceback" not in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing half-written


def test_bad_host_is_refused_before_anything_runs(tmp_path):
    result = mlpstorage("training", "run", "--model", "unet3d", "--data-dir", str(tmp_path), "--hosts", "a$(reboot)",
                        "--results-dir", str(tmp_path / "r"))
    assert result.returncode == 2 and "invalid host" in result.stderr
    assert not (tmp_path / "r").exists()


# ----- interrupting a real run -----------------------------------------------------------------
def _dlio_processes() -> list[str]:
    out = subprocess.run(["pgrep", "-af", "mlpstorage.engines.dlio_rank"], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if "pgrep" not in line]


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_mid_run_stops_every_rank_and_records_the_error(sig, code, tmp_path, dataset):
    assert _dlio_processes() == []
    args = _run_args(tmp_path, dataset / "data")
    args += ["train.epochs=50", "train.computation_time=1"]
    proc = subprocess.Popen([sys.executable, "-m", "mlpstorage", *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, env=base_env())
    deadline = time.monotonic() + 60
    for line in proc.stderr:
        if "epoch 1/50: started" in line or time.monotonic() > deadline:
            break
    proc.send_signal(sig)
    proc.stderr.read()
    assert proc.wait(timeout=60) == code
    deadline = time.monotonic() + 5
    while _dlio_processes() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _dlio_processes() == []
    assert subprocess.run(["pgrep", "-x", "mpirun"], capture_output=True).returncode == 1
    run_dir = only_run_dir(tmp_path / "results", "training", "unet3d", "run")
    events = events_of(run_dir)
    assert events[-1]["type"] == "run.finished" and events[-1]["status"] == "error"
    epochs = [e for e in events if e["type"] == "task.finished" and e["name"].startswith("epoch ")]
    assert epochs and epochs[-1]["status"] == "error"  # the epoch the signal cut short


# ----- the output parser, on DLIO's real output --------------------------------------------------
def test_progress_parser_on_recorded_dlio_output(mlpstorage_capture):
    emitter = mlpstorage_capture.emitter
    with emitter.run("r"), emitter.stages(["Running benchmark"]):
        progress = DlioProgress(emitter, epochs=2)
        for line in (DATA / "dlio_train_checkpoint.stderr").read_text().splitlines():
            progress.observe_line("stderr", line)
        progress.close()
    tasks = [(e["name"], e["status"]) for e in mlpstorage_capture.of_type("task.finished")]
    assert tasks == [("checkpoint 1", "ok"), ("epoch 1/2", "ok"), ("checkpoint 2", "ok"), ("epoch 2/2", "ok")]
    assert len(progress.checkpoints) == 2


def test_progress_parser_follows_datagen(mlpstorage_capture):
    emitter = mlpstorage_capture.emitter
    progress = DlioProgress(emitter, epochs=None)
    for line in (DATA / "dlio_datagen.stderr").read_text().splitlines():
        progress.observe_line("stderr", line)
    [generation] = mlpstorage_capture.of_type("task.finished")
    assert generation["name"] == "generating files" and generation["attributes"]["dlio.files"] == 16


def test_tensorflow_stand_in_only_when_tensorflow_is_missing(monkeypatch):
    from mlpstorage.engines import dlio_rank

    monkeypatch.delitem(sys.modules, "tensorflow", raising=False)
    installed = dlio_rank.install_tensorflow_stub()
    assert installed == (sys.modules.get("tensorflow") is not None)
    assert dlio_rank.install_tensorflow_stub() is False  # never twice, never over a real one
    monkeypatch.delitem(sys.modules, "tensorflow", raising=False)


def test_override_values_survive_hydras_grammar():
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from mlpstorage.engines.dlio import hydra_value

    parser = OverridesParser.create()
    for value in ["/data/a,b", "/data/with space", "it's", "back\\slash", "/plain/path", 12, 0.5, "[1,2]"]:
        parsed = parser.parse_override(f"++workload.dataset.data_folder={hydra_value(value)}").value()
        assert parsed == (value if isinstance(value, str) else value), value


def test_loops_give_each_run_its_own_directory_and_events(tmp_path, dataset):
    result = mlpstorage(*_run_args(tmp_path, dataset / "data"), "train.epochs=1", "--loops", "2", "--skip-timeseries")
    assert result.returncode == 0, result.stderr
    run_dirs = sorted((tmp_path / "results").glob("training/unet3d/run/*"))
    assert len(run_dirs) == 2
    for run_dir in run_dirs:
        events = events_of(run_dir)
        assert [e["type"] for e in events].count("run.started") == 1
        assert events[-1]["type"] == "run.finished" and events[-1]["status"] == "ok"
        metadata = json.loads(next(run_dir.glob("*_metadata.json")).read_text())
        assert metadata["run_id"].endswith(run_dir.name)
