"""The verdict of one run: CLOSED, OPEN or INVALID, with its reasons.

Training follows the existing launcher's rules exactly (MLPerf Storage v2.0, 2.0.0b1): which
--params overrides each division allows, the data-size rule on the files the run read,
O_DIRECT for unet3d only, and a unet3d `run` must checkpoint (workflow.checkpoint; the launcher
enforces it only when reading a recorded run, ours at launch and after alike). A run is
INVALID if any check says INVALID, else OPEN if any says OPEN, else CLOSED; a check that
cannot be evaluated (a missing value) says INVALID. Only `run` is judged (not datagen).

Checkpointing: the existing launcher checks nothing (every run is CLOSED). Ours applies the
submission guidelines' two CLOSED configurations (2.2.2): checkpoint.mode=default with exactly
the model's TP x PP x DP processes, or checkpoint.mode=subset (node-local storage) with 8
processes on one host, for every llama3 model; any other count is OPEN. It also refuses a
checkpoint that is not the model's size; both are ours alone, so ours is stricter there.

Notes say what a reader of the verdict should know without changing the category: a run
traced with --io-trace is judged as any other (MLPerf Storage's rules say nothing of tracing,
and the existing launcher would judge the same run the same way), but its note says the
tracer costs throughput and that a submission should be an untraced run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..models import LLAMA3, Llama3
from ..redaction import REDACTED, is_secret_key
from .dlio_facts import as_int, get
from .record import OURS, RunRecord, read_run

CLOSED, OPEN, INVALID = "CLOSED", "OPEN", "INVALID"
CATEGORIES = (CLOSED, OPEN, INVALID)  # best to worst

# --params keys (DLIO's ++workload.KEY) each division allows; any other is INVALID.
CLOSED_OVERRIDES = frozenset({
    "dataset.num_files_train", "dataset.num_subfolders_train", "dataset.data_folder",
    "reader.read_threads", "reader.computation_threads", "reader.transfer_size", "reader.odirect",
    "reader.prefetch_size", "checkpoint.checkpoint_folder", "storage.storage_type", "storage.storage_root",
})
OPEN_OVERRIDES = frozenset({"framework", "dataset.format", "dataset.num_samples_per_file", "reader.data_loader"})
UNJUDGED_PREFIX = "workflow"  # the launcher leaves workflow.* overrides alone
ODIRECT_MODELS = ("unet3d",)
CHECKPOINTING_MODELS = ("unet3d",)  # training runs that must checkpoint (workflow.checkpoint)
SUBSET, SUBSET_PROCESSES = "subset", 8  # checkpoint.mode=subset: node-local storage, 8 processes on one host
# GPUs per data-parallel instance (TP x PP), per model: a CLOSED subset run's data parallelism
# is the CLOSED process count over it (the existing launcher sets it so).
GPUS_PER_DP_INSTANCE = {"llama3-8b": 8, "llama3-70b": 8, "llama3-405b": 256, "llama3-1t": 512}
TRACED_NOTE = ("I/O trace on (--io-trace): the tracer in every rank costs some throughput, so these metrics are "
               "not an untraced run's; submit a run without --io-trace")


@dataclass(frozen=True)
class Finding:
    """One check's result: which category it allows and why."""

    category: str
    subject: str  # what was checked: key=value, or the rule
    why: str

    def __str__(self) -> str:
        return f"{self.subject}: {self.why} ({self.category})"


@dataclass(frozen=True)
class Verdict:
    """A run's category, the reasons it is not CLOSED (empty when it is), and notes that do
    not change the category (a traced run's)."""

    category: str
    reasons: tuple[str, ...] = ()
    findings: tuple[Finding, ...] = ()
    notes: tuple[str, ...] = ()

    @classmethod
    def of(cls, findings: list[Finding], notes: list[str] = ()) -> "Verdict":
        category = max((f.category for f in findings), key=CATEGORIES.index, default=CLOSED)
        return cls(category, tuple(str(f) for f in findings if f.category != CLOSED), tuple(findings), tuple(notes))

    def reasons_of(self, category: str) -> list[str]:
        return [str(f) for f in self.findings if f.category == category]

    def as_dict(self) -> dict:
        return {"category": self.category, "reasons": list(self.reasons), "notes": list(self.notes)}


def verdict_of_run(run_dir: Path) -> Verdict:
    """The verdict of the run in run_dir (ours or the existing launcher's v2.0 layout).
    Raises record.NotARun (one line, exit code 2 at the CLI) when the folder holds no run."""
    return judge(read_run(Path(run_dir), recording=False))


