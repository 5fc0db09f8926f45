"""`mlpstorage checkpointing run`: llama3 checkpoint writes under DLIO 2.0.0.

DLIO 2.0.0 only checkpoints during training, so each checkpoint is written at the end of an
epoch of a minimal training loop, every rank writing its shard (ZeRO stage 3: the fp16 model
and the fp32 optimizer state are split across the ranks). Newer DLIO's llama3 workloads also
read checkpoints back and model the transformer layer by layer; 2.0.0 does neither.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path

from ..errors import UsageError
from ..models import LLAMA3, Llama3
from ..results import check_writable
from .base import RunOptions
from .dlio import DlioBenchmark, DlioOptions


@dataclass(frozen=True)
class CheckpointSize:
    """What `checkpointing run` writes, and MLPerf Storage's client memory rule: the part of a
    checkpoint each client host writes must exceed the host's memory, so that the page cache
    cannot hold it."""

    processes: int
    hosts: int
    shard_bytes: int  # each rank's part of one checkpoint
    checkpoint_bytes: int  # one checkpoint, every rank
    disk_bytes: int  # every checkpoint (they are kept)
    per_host_bytes: int  # the least any host writes of one checkpoint (ranks spread evenly)
    host_memory_bytes: float

    @property
    def exceeds_memory(self) -> bool:
        return self.per_host_bytes > self.host_memory_bytes


def checkpoint_size(arch: Llama3, processes: int, num_checkpoints: int, memory_per_host_gib: float,
                    client_hosts: int) -> CheckpointSize:
    shard = arch.shard_bytes(processes)
    return CheckpointSize(processes, client_hosts, shard, shard * processes, shard * processes * num_checkpoints,
                          shard * (processes // client_hosts), memory_per_host_gib * 2**30)


def run_hint(model: str, checkpoint_folder: Path, processes: int, num_checkpoints: int) -> str:
    """The checkpointing run command line, quoted for a shell."""
    return shlex.join(["mlpstorage", "checkpointing", "run", "--model", model, "--num-processes", str(processes),
                       "--num-checkpoints", str(num_checkpoints), "--checkpoint-folder", str(checkpoint_folder)])


class CheckpointingBenchmark(DlioBenchmark):
    BENCHMARK_TYPE = "checkpointing"

    def __init__(self, options: RunOptions, model: str, dlio: DlioOptions, checkpoint_folder: Path,
                 num_checkpoints: int = 10, emitter=None):
        if model not in LLAMA3:
            raise UsageError(f"unknown model {model!r} (choose from {', '.join(LLAMA3)})")
        self.arch = LLAMA3[model]
        self.checkpoint_folder = Path(checkpoint_folder).absolute()
        self.num_checkpoints = num_checkpoints
        super().__init__(options, model, "run", dlio, emitter=emitter)

    def workload_name(self) -> str:
        return "llama3_checkpointing"

    def forced_overrides(self) -> dict[str, object]:
        return {
            "model": self.model.replace("-", "_"),
            "checkpoint.checkpoint_folder": str(self.checkpoint_folder),
            "checkpoint.model_size": self.arch.shard_bytes(self.dlio.processes),
            "train.epochs": self.num_checkpoints,
            "dataset.num_files_train": self.dlio.processes,
            "dataset.data_folder": str(self.run_dir / "driver-data"),
        }

    def _validate_data(self) -> None:
        self.config  # a --params value that does not fit the workload is refused here, before anything runs
        check_writable(self.checkpoint_folder, "checkpoint folder")

    def preflight_needs(self):
        """The checkpoint folder writable on every host, with room for the checkpoints the host
        writes and memory for its ranks' shards (DLIO holds each in memory), in the sizes the
        resolved configuration gives (checkpoint_size()'s unless --params changed them)."""
        needs = super().preflight_needs()
        config = self.config
        needs.checkpoint_folder = str(self.checkpoint_folder)
        needs.shard_bytes = int(config["checkpoint"]["model_size"])
        needs.checkpoints = int(config["train"]["epochs"])
        return needs

    def metrics(self) -> dict:
        durations = self.progress.checkpoints if self.progress else []
        if not durations:
            return {}
        shard = int(self.config["checkpoint"]["model_size"])
        per_checkpoint = shard * self.dlio.processes
        mean = sum(durations) / len(durations)
        return {
            "checkpoints_written": len(durations),
            "checkpoint_bytes": per_checkpoint,
            "checkpoint_mean_duration_s": round(mean, 4),
            "checkpoint_write_GB_per_second": round(per_checkpoint / mean / 1e9, 4) if mean > 0 else None,
            "checkpoint_durations_s": [round(d, 4) for d in durations],
        }

    def report(self, metrics: dict) -> None:
        if not metrics:
            self.emitter.warning("DLIO reported no checkpoint")
            return
        self.emitter.result(
            f"Checkpoints: {metrics['checkpoints_written']} written, {metrics['checkpoint_bytes'] / 1e9:.3f} GB each, "
            f"mean {metrics['checkpoint_mean_duration_s']:.3f}s, {metrics['checkpoint_write_GB_per_second']:.3f} GB/s")
