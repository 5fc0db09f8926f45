"""A run as every report sees it: one RunRecord, read by one read_run from a run folder
(mlpstorage's, with its recording, or the existing launcher's v2.0 layout:
`dlio_config/config.yaml`, `dlio_config/overrides.yaml`, `summary.json` and a
`*_metadata.json`) or from a recording (events.jsonl) alone.

A folder or a recording may come from anywhere, so both are untrusted input. Every value
that could be a secret is redacted here, once, as the run is read (mlpstorage/redaction.py):
nothing downstream can show one. Nothing is escaped here: pages escape what they show
(templates with autoescape) and the terminal view makes every string harmless (shown()).
"""

from __future__ import annotations

import dataclasses
import json
import re
import shlex
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from ..errors import UsageError
from ..iotrace import IO_TRACE_FILE
from ..redaction import redact, redact_argv
from ..emitter.events import UNFINISHED
from ..emitter.reading import find_recording
from ..emitter.recording import COMPRESSED_NAME, FILE_NAME as RECORDING
from ..terminal import harmless
from ..results import write_json
from . import dlio_facts as dlio
from .headline import Headline, headlines, number, short_texts
from .launcher_layout import launcher_fields
from .recording import Span, read_recording
from .samples import HostSamples, read_timeseries_file, time_bounds

REPORT = "report.html"
METADATA_SUFFIX = "_metadata.json"
SUMMARY = "summary.json"
DLIO_CONFIG = "dlio_config"
METRIC_PREFIX = "mlpstorage.metric."
OURS = "mlpstorage"
LAUNCHER = "launcher"  # the existing launcher's v2.0 layout
INTERRUPTIONS = ("interrupted", "terminated", "KeyboardInterrupt")

__all__ = ["LAUNCHER", "OURS", "NotARun", "RunRecord", "Span", "read_run", "record_of_ours", "shown",
           "write_run_record"]


class NotARun(UsageError):
    """A path that holds no run: no such path, a folder with no recording and no run record,
    or a run record that does not read (exit code 2 at the CLI)."""


