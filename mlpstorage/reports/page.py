"""A run's page: report.html, one self-contained file that opens offline (BokehJS and the
stylesheet inlined, no network, no CDN: an HPC login node has no internet). A run with
nothing to plot (no time series, no I/O trace) gets its timeline as SVG (svg_timeline.py)
and no BokehJS: its writer imports neither Bokeh nor numpy.

First what a reader opens it for: the verdict with its reasons and notes and the headline
metrics against their targets; then the timeline of the run's spans and the time series per
host and in total on the same time axis; for a traced run (--io-trace) its I/O (io_page.py);
then the details: what ran (the exact command, the
parameters with secrets redacted), the cluster table with the hosts that differ highlighted,
the messages and the files of the folder. The HTML comes from templates/run.html with
autoescape (templating.py): a span named <script> is shown, never run.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from urllib.parse import quote

from .. import __version__
from . import timeline as tl
from .chart_style import FAILED, KIND_COLORS
from .record import REPORT, RunRecord, read_run, shown
from .templating import Markup, render_page, write_html
from .verdict import verdict_of

__all__ = ["build_page", "default_output", "write_html", "write_run_page"]

MAX_MESSAGES = 200
# Up to this many hosts a plot draws every host and the timeline gives each a lane; past it a
# plot draws the spread over hosts with the slowest alone, the timeline gathers the hosts' and
# ranks' lanes, and a table of every host with its figures keeps each one findable.
MAX_HOSTS_DRAWN = 32
# The plots of all hosts together: (title, unit, the metrics drawn in it).
TOTALS = (("Storage, all hosts", "MB/s", ("read_Bps", "write_Bps")),
          ("Network, all hosts", "MB/s", ("rx_Bps", "tx_Bps")),
          ("Memory available, all hosts", "GB", ("mem_available_bytes",)),
          ("Load (1 min), mean of all hosts", "", ("load1",)))
LEGEND = (("stage", "stages"), ("spinner", "collection"), ("epoch", "epochs"), ("checkpoint", "checkpoints"),
          ("rank", "MPI ranks"), ("io", "slowest I/O calls"), ("task", "other tasks"))


# What run.html is given of the figures when a page draws none with Bokeh.
NO_CHARTS = {"bokeh_js": "", "bokeh_script": "", "timeline": None, "svg_timeline": None, "series": [], "io": None,
             "io_divs": {}}


def build_page(record: RunRecord, page_path: Path | None = None) -> str:
    """The page's HTML. page_path: where it will be written (links to the run's files are
    relative to it)."""
    duration_s = ((record.end_ns or 0) - (record.start_ns or 0)) / 1e9
    marks = tl.stage_marks(record)
    lanes = tl.gathered(tl.lanes(record), MAX_HOSTS_DRAWN)
    for lane in lanes:
        lane.label = shown(lane.label)
    many = len(record.samples) > MAX_HOSTS_DRAWN
    if record.samples or record.io is not None:
        charted = _charts(record, lanes, marks, duration_s, many)
    else:  # nothing to plot: the timeline alone, as SVG, with neither Bokeh nor BokehJS
        from .svg_timeline import place

        charted = {**NO_CHARTS, "svg_timeline": place(lanes, marks, duration_s, _bar_text) if lanes else None}
    verdict, verdict_problem = verdict_of(record)
    legend = _legend(lanes)
    return render_page(
        "run.html", record=record, verdict=verdict, headlines=record.headline_figures(),
        title=f"{record.title} {record.run_dir.name if record.run_dir else ''}".strip(),
        run_label=record.run_name or record.source, started=tl.utc(record.start_ns),
        duration=tl.format_duration(duration_s), legend=legend, **charted,
        interval=f"every {record.interval_s:g} s, " if record.interval_s else "",
        hosts=_host_table(record) if many else None,
        what=_what_ran(record), resolved=_resolved(record), cluster=_cluster(record),
        messages=_messages(record), more=len(record.messages) - MAX_MESSAGES,
        files=_files(record, page_path) if record.run_dir is not None else None,
        problems=record.problems + ([verdict_problem] if verdict_problem else []), version=__version__)


def _charts(record: RunRecord, lanes: list[tl.Lane], marks: list[tl.StageMark], duration_s: float,
            many: bool) -> dict:
    """The Bokeh figures of a page with something to plot, in one document (one shared x range:
    the timeline and every plot pan and zoom together), as the template's context."""
    from . import charts  # Bokeh: only pages with plots need it
    from .io_page import io_section

    x_range = charts.time_range(duration_s)
    figures = [charts.timeline(lanes, marks, x_range, _bar_text)] if lanes else []
    for title, unit, keys in TOTALS:
        lines = [_named(tl.total_series(record, metric), metric.title) for metric in tl.METRICS if metric.key in keys]
        lines = [line for line in lines if line is not None]
        if lines:
            figures.append(charts.lines(title, unit, lines, charts.colors_for([line.name for line in lines]), marks,
                                        x_range, "total " + "+".join(keys)))
    figures += _spreads(record, marks, x_range) if many else _per_host(record, marks, x_range)
    io = io_section(record, x_range)
    io_figures = io.figures if io is not None else {}
    bokeh_js, script, divs = charts.embed(figures + list(io_figures.values()))
    divs, io_divs = divs[:len(figures)], dict(zip(io_figures, map(Markup, divs[len(figures):])))
    timeline_div, series_divs = (divs[0], divs[1:]) if lanes else (None, divs)
    return {**NO_CHARTS, "bokeh_js": Markup(bokeh_js), "bokeh_script": Markup(script),
            "timeline": Markup(timeline_div) if timeline_div else None,
            "series": [Markup(div) for div in series_divs], "io": io, "io_divs": io_divs}


