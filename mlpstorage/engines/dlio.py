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
import time
from pathlib import Path

from ..emitter import Emitter
from ..workloads import CONFIG_PATH
from ..workloads.overrides import hydra_value, secret_environment, workload_overrides

__all__ = ["DlioProgress", "adopt_rank_spans", "dlio_program", "hydra_value", "read_summary", "secret_environment"]

# A DLIO record: "[INFO] 2026-11-27T10:10:20.906145 Starting epoch 1: 4 steps expected [/path.py:192]"
_STEP = re.compile(r"Rank (\d+) step (\d+) processed")
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
    overrides contiguous). The workload's are workload_overrides(), which configview composes
    too; a secret's value is not in them: the ranks need secret_environment(overrides)."""
    choice, *values = workload_overrides(workload, overrides)
    argv = [python, "-m", RANK_MODULE, choice, f"++hydra.run.dir={hydra_value(run_dir)}",
            "++hydra.output_subdir=dlio_config", *values]
    return argv + [f"--config-path={CONFIG_PATH}"]


# Lines that open or close an epoch or a checkpoint: a batch holding one is read line by line,
# in order. Any other batch is read whole: its step records with one regex scan, its data
# generation progress from its last progress line, so a chatty program (exec) or DLIO's
# per-step lines cost a scan per pipe-full, not a regex per line.
_BOUNDARY = "poch "  # "Starting epoch", "Ending epoch", "Epoch 1 - Block", "checkpoint 1 for epoch 1"
# Task updates of an epoch's step count are published at most this often.
UPDATE_EVERY_S = 0.5