def verdict_of(record: RunRecord) -> tuple[Verdict | None, str | None]:
    """(the verdict, None) of a run the rules judge: a training or checkpointing run (not
    datasize) whose run record was read. (None, None) for any other: an exec run, a recording
    alone. (None, why) when the rules fail: that must not cost a page the rest of it."""
    if record.layout is None or record.benchmark not in ("training", "checkpointing") or record.command == "datasize":
        return None, None
    if record.benchmark == "training" and record.command != "run":  # the rules judge training runs only
        return None, None
    try:
        return judge(record), None
    except Exception as exc:
        return None, f"no verdict: {type(exc).__name__}: {exc}"


def judge(record: RunRecord) -> Verdict:
    notes = run_notes(record)
    if record.benchmark == "training":
        return Verdict.of(training_findings(record), notes)
    if record.benchmark == "checkpointing":
        return Verdict.of(checkpointing_findings(record), notes)
    return Verdict.of([Finding(INVALID, "benchmark", f"unknown benchmark type {record.benchmark!r}")], notes)


def run_notes(record: RunRecord) -> list[str]:
    """What the verdict notes about how the run ran, whatever its category."""
    return [TRACED_NOTE] if record.traced else []


# ----- training ----------------------------------------------------------------------------------
def training_findings(record: RunRecord) -> list[Finding]:
    return [*override_findings(record.overrides), data_size_finding(record), *odirect_findings(record),
            *workflow_checkpoint_findings(record)]


def shown(key: str, value) -> str:
    return f"{key}={REDACTED if is_secret_key(key) else value}"


def override_findings(overrides: dict) -> list[Finding]:
    findings = []
    for key, value in overrides.items():
        if key.startswith(UNJUDGED_PREFIX):
            continue
        if key in CLOSED_OVERRIDES:
            findings.append(Finding(CLOSED, shown(key, value), "allowed in CLOSED"))
        elif key in OPEN_OVERRIDES:
            findings.append(Finding(OPEN, shown(key, value), "allowed in OPEN only"))
        else:
            findings.append(Finding(INVALID, shown(key, value), "may not be changed in either division"))
    return findings


def data_size_finding(record: RunRecord) -> Finding:
    """MLPerf Storage's data-size rule on the files the run read, with the run's total client
    memory and its accelerator count (mlpstorage/workloads: required_data_size)."""
    from ..workloads import required_data_size

    config = record.config
    dataset, reader = config.get("dataset") or {}, config.get("reader") or {}
    record_length = dataset.get("record_length", dataset.get("record_length_bytes"))  # DLIO 2.0.0 / newer DLIO
    facts = {
        "the number of files the run read": record.num_files,
        "the run's client memory": record.client_memory_bytes,
        "the run's accelerator count": record.processes,
        "dataset.num_samples_per_file": dataset.get("num_samples_per_file"),
        "dataset.record_length": record_length,
        "reader.batch_size": reader.get("batch_size"),
    }
    missing = [what for what, value in facts.items() if not _positive(value)]
    if missing:
        return Finding(INVALID, "data-size rule", f"cannot be evaluated: {' and '.join(missing)} not known")
    size = required_data_size({"dataset": {"num_samples_per_file": dataset["num_samples_per_file"],
                                           "record_length": record_length},
                               "reader": {"batch_size": reader["batch_size"]}},
                              record.client_memory_bytes / 2**30, 1, record.processes)
    subject = f"dataset.num_files_train={record.num_files}"
    if record.num_files >= size.files:
        return Finding(CLOSED, subject, f"at least the {size.files} files the data-size rule requires")
    per_file = dataset["num_samples_per_file"]
    accelerators = f"{record.processes} accelerator{'s' if record.processes != 1 else ''}"
    by_steps = (f"500 steps x {accelerators} x batch {reader['batch_size']} / "
                f"{per_file} sample{'s' if per_file != 1 else ''} per file = {size.files_for_steps}")
    by_memory = (f"5 x {record.client_memory_bytes / 2**30:.1f} GiB client memory / "
                 f"{size.file_size_bytes / 2**20:.1f} MiB per file = {size.files_for_memory}")
    return Finding(INVALID, subject, f"fewer than the {size.files} files the data-size rule requires "
                                     f"({by_steps}; {by_memory})")


def odirect_findings(record: RunRecord) -> list[Finding]:
    odirect = (record.config.get("reader") or {}).get("odirect")
    if odirect and record.model not in ODIRECT_MODELS:
        return [Finding(INVALID, f"reader.odirect={odirect}", f"O_DIRECT is allowed for {', '.join(ODIRECT_MODELS)} "
                                                              f"only, not {record.model}")]
    return []


