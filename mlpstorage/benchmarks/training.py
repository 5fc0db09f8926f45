"""`mlpstorage training datagen|run`: the MLPerf Storage training workloads under DLIO."""

from __future__ import annotations

import shlex
from pathlib import Path

from ..collectors.hostinfo import meminfo
from ..errors import ValidationError
from ..hosts import is_local_host
from ..results import check_writable
from ..workloads import workload_name
from .base import RunOptions
from .dlio import DlioBenchmark, DlioOptions, cluster_memory, count_files


def datagen_hint(model: str, data_dir: Path, processes: int, files: int, params: list[str] = ()) -> str:
    """The datagen command line to run next, quoted for a shell."""
    return shlex.join(["mlpstorage", "training", "datagen", "--model", model, "--data-dir", str(data_dir),
                       "--num-processes", str(processes), "--params", f"dataset.num_files_train={files}", *params])


class TrainingBenchmark(DlioBenchmark):
    BENCHMARK_TYPE = "training"

    def __init__(self, options: RunOptions, model: str, command: str, dlio: DlioOptions, data_dir: Path, emitter=None):
        self.data_dir = Path(data_dir).absolute()
        super().__init__(options, model, command, dlio, emitter=emitter)

    def workload_name(self) -> str:
        return workload_name(self.model, self.command, self.dlio.accelerator)

    def forced_overrides(self) -> dict[str, object]:
        return {**super().forced_overrides(), "dataset.data_folder": str(self.data_dir)}

    def _validate_data(self) -> None:
        dataset = self.config["dataset"]
        needed = int(dataset["num_files_train"])
        if self.command == "datagen":
            check_writable(self.data_dir, "data directory")
            return
        hint = datagen_hint(self.model, self.data_dir, self.dlio.processes, needed)
        train = self.data_dir / "train"
        if not train.is_dir():
            raise ValidationError(f"no training data in {self.data_dir} (no train/ folder); generate it with: {hint}")
        found = count_files(train, f".{dataset['format']}")
        if found < needed:
            raise ValidationError(f"{train} holds {found} {dataset['format']} files but the run needs {needed}; "
                                  f"generate them with: {hint}")
        if not (self.data_dir / "valid").is_dir():
            raise ValidationError(f"{self.data_dir} has no valid/ folder (DLIO needs one); generate the data with: {hint}")

    def preflight_needs(self):
        """run: the same data set on every host; datagen: a data directory writable everywhere."""
        needs = super().preflight_needs()
        if self.command == "datagen":
            needs.generate_into = str(self.data_dir)
        else:
            needs.data_dir = str(self.data_dir)
        return needs

    # ----- the verdict: `run` only, as the existing launcher judges ---------------------
    def is_judged(self) -> bool:
        return self.command == "run"

    def _hosts_are_this_one(self) -> bool:
        return all(is_local_host(h) for h in self.options.hosts)

    def judged_after_collection(self) -> bool:
        # Without --closed/--open the verdict only warns, so it waits for the other hosts'
        # memory from the cluster information instead of asking them during validation.
        return self.dlio.division is None and not self._hosts_are_this_one()

    def launch_memory(self, collect: bool) -> float | None:
        """This machine's memory when it is the only host; else, when a division must be
        reached before anything runs, every host's through the cluster collection (kept as the
        run's start information), or None (unknown) when collecting is off or not allowed."""
        if self._hosts_are_this_one():
            return float(meminfo().get("MemTotal", 0)) or None
        if not collect or self.collection_method() == "none":
            return None
        self.early_cluster_info = self.gather_cluster_info() or None
        return cluster_memory(self.early_cluster_info or {})

    def metrics(self) -> dict:
        metric = (self.summary or {}).get("metric", {})
        keys = ("train_au_mean_percentage", "train_au_meet_expectation", "train_throughput_mean_samples_per_second",
                "train_io_mean_MB_per_second")
        found = {key: metric[key] for key in keys if key in metric}
        if found and self.summary:
            found["num_accelerators"] = self.summary.get("num_accelerators")
        return found

    def report(self, metrics: dict) -> None:
        if self.command == "datagen":
            files = count_files(self.data_dir / "train", f".{self.config['dataset']['format']}")
            self.emitter.result(f"{files} training files in {self.data_dir / 'train'}")
            return
        if not metrics:
            self.emitter.warning(f"DLIO wrote no summary.json in {self.run_dir}")
            return
        expected = self.config.get("metric", {}).get("au")
        target = f" (target {expected * 100:.0f}%: {metrics.get('train_au_meet_expectation', '?')})" if expected else ""
        self.emitter.result(f"Training AU: {metrics['train_au_mean_percentage']:.2f}%{target}")
        self.emitter.result(f"Training throughput: {metrics['train_throughput_mean_samples_per_second']:.2f} samples/s, "
                            f"{metrics['train_io_mean_MB_per_second']:.2f} MB/s")
