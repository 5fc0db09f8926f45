"""Runs grouped into submission candidates, and the submission guidelines' checks that no
launcher makes (the existing launcher judges one run at a time).

A candidate is the runs of one benchmark and model on the same accelerator type and count and
the same hosts. Training: a warm-up run and 5 measured runs on the same data set, results
within 5 % of each other, AU at or above the target in every run, the same number of
accelerators on every host. Checkpointing: each write run paired with a read run after it,
10 checkpoints written and 10 read in each pair, 5 pairs, at least 4 simulated accelerators
per host.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .record import OURS, RunRecord
from .verdict import CATEGORIES, CLOSED, Verdict

MEASURED_RUNS = 5
SPREAD = 0.05
# AU targets DLIO evaluates (the workload's metric.au, when the record lacks it)
AU_TARGETS = {"unet3d": 0.90, "resnet50": 0.90, "cosmoflow": 0.70}
CHECKPOINTS = 10
CHECKPOINT_PAIRS = 5
MIN_ACCELERATORS_PER_HOST = 4


@dataclass(frozen=True)
class Check:
    ok: bool
    text: str


@dataclass
class Candidate:
    benchmark: str
    model: str | None
    accelerator: str | None
    processes: int | None
    hosts: tuple[str, ...]  # host names, or ("N hosts",) when the records name none
    runs: list[tuple[RunRecord, Verdict]] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)

    @property
    def category(self) -> str:
        """The worst category of its runs (as the existing launcher's multi-run check says)."""
        return max((v.category for _, v in self.runs), key=CATEGORIES.index, default=CLOSED)

    @property
    def ready(self) -> bool:
        return all(check.ok for check in self.checks)

    @property
    def label(self) -> str:
        what = f"{self.accelerator} x {self.processes}" if self.accelerator else f"{self.processes} processes"
        return f"{self.benchmark} {self.model} {what} on {', '.join(self.hosts)}"


def candidates(runs: list[tuple[RunRecord, Verdict]]) -> list[Candidate]:
    """Training runs (`run` only) and checkpointing runs grouped and checked, in label order."""
    groups: dict[tuple, Candidate] = {}
    for record, verdict in runs:
        if record.benchmark == "training" and record.command != "run":
            continue
        if record.benchmark not in ("training", "checkpointing"):
            continue
        hosts = tuple(sorted(record.host_names)) or (f"{record.num_hosts or '?'} hosts",)
        accelerator = record.accelerator if record.benchmark == "training" else None
        key = (record.benchmark, record.model, accelerator, record.processes, hosts)
        group = groups.setdefault(key, Candidate(record.benchmark, record.model, accelerator, record.processes, hosts))
        group.runs.append((record, verdict))
    for group in groups.values():
        group.runs.sort(key=lambda rv: (rv[0].start or "", rv[0].run_id))
        records = [r for r, _ in group.runs]
        group.checks = training_checks(records) if group.benchmark == "training" else checkpointing_checks(records)
    return sorted(groups.values(), key=lambda c: c.label)


# ----- training ----------------------------------------------------------------------------------
def training_checks(runs: list[RunRecord]) -> list[Check]:
    """runs in the order they started."""
    measured = runs[-MEASURED_RUNS:] if len(runs) > MEASURED_RUNS else []
    checks = [_run_count(runs), _same_data_set(runs), _spread(measured), _au(runs), _same_accelerators(runs)]
    return checks


def _run_count(runs: list[RunRecord]) -> Check:
    needed = MEASURED_RUNS + 1
    if len(runs) >= needed:
        extra = f"; the first {len(runs) - MEASURED_RUNS - 1} not counted" if len(runs) > needed else ""
        return Check(True, f"a warm-up run and {MEASURED_RUNS} measured runs ({len(runs)} runs{extra})")
    return Check(False, f"{len(runs)} run{'s' if len(runs) != 1 else ''}: a submission needs a warm-up run "
                        f"and {MEASURED_RUNS} more")


def _same_data_set(runs: list[RunRecord]) -> Check:
    sets = {(str((r.config.get("dataset") or {}).get("data_folder")), r.num_files) for r in runs}
    if len(sets) == 1:
        return Check(True, "the same data set in every run")
    return Check(False, "different data sets: " + ", ".join(f"{folder} ({files} files)" for folder, files in sorted(sets)))


def _spread(measured: list[RunRecord]) -> Check:
    key = "train_throughput_mean_samples_per_second"
    values = [r.metrics.get(key) for r in measured]
    if not measured or any(not isinstance(v, (int, float)) or v <= 0 for v in values):
        return Check(False, f"results within {SPREAD:.0%} of each other: needs {MEASURED_RUNS} measured runs "
                            "with a throughput")
    low, high = min(values), max(values)
    apart = (high - low) / low
    text = f"{low:.1f} to {high:.1f} samples/s over the measured runs ({apart:.1%} apart)"
    return Check(apart <= SPREAD, f"results within {SPREAD:.0%} of each other: {text}")


def _au(runs: list[RunRecord]) -> Check:
    below, unknown = [], []
    for record in runs:
        target = (record.config.get("metric") or {}).get("au") or AU_TARGETS.get(record.model or "")
        au = record.metrics.get("train_au_mean_percentage")
        if not isinstance(au, (int, float)) or not target:
            unknown.append(record.run_id)
        elif au < target * 100:
            below.append(f"{record.run_id} {au:.1f}% < {target * 100:.0f}%")
    if below or unknown:
        parts = [f"below the target in {', '.join(below)}"] if below else []
        parts += [f"not known in {', '.join(unknown)}"] if unknown else []
        return Check(False, "AU at or above the target in every run: " + "; ".join(parts))
    return Check(True, "AU at or above the target in every run")


def _same_accelerators(runs: list[RunRecord]) -> Check:
    layouts = {tuple(sorted(p.items())) if (p := r.accelerators_per_host()) else None for r in runs}
    if None in layouts:
        return Check(False, "the same accelerators on every host: the records do not say how ranks were placed")
    counts = {count for layout in layouts for _, count in layout}
    shown = ", ".join(f"{host} {count}" for host, count in sorted(layouts)[0])
    if len(counts) == 1:
        return Check(True, f"the same accelerators on every host ({shown})")
    return Check(False, f"the same accelerators on every host: {shown}")


# ----- checkpointing -----------------------------------------------------------------------------
def checkpointing_checks(runs: list[RunRecord]) -> list[Check]:
    """runs in the order they started. Our runs only write (DLIO 2.0.0 cannot read a
    checkpoint back), so their candidates never pair."""
    writes = [r for r in runs if (r.checkpoints_written or 0) > 0 and not r.checkpoints_read]
    reads = [r for r in runs if (r.checkpoints_read or 0) > 0 and not r.checkpoints_written]
    both = [r for r in runs if (r.checkpoints_written or 0) > 0 and (r.checkpoints_read or 0) > 0]
    pairs, waiting, unpaired_reads = [], [], []
    write_ids, read_ids = {id(r) for r in writes}, {id(r) for r in reads}
    for record in runs:  # each read run pairs with the earliest unpaired write run before it
        if id(record) in write_ids:
            waiting.append(record)
        elif id(record) in read_ids:
            if waiting:
                pairs.append((waiting.pop(0), record))
            else:
                unpaired_reads.append(record)
    checks = []
    problems = []
    if waiting:
        problems.append(f"write runs without a read run after them: {', '.join(r.run_id for r in waiting)}")
    if unpaired_reads:
        problems.append(f"read runs without a write run before them: {', '.join(r.run_id for r in unpaired_reads)}")
    if both:
        problems.append(f"runs that write and read in one (no page-cache clearing between): "
                        f"{', '.join(r.run_id for r in both)}")
    if any(r.layout == OURS for r in runs):
        problems.append("mlpstorage runs write only: DLIO 2.0.0 cannot read a checkpoint back")
    checks.append(Check(not problems, f"write and read runs paired ({len(pairs)} pair{'s' if len(pairs) != 1 else ''})"
                        + (": " + "; ".join(problems) if problems else "")))
    wrong = [f"{w.run_id} wrote {w.checkpoints_written}" for w, _ in pairs if w.checkpoints_written != CHECKPOINTS]
    wrong += [f"{r.run_id} read {r.checkpoints_read}" for _, r in pairs if r.checkpoints_read != CHECKPOINTS]
    if pairs:
        checks.append(Check(not wrong, f"{CHECKPOINTS} checkpoints written and {CHECKPOINTS} read in each pair"
                            + (": " + ", ".join(wrong) if wrong else "")))
    checks.append(Check(len(pairs) >= CHECKPOINT_PAIRS, f"{CHECKPOINT_PAIRS} write and read pairs ({len(pairs)})"))
    checks.append(_accelerators_per_host(runs))
    return checks


def _accelerators_per_host(runs: list[RunRecord]) -> Check:
    few = set()
    for record in runs:
        per_host = record.accelerators_per_host()
        if per_host is None:
            return Check(False, f"at least {MIN_ACCELERATORS_PER_HOST} simulated accelerators per host: the records "
                                "do not say how ranks were placed")
        few.update(f"{host} {count}" for host, count in per_host.items() if count < MIN_ACCELERATORS_PER_HOST)
    text = f"at least {MIN_ACCELERATORS_PER_HOST} simulated accelerators per host"
    return Check(not few, text + (f": {', '.join(sorted(few))}" if few else ""))
