"""`mlpstorage reports show RUN`: a run's essentials in the terminal, drawn with Rich: what ran,
the verdict, the stages as bars on the run's time axis with their durations, the epochs and
checkpoints, the MPI ranks, the headline metrics against their targets, a read and write
sparkline per host, and for a traced run (--io-trace) the latency percentiles of each operation
per host and of its slowest rank. Colour only on a terminal that wants it; piped, the same lines as plain
text. What was left out while reading goes to stderr (the CLI's warnings). Every string from
the run is made harmless first (record.shown) and reaches Rich as Text, never as markup.
"""

from __future__ import annotations

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from . import timeline as tl
from .io_trace import format_bytes, format_latency
from .record import RunRecord, shown
from .verdict import verdict_of

BLOCKS = "▁▂▃▄▅▆▇█"
MAX_BARS = 20  # epochs or checkpoints listed; the rest are counted
SPARK_WIDTH = 30
UNBOUNDED = 1000  # the width of plain output


def render(record: RunRecord, width: int = 100) -> Group:
    """The whole view, for console.print()."""
    bar_width = max(10, min(50, width - 70))  # room for the label and a duration on either side
    parts = [_header(record), Text(""), _verdict(record), Text("")]
    parts += _gantt(record, bar_width)
    parts += _metrics(record)
    parts += _sparklines(record, width)
    parts += _io(record)
    return Group(*parts)


def show(record: RunRecord, console: Console) -> None:
    print_view(render(record, console.width), console)


def print_view(view, console: Console) -> None:
    """On a terminal, with colour if it wants it, fitted to its width; elsewhere plain lines
    without trailing blanks."""
    if console.is_terminal:
        console.print(view)
        return
    width, console.width = console.width, UNBOUNDED  # as wide as its lines are: nothing cut or folded to fit
    try:
        with console.capture() as capture:
            console.print(view)
    finally:
        console.width = width
    console.file.write("".join(line.rstrip() + "\n" for line in capture.get().splitlines()))


# ----- parts -------------------------------------------------------------------------------
STATUS_STYLE = {"ok": "bold green", "failed": "bold red", "interrupted": "bold red", "unfinished": "bold red"}


def _header(record: RunRecord) -> Text:
    duration = ((record.end_ns or 0) - (record.start_ns or 0)) / 1e9
    text = Text(shown(record.title), style="bold")
    text.append("  ")
    text.append(shown(record.status), style=STATUS_STYLE.get(record.status, "bold"))
    hosts = record.hosts
    details = [str(record.run_name or record.source), f"started {tl.utc(record.start_ns)}",
               tl.format_duration(duration)]
    if hosts:
        details.append(f"{len(hosts)} host{'s' if len(hosts) != 1 else ''}: {', '.join(map(str, hosts[:4]))}"
                       + (", ..." if len(hosts) > 4 else ""))
    text.append("\n" + shown(" · ".join(details)), style="dim")
    if record.error:
        text.append("\nerror: " + shown(record.error), style="red")
    return text


def _verdict(record: RunRecord) -> Text:
    text = Text("Verdict  ", style="bold")
    verdict, problem = verdict_of(record)
    if verdict is None:
        return text.append("none" + (f" ({shown(problem)})" if problem else ""), style="dim")
    text.append(shown(verdict.category), style="bold")
    for reason in verdict.reasons:
        text.append("\n  - " + shown(reason))
    for note in verdict.notes:
        text.append("\n  note: " + shown(note), style="yellow")
    return text


def _bar(start_s: float, end_s: float, total_s: float, width: int, style: str) -> Text:
    """A bar on the run's time axis: at least one cell wide, so that short spans show."""
    scale = width / total_s if total_s > 0 else 0
    first = min(width - 1, int(start_s * scale))
    last = max(first + 1, min(width, round(end_s * scale)))
    return Text.assemble(("▕", "dim"), " " * first, ("█" * (last - first), style), " " * (width - last),
                         ("▏", "dim"))


def _style(span) -> str:
    return "red" if span.failed else "cyan"


def _outcome(span) -> Text:
    text = Text(tl.format_duration(span.duration_s))
    if span.failed:
        text.append(f"  failed: {shown(span.error)}", style="red")
    return text


def _gantt(record: RunRecord, width: int) -> list:
    """Stages, then epochs and checkpoints, in one grid so that every bar shares the axis."""
    origin, total = record.start_ns or 0, ((record.end_ns or 0) - (record.start_ns or 0)) / 1e9
    lanes = tl.lanes(record)
    table = Table.grid(padding=(0, 1))
    table.add_column(no_wrap=True)
    table.add_column(no_wrap=True)
    table.add_column(overflow="fold")

    def row(label: str, span) -> None:
        start, end = (span.start_ns - origin) / 1e9, (span.end_ns - origin) / 1e9
        table.add_row(Text("  " + shown(label)), _bar(start, end, total, width, _style(span)), _outcome(span))

    def title(text: str) -> None:
        table.add_row(Text(text, style="bold"), Text(""), Text(""))

    if record.stages:
        title("Stages")
    for stage in record.stages:
        index = stage.attributes.get("mlpstorage.stage.index")
        count = stage.attributes.get("mlpstorage.stage.count")
        row(f"{index}/{count} {stage.name}" if index and count else stage.name, stage)
    for kind, heading in (("epoch", "Epochs"), ("checkpoint", "Checkpoints")):
        spans = [bar.span for lane in lanes if lane.kind == kind for bar in lane.bars]
        if spans:
            title(heading)
        for span in spans[:MAX_BARS]:
            row(span.name, span)
        if len(spans) > MAX_BARS:
            table.add_row(Text(f"  ... and {len(spans) - MAX_BARS} more", style="dim"), Text(""), Text(""))
    parts = [table] if table.row_count else []
    ranks = [bar.span for lane in lanes if lane.kind == "rank" for bar in lane.bars]
    if ranks:
        parts.append(_ranks(ranks))
    return parts + [Text("")] if parts else []


