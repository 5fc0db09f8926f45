"""`mlpstorage reports reportgen`: every run under a results directory, judged, grouped into
submission candidates, written as results.json, results.csv and index.html, and shown as a
table (Rich on a terminal, plain text when piped).

The files keep the existing launcher's record keys (run_id, benchmark_type, model, command,
parameters, system_info, metrics) so that tools reading them keep working, and add the
verdict (category, issues, notes), which it lacks, and the read latency of a traced run
(read_p50_us, read_p99_us: empty for a run without --io-trace).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from ..errors import UsageError
from ..results import check_writable, write_text
from .overview import index_html
from .io_trace import read_text
from .record import METADATA_SUFFIX, SUMMARY, NotARun, RunRecord, is_ours, read_run
from .submissions import Candidate, candidates
from .verdict import CATEGORIES, Verdict, judge

RESULTS_JSON, RESULTS_CSV, INDEX_HTML = "results.json", "results.csv", "index.html"
DATASIZE = "datasize"
RUN_ID_WIDTH = 48  # the table folds longer run ids
CATEGORY_STYLES = {"CLOSED": "bold green", "OPEN": "bold yellow", "INVALID": "bold red"}
READ_LATENCY = ("read_p50_us", "read_p99_us")  # every run has the columns; a run not traced leaves them empty


@dataclass
class Report:
    runs: list[tuple[RunRecord, Verdict]]  # by run id
    candidates: list[Candidate]
    skipped: list[str]  # one line per folder passed over

    def by_category(self) -> dict[str, list[tuple[RunRecord, Verdict]]]:
        return {category: [(r, v) for r, v in self.runs if v.category == category] for category in CATEGORIES}

    def banner(self) -> str:
        counts = ", ".join(f"{len(runs)} {category}" for category, runs in self.by_category().items())
        skipped = f"; {_count(len(self.skipped), 'folder')} skipped" if self.skipped else ""
        return f"MLPerf Storage reportgen: {_count(len(self.runs), 'run')} ({counts}){skipped}"


def reportgen(results_dir: Path, output_dir: Path | None = None, style: str = "auto", out=None, err=None) -> int:
    """The command: warnings on err, the table on out, the files in output_dir."""
    out, err = out or sys.stdout, err or sys.stderr
    results_dir = Path(results_dir)
    output_dir = Path(output_dir) if output_dir is not None else results_dir
    if not results_dir.is_dir():
        raise UsageError(f"--results-dir {results_dir}: no such directory")
    check_writable(output_dir, "--output-dir")
    report = build_report(results_dir, warn=lambda line: print(f"mlpstorage: warning: {line}", file=err, flush=True))
    written = write_outputs(report, output_dir)
    if _rich_wanted(style, out):
        from rich.console import Console

        from ..terminal import wants_color

        console = Console(file=out, force_terminal=True, no_color=not wants_color(out), highlight=False)
        render_rich(report, console)
    else:
        out.write(render_plain(report))
    names = ", ".join(p.name for p in written)
    print(f"Wrote {names} in {output_dir}", file=out)
    return 0


def _rich_wanted(style: str, out) -> bool:
    from ..terminal import is_interactive

    return style == "rich" or (style == "auto" and is_interactive(out))


# ----- finding and judging the runs --------------------------------------------------------------
def build_report(results_dir: Path, warn=lambda line: None) -> Report:
    records = []
    skipped = []

    def skip(line: str) -> None:
        skipped.append(line)
        warn(line)

    for record in find_runs(Path(results_dir), skip):
        if record.io is None:  # (read now: an io_trace.json that does not read is a warning like the others)
            for problem in record.problems:
                warn(f"{record.run_id}: {problem}")
        records.append((record, judge(record)))
    records.sort(key=lambda rv: rv[0].run_id)
    return Report(records, candidates(records), skipped)


def find_runs(results_dir: Path, skip):
    """Every run folder under results_dir, in path order. A folder is a run when it holds one
    *_metadata.json and DLIO's summary.json; a datasize/ folder, a run without summary.json
    and anything unreadable are passed to skip() as one line each, and the walk goes on."""

    def unreadable(error: OSError) -> None:
        skip(f"skipped {_relative(Path(error.filename or results_dir), results_dir)}: not readable ({error.strerror})")

    for folder, dirs, files in os.walk(results_dir, onerror=unreadable):
        dirs.sort()
        path = Path(folder)
        where = _relative(path, results_dir)
        if path.name == DATASIZE and path != results_dir:
            dirs[:] = []
            skip(f"skipped {where}: datasize records, not runs")
            continue
        metadata = sorted(f for f in files if f.endswith(METADATA_SUFFIX))
        if not metadata and SUMMARY not in files:
            continue
        dirs[:] = []  # a run folder's own folders (dlio_config, ranks, ...) hold no runs
        if len(metadata) == 1 and SUMMARY not in files:
            skip(f"skipped {where}: no {SUMMARY}{_why_no_summary(path / metadata[0])}")
            continue
        try:
            yield read_run(path, results_dir, recording=False)
        except NotARun as exc:
            skip(f"skipped {exc}")


def _why_no_summary(metadata_path: Path) -> str:
    """What our own metadata says about a run DLIO wrote no summary for."""
    try:
        metadata = json.loads(metadata_path.read_text())
    except (OSError, ValueError):
        return ""
    if not isinstance(metadata, dict) or not is_ours(metadata):
        return ""
    if metadata.get("command") == "datagen":
        return " (a datagen run)"
    status = metadata.get("status")
    return f" (the run {status}: {metadata.get('error', '')})".replace(": )", ")") if status and status != "ok" else ""


def _relative(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix() or "."
    except ValueError:
        return str(path)


# ----- results.json and results.csv --------------------------------------------------------------
def as_result(record: RunRecord, verdict: Verdict) -> dict:
    """One run as the existing launcher's results.json has it, plus category and issues."""
    memory = record.client_memory_bytes
    return {
        "run_id": record.run_id,
        "benchmark_type": record.benchmark,
        "model": record.model,
        "command": record.command,
        "parameters": record.config,
        "system_info": {"total_memory_bytes": round(memory) if memory else None, "total_cores": record.total_cores},
        "metrics": _without_nan(record.metrics),
        "category": verdict.category,
        "issues": list(verdict.reasons),
        "notes": list(verdict.notes),
        **dict(zip(READ_LATENCY, read_latency(record) or (None, None))),
    }


