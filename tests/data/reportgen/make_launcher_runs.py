"""Writes results/ (the run folders in the existing launcher's v2.0 layout) and
launcher_verdicts.json (what that launcher's reportgen says of each, and what ours says).
The 20261128_* folders beside them are ours, from real tiny runs (`training datagen`,
`training run`, `checkpointing run`), kept to their metadata, summary.json and dlio_config/;
this script leaves them alone.

Each folder is what the existing launcher leaves: dlio_config/config.yaml (the composed DLIO
configuration, its `workload` section), dlio_config/overrides.yaml (hydra's overrides),
summary.json (DLIO's) and <benchmark>_<datetime>_metadata.json (its own keys). The expected
launcher verdicts follow its v2.0 rules as /work/shared/MLPERF_RULES.md states them (and its
rules.py: TrainingRunRulesChecker). Run again after changing a case:

    python tests/data/reportgen/make_launcher_runs.py
"""

import json
import shutil
from pathlib import Path

import yaml

HERE = Path(__file__).parent
RESULTS = HERE / "results"

UNET3D = {
    "model": {"name": "unet3d", "type": "cnn", "model_size": 499153191},
    "framework": "pytorch",
    "workflow": {"generate_data": False, "train": True, "checkpoint": True},
    "dataset": {"data_folder": "/mnt/fs/unet3d", "format": "npz", "num_files_train": 28000,
                "num_samples_per_file": 1, "record_length_bytes": 146600628, "record_length_bytes_stdev": 68341808,
                "record_length_bytes_resize": 2097152},
    "reader": {"data_loader": "pytorch", "batch_size": 7, "read_threads": 4, "file_shuffle": "seed",
               "sample_shuffle": "seed"},
    "train": {"epochs": 5, "computation_time": 0.323},
    "checkpoint": {"checkpoint_folder": "checkpoints/unet3d", "checkpoint_after_epoch": 5,
                   "epochs_between_checkpoints": 2},
    "metric": {"au": 0.90},
}
RESNET50 = {
    "model": {"name": "resnet50", "type": "cnn"},
    "framework": "tensorflow",
    "workflow": {"generate_data": False, "train": True},
    "dataset": {"data_folder": "/mnt/fs/resnet50", "format": "tfrecord", "num_files_train": 1024,
                "num_samples_per_file": 1251, "record_length_bytes": 114660.07, "record_length_bytes_resize": 150528},
    "reader": {"data_loader": "tensorflow", "batch_size": 400, "read_threads": 8, "computation_threads": 8},
    "train": {"epochs": 5, "computation_time": 0.224},
    "metric": {"au": 0.90},
}


def llama(name: str, write: int, read: int) -> dict:
    return {
        "model": {"name": name, "type": "transformer", "optimization_groups": [1009254400, 865075200, 793600],
                  "num_layers": 32, "parallelism": {"tensor": 1, "pipeline": 1, "zero_stage": 3}},
        "framework": "pytorch",
        "workflow": {"generate_data": False, "train": False, "checkpoint": True},
        "checkpoint": {"checkpoint_folder": f"/mnt/fs/checkpoints/{name}", "mode": "default", "fsync": True,
                       "num_checkpoints_write": write, "num_checkpoints_read": read},
    }


def with_params(config: dict, params) -> dict:
    """A copy of config with ++workload.SECTION.KEY=VALUE overrides applied, as hydra composes it."""
    config = json.loads(json.dumps(config))
    for item in params:
        key, value = item[len("++workload."):].split("=", 1)
        section, name = key.split(".")
        config[section][name] = yaml.safe_load(value)
    return config