class DlioProgress:
    """Reads DLIO's output lines (from the pump threads) and keeps the spans they announce:
    each epoch a task whose count is its steps (those of its slowest rank), each checkpoint a
    task under it. A stall detector (mlpstorage/stalls/) is told of every batch of output,
    every step and every epoch's start and end."""

    def __init__(self, emitter: Emitter, epochs: int | None, detector=None, ranks: int | None = None,
                 computation_time_s: float | None = None, clock=time.time):
        self._emitter = emitter
        # (start_ns, end_ns) -> attributes for an epoch's span as it ends (the I/O trace's
        # figures for the epoch: benchmarks/io_trace.py); None: nothing more than DLIO says
        self.epoch_attributes = None
        self._epochs = epochs
        self._detector = detector
        self._ranks = ranks or 0  # how many ranks report steps (0: as many as are seen)
        self._computation_time_s = computation_time_s
        self._clock = clock
        self._lock = threading.Lock()
        self._epoch = None
        self._epoch_number = None
        self._steps_expected: int | None = None
        self._rank_steps: dict[int, int] = {}  # rank -> last step in the current epoch
        self._seen_ranks: set[int] = set()  # every rank that reported a step in the run
        self._shown = (0, 0.0)  # the epoch count last published, and when
        self._checkpoint = None
        self.checkpoints: list[float] = []  # seconds each checkpoint took, from its span
        self.last_error: str | None = None  # the last exception line DLIO printed
        self._generation = None

    def observe(self, stream: str, lines: list[str]) -> None:
        """A batch of lines of one stream (engines/process.py's observer)."""
        if self._detector is not None:
            self._detector.activity("output")
        text = lines[0] if len(lines) == 1 else "\n".join(lines)
        if _BOUNDARY in text:
            for line in lines:
                self.observe_line(stream, line)
            return
        if found := _STEP.findall(text):  # a scan as cheap as a substring test when there is none
            with self._lock:
                self._steps(found)
        if "enerat" in text:
            with self._lock:
                self._generation_progress(lines, "Generation done" in text)
        if stream == "stderr" and ("Error" in text or "Exception" in text):
            for line in lines:
                if _ERROR.match(line):
                    self.last_error = line.strip()[:300]

    def _generation_progress(self, lines: list[str], done: bool) -> None:
        """Data generation: only its latest progress line counts (and its end)."""
        for line in reversed(lines):
            if match := _GENERATING.search(line.rsplit("\r", 1)[-1]):
                self._generating(int(match.group(2)), int(match.group(3)))
                break
        if done:
            self._end_generation()

    def observe_line(self, stream: str, line: str) -> None:
        text = line.rsplit("\r", 1)[-1]
        with self._lock:
            if match := _STEP.search(text):
                self._steps([match.groups()])
            elif match := _EPOCH_START.search(text):
                self._end_epoch()
                epoch, steps = int(match.group(1)), int(match.group(2))
                total = f"/{self._epochs}" if self._epochs else ""
                self._epoch = self._emitter.start_task(
                    f"epoch {epoch}{total}", {"dlio.epoch": epoch, "dlio.steps_expected": steps})
                self._epoch_number, self._steps_expected, self._rank_steps = epoch, steps, {}
                self._shown = (0, 0.0)
                if self._detector is not None:
                    expected = steps * self._computation_time_s if self._computation_time_s else None
                    self._detector.epoch_started(epoch, steps, expected)
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

    def _steps(self, found: list[tuple[str, str]]) -> None:
        """Step records (rank, step) of one batch, in order: told to the detector; the epoch's
        count is its slowest rank's step (published at most every UPDATE_EVERY_S, and by flush())."""
        latest: dict[str, str] = {}
        counts: dict[str, int] = {}
        for rank, step in found:
            latest[rank] = step
            counts[rank] = counts.get(rank, 0) + 1
        steps = {int(rank): int(step) for rank, step in latest.items()}
        if self._detector is not None:
            self._detector.steps(steps, {int(rank): count for rank, count in counts.items()})
        self._rank_steps.update(steps)
        self._seen_ranks.update(steps)
        if self._epoch is not None:
            self._publish_count(self._clock())

    def _publish_count(self, now: float, force: bool = False) -> None:
        ranks = max(self._ranks, len(self._seen_ranks))  # a rank silent in this epoch is at step 0
        count = min(self._rank_steps.values()) if len(self._rank_steps) >= ranks else 0
        shown, at = self._shown
        if count != shown and (force or now - at >= UPDATE_EVERY_S):
            self._shown = (count, now)
            self._emitter.update_task(self._epoch, count, self._steps_expected, at_ns=int(now * 1e9))

    def flush(self) -> None:
        """Publishes an epoch count held back by the rate limit (the stall watch calls it)."""
        with self._lock:
            if self._epoch is not None:
                self._publish_count(self._clock(), force=True)

    def _epoch_figure(self, key: str, value: float) -> None:
        """A figure DLIO prints for the epoch before it ends (AU, samples/s): on its span."""
        if self._epoch is not None:
            self._epoch.set_attribute(key, value)

    def _end_epoch(self, attributes: dict | None = None, error: str | None = None) -> None:
        self._end_checkpoint(error=error)
        if self._epoch is not None:
            self._publish_count(self._clock(), force=True)  # the count the rate limit held back: it ends at 4/4, not 3/4
            if self.epoch_attributes is not None:
                attributes = {**(attributes or {}), **self._traced(self._epoch.start_time, time.time_ns())}
            self._emitter.end_task(self._epoch, attributes, error=error)
            self._epoch = None
            if self._detector is not None and error is None:
                self._detector.epoch_ended(self._epoch_number)

    def _traced(self, start_ns: int, end_ns: int) -> dict:
        """The epoch's figures from the I/O trace; a problem reading it is one warning, never
        the end of the run (this runs in the output pump)."""
        try:
            return self.epoch_attributes(start_ns, end_ns)
        except Exception as exc:
            self._emitter.warning(f"The I/O trace of this epoch could not be read ({type(exc).__name__}: {exc}); "
                                  "io_trace.json will still be written at the end")
            self.epoch_attributes = None
            return {}

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


def adopt_rank_spans(emitter: Emitter, folder: Path, extra: dict[int, dict] | None = None) -> dict[int, str]:
    """Feeds the spans the ranks wrote (dlio_rank.py) into the event stream; extra: attributes
    to add to a rank's span, by rank (how it stalled, from the stall watch). Returns the span
    id of each rank adopted, by rank (what the slowest traced calls hang under)."""
    adopted: dict[int, str] = {}
    for path in sorted(folder.glob("rank-*.json")):
        try:
            event = json.loads(path.read_text())
            rank = event.get("attributes", {}).get("mlpstorage.rank") if isinstance(event, dict) else None
            if extra and rank in extra and isinstance(event.get("attributes"), dict):
                event["attributes"].update(extra[rank])
            emitter.adopt_span(event)
            if isinstance(rank, int):
                adopted[rank] = event["span_id"]
        except (OSError, ValueError) as exc:  # json.JSONDecodeError is a ValueError, as is a bad event
            emitter.warning(f"could not read the rank span in {path}: {exc}")
    return adopted
