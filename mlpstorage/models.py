"""The models MLPerf Storage knows, as plain data: the CLI builds its choices from these
without importing anything heavy (so `mlpstorage --help` starts fast)."""

from __future__ import annotations

from dataclasses import dataclass

TRAINING_MODELS = ("unet3d", "resnet50", "cosmoflow")
ACCELERATORS = ("h100", "a100")
# Models whose tfrecord files DLIO reads and writes through tensorflow.
TENSORFLOW_MODELS = ("resnet50", "cosmoflow")


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

    def shard_bytes(self, processes: int) -> int:
        """Each rank's part of one checkpoint (ZeRO stage 3: every rank writes a shard)."""
        return self.checkpoint_bytes() // processes


LLAMA3 = {
    "llama3-8b": Llama3(32, 4096, 14336, 32, 8, 128256, 8),
    "llama3-70b": Llama3(80, 8192, 28672, 64, 8, 128256, 64),
    "llama3-405b": Llama3(126, 16384, 53248, 128, 8, 128256, 512),
    "llama3-1t": Llama3(128, 25872, 98304, 192, 32, 128256, 1024),
}
