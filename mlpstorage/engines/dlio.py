"""DLIO 2.0.0 as an engine: its command line, and its output turned into spans and metrics.

DLIO's output is passed through untouched (see engines/process.py); this module only reads
along. "Starting epoch N" / "Ending epoch N" become an "epoch N/E" task span under the
running stage, "Starting checkpoint" / "Ending checkpoint" a "checkpoint K" span under it,
and the run's summary.json gives the final metrics.
"""

from __future__ import annotations

import json
import re
import sys
import threading
from pathlib import Path

from ..emitter import Emitter
from ..workloads import CONFIG_PATH
from ..workloads.overrides import hydra_value

# A DLIO record: "[INFO] 2026-11-27T10:10:20.906145 Starting epoch 1: 4 steps expected [/path.py:192]"
_EPOCH_START = re.compile(r"Starting epoch (\d+): (\d+) steps expected")
_EPOCH_END = re.compile(r"Ending epoch (\d+) - (\d+) steps completed in ([\d.]+) s")
_CKPT_START = re.compile(r"Starting checkpoint (\d+) after total step (\d+) for epoch (\d+)")
_CKPT_END = re.compile(r"Ending checkpoint (\d+) for epoch (\d+)")
_EPOCH_AU = re.compile(r"Epoch (\d+) - Block \d+ \[Training\] Accelerator Utilization \[AU\] \(%\): ([\d.]+)")
_EPOCH_THROUGHPUT = re.compile(r"Epoch (\d+) - Block \d+ \[Training\] Throughput \(samples/second\): ([\d.]+)")
_GENERATING = re.compile(r"Generating \w+ Data: .*?([\d.]+)% (\d+) of (\d+)")
_GENERATED = re.compile(r"\bGeneration done\b")
# The last line of a Python traceback, e.g. "FileNotFoundError: [Errno 2] ... '/data/train'"
_ERROR = re.compile(r"^(?:\w+\.)*\w*(?:Error|Exception)\b:? .+")

RANK_MODULE = "mlpstorage.engines.dlio_rank"


def dlio_program(workload: str, run_dir: Path, overrides: dict[str, object], python: str = sys.executable) -> list[str]:
    """The per-rank program: hydra overrides first, then --config-path (hydra wants the
    overrides contiguous)."""
    argv = [python, "-m", RANK_MODULE, f"workload={workload}",
            f"++hydra.run.dir={hydra_value(run_dir)}", "++hydra.output_subdir=dlio_config"]
    argv += [f"++workload.{key}={hydra_value(value)}" for key, value in overrides.items()]
    return argv + [f"--config-path={CONFIG_PATH}"]


class DlioProgress:
    """Reads DLIO's output lines (from the pump threads) and keeps the spans they announce."""

    def __init__(self, emitter: Emitter, epochs: int | None):
        self._emitter = emitter
        self._epochs = epochs
        self._lock = threading.Lock()
        self._epoch = None
        self._checkpoint = None
        self.checkpoints: list[float] = []  # seconds each checkpoint took, from its span
        self.last_error: str | None = None  # the last exception line DLIO printed
        self._generation = None

    def observe(self, stream: str, line: str) -> None:
        text = line.rsplit("\r", 1)[-1]
        with self._lock:
            if match := _EPOCH_START.search(text):
                self._end_epoch()
                epoch = int(match.group(1))
                total = f"/{self._epochs}" if self._epochs else ""
                self._epoch = self._emitter.start_task(
                    f"epoch {epoch}{total}", {"dlio.epoch": epoch, "dlio.steps_expected": int(match.group(2))})
            elif match := _EPOCH_END.search(text):
                self._end_epoch({"dlio.steps_completed": int(match.group(2)), "dlio.duration_s": float(match.group(3))})
            elif match := _EPOCH_AU.search(text):
                self._epoch_figure("dlio.au_percent", float(match.group(2)))
            elif match := _EPOCH_THROUGHPUT.search(text):
                self._epoch_figure("dlio.samples_per_second", float(match.group(2)))
            elif match := _CKPT_START.search(text):
                self._end_checkpoint()
                number = len(self.checkpoints) + 1
                self._checkpoint = self._emitter.start_task(
                    f"checkpoint {number}",
                    {"dlio.checkpoint": number, "dlio.epoch": int(match.group(3)), "dlio.total_step": int(match.group(2))},
                    parent=self._epoch,
                )
            elif _CKPT_END.search(text):
                self._end_checkpoint()
            elif match := _GENERATING.search(text):
                self._generating(int(match.group(2)), int(match.group(3)))
            elif _GENERATED.search(text):
                self._end_generation()
            elif stream == "stderr" and _ERROR.match(text):
                self.last_error = text.strip()[:300]

    def _epoch_figure(self, key: str, value: float) -> None:
        """A figure DLIO prints for the epoch before it ends (AU, samples/s): on its span."""
        if self._epoch is not None:
            self._epoch.set_attribute(key, value)

    def _end_epoch(self, attributes: dict | None = None, error: str | None = None) -> None:
        self._end_checkpoint(error=error)
        if self._epoch is not None:
            self._emitter.end_task(self._epoch, attributes, error=error)
            self._epoch = None

    def _end_checkpoint(self, error: str | None = None) -> None:
        if self._checkpoint is not None:
            span = self._checkpoint
            self._emitter.end_task(span, error=error)
            self.checkpoints.append((span.end_time - span.start_time) / 1e9)
            self._checkpoint = None

    def _generating(self, done: int, total: int) -> None:
        if self._generation is None:
            self._generation = self._emitter.start_task("generating files", {"dlio.files": total})
        self._generation.set_attribute("dlio.files_done_rank0", done)

    def _end_generation(self, error: str | None = None) -> None:
        if self._generation is not None:
            self._emitter.end_task(self._generation, error=error)
            self._generation = None

    def close(self, error: str | None = None) -> None:
        """Ends whatever DLIO opened and never closed (a crash, an interrupt)."""
        with self._lock:
            self._end_epoch(error=error)
            self._end_generation(error=error)


def read_summary(run_dir: Path) -> dict | None:
    path = run_dir / "summary.json"
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def adopt_rank_spans(emitter: Emitter, folder: Path) -> int:
    """Feeds the spans the ranks wrote (dlio_rank.py) into the event stream."""
    count = 0
    for path in sorted(folder.glob("rank-*.json")):
        try:
            emitter.adopt_span(json.loads(path.read_text()))
            count += 1
        except (OSError, ValueError) as exc:  # json.JSONDecodeError is a ValueError, as is a bad event
            emitter.warning(f"could not read the rank span in {path}: {exc}")
    return count