def training_metric(au: float, throughput: float, record_bytes: float) -> dict:
    epochs_au = [round(au + d, 2) for d in (0.4, -0.2, 0.1, -0.3, 0.0)]
    epochs_tp = [round(throughput * f, 2) for f in (1.004, 0.998, 1.001, 0.997, 1.0)]
    return {
        "train_au_percentage": epochs_au, "train_au_mean_percentage": au,
        "train_au_meet_expectation": "success" if au >= 90 else "fail", "train_au_stdev_percentage": 0.25,
        "train_throughput_samples_per_second": epochs_tp, "train_throughput_mean_samples_per_second": throughput,
        "train_throughput_stdev_samples_per_second": 1.5,
        "train_io_mean_MB_per_second": round(throughput * record_bytes / 2**20, 2),
        "train_io_stdev_MB_per_second": 2.0,
    }


def write_run(path: str, benchmark: str, config: dict, overrides: list[str], summary: dict | None, args: dict,
              verification: str, extra_metadata: str | None = None) -> None:
    folder = RESULTS / path
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "dlio_config").mkdir(parents=True)
    (folder / "dlio_config" / "config.yaml").write_text(yaml.safe_dump({"workload": config}, sort_keys=False))
    workload = overrides[0]
    hydra = [workload, f"++hydra.run.dir={folder.name}", "++hydra.output_subdir=dlio_config"]
    (folder / "dlio_config" / "overrides.yaml").write_text(yaml.safe_dump(hydra + overrides[1:], sort_keys=False))
    if summary is not None:
        (folder / "summary.json").write_text(json.dumps(summary, indent=4))
    stamp = folder.name
    params = [o[len("++workload."):] for o in overrides[1:] if not o.startswith("++workload.workflow")]
    metadata = {
        "benchmark_type": benchmark,
        "args": args,
        "run_datetime": stamp,
        "runtime": 612.4,
        "verification": verification,
        "executed_command": "mpirun -n {} ... dlio_benchmark {}".format(args["num_processes"], " ".join(overrides)),
        "params_dict": {p.split("=", 1)[0]: p.split("=", 1)[1] for p in params},
        "combined_params": {"workload": config},
        "total_mem_kB": 134217728,
    }
    for name in [f"{benchmark}_{stamp}_metadata.json"] + ([extra_metadata] if extra_metadata else []):
        (folder / name).write_text(json.dumps(metadata, indent=2))


def training_summary(start: str, hosts: int, accelerators: int, memory_gib: float, files: int, metric: dict) -> dict:
    return {"start": start, "num_accelerators": accelerators, "num_hosts": hosts, "hostname": "node1",
            "metric": metric, "num_files_train": files, "num_files_eval": 0, "num_samples_per_file": 1,
            "host_cpu_count": [32] * hosts, "host_processor_name": "x86_64", "potential_caching": False,
            "host_memory_GB": [memory_gib] * hosts, "data_size_per_host_GB": 1957.8, "end": start, "epochs": 5}


def unet3d_run(stamp: str, *, throughput=170.0, au=97.0, hosts=("node1", "node2"), files=28000, params=(),
               checkpoint=True, summary_changes=None, verification="closed", extra_metadata=None):
    config = with_params(UNET3D, params)
    config["workflow"]["checkpoint"] = checkpoint
    config["dataset"]["num_files_train"] = files
    overrides = ["workload=unet3d_h100", "++workload.workflow.generate_data=False", "++workload.workflow.train=True",
                 f"++workload.dataset.num_files_train={files}", "++workload.dataset.data_folder=/mnt/fs/unet3d",
                 "++workload.checkpoint.checkpoint_folder=checkpoints/unet3d", *params]
    start = f"{stamp[:4]}-{stamp[4:6]}-{stamp[6:8]}T{stamp[9:11]}:{stamp[11:13]}:{stamp[13:15]}.000000"
    summary = training_summary(start, len(hosts), 8, 64.0, files, training_metric(au, throughput, 146600628))
    summary.update(summary_changes or {})
    args = {"command": "run", "model": "unet3d", "hosts": list(hosts), "num_processes": 8,
            "accelerator_type": "h100", "results_dir": "results", "data_dir": "/mnt/fs/unet3d",
            "params": [p[len("++workload."):] for p in params], "allow_invalid_params": False}
    write_run(f"training/unet3d/run/{stamp}", "training", config, overrides, summary, args, verification,
              extra_metadata)


