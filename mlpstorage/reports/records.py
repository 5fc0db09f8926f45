"""A run folder as one normalised record, whoever wrote it: mlpstorage (ours) or the existing
launcher (its v2.0 layout: `dlio_config/config.yaml`, `dlio_config/overrides.yaml`,
`summary.json` and a `*_metadata.json`).

The verdict (verdict.py), reportgen and the per-run pages read runs only through RunRecord.
Every value that could be a secret is redacted here, once, as the record is read
(mlpstorage/redaction.py): nothing downstream can show one.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import MlpStorageError
from ..redaction import redact

METADATA_SUFFIX = "_metadata.json"
SUMMARY = "summary.json"
DLIO_CONFIG = "dlio_config"

# summary.json's (and our own) headline metrics, in the order reports show them.
HEADLINE_METRICS = (
    ("train_au_mean_percentage", "AU {:.1f}%"),
    ("train_throughput_mean_samples_per_second", "{:.1f} samples/s"),
    ("train_io_mean_MB_per_second", "{:.1f} MB/s"),
    ("checkpoint_write_GB_per_second", "write {:.2f} GB/s"),  # ours (DLIO 2.0.0 reports none)
    ("save_checkpoint_io_mean_GB_per_second", "write {:.2f} GB/s"),  # newer DLIO
    ("load_checkpoint_io_mean_GB_per_second", "read {:.2f} GB/s"),
)

OURS = "mlpstorage"
LAUNCHER = "launcher"  # the existing launcher's v2.0 layout


class NotARun(MlpStorageError):
    """A folder that holds no run record (no metadata, several, or files that do not read)."""

    exit_code = 2


@dataclass(frozen=True)
class RunRecord:
    """What the verdict and the reports need of one run, from either layout."""

    run_dir: Path
    run_id: str  # the run folder (relative to the results directory when read from one)
    layout: str  # OURS or LAUNCHER
    benchmark: str | None  # training | checkpointing
    model: str | None
    command: str | None  # run, datagen; the existing launcher's checkpointing runs: checkpointing
    accelerator: str | None = None  # h100 | a100 (training runs)
    processes: int | None = None  # MPI ranks = simulated accelerators
    hosts: tuple[str, ...] = ()  # as launched: name or name:slots
    num_hosts: int | None = None
    overrides: dict = field(default_factory=dict)  # the ++workload.KEY=VALUE DLIO got (secrets ***)
    config: dict = field(default_factory=dict)  # the resolved workload configuration (secrets ***)
    num_files: int | None = None  # the training files the run read
    client_memory_bytes: float | None = None  # every client host's memory together
    total_cores: int | None = None
    metrics: dict = field(default_factory=dict)  # summary.json's metric section as is (ours: + our own)
    start: str | None = None  # when the run started (summary.json), for ordering runs
    status: str | None = None  # ok | failed | interrupted (ours); ok when DLIO wrote its summary
    division: str | None = None  # asked for at launch: closed | open (ours), the launcher's verification
    checkpoints_written: int | None = None
    checkpoints_read: int | None = None
    throughput_series: tuple[float, ...] = ()  # per epoch (samples/s) or per checkpoint (GB/s)
    throughput_unit: str = ""

    def headline(self) -> list[str]:
        """The metrics reports show for this run, formatted: AU and throughput for training,
        write (and read) bandwidth for checkpointing."""
        m = self.metrics
        shown = []
        for key, text in HEADLINE_METRICS:
            value = m.get(key)
            if _number(value):
                shown.append(text.format(value))
        return shown

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


# ----- reading a folder ------------------------------------------------------------------------
def read_run(run_dir: Path, results_dir: Path | None = None) -> RunRecord:
    """The record of the run in run_dir (ours or the existing launcher's). Raises NotARun with
    one line saying why when the folder holds no readable run."""
    run_dir = Path(run_dir)
    run_id = _run_id(run_dir, results_dir)
    if not run_dir.is_dir():
        raise NotARun(f"{run_dir}: no such folder")
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


def metadata_files_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob(f"*{METADATA_SUFFIX}") if p.is_file())


def is_ours(metadata: dict) -> bool:
    # The existing launcher writes args/params_dict/benchmark_type; we write these.
    return "run_id" in metadata and ("resolved_parameters" in metadata or metadata.get("command") == "datasize")


def _run_id(run_dir: Path, results_dir: Path | None) -> str:
    if results_dir is not None:
        try:
            return run_dir.relative_to(results_dir).as_posix()
        except ValueError:
            pass
    return run_dir.name


def _read_json(path: Path, run_id: str):
    try:
        return json.loads(path.read_text())
    except OSError as exc:
        raise NotARun(f"{run_id}: {path.name}: {exc.strerror}") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise NotARun(f"{run_id}: {path.name} is not JSON ({str(exc).splitlines()[0]})") from None


def _read_yaml(path: Path, run_id: str):
    import yaml

    try:
        return yaml.safe_load(path.read_text())
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise NotARun(f"{run_id}: {path.name}: {exc.strerror}") from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise NotARun(f"{run_id}: {DLIO_CONFIG}/{path.name} is not YAML ({str(exc).splitlines()[0]})") from None


# ----- ours --------------------------------------------------------------------------------------
_HOST_FLAG = "-host"
_WORKLOAD_OVERRIDE = "++workload."


def record_of_ours(metadata: dict, run_dir: Path, summary: dict | None = None, memory_bytes: float | None = None,
                   run_id: str | None = None) -> RunRecord:
    """The record of one of our runs from its metadata (a finished run's, or the one a
    starting run would write): the facts DLIO reported in its summary first, then what
    mlpstorage measured, then memory_bytes (what the launch knew)."""
    arguments = metadata.get("arguments") or {}
    config = redact(metadata.get("resolved_parameters") or {})
    if summary is None:
        summary = metadata.get("dlio_summary") or None
    command = metadata.get("executed_command") or []
    cluster = metadata.get("cluster") or {}
    benchmark = metadata.get("benchmark")
    metrics = dict(metadata.get("metrics") or {})
    if benchmark == "training":  # (in checkpointing runs DLIO's metrics are its driver loop's)
        metrics = {**((summary or {}).get("metric") or {}), **metrics}
    hosts = _hosts_of(command) or tuple(arguments.get("hosts") or metadata.get("hosts") or ())
    cluster_memory = cluster.get("total_memory_bytes") if not cluster.get("hosts_without_information") else None
    record = RunRecord(
        run_dir=Path(run_dir),
        run_id=run_id or Path(run_dir).name,
        layout=OURS,
        benchmark=benchmark,
        model=metadata.get("model"),
        command=metadata.get("command"),
        accelerator=arguments.get("accelerator") if benchmark == "training" else None,
        processes=_int((summary or {}).get("num_accelerators")) or _int(arguments.get("processes")),
        hosts=hosts,
        num_hosts=len(dict.fromkeys(h.split(":", 1)[0] for h in hosts)) or None,
        overrides=redact({**_overrides_of(command), **(arguments.get("params") or {})}),
        config=config,
        num_files=_files_of(summary, config),
        client_memory_bytes=_summary_memory(summary) or cluster_memory or memory_bytes,
        total_cores=_summary_cores(summary) or cluster.get("total_cores") or None,
        metrics=metrics,
        start=(summary or {}).get("start") or _stamp_of(Path(run_dir).name),
        status=metadata.get("status"),
        division=arguments.get("division"),
    )
    if benchmark == "checkpointing":
        written = _int(metrics.get("checkpoints_written"))
        if written is None:
            written = _int(_get(config, "train.epochs"))
        size = metrics.get("checkpoint_bytes")
        series = tuple(size / d / 1e9 for d in metrics.get("checkpoint_durations_s") or () if size and d)
        # DLIO 2.0.0 cannot read checkpoints back: every run of ours writes only.
        return dataclasses.replace(record, checkpoints_written=written, checkpoints_read=0, throughput_series=series,
                        throughput_unit="GB/s")
    return dataclasses.replace(record, throughput_series=_training_series(record.metrics), throughput_unit="samples/s")


def _hosts_of(command: list[str]) -> tuple[str, ...]:
    """The -host h1:s1,h2:s2 mpirun got: the exact slots."""
    if _HOST_FLAG in command[:-1]:
        return tuple(h for h in command[command.index(_HOST_FLAG) + 1].split(",") if h)
    return ()


def _overrides_of(argv: list[str]) -> dict[str, str]:
    """The ++workload.KEY=VALUE items of a command line (ours: the executed command)."""
    overrides = {}
    for item in argv:
        if isinstance(item, str) and item.startswith(_WORKLOAD_OVERRIDE) and "=" in item:
            key, value = item[len(_WORKLOAD_OVERRIDE):].split("=", 1)
            overrides[key] = _unquoted(value)
    return overrides


def _unquoted(value: str) -> str:
    # hydra_value() quotes anything but plain words; show what the user typed
    if len(value) >= 2 and value[0] == value[-1] == "'":
        return value[1:-1].replace("\\'", "'")
    return value


def _stamp_of(name: str) -> str | None:
    match = re.match(r"(\d{8})_(\d{6})", name)
    if not match:
        return None
    day, time = match.groups()
    return f"{day[:4]}-{day[4:6]}-{day[6:]}T{time[:2]}:{time[2:4]}:{time[4:]}"


# ----- the existing launcher's v2.0 layout -------------------------------------------------------
def _record_of_launcher(metadata: dict, summary: dict, run_dir: Path, run_id: str) -> RunRecord:
    """As its reportgen reads a run: the benchmark and command from DLIO's workflow flags, the
    model from model.name, the overrides from overrides.yaml, the numbers from summary.json.
    Beyond it: when summary.json lacks the hosts' memory, its metadata's total_mem_kB."""
    composed = _read_yaml(run_dir / DLIO_CONFIG / "config.yaml", run_id) or {}
    config = redact(composed.get("workload", composed) if isinstance(composed, dict) else {})
    if not isinstance(config, dict):
        config = {}
    items = _read_yaml(run_dir / DLIO_CONFIG / "overrides.yaml", run_id) or []
    items = [str(i) for i in items] if isinstance(items, list) else []
    workflow = config.get("workflow") or {}
    generate, train, checkpoint = (bool(workflow.get(k)) for k in ("generate_data", "train", "checkpoint"))
    if train or generate:
        benchmark, command = "training", "run" if train else "datagen"
    elif checkpoint:
        benchmark, command = "checkpointing", "checkpointing"
    else:
        benchmark, command = metadata.get("benchmark_type"), None
    args = metadata.get("args") or {}
    model = _get(config, "model.name") if isinstance(config.get("model"), dict) else config.get("model")
    hosts = args.get("hosts") or ()
    if isinstance(hosts, str):
        hosts = hosts.split(",")
    hosts = tuple(str(h) for h in hosts if h)
    memory_kb = metadata.get("total_mem_kB")
    checkpoint_section = config.get("checkpoint") or {}
    return RunRecord(
        run_dir=run_dir,
        run_id=run_id,
        layout=LAUNCHER,
        benchmark=benchmark,
        model=_model_name(model),
        command=command,
        accelerator=_accelerator_of(items) or args.get("accelerator_type") if command == "run" else None,
        processes=_int(summary.get("num_accelerators")) or _int(args.get("num_processes")),
        hosts=hosts,
        num_hosts=_int(summary.get("num_hosts")) or len(hosts) or None,
        overrides=redact(_overrides_of(items)),
        config=config,
        num_files=_files_of(summary, config),
        client_memory_bytes=_summary_memory(summary) or (float(memory_kb) * 1024 if _number(memory_kb) else None),
        total_cores=_summary_cores(summary),
        metrics=dict(summary.get("metric") or {}),
        start=summary.get("start") or metadata.get("run_datetime"),
        status="ok",
        division=metadata.get("verification"),
        checkpoints_written=_int(checkpoint_section.get("num_checkpoints_write")) if benchmark == "checkpointing" else None,
        checkpoints_read=_int(checkpoint_section.get("num_checkpoints_read")) if benchmark == "checkpointing" else None,
        throughput_series=_training_series(summary.get("metric") or {}),
        throughput_unit="samples/s",
    )


def _accelerator_of(items: list[str]) -> str | None:
    """h100 from the 'workload=unet3d_h100' hydra was given."""
    for item in items:
        if item.startswith("workload="):
            _, _, accelerator = item.partition("=")[2].partition("_")
            return accelerator or None
    return None


def _model_name(name) -> str | None:
    """DLIO's model names as the launchers know them: llama3_8b, llama_8b -> llama3-8b."""
    if not name:
        return None
    name = str(name)
    if name.startswith("llama_"):
        name = "llama3_" + name[len("llama_"):]
    return name.replace("_", "-")


# ----- shared ------------------------------------------------------------------------------------
def _get(config: dict, dotted: str):
    node = config
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _int(value) -> int | None:
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return int(value) if _number(value) else None


def _files_of(summary: dict | None, config: dict) -> int | None:
    """The files the run read: the count DLIO reports using, else the configured one."""
    return _int((summary or {}).get("num_files_train")) or _int(_get(config, "dataset.num_files_train"))


def _summary_memory(summary: dict | None) -> float | None:
    """DLIO's host_memory_GB (GiB per host, a list) in bytes, as the existing launcher reads it."""
    values = (summary or {}).get("host_memory_GB")
    if isinstance(values, list) and values and all(_number(v) for v in values):
        return sum(values) * 2**30
    return float(values) * 2**30 if _number(values) else None


def _summary_cores(summary: dict | None) -> int | None:
    values = (summary or {}).get("host_cpu_count")
    if isinstance(values, list) and values and all(_number(v) for v in values):
        return int(sum(values))
    return _int(values)


def _training_series(metrics: dict) -> tuple[float, ...]:
    values = metrics.get("train_throughput_samples_per_second")
    return tuple(float(v) for v in values if _number(v)) if isinstance(values, list) else ()