@dataclass
class RunRecord:
    """What the reports need of one run, whichever way it was written."""

    run_dir: Path | None  # None for a recording alone
    run_id: str  # the run folder (relative to the results directory when read from one)
    layout: str | None  # OURS or LAUNCHER; None when no run record was read (a recording alone)
    benchmark: str | None  # training | checkpointing | exec
    model: str | None
    command: str | None  # run, datagen, datasize; the existing launcher's checkpointing runs: checkpointing
    accelerator: str | None = None  # h100 | a100 (training runs)
    processes: int | None = None  # MPI ranks = simulated accelerators
    hosts: tuple[str, ...] = ()  # as launched: name or name:slots
    num_hosts: int | None = None
    overrides: dict = field(default_factory=dict)  # the ++workload.KEY=VALUE DLIO got (secrets ***)
    config: dict = field(default_factory=dict)  # the resolved workload configuration (secrets ***)
    num_files: int | None = None  # the training files the run read
    client_memory_bytes: float | None = None  # every client host's memory together
    total_cores: int | None = None
    metrics: dict = field(default_factory=dict)  # DLIO's summary metrics and ours (the run span's, failing those)
    start: str | None = None  # when the run started (summary.json, else the folder's stamp), for ordering runs
    status: str | None = None  # ok | failed | interrupted | unfinished (a recording cut short)
    division: str | None = None  # asked for at launch: closed | open (ours), the launcher's verification
    checkpoints_written: int | None = None
    checkpoints_read: int | None = None
    throughput_series: tuple[float, ...] = ()  # per epoch (samples/s) or per checkpoint (GB/s)
    throughput_unit: str = ""
    # ----- what mlpstorage recorded (its metadata and events.jsonl) -------------------------
    source: Path | None = None  # the folder or the recording given
    run_name: str | None = None  # the run id mlpstorage gave it: training-unet3d-run-20261127_101000
    workload: str | None = None
    params: dict = field(default_factory=dict)  # the --params given (secrets ***)
    error: str | None = None
    command_line: str | None = None  # as run, quoted for a shell (secrets ***)
    spans: list[Span] = field(default_factory=list)  # in the order they started
    messages: list[dict] = field(default_factory=list)  # results, warnings, errors and stalls
    samples: dict[str, HostSamples] = field(default_factory=dict)  # host -> its samples, as columns
    interval_s: float | None = None
    cluster: dict[str, dict] = field(default_factory=dict)  # host -> information at the start
    files: list[tuple[str, int | None]] = field(default_factory=list)  # (name, bytes); folders end in / with None
    problems: list[str] = field(default_factory=list)  # what was left out while reading, one line each
    io_trace: dict = field(default_factory=dict)  # the metadata's io_trace (--io-trace): requested, file, ranks...
    preflight: dict = field(default_factory=dict)  # the metadata's preflight: per_host -> status, problems...

    # ----- what ran ----------------------------------------------------------------------
    @property
    def run(self) -> Span | None:
        return next((s for s in self.spans if s.kind == "run"), None)

    @property
    def stages(self) -> list[Span]:
        return [s for s in self.spans if s.kind == "stage"]

    @property
    def title(self) -> str:
        parts = [str(p) for p in (self.benchmark, self.model, self.command) if p is not None]
        return " ".join(parts) or (self.run.name if self.run else self.run_id)

    def describe(self) -> str:
        """training run, unet3d, h100 x 8, node1:4, node2:4"""
        command = f" {self.command}" if self.command and self.command != self.benchmark else ""
        parts = [f"{self.benchmark}{command}", self.model or "model ?"]
        if self.accelerator:
            parts.append(f"{self.accelerator} x {self.processes}")
        elif self.processes:
            parts.append(f"{self.processes} processes")
        parts.append(", ".join(self.hosts) if self.hosts else f"{self.num_hosts or '?'} hosts")
        return ", ".join(parts)

    @property
    def host_names(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(h.split(":", 1)[0] for h in self.hosts))

    def accelerators_per_host(self) -> dict[str, int] | None:
        """Ranks each host runs, when the record tells: every host with its slots and the slots
        adding up to the ranks (mpirun fills them in order), or ranks spread evenly."""
        if not self.hosts or not self.processes:
            return None
        slots = {}
        for host in self.hosts:
            name, _, count = host.partition(":")
            if not count.isdigit():
                slots = None
                break
            slots[name] = slots.get(name, 0) + int(count)
        if slots and sum(slots.values()) == self.processes:
            return slots
        names = self.host_names
        if self.processes % len(names) == 0:
            return {name: self.processes // len(names) for name in names}
        return None

    @property
    def traced(self) -> bool:
        """Whether the run ran under the I/O tracer (--io-trace), as its metadata or its folder says."""
        return self.io_trace.get("requested") is True or bool(self.run_dir and (self.run_dir / IO_TRACE_FILE).exists())

    @cached_property
    def io(self):
        """The run's io_trace.json as an io_trace.IoTrace, read once asked; None untraced (or unread: see problems)."""
        if self.run_dir is None or not (self.run_dir / IO_TRACE_FILE).exists():
            return None  # without importing numpy: an untraced run's page needs none
        from .io_trace import load_io_trace

        return load_io_trace(self.run_dir, self.problems)

    # ----- when ----------------------------------------------------------------------------
    @property
    def start_ns(self) -> int | None:
        """The run's start: its span's, else the first span's or sample's (the time axis' 0)."""
        return self.run.start_ns if self.run else min(self._moments(), default=None)

    @property
    def end_ns(self) -> int | None:
        return self.run.end_ns if self.run else max(self._moments(), default=None)

    def _moments(self):
        yield from (s.start_ns for s in self.spans)
        yield from (s.end_ns for s in self.spans)
        yield from time_bounds(self.samples) or ()

    def stage_durations(self) -> dict[str, float]:
        return {s.name: s.duration_s for s in self.stages}

    # ----- the headline metrics --------------------------------------------------------------
    def headline(self) -> list[str]:
        """The headline metrics in reportgen's wording: ['AU 97.34 %', '11.90 samples/s']."""
        return short_texts(self.metrics)

    def headline_figures(self) -> list[Headline]:
        """The headline metrics, the AU against its target."""
        return headlines(self.metrics, self.au_target())

    def au_target(self) -> float | None:
        """The AU a run must reach, in percent: the run's resolved parameters, else the shipped
        workload's configuration."""
        au = dlio.get(self.config, "metric.au")
        if number(au) is None and isinstance(self.workload, str) and self.workload.replace("_", "").isalnum():
            from ..workloads import load_workload  # the shipped configurations: only the page needs them

            try:
                au = (load_workload(self.workload).get("metric") or {}).get("au")
            except Exception:  # a workload this version does not ship
                au = None
        return number(au) * 100 if number(au) is not None else None


# ----- reading -------------------------------------------------------------------------------
def read_run(path: Path, results_dir: Path | None = None, recording: bool = True) -> RunRecord:
    """The run at path: a run folder or a recording alone. Raises NotARun (one line) for
    anything else. results_dir: the run's id is its folder's path under it.
    recording=False: the run record only (reportgen, the verdict): events.jsonl is not read,
    and a folder without a readable run record (its metadata; the launcher's summary.json
    too) is NotARun. With the recording, a broken file of the folder is left out with a
    warning in `problems`."""
    path = Path(path)
    if not path.is_dir():
        if not path.exists():
            raise NotARun(f"{path}: no such run folder or recording")
        record = RunRecord(run_dir=None, run_id=path.name, layout=None, benchmark=None, model=None, command=None)
        return _with_recording(record, path)
    found = find_recording(path) if recording else None
    if found is not None:
        record = _record_beside_recording(path, results_dir)
        return _with_recording(record, found, samples_wanted=not record.samples)
    if recording and not metadata_files_in(path):
        raise NotARun(f"{path}: not a run folder (no {RECORDING} in it)")
    return _run_record(path, results_dir)


def write_run_record(run_dir: Path, benchmark: str, metadata: dict) -> Path:
    """Writes a run's record: the <benchmark>_<run folder>_metadata.json that read_run reads,
    whole or not at all, every secret redacted. The one writer of run records, for a
    benchmark's run and for a command that only computes (datasize) alike."""
    run_dir = Path(run_dir)
    return write_json(run_dir / f"{benchmark}_{run_dir.name}{METADATA_SUFFIX}", redact(metadata))


def metadata_files_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob(f"*{METADATA_SUFFIX}") if p.is_file())