def workflow_checkpoint_findings(record: RunRecord) -> list[Finding]:
    """A unet3d `run` must checkpoint (the existing launcher's check_workflow_parameters, on the
    resolved workflow.checkpoint). Unset, DLIO does not checkpoint: INVALID as well."""
    if record.model not in CHECKPOINTING_MODELS or record.command != "run":
        return []
    checkpoint = _flag(get(record.config, "workflow.checkpoint"))
    if checkpoint is True:
        return [Finding(CLOSED, "workflow.checkpoint=True", "Unet3D training requires executing a checkpoint")]
    why = ("Unet3D training requires executing a checkpoint" if checkpoint is not None else
           "Unet3D training requires executing a checkpoint (unset: DLIO does not checkpoint)")
    return [Finding(INVALID, f"workflow.checkpoint={checkpoint}", why)]


# ----- checkpointing -----------------------------------------------------------------------------
def checkpointing_findings(record: RunRecord) -> list[Finding]:
    """Ours only (the existing launcher checks nothing): the submission guidelines' CLOSED
    configurations per model, and, for our runs, each rank writing its share of the model's
    checkpoint (in subset mode, its share as one of the CLOSED count's ranks)."""
    arch = LLAMA3.get(record.model or "")
    if arch is None:
        return [Finding(INVALID, "model", f"{record.model!r} is not one of {', '.join(LLAMA3)}")]
    if not record.processes:
        return [Finding(INVALID, "processes", "cannot be evaluated: the run's process count is unknown")]
    mode = checkpoint_mode(record)
    findings = subset_findings(record, arch) if mode == SUBSET else [default_mode_finding(record, arch, mode)]
    shard = (record.config.get("checkpoint") or {}).get("model_size")
    if record.layout == OURS and shard is not None:
        expected = arch.shard_bytes(arch.closed_processes if mode == SUBSET else record.processes)
        if shard != expected:
            findings.append(Finding(INVALID, f"checkpoint.model_size={shard}",
                                    f"each rank writes {shard} bytes, not its {expected}-byte share of a "
                                    f"{record.model} checkpoint"))
    return findings


def checkpoint_mode(record: RunRecord) -> str:
    """checkpoint.mode as the run resolved it (else as --params gave it): default or subset."""
    mode = get(record.config, "checkpoint.mode") or record.overrides.get("checkpoint.mode") or "default"
    return str(mode).strip().lower()


def default_mode_finding(record: RunRecord, arch: Llama3, mode: str) -> Finding:
    closed = arch.closed_processes
    subject = f"processes={record.processes}" + (f" (checkpoint.mode={mode})" if mode != "default" else "")
    if record.processes == closed and mode == "default":
        return Finding(CLOSED, subject, f"the CLOSED count for {record.model}")
    return Finding(OPEN, subject, f"CLOSED runs {record.model} with exactly {closed} processes, or with "
                                  f"{SUBSET_PROCESSES} on one host in checkpoint.mode=subset (submission guidelines)")


def subset_findings(record: RunRecord, arch: Llama3) -> list[Finding]:
    """Subset mode (node-local storage) is CLOSED for every llama3 model on one host with 8
    processes, its data parallelism (when the run states it) the CLOSED count's."""
    hosts = record.num_hosts or len(record.host_names) or None
    subject = f"checkpoint.mode=subset, processes={record.processes}, hosts={hosts or '?'}"
    if hosts is None:
        return [Finding(INVALID, subject, "cannot be evaluated: the run's host count is unknown")]
    if (record.processes, hosts) != (SUBSET_PROCESSES, 1):
        return [Finding(OPEN, subject, f"CLOSED runs subset mode with {SUBSET_PROCESSES} processes on one host "
                                       "(submission guidelines)")]
    findings = [Finding(CLOSED, subject, f"the CLOSED subset configuration (node-local storage) for {record.model}")]
    data_parallel = as_int(get(record.config, "model.parallelism.data"))
    expected = arch.closed_processes // GPUS_PER_DP_INSTANCE[record.model]
    if data_parallel is not None and data_parallel != expected:
        findings.append(Finding(OPEN, f"model.parallelism.data={data_parallel}",
                                f"a CLOSED subset run of {record.model} has data parallelism {expected}"))
    return findings


# ----- at launch ---------------------------------------------------------------------------------
def refusal(verdict: Verdict, division: str | None, allow_invalid: bool = False) -> str | None:
    """Why a run launched with --closed or --open must not start (one line), or None."""
    if division == "closed" and verdict.category != CLOSED:
        return f"--closed: this run would be {verdict.category}: {'; '.join(verdict.reasons)}"
    if division == "open" and verdict.category == INVALID and not allow_invalid:
        return (f"--open: this run would be INVALID: {'; '.join(verdict.reasons_of(INVALID))} "
                "(--allow-invalid-params runs it anyway)")
    return None


def _flag(value):
    """A workflow flag as DLIO reads it: YAML's booleans, and "True"/"False" as --params give them."""
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return value


def _positive(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0