def resnet50_run(stamp: str, *, throughput=11000.0, au=94.0, params=(), verification="closed"):
    config = with_params(RESNET50, params)
    overrides = ["workload=resnet50_a100", "++workload.workflow.generate_data=False", "++workload.workflow.train=True",
                 "++workload.dataset.data_folder=/mnt/fs/resnet50", *params]
    start = f"{stamp[:4]}-{stamp[4:6]}-{stamp[6:8]}T{stamp[9:11]}:{stamp[11:13]}:{stamp[13:15]}.000000"
    summary = training_summary(start, 1, 4, 16.0, 1024, training_metric(au, throughput, 114660.07))
    summary["num_samples_per_file"] = 1251
    args = {"command": "run", "model": "resnet50", "hosts": ["node3:4"], "num_processes": 4,
            "accelerator_type": "a100", "results_dir": "results", "data_dir": "/mnt/fs/resnet50",
            "params": [p[len("++workload."):] for p in params], "allow_invalid_params": False}
    write_run(f"training/resnet50/run/{stamp}", "training", config, overrides, summary, args, verification)


def llama_run(model: str, stamp: str, processes: int, hosts: list[str], write: int, read: int, gbps: float):
    config = llama(model.replace("-", "_"), write, read)
    overrides = [f"workload={model.replace('-', '_')}", "++workload.workflow.generate_data=False",
                 "++workload.workflow.train=False", "++workload.workflow.checkpoint=True",
                 f"++workload.checkpoint.checkpoint_folder=/mnt/fs/checkpoints/{model.replace('-', '_')}",
                 f"++workload.checkpoint.num_checkpoints_write={write}",
                 f"++workload.checkpoint.num_checkpoints_read={read}"]
    start = f"{stamp[:4]}-{stamp[4:6]}-{stamp[6:8]}T{stamp[9:11]}:{stamp[11:13]}:{stamp[13:15]}.000000"
    metric = {}
    if write:
        metric.update(save_checkpoint_io_mean_GB_per_second=gbps, save_checkpoint_duration_mean_seconds=8.4)
    if read:
        metric.update(load_checkpoint_io_mean_GB_per_second=gbps * 1.3, load_checkpoint_duration_mean_seconds=6.5)
    summary = {"start": start, "num_accelerators": processes, "num_hosts": len(hosts), "hostname": "node1",
               "metric": metric, "host_memory_GB": [256.0] * len(hosts), "host_cpu_count": [64] * len(hosts)}
    args = {"command": "run", "model": model, "hosts": hosts, "num_processes": processes,
            "results_dir": "results", "checkpoint_folder": "/mnt/fs/checkpoints",
            "num_checkpoints_write": write, "num_checkpoints_read": read}
    write_run(f"checkpointing/{model}/run/{stamp}", "checkpointing", config, overrides, summary, args, "closed")


# folder -> what the existing launcher's reportgen says, what ours says, and why they differ
EXPECTED = {}


def expect(path: str, launcher: str, ours: str | None = None, why: str = "") -> None:
    EXPECTED[path] = {"launcher": launcher, "ours": ours or launcher, **({"why": why} if why else {})}