def is_ours(metadata: dict) -> bool:
    # The existing launcher writes args/params_dict/benchmark_type; we write these.
    return "run_id" in metadata and ("resolved_parameters" in metadata or metadata.get("command") == "datasize")


def _run_id(run_dir: Path, results_dir: Path | None) -> str:
    if results_dir is not None and run_dir.is_relative_to(results_dir):
        return run_dir.relative_to(results_dir).as_posix()
    return run_dir.name


def _run_record(run_dir: Path, results_dir: Path | None) -> RunRecord:
    """The run record of a folder, strictly: NotARun saying why when it does not read."""
    run_id = _run_id(run_dir, results_dir)
    metadata_files = metadata_files_in(run_dir)
    if len(metadata_files) > 1:
        raise NotARun(f"{run_id}: {len(metadata_files)} metadata files ({', '.join(p.name for p in metadata_files)}); "
                      "a run folder holds one")
    if not metadata_files:
        raise NotARun(f"{run_id}: no *{METADATA_SUFFIX} (not a run folder)")
    metadata = _read_json(metadata_files[0], run_id)
    if not isinstance(metadata, dict):
        raise NotARun(f"{run_id}: {metadata_files[0].name} is not a metadata object")
    summary_path = run_dir / SUMMARY
    summary = _read_json(summary_path, run_id) if summary_path.exists() else None
    if summary is not None and not isinstance(summary, dict):
        raise NotARun(f"{run_id}: {SUMMARY} is not DLIO's summary object")
    if is_ours(metadata):
        if metadata.get("command") == "datasize":
            raise NotARun(f"{run_id}: a datasize record, not a run")
        return record_of_ours(metadata, run_dir, summary=summary, run_id=run_id)
    if summary is None:
        raise NotARun(f"{run_id}: no {SUMMARY} (the run did not finish)")
    return _record_of_launcher(metadata, summary, run_dir, run_id)


def _read_json(path: Path, run_id: str):
    try:
        return json.loads(path.read_text())
    except OSError as exc:
        raise NotARun(f"{run_id}: {path.name}: {exc.strerror}") from None
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise NotARun(f"{run_id}: {path.name} is not JSON ({str(exc).splitlines()[0][:80]})") from None