def _ranks(ranks: list) -> Text:
    hosts = {r.attributes.get("host.name") for r in ranks}
    durations = [r.duration_s for r in ranks]
    text = Text("MPI ranks  ", style="bold")
    text.append(f"{len(ranks)} on {len(hosts)} host{'s' if len(hosts) != 1 else ''}, each "
                f"{tl.format_duration(min(durations))} to {tl.format_duration(max(durations))}")
    for span in [r for r in ranks if r.failed][:MAX_BARS]:
        text.append(f"\n  {shown(span.name)} on {shown(span.attributes.get('host.name'))} failed: {shown(span.error)}",
                    style="red")
    return text


def _metrics(record: RunRecord) -> list:
    items = record.headline_figures()
    if not items:
        return [Text("Metrics  ", style="bold").append("none reported", style="dim"), Text("")]
    table = Table.grid(padding=(0, 2))
    for _ in range(4):
        table.add_column(no_wrap=True)
    for item in items:
        met = Text("") if item.met is None else Text("met", style="green") if item.met else Text("missed", style="red")
        table.add_row(Text("  " + shown(item.label)), Text(shown(item.text), justify="right"),
                      Text(shown(f"target {item.target}") if item.target else ""), met)
    return [Text("Metrics", style="bold"), table, Text("")]


def sparkline(values: list[float], width: int = SPARK_WIDTH, top: float | None = None) -> str:
    """values squeezed into width cells (each the mean of its share), as block characters
    scaled to top (default: their maximum)."""
    if not values:
        return ""
    cells = []
    for i in range(min(width, len(values))):
        share = values[i * len(values) // min(width, len(values)):(i + 1) * len(values) // min(width, len(values))]
        cells.append(sum(share) / len(share))
    top = max(cells) if top is None else top
    if top <= 0:
        return BLOCKS[0] * len(cells)
    return "".join(BLOCKS[min(len(BLOCKS) - 1, int(v / top * (len(BLOCKS) - 1) + 0.5))] for v in cells)


def _sparklines(record: RunRecord, width: int) -> list:
    metrics = [m for m in tl.METRICS if m.key in ("read_Bps", "write_Bps")]
    per_metric = {m.key: {s.name: s.values for s in tl.host_series(record, m)} for m in metrics}
    hosts = sorted(set().union(*per_metric.values()))
    if not hosts:
        return []
    names = [shown(h) for h in hosts]
    spark = max(8, min(SPARK_WIDTH, (width - max(map(len, names)) - 2 - 2 * 14) // 2))
    interval = f", a sample every {record.interval_s:g} s" if record.interval_s else ""
    table = Table.grid(padding=(0, 1))
    for _ in range(1 + 2 * len(metrics)):
        table.add_column(no_wrap=True)
    table.add_row(Text(""), *[cell for m in metrics for cell in (Text(m.title.lower(), style="dim"),
                                                                 Text("mean/max", style="dim"))])
    for host, name in zip(hosts, names):
        cells = [Text("  " + name)]
        for metric in metrics:
            values = per_metric[metric.key].get(host, [])
            top = max(values, default=0)
            mean = sum(values) / len(values) if values else 0
            cells += [Text(sparkline(values, spark), style="cyan"), Text(f"{_short(mean)}/{_short(top)}", style="dim")]
        table.add_row(*cells)
    return [Text(f"Throughput per host (MB/s{interval})", style="bold"), table]


def _short(value: float) -> str:
    """1,228 / 8.3 / 0.04: three significant figures at most, and a small rate not shown as 0.0."""
    return f"{value:,.0f}" if abs(value) >= 10 else f"{value:.1f}" if abs(value) >= 1 else f"{value:.2f}"


# ----- the I/O trace -----------------------------------------------------------------------
IO_COLUMNS = ("count", "bytes", "p50", "p90", "p99", "p99.9", "max")


def _io(record: RunRecord) -> list:
    """Per operation: the whole run, each host (when there are several) and the slowest rank."""
    trace = record.io
    if trace is None:
        return []
    table = Table(box=None, padding=(0, 1), show_edge=False, header_style="dim")
    table.add_column("  operation", no_wrap=True)
    table.add_column("where", no_wrap=True)
    for column in IO_COLUMNS:
        table.add_column(column, justify="right", no_wrap=True)
    several_hosts = len(trace.hosts()) > 1
    for operation in trace.operations():
        rows = [trace.overall(operation)] + (trace.per_host(operation) if several_hosts else [])
        rows.append(trace.slowest_rank(operation))
        for i, latency in enumerate(r for r in rows if r is not None):
            style = "" if latency.where != "all hosts" else "bold"
            where = f"slowest: {latency.where}" if i and latency is rows[-1] else latency.where
            table.add_row(Text("  " + shown(operation) if i == 0 else ""), Text(shown(where), style=style or "dim"),
                          Text(f"{latency.count:,}"), Text(format_bytes(latency.bytes) if latency.bytes else ""),
                          *[Text(format_latency(latency.us(label))) for label in IO_COLUMNS[2:]])
    ranks = len(trace.sources)
    title = Text("I/O per operation", style="bold").append(
        f" (io_trace.json: {trace.events or 0:,} traced events from {ranks} rank{'s' if ranks != 1 else ''}"
        f"{f', {trace.bad_lines:,} lines unread' if trace.bad_lines else ''})", style="dim")
    return [Text(""), title, table]
