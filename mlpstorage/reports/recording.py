"""A recording (events.jsonl) read for the reports: its spans, its messages, the job's command
(its span's process.command_args; in a recording made before the job had a span, the --debug
line's) and its samples. The recording is untrusted input, read through
emitter.reading.Recording (every line checked against the schema, a file that is no recording refused
with one error, bad lines after the first skipped with a warning). A recording cut short
(the launcher stopped) has its open spans ended at its last moment, as failed: "unfinished".
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path

from opentelemetry.semconv._incubating.attributes.process_attributes import PROCESS_COMMAND_ARGS

from ..emitter import events as ev
from ..redaction import redact_argv
from ..emitter.reading import OpenSpans, Recording
from .samples import HostSamples, from_dicts, typical_interval

COMMAND_LINE = "command: "  # --debug's line


@dataclass
class Span:
    span_id: str
    parent_id: str | None
    kind: str  # run | stage | spinner | task
    name: str
    start_ns: int
    end_ns: int
    status: str  # ok | error
    error: str | None
    attributes: dict

    @property
    def duration_s(self) -> float:
        return (self.end_ns - self.start_ns) / 1e9

    @property
    def failed(self) -> bool:
        return self.status == "error"


@dataclass
class Recorded:
    spans: list[Span] = field(default_factory=list)  # in the order they started
    messages: list[dict] = field(default_factory=list)  # log events of level result, warning and error; stalls
    command_line: str | None = None  # the job's (or the --debug line's), secrets redacted
    samples: dict[str, HostSamples] = field(default_factory=dict)  # host -> its samples
    interval_s: float | None = None  # the samples' typical spacing
    problems: list[str] = field(default_factory=list)


def read_recording(path: Path, samples_wanted: bool = True) -> Recorded:
    """What the recording at path holds; of a recording of several runs, the last run.
    samples_wanted=False: its sample events are passed over (the run folder's timeseries
    file has them)."""
    found = Recorded()
    finished: dict[str, dict] = {}
    open_spans = OpenSpans()
    samples: list[tuple] = []
    runs: list[str] = []
    with Recording(path, skip_types=() if samples_wanted else (ev.SAMPLE,)) as recording:
        for event in recording:
            open_spans.note(event)
            type_ = event["type"]
            if type_.endswith(".finished"):
                finished[event["span_id"]] = event
            elif type_ == ev.RUN_STARTED:
                runs.append(event["trace_id"])
            elif type_ == ev.SAMPLE and samples_wanted:
                # from_dicts keeps its figures and takes what is not a finite number as missing
                sample = {**event["values"], "timestamp_ns": ev.ns_from_iso(event["timestamp"])}
                samples.append((event.get("trace_id"), event["host"], sample))
            elif type_ == ev.STALL:  # with the warnings: "stalled: ...", "resumed: ..."
                found.messages.append({**event, "message": ev.stall_text(event)})
            elif type_ == ev.LOG:
                if event["level"] in ("result", "warning", "error"):
                    found.messages.append(event)
                elif event["message"].startswith(COMMAND_LINE) and found.command_line is None:
                    argv = event["message"][len(COMMAND_LINE):].split(" ")
                    found.command_line = " ".join(redact_argv(argv))
        found.problems.extend(recording.problems)
    for event in open_spans.finished_events():  # a recording cut short: what was open ends at its last moment
        finished.setdefault(event["span_id"], event)
    if len(set(runs)) > 1:
        trace = runs[-1]
        found.problems.append(f"{path} holds {len(set(runs))} runs; this report is of the last one")
        finished = {k: e for k, e in finished.items() if e["trace_id"] == trace}
        found.messages = [m for m in found.messages if m.get("trace_id") == trace]
        samples = [s for s in samples if s[0] == trace]
    found.spans = sorted(map(_span, finished.values()), key=lambda s: (s.start_ns, s.end_ns))
    found.command_line = job_command_line(found.spans) or found.command_line
    per_host: dict[str, list[dict]] = {}
    for _, host, sample in samples:
        per_host.setdefault(host, []).append(sample)
    found.samples = {host: from_dicts(series) for host, series in per_host.items()}
    found.interval_s = typical_interval(found.samples)
    return found


def _span(event: dict) -> Span:
    status = "error" if event.get("status") == "error" else "ok"
    return Span(span_id=event["span_id"], parent_id=event.get("parent_span_id"), kind=event["type"].partition(".")[0],
                name=event["name"], start_ns=event["start_unix_nano"],
                end_ns=max(event["end_unix_nano"], event["start_unix_nano"]), status=status,
                error=str(event.get("error") or "error") if status == "error" else None,
                attributes=event.get("attributes") or {})


def job_command_line(spans: list[Span]) -> str | None:
    """The job's command line from its span's process.command_args (a recording made before
    the job had a span has only --debug's line), secrets redacted again: the recording is
    untrusted."""
    for span in spans:
        args = span.attributes.get(PROCESS_COMMAND_ARGS)
        if span.kind == "task" and isinstance(args, list) and args and all(isinstance(a, str) for a in args):
            return shlex.join(redact_argv(args))
    return None