def main() -> None:
    # A: a warm-up run and 5 measured runs on 2 hosts x 4 accelerators: every check passes.
    for hour, throughput in zip(range(10, 16), (165.2, 170.1, 171.6, 168.9, 170.7, 169.8)):
        stamp = f"20250601_{hour}0000"
        unet3d_run(stamp, throughput=throughput, params=["++workload.reader.read_threads=8"])
        expect(f"training/unet3d/run/{stamp}", "CLOSED")
    # B: resnet50 on one host, 3 runs, one below the AU target, throughput 10 % apart.
    for stamp, throughput, au in (("20250602_100000", 11000.0, 94.0), ("20250602_110000", 12100.0, 85.5),
                                  ("20250602_120000", 11500.0, 93.0)):
        resnet50_run(stamp, throughput=throughput, au=au)
        expect(f"training/resnet50/run/{stamp}", "CLOSED")
    # C: an override OPEN allows (2 samples per file), on other hosts.
    unet3d_run("20250603_100000", hosts=("node5", "node6"), params=["++workload.dataset.num_samples_per_file=2"],
               verification="open")
    expect("training/unet3d/run/20250603_100000", "OPEN")
    # D: reader.batch_size is allowed in neither division (and 14 per step needs 56000 files).
    unet3d_run("20250603_110000", hosts=("node5", "node6"), params=["++workload.reader.batch_size=14"],
               verification="invalid")
    expect("training/unet3d/run/20250603_110000", "INVALID")
    # E: fewer files than the data-size rule requires (28000 for 8 accelerators).
    unet3d_run("20250603_120000", hosts=("node5", "node6"), files=20000, verification="invalid")
    expect("training/unet3d/run/20250603_120000", "INVALID")
    # F: O_DIRECT on resnet50 (the key is allowed in CLOSED, the model is not unet3d).
    resnet50_run("20250604_100000", params=["++workload.reader.odirect=True"], verification="invalid")
    expect("training/resnet50/run/20250604_100000", "INVALID")
    # G: summary.json without the hosts' memory: the launcher cannot evaluate the data-size
    # rule (users reported every such run INVALID); its metadata's total_mem_kB has it.
    unet3d_run("20250605_100000", hosts=("node7", "node8"),
               summary_changes={"host_memory_GB": None, "host_cpu_count": None})
    expect("training/unet3d/run/20250605_100000", "INVALID", "CLOSED",
           "the existing launcher reads the hosts' memory only from summary.json (a defect users reported); ours "
           "falls back on its metadata's total_mem_kB")
    # H: unet3d without checkpointing: INVALID for both (the launcher only when reading a run, ours at launch too).
    unet3d_run("20250605_110000", hosts=("node7", "node8"), checkpoint=False)
    expect("training/unet3d/run/20250605_110000", "INVALID")
    # I: a llama3-8b write run, then its read run (8 processes, the CLOSED count).
    llama_run("llama3-8b", "20250606_100000", 8, ["node1:8"], 10, 0, 4.2)
    llama_run("llama3-8b", "20250606_110000", 8, ["node1:8"], 0, 10, 4.2)
    expect("checkpointing/llama3-8b/run/20250606_100000", "CLOSED")
    expect("checkpointing/llama3-8b/run/20250606_110000", "CLOSED")
    # J: llama3-70b with 32 processes: the launcher checks nothing for checkpointing.
    llama_run("llama3-70b", "20250606_120000", 32, ["node1:16", "node2:16"], 10, 0, 9.8)
    expect("checkpointing/llama3-70b/run/20250606_120000", "CLOSED", "OPEN",
           "the existing launcher checks nothing for checkpointing; ours applies the guidelines' process count "
           "(64 for llama3-70b)")
    # Not runs: a datasize record, a run DLIO wrote no summary for, two metadata files.
    datasize = RESULTS / "training/unet3d/datasize/20250531_090000"
    datasize.mkdir(parents=True, exist_ok=True)
    (datasize / "training_20250531_090000_metadata.json").write_text(json.dumps({"benchmark_type": "training"}))
    unet3d_run("20250607_100000", hosts=("node9",), summary_changes={})
    (RESULTS / "training/unet3d/run/20250607_100000/summary.json").unlink()
    unet3d_run("20250607_110000", hosts=("node9",), extra_metadata="training_20250607_110001_metadata.json")
    (HERE / "launcher_verdicts.json").write_text(json.dumps(EXPECTED, indent=2) + "\n")


if __name__ == "__main__":
    main()