def _legend(lanes: list[tl.Lane]) -> list[tuple[str, str]]:
    """The colour of each kind of span the timeline shows (a host's collection has its
    spinner's), and red when a span failed: nothing the timeline does not hold."""
    kinds = {"spinner" if lane.kind == "host" else lane.kind for lane in lanes}
    shown_kinds = [(KIND_COLORS[kind], label) for kind, label in LEGEND if kind in kinds]
    return shown_kinds + ([(FAILED, "failed")] if any(lane.failed for lane in lanes) else [])


def default_output(source: Path) -> Path:
    """RUN_DIR/report.html for a run folder; NAME.report.html beside a recording alone."""
    source = Path(source)
    return source / REPORT if source.is_dir() else source.with_name(f"{source.stem}.report.html")


def write_run_page(source: Path, output: Path | None = None) -> Path:
    """Reads the run (a folder or a recording) and writes its page (default: default_output).
    Written once the run is over, the page shows the finished run; a recording cut short
    shows what was open ending where it ends, under a note that says so."""
    record = read_run(source)
    output = Path(output) if output is not None else default_output(source)
    return write_html(build_page(record, output), output)


def _per_host(record: RunRecord, marks, x_range) -> list:
    from . import charts

    colors = charts.colors_for([shown(host) for host in sorted(record.samples)])  # a host's colour in every plot
    figures = []
    for metric in tl.METRICS:
        lines = [_named(line, line.name) for line in tl.host_series(record, metric)]
        if lines:
            figures.append(charts.lines(metric.title + ", per host", metric.unit, lines, colors, marks, x_range,
                                        metric.key))
    return figures


def _spreads(record: RunRecord, marks, x_range) -> list:
    from . import charts

    figures = []
    for metric in tl.METRICS:
        spread = tl.envelope(record, metric)
        if spread is not None:
            spread.slowest = [_named(line, line.name) for line in spread.slowest]
            title = f"{metric.title}, over {len(record.samples)} hosts (the {len(spread.slowest)} " \
                    f"{'lowest' if metric.worse == 'low' else 'highest'} alone)"
            figures.append(charts.envelope(title, metric.unit, spread, marks, x_range, metric.key))
    return figures


HOST_COLUMNS = (("read_Bps", "Read MB/s"), ("write_Bps", "Write MB/s"), ("rx_Bps", "Net in MB/s"),
                ("tx_Bps", "Net out MB/s"), ("mem_available_bytes", "Least memory available GB"),
                ("load1", "Load"))


def _host_table(record: RunRecord) -> dict:
    """Every host with its figures over the run (means; memory: its least), the slowest of
    each figure marked: what the plots of many hosts cannot show one by one."""
    figures = tl.host_figures(record)
    slowest: dict[str, list[str]] = {}
    for metric in tl.METRICS:
        ranked = sorted((h for h in sorted(figures) if metric.key in figures[h]), key=lambda h: figures[h][metric.key],
                        reverse=metric.worse == "high")
        for host in ranked[:tl.SLOWEST_DRAWN]:
            slowest.setdefault(host, []).append(metric.title.lower())
    rows = [{"name": host, "cells": [_figure(figures[host].get(key)) for key, _ in HOST_COLUMNS],
             "slowest": ", ".join(slowest.get(host, []))} for host in sorted(figures, key=tl.natural_key)]
    return {"columns": [label for _, label in HOST_COLUMNS], "rows": rows}


def _figure(value: float | None) -> str:
    return "" if value is None else f"{value:,.2f}"


# ----- sections ----------------------------------------------------------------------------
def _what_ran(record: RunRecord) -> list[tuple[str, object]]:
    rows = [(label, value) for label, value in (("Benchmark", record.benchmark), ("Model", record.model),
                                                ("Command", record.command), ("Workload", record.workload),
                                                ("Run id", record.run_name)) if value is not None]
    if record.hosts:
        rows.append(("Hosts", ", ".join(record.hosts)))
    processes = record.run.attributes.get("mlpstorage.processes") if record.run else None
    if processes is not None:
        rows.append(("Processes", processes))
    rows.append(("Started", tl.utc(record.start_ns)))
    return rows


def _resolved(record: RunRecord) -> list[str]:
    """The resolved parameters as YAML, a line each (each line is shown as text on its own)."""
    if not record.config:
        return []
    import yaml

    return yaml.safe_dump(record.config, sort_keys=False, default_flow_style=False).splitlines()


