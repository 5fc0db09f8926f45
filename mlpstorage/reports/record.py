"""A run as the reports see it, read from its folder or from a recording (events.jsonl) alone.

A run folder or a recording may come from anywhere, so both are untrusted input: the
recording is read through replay.Recording (every line checked against the schema, a file
that is no recording refused with one error, bad lines after the first skipped with a
warning), and each JSON file of the folder is used only when it has the shape it should,
otherwise left out with a warning in `problems`. Nothing is escaped here: the page escapes
what it shows and the terminal view makes every string harmless.
"""

from __future__ import annotations

import json
import math
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from ..emitter import events as ev
from ..errors import UsageError
from ..redaction import redact, redact_argv
from ..replay import UNFINISHED, OpenSpans, Recording, harmless

RECORDING = "events.jsonl"
REPORT = "report.html"
METRIC_PREFIX = "mlpstorage.metric."


@dataclass
class Span:
    span_id: str
    parent_id: str | None
    kind: str  # run | stage | spinner | task
    name: str
    start_ns: int
    end_ns: int
    status: str  # ok | error | open (still open when a live run's page was written)
    error: str | None
    attributes: dict

    @property
    def duration_s(self) -> float:
        return (self.end_ns - self.start_ns) / 1e9

    @property
    def failed(self) -> bool:
        return self.status == "error"


@dataclass
class RunRecord:
    source: Path  # the folder or the recording given
    run_dir: Path | None  # None for a recording alone
    spans: list[Span] = field(default_factory=list)  # in the order they started
    samples: dict[str, list[dict]] = field(default_factory=dict)  # host -> samples (timestamp_ns + numbers)
    interval_s: float | None = None
    metadata: dict = field(default_factory=dict)
    cluster: dict[str, dict] = field(default_factory=dict)  # host -> information at the start
    messages: list[dict] = field(default_factory=list)  # log events of level result, warning and error; stalls
    command: str | None = None  # as run, quoted for a shell, secrets redacted
    files: list[tuple[str, int | None]] = field(default_factory=list)  # (name, bytes); folders end in / and have None
    problems: list[str] = field(default_factory=list)
    verdict: object | None = None  # mlpstorage.reports.verdict.Verdict, for training and checkpointing runs

    # ----- what ran ----------------------------------------------------------------------
    @property
    def run(self) -> Span | None:
        return next((s for s in self.spans if s.kind == "run"), None)

    @property
    def stages(self) -> list[Span]:
        return [s for s in self.spans if s.kind == "stage"]

    @property
    def attributes(self) -> dict:
        return self.run.attributes if self.run else {}

    def what(self, key: str):
        """benchmark, model, command, run_id, hosts, workload: from the metadata, else the run span."""
        value = self.metadata.get(key)
        return value if value is not None else self.attributes.get(f"mlpstorage.{key}")

    @property
    def title(self) -> str:
        parts = [str(self.what(k)) for k in ("benchmark", "model", "command") if self.what(k) is not None]
        return " ".join(parts) or (self.run.name if self.run else self.source.name)

    @property
    def status(self) -> str:
        """ok, failed, interrupted (as the metadata says), or unfinished (a recording cut short)."""
        run = self.run
        if run is not None and run.error == UNFINISHED:
            return "unfinished"
        status = self.metadata.get("status")
        if isinstance(status, str):
            return status
        if run is None:
            return "unfinished"
        if run.failed:
            return "interrupted" if run.error in ("interrupted", "terminated", "KeyboardInterrupt") else "failed"
        return "ok"

    @property
    def error(self) -> str | None:
        error = self.metadata.get("error")
        if isinstance(error, str):
            return error
        return self.run.error if self.run and self.run.failed else None

    @property
    def start_ns(self) -> int | None:
        """The run's start: its span's, else the first span's or sample's (the time axis' 0)."""
        if self.run:
            return self.run.start_ns
        return min(self._moments(), default=None)

    @property
    def end_ns(self) -> int | None:
        if self.run:
            return self.run.end_ns
        return max(self._moments(), default=None)

    def _moments(self):
        yield from (s.start_ns for s in self.spans)
        yield from (s.end_ns for s in self.spans)
        yield from (s["timestamp_ns"] for series in self.samples.values() for s in series)

    def metrics(self) -> dict:
        """The headline metrics: the metadata's, else the run span's mlpstorage.metric.* attributes."""
        metrics = self.metadata.get("metrics")
        if isinstance(metrics, dict) and metrics:
            return metrics
        return {k[len(METRIC_PREFIX):]: v for k, v in self.attributes.items() if k.startswith(METRIC_PREFIX)}

    def params(self) -> dict:
        """The --params given, secrets redacted."""
        arguments = self.metadata.get("arguments")
        params = arguments.get("params") if isinstance(arguments, dict) else None
        return redact(params) if isinstance(params, dict) else {}

    def resolved_parameters(self) -> dict:
        resolved = self.metadata.get("resolved_parameters")
        return redact(resolved) if isinstance(resolved, dict) else {}

    def stage_durations(self) -> dict[str, float]:
        return {s.name: s.duration_s for s in self.stages}


