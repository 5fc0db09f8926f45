"""`mlpstorage checkpointing run`: llama3 checkpoint writes under DLIO 2.0.0.

DLIO 2.0.0 only checkpoints during training, so each checkpoint is written at the end of an
epoch of a minimal training loop, every rank writing its shard (ZeRO stage 3: the fp16 model
and the fp32 optimizer state are split across the ranks). Newer DLIO's llama3 workloads also
read checkpoints back and model the transformer layer by layer; 2.0.0 does neither.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import UsageError
from ..results import check_writable
from .base import RunOptions
from .dlio import DlioBenchmark, DlioOptions


@dataclass(frozen=True)
class Llama3:
    layers: int
    hidden: int
    ffn: int
    heads: int
    kv_heads: int
    vocab: int
    closed_processes: int  # MLPerf Storage closed division

    def parameters(self) -> int:
        kv = self.hidden * self.kv_heads // self.heads
        attention = 2 * self.hidden * self.hidden + 2 * self.hidden * kv
        mlp = 3 * self.hidden * self.ffn
        per_layer = attention + mlp + 2 * self.hidden  # plus two RMSNorm weights
        return self.layers * per_layer + 2 * self.vocab * self.hidden + self.hidden

    def checkpoint_bytes(self) -> int:
        # fp16 weights (2 B) + fp32 master weights and two Adam moments (12 B) per parameter
        return self.parameters() * 14


LLAMA3 = {
    "llama3-8b": Llama3(32, 4096, 14336, 32, 8, 128256, 8),
    "llama3-70b": Llama3(80, 8192, 28672, 64, 8, 128256, 64),
    "llama3-405b": Llama3(126, 16384, 53248, 128, 8, 128256, 512),
    "llama3-1t": Llama3(128, 25872, 98304, 192, 32, 128256, 1024),
}


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
            "checkpoint.model_size": self.arch.checkpoint_bytes() // self.dlio.processes,
            "train.epochs": self.num_checkpoints,
            "dataset.num_files_train": self.dlio.processes,
            "dataset.data_folder": str(self.run_dir / "driver-data"),
        }

    def _validate_data(self) -> None:
        check_writable(self.checkpoint_folder, "checkpoint folder")

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
        }

    def report(self, metrics: dict) -> None:
        if not metrics:
            self.emitter.warning("DLIO reported no checkpoint")
            return
        self.emitter.result(
            f"Checkpoints: {metrics['checkpoints_written']} written, {metrics['checkpoint_bytes'] / 1e9:.3f} GB each, "
            f"mean {metrics['checkpoint_mean_duration_s']:.3f}s, {metrics['checkpoint_write_GB_per_second']:.3f} GB/s")