def _bar_text(bar: tl.Bar) -> dict:
    span = bar.span
    status = "ok" if span.status == "ok" else f"failed: {span.error}"
    return {"name": shown(span.name), "start": f"+{tl.format_duration(bar.start_s)}",
            "duration": tl.format_duration(span.duration_s), "status": shown(status)}


def _named(line: tl.Series | None, name: str) -> tl.Series | None:
    return None if line is None else tl.Series(shown(name), line.times_s, line.values)


# ----- the cluster -------------------------------------------------------------------------
CLUSTER_COLUMNS = (
    ("CPU", lambda h: h.get("cpu", {}).get("model")),
    ("Cores", lambda h: h.get("cpu", {}).get("cores")),
    ("Memory", lambda h: _gib(h.get("memory", {}).get("total_bytes"))),
    ("OS", lambda h: h.get("os", {}).get("name")),
    ("Kernel", lambda h: h.get("os", {}).get("kernel")),
    ("Python", lambda h: h.get("os", {}).get("python")),
    ("Data mount", lambda h: " ".join(str(v) for v in (h.get("data_mount") or {}).values() if v) or None),
)


def _gib(value) -> str | None:
    return f"{value / 2**30:.1f} GiB" if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _cell(host: dict, column) -> str | None:
    try:
        value = column(host)
    except (AttributeError, TypeError):  # a field of another shape than this version writes
        return None
    return None if value is None else str(value)


def _cluster(record: RunRecord) -> dict | None:
    """The table's rows: a host that did not answer with its error; the others with their
    cells, each with what most hosts have where it differs from them; with the preflight's
    outcome per host when the run has one (a host only the preflight knows gets a row too)."""
    preflight = record.preflight.get("per_host") if isinstance(record.preflight.get("per_host"), dict) else {}
    if not record.cluster and not preflight:
        return None
    answered = {name: info for name, info in record.cluster.items() if "error" not in info}
    cells = {name: [_cell(info, column) for _, column in CLUSTER_COLUMNS] for name, info in answered.items()}
    usual = [Counter(row[i] for row in cells.values()).most_common(1)[0][0] if cells else None
             for i in range(len(CLUSTER_COLUMNS))]
    rows = []
    for name in [*record.cluster, *(h for h in preflight if h not in record.cluster)]:
        info = record.cluster.get(name)
        row = {"name": name, "error": None, "cells": [], "differs": False, "preflight": _preflight(preflight.get(name))}
        if info is None:
            row["error"] = "no cluster information"
        elif name not in answered:
            row["error"] = f"no information: {info.get('error')}"
        else:
            differs = [len(cells) > 1 and value != usual[i] for i, value in enumerate(cells[name])]
            row["cells"] = [(value, _usual(usual[i]) if differs[i] else None) for i, value in enumerate(cells[name])]
            row["differs"] = any(differs)
        rows.append(row)
    return {"columns": [label for label, _ in CLUSTER_COLUMNS], "rows": rows, "compared": len(cells) > 1,
            "differing": sum(row["differs"] for row in rows), "preflight": bool(preflight),
            "preflight_failed": sum(row["preflight"]["status"] == "failed" for row in rows if row["preflight"])}


def _preflight(entry) -> dict | None:
    """A host's preflight outcome: passed, or its problems and warnings, a line each."""
    if not isinstance(entry, dict):
        return None
    status = entry.get("status") if entry.get("status") in ("ok", "warning", "failed") else "unknown"
    lines = [str(line) for key in ("problems", "warnings") for line in entry.get(key) or () if isinstance(
        entry.get(key), list)]
    if entry.get("error"):
        lines.insert(0, str(entry["error"]))
    return {"status": status, "text": "passed" if status == "ok" else status, "lines": lines}


def _usual(value) -> str:
    return "None" if value is None else value  # a cell most hosts leave empty, said so


# ----- messages and files ------------------------------------------------------------------
def _messages(record: RunRecord) -> list[dict]:
    return [{"time": message["timestamp"][11:19], "level": message["level"].upper(),
             "css": {"error": "bad", "warning": "bad"}.get(message["level"], ""), "text": message["message"]}
            for message in record.messages[:MAX_MESSAGES]]


def _files(record: RunRecord, page_path: Path | None) -> list[tuple[str, str, str]]:
    """(link, name, size) of each file of the folder, the page itself too once written there."""
    files = list(record.files)
    if page_path is not None and Path(page_path).parent.resolve() == record.run_dir.resolve():
        if all(name != Path(page_path).name for name, _ in files):
            files.append((Path(page_path).name, None))
    return [(_href(record.run_dir / name.rstrip("/"), page_path), name, "" if size is None else f"{size:,} bytes")
            for name, size in sorted(files)]


def _href(target: Path, page_path: Path | None) -> str:
    """A link to target from the page: relative where the page is written (the folder can be
    moved or copied whole), each part URL-quoted, starting with ./ (a file named like
    'javascript:...' stays a file)."""
    if page_path is None:
        return target.absolute().as_uri()
    relative = os.path.relpath(target.absolute(), Path(page_path).absolute().parent)
    return "./" + "/".join(quote(part, safe="") for part in Path(relative).parts)