def read_run(path: Path, live: bool = False) -> RunRecord:
    """The run in a folder (its events.jsonl and the files beside it), or in a recording alone.
    UsageError (one line) when path is neither. live: the run is still going (its page is
    written during "Processing results"), so spans not finished yet are open, not failed."""
    path = Path(path)
    if path.is_dir():
        recording = path / RECORDING
        if not recording.is_file():
            raise UsageError(f"{path}: not a run folder (no {RECORDING} in it)")
        record = RunRecord(source=path, run_dir=path)
    elif path.exists():
        recording = path
        record = RunRecord(source=path, run_dir=None)
    else:
        raise UsageError(f"{path}: no such run folder or recording")
    event_samples = _read_events(record, recording, live)
    if record.run_dir is not None:
        _read_folder(record, record.run_dir)
        try:
            record.verdict = _verdict(record)
        except Exception as exc:  # the rules failing must not cost the rest of the page
            record.problems.append(f"no verdict: {type(exc).__name__}: {exc}")
    if not record.samples:
        record.samples = _samples_from_events(record, event_samples)
    return record


def _verdict(record: RunRecord):
    """The run's MLPerf Storage verdict (mlpstorage/reports/verdict.py); none for what the
    rules do not judge (exec runs, datasize) or a folder that holds no run record."""
    from .records import NotARun
    from .verdict import verdict_of_run

    if record.what("benchmark") not in ("training", "checkpointing") or record.what("command") == "datasize":
        return None
    try:
        return verdict_of_run(record.run_dir)
    except NotARun:
        return None


# ----- the recording -----------------------------------------------------------------------
def _read_events(record: RunRecord, path: Path, live: bool) -> list[dict]:
    """Fills in the spans, messages and command; returns the samples of the sample events,
    as (trace id, host, sample), for a folder without a time-series file."""
    finished: dict[str, dict] = {}
    open_spans = OpenSpans()
    samples: list[tuple] = []
    runs: list[str] = []
    with Recording(path) as recording:
        for event in recording:
            open_spans.note(event)
            type_ = event["type"]
            if type_.endswith(".finished"):
                finished[event["span_id"]] = event
            elif type_ == ev.RUN_STARTED:
                runs.append(event["trace_id"])
            elif type_ == ev.SAMPLE:
                sample = {**_numbers(event["values"]), "timestamp_ns": ev.ns_from_iso(event["timestamp"])}
                samples.append((event.get("trace_id"), event["host"], sample))
            elif type_ == ev.STALL:  # with the warnings: "stalled: ...", "resumed: ..."
                record.messages.append({**event, "message": ev.stall_text(event)})
            elif type_ == ev.LOG:
                if event["level"] in ("result", "warning", "error"):
                    record.messages.append(event)
                elif event["message"].startswith("command: ") and record.command is None:  # --debug's line
                    record.command = " ".join(redact_argv(event["message"][len("command: "):].split(" ")))
        record.problems.extend(recording.problems)
    for event in open_spans.finished_events():  # a recording cut short: what was open ends at its last moment
        finished.setdefault(event["span_id"], event)
    trace = runs[-1] if runs else None
    if len(set(runs)) > 1:
        record.problems.append(f"{path} holds {len(set(runs))} runs; this report is of the last one")
    if len(set(runs)) > 1:
        finished = {k: e for k, e in finished.items() if e["trace_id"] == trace}
        record.messages = [m for m in record.messages if m.get("trace_id") == trace]
        samples = [s for s in samples if s[0] == trace]
    record.spans = sorted((_span(e, live) for e in finished.values()), key=lambda s: (s.start_ns, s.end_ns))
    return samples