def _read_yaml(path: Path, run_id: str):
    import yaml

    try:  # libyaml's safe loader when there is one: ten times the pure-Python one's speed (reportgen)
        return yaml.load(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise NotARun(f"{run_id}: {path.name}: {exc.strerror}") from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise NotARun(f"{run_id}: {DLIO_CONFIG}/{path.name} is not YAML ({str(exc).splitlines()[0]})") from None


# ----- a folder with its recording ----------------------------------------------------------------
def _record_beside_recording(folder: Path, results_dir: Path | None) -> RunRecord:
    """Our run folder: the page is made of whatever reads, so each broken file is a problem."""
    problems: list[str] = []
    metadata = _json_file(problems, folder, "metadata", dict)
    summary = None
    if metadata is not None and (folder / SUMMARY).exists():
        try:
            summary = _read_json(folder / SUMMARY, folder.name)
        except NotARun as exc:
            problems.append(f"{exc}; left out")
        summary = summary if isinstance(summary, dict) else None
    run_id = _run_id(folder, results_dir)
    if metadata is not None:
        record = record_of_ours(metadata, folder, summary=summary, run_id=run_id)
    else:
        record = RunRecord(run_dir=folder, run_id=run_id, layout=None, benchmark=None, model=None, command=None)
    record.problems.extend(problems)
    record.files = _files(folder)
    record.io  # noqa: B018 (read now: a trace that does not read is among the warnings)
    cluster = _json_file(record.problems, folder, "cluster_start", dict)
    if cluster is not None:
        record.cluster = {str(h): i for h, i in cluster.items() if isinstance(i, dict)}
    path = _named(folder, "timeseries")
    if path is not None:
        record.samples, record.interval_s = read_timeseries_file(path, record.problems)
    return record


def _with_recording(record: RunRecord, path: Path, samples_wanted: bool = True) -> RunRecord:
    """record with what its recording holds; what the run record lacks comes from the run span."""
    found = read_recording(path, samples_wanted)
    record.source = path.parent if path.name in (RECORDING, COMPRESSED_NAME) and record.run_dir is not None else path
    record.spans, record.messages = found.spans, found.messages
    record.problems.extend(found.problems)
    record.command_line = record.command_line or found.command_line
    if not record.samples:
        record.samples, record.interval_s = found.samples, found.interval_s
    run = record.run
    attributes = run.attributes if run else {}

    def attribute(key: str):
        return attributes.get(f"mlpstorage.{key}")

    for name in ("benchmark", "model", "command", "workload"):
        if getattr(record, name) is None:
            setattr(record, name, attribute(name))
    record.run_name = record.run_name or attribute("run_id")
    if not record.hosts and isinstance(attribute("hosts"), list):
        record.hosts = tuple(str(h) for h in attribute("hosts"))
    if not record.metrics:
        record.metrics = {k[len(METRIC_PREFIX):]: v for k, v in attributes.items() if k.startswith(METRIC_PREFIX)}
    if run is not None and run.error == UNFINISHED:
        record.status = "unfinished"
    elif record.status is None:
        record.status = "unfinished" if run is None else (
            ("interrupted" if run.error in INTERRUPTIONS else "failed") if run.failed else "ok")
    if record.error is None and run is not None and run.failed:
        record.error = run.error
    return record


def _named(folder: Path, suffix: str) -> Path | None:
    found = sorted(folder.glob(f"*_{suffix}.json"))
    return found[-1] if found else None


def _json_file(problems: list[str], folder: Path, suffix: str, kind: type):
    path = _named(folder, suffix)
    if path is None:
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8", errors="replace"))
    except OSError as exc:
        problems.append(f"{path}: {exc.strerror or exc}; left out")
        return None
    except (ValueError, RecursionError) as exc:
        problems.append(f"{path}: not JSON ({str(exc)[:80]}); left out")
        return None
    if not isinstance(data, kind):
        problems.append(f"{path}: not a JSON {kind.__name__}; left out")
        return None
    return data


def _files(folder: Path) -> list[tuple[str, int | None]]:
    files = []
    try:
        entries = sorted(folder.iterdir(), key=lambda p: p.name)
    except OSError:
        return files
    for entry in entries:
        try:
            if entry.is_dir():
                files.append((entry.name + "/", None))
            elif entry.is_file() and not entry.name.startswith("."):
                files.append((entry.name, entry.stat().st_size))
        except OSError:
            continue
    return files


# ----- ours --------------------------------------------------------------------------------------
_HOST_FLAG = "-host"


def record_of_ours(metadata: dict, run_dir: Path, summary: dict | None = None, memory_bytes: float | None = None,
                   run_id: str | None = None) -> RunRecord:
    """The record of one of our runs from its metadata (a finished run's, or the one a
    starting run would write): the facts DLIO reported in its summary first, then what
    mlpstorage measured, then memory_bytes (what the launch knew)."""
    arguments = _dict(metadata.get("arguments"))
    config = redact(_dict(metadata.get("resolved_parameters")))
    if summary is None:
        summary = _dict(metadata.get("dlio_summary")) or None
    command = metadata.get("executed_command")
    command = command if isinstance(command, list) and all(isinstance(a, str) for a in command) else []
    cluster = _dict(metadata.get("cluster"))
    benchmark = metadata.get("benchmark")
    metrics = _dict(metadata.get("metrics"))
    if benchmark == "training":  # (in checkpointing runs DLIO's metrics are its driver loop's)
        metrics = {**_dict((summary or {}).get("metric")), **metrics}
    hosts = _hosts_of(command) or tuple(str(h) for h in arguments.get("hosts") or metadata.get("hosts") or ())
    cluster_memory = cluster.get("total_memory_bytes") if not cluster.get("hosts_without_information") else None
    params = arguments.get("params")
    record = RunRecord(
        run_dir=Path(run_dir),
        run_id=run_id or Path(run_dir).name,
        layout=OURS,
        benchmark=benchmark,
        model=metadata.get("model"),
        command=metadata.get("command"),
        accelerator=arguments.get("accelerator") if benchmark == "training" else None,
        processes=dlio.as_int((summary or {}).get("num_accelerators")) or dlio.as_int(arguments.get("processes")),
        hosts=hosts,
        num_hosts=len(dict.fromkeys(h.split(":", 1)[0] for h in hosts)) or None,
        overrides=redact({**dlio.overrides_of(command), **(params if isinstance(params, dict) else {})}),
        config=config,
        num_files=dlio.files_read(summary, config),
        client_memory_bytes=dlio.summary_memory(summary) or cluster_memory or memory_bytes,
        total_cores=dlio.summary_cores(summary) or cluster.get("total_cores") or None,
        metrics=metrics,
        start=(summary or {}).get("start") or _stamp_of(Path(run_dir).name),
        status=_text(metadata.get("status")),
        division=arguments.get("division"),
        source=Path(run_dir),
        run_name=_text(metadata.get("run_id")),
        workload=_text(metadata.get("workload")),
        params=redact(params) if isinstance(params, dict) else {},
        error=_text(metadata.get("error")),
        command_line=shlex.join(redact_argv(command)) if command else None,
        io_trace=_dict(metadata.get("io_trace")),
        preflight=_dict(metadata.get("preflight")),
    )
    if benchmark == "checkpointing":
        written = dlio.as_int(metrics.get("checkpoints_written"))
        if written is None:
            written = dlio.as_int(dlio.get(config, "train.epochs"))
        size = metrics.get("checkpoint_bytes")
        durations = metrics.get("checkpoint_durations_s")
        series = tuple(size / d / 1e9 for d in durations or () if number(size) and number(d))
        # DLIO 2.0.0 cannot read checkpoints back: every run of ours writes only.
        return dataclasses.replace(record, checkpoints_written=written, checkpoints_read=0, throughput_series=series,
                                   throughput_unit="GB/s")
    return dataclasses.replace(record, throughput_series=dlio.training_series(metrics), throughput_unit="samples/s")


def _dict(value) -> dict:
    return value if isinstance(value, dict) else {}


def _text(value) -> str | None:
    return value if isinstance(value, str) else None


def _hosts_of(command: list[str]) -> tuple[str, ...]:
    """The -host h1:s1,h2:s2 mpirun got: the exact slots."""
    if _HOST_FLAG in command[:-1]:
        return tuple(h for h in command[command.index(_HOST_FLAG) + 1].split(",") if h)
    return ()


def _stamp_of(name: str) -> str | None:
    match = re.match(r"(\d{4})(\d\d)(\d\d)_(\d\d)(\d\d)(\d\d)", name)
    return "{}-{}-{}T{}:{}:{}".format(*match.groups()) if match else None


# ----- the existing launcher's v2.0 layout -------------------------------------------------------
def _record_of_launcher(metadata: dict, summary: dict, run_dir: Path, run_id: str) -> RunRecord:
    composed = _read_yaml(run_dir / DLIO_CONFIG / "config.yaml", run_id) or {}
    items = _read_yaml(run_dir / DLIO_CONFIG / "overrides.yaml", run_id) or []
    return RunRecord(run_dir=run_dir, run_id=run_id, layout=LAUNCHER, source=run_dir,
                     **launcher_fields(metadata, summary, composed, items))


# ----- showing ---------------------------------------------------------------------------
_SGR = re.compile(r"\x1b\[[0-9;:]*m")


def shown(value) -> str:
    """Any value from a run as text to show, on a page or a terminal: control characters
    shown escaped (replay.harmless: \\x1b, \\n, \\u202e) and colour sequences dropped."""
    return _SGR.sub("", harmless(str(value)))