def read_latency(record: RunRecord) -> tuple[float, float] | None:
    """(p50, p99) in microseconds of every read system call of a traced run; None otherwise."""
    return record.io.read_percentiles() if record.io is not None else None


def _without_nan(value):
    """NaN (DLIO writes it for an empty mean) as null: results.json stays valid JSON."""
    if isinstance(value, dict):
        return {k: _without_nan(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_nan(v) for v in value]
    return None if isinstance(value, float) and math.isnan(value) else value


def flattened(record: dict, prefix: str = "") -> dict:
    """parameters.dataset.num_files_train = 28000: nested keys joined with dots; missing
    values (NaN in DLIO's summary) left out, as the existing launcher does."""
    row = {}
    for key, value in record.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            row.update(flattened(value, f"{name}."))
        elif value is None:
            continue
        elif name in ("issues", "notes"):
            row[name] = "; ".join(value)
        elif isinstance(value, list):
            row[name] = json.dumps(value)
        else:
            row[name] = value
    return row


def results_csv(results: list[dict]) -> str:
    rows = [flattened(r) for r in results]
    columns = sorted({key for row in rows for key in row} | set(READ_LATENCY))
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return text.getvalue()


def results_json(results: list[dict]) -> str:
    """results.json's text, indented as json.dumps(indent=2) would (which takes 14 s for
    10,000 runs in pure Python; msgspec 0.2 s); anything not JSON as its str()."""
    import msgspec

    return msgspec.json.format(msgspec.json.encode(results, enc_hook=str), indent=2).decode() + "\n"


def write_outputs(report: Report, output_dir: Path) -> list[Path]:
    results = [as_result(r, v) for r, v in report.runs]
    return [
        write_text(output_dir / RESULTS_JSON, results_json(results)),
        write_text(output_dir / RESULTS_CSV, results_csv(results)),
        write_text(output_dir / INDEX_HTML, index_html(report, output_dir)),
    ]


# ----- the terminal ------------------------------------------------------------------------------
def render_plain(report: Report) -> str:
    lines = [report.banner()]
    for category, runs in report.by_category().items():
        if not runs:
            continue
        lines += ["", f"{category}: {_count(len(runs), 'run')}"]
        for record, verdict in runs:
            lines.append(f"  {record.run_id}  {record.describe()}")
            lines.append(f"    {', '.join(record.headline()) or 'no metrics'}")
            latency = read_text(record.io)
            if latency:
                lines.append(f"    {latency}")
            lines += [f"    - {reason}" for reason in verdict.reasons] or ["    No issues found"]
            lines += [f"    note: {note}" for note in verdict.notes]
    if report.candidates:
        lines += ["", f"Submission candidates: {len(report.candidates)}"]
        for candidate in report.candidates:
            lines.append(f"  {candidate.label}: {_count(len(candidate.runs), 'run')}, {candidate.category}, "
                         f"{'ready' if candidate.ready else 'not ready'}")
            lines += [f"    [{'ok' if check.ok else 'no'}] {check.text}" for check in candidate.checks]
    return "\n".join(lines) + "\n"


def render_rich(report: Report, console) -> None:
    from rich.table import Table
    from rich.text import Text

    console.print(Text(report.banner(), style="bold"))
    for category, runs in report.by_category().items():
        if not runs:
            continue
        table = Table(title=f"{category}: {_count(len(runs), 'run')}", title_style=CATEGORY_STYLES[category],
                      title_justify="left", show_lines=True, expand=True)
        widest = max(len(record.run_id) for record, _ in runs)
        table.add_column("Run", overflow="fold", min_width=min(widest, RUN_ID_WIDTH))
        table.add_column("What", overflow="fold", ratio=2)
        table.add_column("Metrics", no_wrap=True)
        latencies = [read_text(record.io) for record, _ in runs]  # each merges the run's read histograms
        traced = any(latencies)
        if traced:  # (only then: a table of untraced runs stays as it was)
            table.add_column("Read latency", no_wrap=True)
        table.add_column("Issues", overflow="fold", ratio=3)
        for (record, verdict), latency in zip(runs, latencies):
            issues = Text("\n".join(f"• {reason}" for reason in verdict.reasons)) if verdict.reasons else \
                Text("No issues found", style="dim")
            for note in verdict.notes:
                issues.append(f"\nnote: {note}", style="yellow")
            latency_cell = [(latency or "—").replace(", ", "\n")] if traced else []
            table.add_row(record.run_id, record.describe(), "\n".join(record.headline()) or "—", *latency_cell, issues)
        console.print(table)
    if report.candidates:
        table = Table(title=f"Submission candidates: {len(report.candidates)}", title_style="bold",
                      title_justify="left", show_lines=True, expand=True)
        table.add_column("Candidate", overflow="fold", ratio=3)
        table.add_column("Runs", justify="right")
        table.add_column("Category")
        table.add_column("Guideline checks", overflow="fold", ratio=6)
        for candidate in report.candidates:
            checks = Text()
            for i, check in enumerate(candidate.checks):
                checks.append(("\n" if i else "") + ("✔ " if check.ok else "✖ "), style="green" if check.ok else "red")
                checks.append(check.text)
            table.add_row(candidate.label, str(len(candidate.runs)),
                          Text(candidate.category, style=CATEGORY_STYLES[candidate.category]), checks)
        console.print(table)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'s' if n != 1 else ''}"
