"""A run's page: report.html, one self-contained file that opens offline (BokehJS inlined, no
network, no CDN: an HPC login node has no internet).

It shows what ran (the exact command, the parameters with secrets redacted), the verdict with
its reasons, the headline metrics against their targets, the timeline of the run's spans and
the time series per host and in total on the same time axis, the cluster table with the
hosts that differ highlighted, and the files of the folder. Every string that comes from the
run is escaped (a recording is untrusted input): a span named <script> is shown, never run.
"""

from __future__ import annotations

import html
import os
import tempfile
from collections import Counter
from pathlib import Path
from urllib.parse import quote

from .. import __version__
from ..errors import UsageError
from . import timeline as tl
from .headline import headlines
from .record import REPORT, RunRecord, read_run, shown

MAX_MESSAGES = 200
# The plots of all hosts together: (title, unit, the metrics drawn in it).
TOTALS = (("Storage, all hosts", "MB/s", ("read_Bps", "write_Bps")),
          ("Network, all hosts", "MB/s", ("rx_Bps", "tx_Bps")),
          ("Memory available, all hosts", "GB", ("mem_available_bytes",)),
          ("Load (1 min), mean of all hosts", "", ("load1",)))

STYLE = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 0 24px 40px;
       color: #1d1d1f; max-width: 1400px; }