def _span(event: dict, live: bool) -> Span:
    status = "error" if event.get("status") == "error" else "ok"
    error = str(event.get("error") or "error") if status == "error" else None
    if live and error == UNFINISHED:
        status, error = "open", None
    return Span(span_id=event["span_id"], parent_id=event.get("parent_span_id"), kind=event["type"].partition(".")[0],
                name=event["name"], start_ns=event["start_unix_nano"],
                end_ns=max(event["end_unix_nano"], event["start_unix_nano"]), status=status, error=error,
                attributes=event.get("attributes") or {})


def _numbers(values: dict) -> dict:
    return {k: v for k, v in values.items()
            if isinstance(k, str) and isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)}


def _samples_from_events(record: RunRecord, found: list[tuple]) -> dict[str, list[dict]]:
    samples: dict[str, list[dict]] = {}
    for _, host, sample in found:
        samples.setdefault(host, []).append(sample)
    for series in samples.values():
        series.sort(key=lambda s: s["timestamp_ns"])
    if record.interval_s is None:
        record.interval_s = _typical_interval(samples)
    return samples


def _typical_interval(samples: dict[str, list[dict]]) -> float | None:
    gaps = sorted(b["timestamp_ns"] - a["timestamp_ns"]
                  for series in samples.values() for a, b in zip(series, series[1:]))
    return gaps[len(gaps) // 2] / 1e9 if gaps and gaps[len(gaps) // 2] > 0 else None


# ----- the folder --------------------------------------------------------------------------
def _read_folder(record: RunRecord, folder: Path) -> None:
    record.files = _files(folder)
    metadata = _json_file(record, folder, "metadata", dict)
    if metadata is not None:
        record.metadata = metadata
        command = metadata.get("executed_command")
        if isinstance(command, list) and all(isinstance(a, str) for a in command):
            record.command = shlex.join(redact_argv(command))
    cluster = _json_file(record, folder, "cluster_start", dict)
    if cluster is not None:
        record.cluster = {str(h): i for h, i in cluster.items() if isinstance(i, dict)}
    timeseries = _json_file(record, folder, "timeseries", dict)
    if timeseries is not None:
        hosts = timeseries.get("hosts")
        if isinstance(hosts, dict) and all(isinstance(s, list) for s in hosts.values()):
            record.samples = {str(host): sorted((_numbers(s) for s in series if isinstance(s, dict)
                                                 and isinstance(s.get("timestamp_ns"), int)),
                                                key=lambda s: s["timestamp_ns"])
                              for host, series in hosts.items()}
            interval = timeseries.get("interval_s")
            if isinstance(interval, (int, float)) and interval > 0:
                record.interval_s = float(interval)
        else:
            record.problems.append(f"{_named(folder, 'timeseries')}: no hosts in it; "
                                   "the time series come from the events")


def _named(folder: Path, suffix: str) -> Path | None:
    found = sorted(folder.glob(f"*_{suffix}.json"))
    return found[-1] if found else None


def _json_file(record: RunRecord, folder: Path, suffix: str, kind: type):
    path = _named(folder, suffix)
    if path is None:
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8", errors="replace"))
    except OSError as exc:
        record.problems.append(f"{path}: {exc.strerror or exc}; left out")
        return None
    except (ValueError, RecursionError) as exc:
        record.problems.append(f"{path}: not JSON ({str(exc)[:80]}); left out")
        return None
    if not isinstance(data, kind):
        record.problems.append(f"{path}: not a JSON {kind.__name__}; left out")
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


# ----- showing ---------------------------------------------------------------------------
_SGR = re.compile(r"\x1b\[[0-9;:]*m")


def shown(value) -> str:
    """Any value from a run as text to show, on a page or a terminal: control characters
    shown escaped (replay.harmless: \\x1b, \\n, \\u202e) and colour sequences dropped."""
    return _SGR.sub("", harmless(str(value)))