h1 { font-size: 22px; margin: 20px 0 4px; } h2 { font-size: 17px; margin: 28px 0 8px; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; } th, td { text-align: left; padding: 3px 10px 3px 0; vertical-align: top; }
th { color: #555; font-weight: 600; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
pre, code { font: 12px/1.4 ui-monospace, Menlo, Consolas, monospace; } pre { background: #f5f5f7; padding: 8px;
       white-space: pre-wrap; word-break: break-all; margin: 4px 0; }
.badge { display: inline-block; padding: 1px 9px; border-radius: 10px; color: #fff; font-weight: 600; font-size: 13px; }
.ok, .met { background: #2e7d32; } .failed, .interrupted, .unfinished, .missed { background: #c62828; }
.unknown, .none { background: #757575; }
.closed { background: #2e7d32; } .open { background: #b26a00; } .invalid { background: #c62828; } .note { color: #666; } .bad { color: #c62828; }
tr.differs td:first-child { font-weight: 600; } td.differs { background: #fff3cd; }
.legend span { display: inline-block; width: 12px; height: 10px; margin: 0 4px 0 12px; }
.verdict { font-size: 15px; }
"""


def build_page(record: RunRecord, page_path: Path | None = None, live: bool = False) -> str:
    """The page's HTML. page_path: where it will be written (links to the run's files are
    relative to it)."""
    from . import charts

    duration_s = ((record.end_ns or 0) - (record.start_ns or 0)) / 1e9
    x_range = charts.time_range(duration_s)  # one for every figure: they pan and zoom together
    marks = tl.stage_marks(record)
    lanes = tl.lanes(record)
    for lane in lanes:
        lane.label = shown(lane.label)
    figures = [charts.timeline(lanes, marks, x_range, _bar_text)] if lanes else []
    for title, unit, keys in TOTALS:
        lines = [_named(tl.total_series(record, metric), metric.title) for metric in tl.METRICS if metric.key in keys]
        lines = [line for line in lines if line is not None]
        if lines:
            figures.append(charts.lines(title, unit, lines, charts.colors_for([line.name for line in lines]), marks,
                                        x_range, "total " + "+".join(keys)))
    colors = charts.colors_for([shown(host) for host in sorted(record.samples)])  # a host's colour in every plot
    for metric in tl.METRICS:
        lines = [_named(line, line.name) for line in tl.host_series(record, metric)]
        if lines:
            figures.append(charts.lines(metric.title + ", per host", metric.unit, lines, colors, marks, x_range,
                                        metric.key))
    bokeh_js, script, divs = charts.embed(figures)
    timeline_div, series_divs = (divs[0], divs[1:]) if lanes else ("", divs)
    title = f"{record.title} {record.run_dir.name if record.run_dir else ''}".strip()
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>mlpstorage: {_e(title)}</title>", f"<style>{STYLE}</style>", bokeh_js, script, "</head><body>",
        _header(record, live),
        _section("what", "What ran", _what_ran(record)),
        _section("verdict", "Verdict", _verdict_html(record)),
        _section("metrics", "Headline metrics", _metrics(record)),
        _section("timeline", "Timeline", _timeline_html(timeline_div)),
        _section("timeseries", "Time series", _series_html(record, series_divs)),
        _section("cluster", "Cluster", _cluster(record)),
        _section("messages", "Results, warnings and errors", _messages(record)),
    ]
    if record.run_dir is not None:
        parts.append(_section("files", "Files", _files(record, page_path)))
    if record.problems:
        parts.append(_section("problems", "Left out while reading", _list(record.problems)))
    parts += [f'<p class="note">Made by mlpstorage {_e(__version__)}.</p>', "</body></html>", ""]
    return "\n".join(parts)


def write_html(text: str, path: Path) -> Path:
    """Writes through a temporary file in the same folder and a rename, so a reader never sees
    half a page; a folder that cannot be written is one clear error."""
    path = Path(path)
    try:
        handle = tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=path.parent or ".", prefix=f".{path.name}.",
                                             suffix=".tmp", delete=False)
    except OSError as exc:
        raise UsageError(f"{path}: cannot write ({exc.strerror or exc})") from None
    try:
        with handle:
            handle.write(text)
        os.chmod(handle.name, 0o644)
        os.replace(handle.name, path)
    except BaseException as exc:
        Path(handle.name).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise UsageError(f"{path}: cannot write ({exc.strerror or exc})") from None
        raise
    return path


def default_output(source: Path) -> Path:
    """RUN_DIR/report.html for a run folder; NAME.report.html beside a recording alone."""
    source = Path(source)
    return source / REPORT if source.is_dir() else source.with_name(f"{source.stem}.report.html")


def write_run_page(source: Path, output: Path | None = None, live: bool = False) -> Path:
    """Reads the run (a folder or a recording) and writes its page (default: default_output)."""
    record = read_run(source, live=live)
    output = Path(output) if output is not None else default_output(source)
    return write_html(build_page(record, output, live=live), output)


# ----- sections ----------------------------------------------------------------------------
def _e(value) -> str:
    return html.escape(shown(value), quote=True)


def _section(anchor: str, title: str, body: str) -> str:
    return f'<section id="{anchor}"><h2>{title}</h2>\n{body}\n</section>'


def _list(items: list[str]) -> str:
    return "<ul>" + "".join(f"<li>{_e(item)}</li>" for item in items) + "</ul>"


def _table(rows: list[tuple[str, str]]) -> str:
    """Rows of (header, cell HTML) whose cells are already escaped."""
    return "<table>" + "".join(f"<tr><th>{_e(k)}</th><td>{v}</td></tr>" for k, v in rows) + "</table>"


def _header(record: RunRecord, live: bool) -> str:
    status = record.status
    duration = ((record.end_ns or 0) - (record.start_ns or 0)) / 1e9
    lines = [f'<h1>{_e(record.title)} <span class="badge {_e(status)}">{_e(status)}</span></h1>',
             f'<p class="note">{_e(record.what("run_id") or record.source)} · started {tl.utc(record.start_ns)} · '
             f"{_e(tl.format_duration(duration))}</p>"]
    if live:
        lines.append('<p class="note">Written while the run was processing its results: the run and that stage were '
                     "still open. <code>mlpstorage reports html RUN_DIR</code> writes the page again from the whole "
                     "recording.</p>")
    if record.status == "unfinished":
        lines.append('<p class="bad">The recording ends before the run did (the launcher was stopped): what was still '
                     "open is shown ending where the recording ends.</p>")
    return "\n".join(lines)


def _what_ran(record: RunRecord) -> str:
    hosts = record.what("hosts")
    rows = [(label, _e(record.what(key))) for label, key in (("Benchmark", "benchmark"), ("Model", "model"),
                                                              ("Command", "command"), ("Workload", "workload"),
                                                              ("Run id", "run_id"))
            if record.what(key) is not None]
    if isinstance(hosts, list):
        rows.append(("Hosts", _e(", ".join(map(str, hosts)))))
    if record.attributes.get("mlpstorage.processes") is not None:
        rows.append(("Processes", _e(record.attributes["mlpstorage.processes"])))
    rows.append(("Started", _e(tl.utc(record.start_ns))))
    if record.error:
        rows.append(("Error", f'<span class="bad">{_e(record.error)}</span>'))
    rows.append(("Read from", f"<code>{_e(record.source)}</code>"))
    body = _table(rows)
    if record.command:
        body += f"<h3>Exact command</h3><pre>{_e(record.command)}</pre>"
    params = record.params()
    if params:
        rows = "".join(f"<tr><td><code>{_e(key)}</code></td><td><code>{_e(value)}</code></td></tr>"
                       for key, value in params.items())
        body += f"<h3>Parameters (--params)</h3><table>{rows}</table>"
    resolved = record.resolved_parameters()
    if resolved:
        import yaml

        text = yaml.safe_dump(resolved, sort_keys=False, default_flow_style=False)
        body += f"<details><summary>Resolved parameters (what DLIO was given)</summary><pre>{_e(text)}</pre></details>"
    return body


def _verdict_html(record: RunRecord) -> str:
    verdict = record.verdict
    if verdict is None:
        return '<p class="note">No verdict.</p>'
    category = getattr(verdict, "category", verdict)
    reasons = getattr(verdict, "reasons", None) or []
    css = str(category).lower().replace(" ", "-")
    return (f'<p class="verdict"><span class="badge {_e(css)}">{_e(category)}</span></p>'
            + (_list([str(r) for r in reasons]) if reasons else ""))


def _metrics(record: RunRecord) -> str:
    items = headlines(record)
    if not items:
        return '<p class="note">No metrics: the benchmark reported none.</p>'
    rows = []
    for item in items:
        met = "" if item.met is None else f'<span class="badge {"met" if item.met else "missed"}">' \
                                          f'{"met" if item.met else "missed"}</span>'
        rows.append(f'<tr><td>{_e(item.label)}</td><td class="num">{_e(item.text)}</td>'
                    f"<td>{_e(item.target or '')}</td><td>{met}</td></tr>")
    return "<table><tr><th>Metric</th><th>Value</th><th>Target</th><th></th></tr>" + "".join(rows) + "</table>"


def _timeline_html(div: str) -> str:
    if not div:
        return '<p class="note">No spans in the recording.</p>'
    from .charts import FAILED, KIND_COLORS, OPEN

    keys = [("stage", "stages"), ("spinner", "collection"), ("epoch", "epochs"), ("checkpoint", "checkpoints"),
            ("rank", "MPI ranks")]
    legend = "".join(f'<span style="background:{KIND_COLORS[k]}"></span>{label}' for k, label in keys)
    legend += f'<span style="background:{FAILED}"></span>failed<span style="background:{OPEN}"></span>still open'
    return (f'<p class="legend note">{legend}</p>{div}<p class="note">Hover a bar for its duration; drag to pan, '
            "use the zoom tools to look closer: the time series below follow. Dashed lines mark the stages.</p>")


def _series_html(record: RunRecord, divs: list[str]) -> str:
    if not divs:
        return '<p class="note">No time series in this run (--skip-timeseries, or no sample recorded).</p>'
    interval = f"every {record.interval_s:g} s, " if record.interval_s else ""
    return (f'<p class="note">Sampled {interval}{len(record.samples)} host(s); hover a line for its host and '
            "value.</p>" + "\n".join(divs))


def _bar_text(bar: tl.Bar) -> dict:
    span = bar.span
    status = {"ok": "ok", "open": "still open when this page was written"}.get(span.status, f"failed: {span.error}")
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


def _cluster(record: RunRecord) -> str:
    if not record.cluster:
        return '<p class="note">No cluster information (a recording alone, or --cluster-collection none).</p>'
    answered = {name: info for name, info in record.cluster.items() if "error" not in info}
    cells = {name: [_cell(info, column) for _, column in CLUSTER_COLUMNS] for name, info in answered.items()}
    usual = [Counter(row[i] for row in cells.values()).most_common(1)[0][0] if cells else None
             for i in range(len(CLUSTER_COLUMNS))]
    head = "<tr><th>Host</th>" + "".join(f"<th>{label}</th>" for label, _ in CLUSTER_COLUMNS) + "</tr>"
    rows = []
    differing = 0
    for name, info in record.cluster.items():
        if name not in answered:
            rows.append(f'<tr><td>{_e(name)}</td><td colspan="{len(CLUSTER_COLUMNS)}" class="bad">'
                        f"no information: {_e(info.get('error'))}</td></tr>")
            continue
        row = cells[name]
        differs = [value != usual[i] for i, value in enumerate(row)] if len(cells) > 1 else [False] * len(row)
        differing += any(differs)
        tds = "".join(f'<td class="differs" title="most hosts: {_e(usual[i])}">{_e(v)}</td>' if differs[i]
                      else f"<td>{_e(v if v is not None else '')}</td>" for i, v in enumerate(row))
        rows.append(f'<tr{" class=differs" if any(differs) else ""}><td>{_e(name)}</td>{tds}</tr>')
    note = (f'<p class="note">{differing} host(s) differ from the others (highlighted: hover a cell for what most '
            "hosts have).</p>" if differing else '<p class="note">All hosts alike.</p>' if len(cells) > 1 else "")
    return f"{note}<table>{head}{''.join(rows)}</table>"


# ----- messages and files ------------------------------------------------------------------
def _messages(record: RunRecord) -> str:
    if not record.messages:
        return '<p class="note">None.</p>'
    items = []
    for message in record.messages[:MAX_MESSAGES]:
        css = {"error": "bad", "warning": "bad"}.get(message["level"], "")
        items.append(f'<li><code>{_e(message["timestamp"][11:19])}</code> <b class="{css}">'
                     f'{_e(message["level"].upper())}</b> {_e(message["message"])}</li>')
    more = len(record.messages) - MAX_MESSAGES
    return "<ul>" + "".join(items) + "</ul>" + (f'<p class="note">and {more} more</p>' if more > 0 else "")


def _files(record: RunRecord, page_path: Path | None) -> str:
    files = list(record.files)
    if page_path is not None and Path(page_path).parent.resolve() == record.run_dir.resolve():
        if all(name != Path(page_path).name for name, _ in files):
            files.append((Path(page_path).name, None))
    if not files:
        return '<p class="note">The folder is empty.</p>'
    rows = []
    for name, size in sorted(files):
        href = _href(record.run_dir / name.rstrip("/"), page_path)
        shown_size = "" if size is None else f"{size:,} bytes"
        rows.append(f'<tr><td><a href="{html.escape(href, quote=True)}">{_e(name)}</a></td>'
                    f'<td class="num">{_e(shown_size)}</td></tr>')
    return "<table>" + "".join(rows) + "</table>"


def _href(target: Path, page_path: Path | None) -> str:
    """A link to target from the page: relative where the page is written (the folder can be
    moved or copied whole), each part URL-quoted, starting with ./ (a file named like
    'javascript:...' stays a file)."""
    if page_path is None:
        return target.absolute().as_uri()
    relative = os.path.relpath(target.absolute(), Path(page_path).absolute().parent)
    return "./" + "/".join(quote(part, safe="") for part in Path(relative).parts)
