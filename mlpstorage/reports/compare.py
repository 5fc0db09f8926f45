"""`mlpstorage reports compare RUN_A RUN_B [...]`: runs side by side. In the terminal, the
headline metrics, the stage durations, the epochs and checkpoints, the mean of each time
series (all hosts) and, for traced runs (--io-trace), the latency percentiles of each operation
over all hosts, with the change of every run from the first (A); with --html, a page with
the same table and the runs' time series overlaid (time since each run started)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from . import timeline as tl
from .headline import format_number, number
from .record import RunRecord, shown
from .templating import Markup, render_page, write_html

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


@dataclass
class Row:
    label: str  # with its unit
    values: list  # one per run: a number, a string, or None
    form: str = "{:,.3f}"  # how a number shows; its change is shown the same way, with a sign

    def text(self, i: int) -> str:
        value = self.values[i]
        return "-" if value is None else shown(format_number(self.form, value))

    def change(self, i: int) -> str:
        """Run i's value against the first run's: '+0.005 (+7.7 %)'; empty when either is not a number."""
        base, value = number(self.values[0]), number(self.values[i])
        if base is None or value is None or i == 0:
            return ""
        difference = self.values[i] - self.values[0]  # an int stays an int
        if abs(difference) < 1e-9 * max(abs(base), 1):
            difference = 0  # not -0.000 for a float's rounding
        delta = format_number(self.form.replace("{:", "{:+").replace("{}", "{:+}"), difference)
        return f"{delta} ({(value - base) / base * 100:+.1f} %)" if base else delta


def _with_unit(label: str, unit: str) -> str:
    return f"{label} ({unit})" if unit else label


def label(i: int) -> str:
    return LETTERS[i] if i < len(LETTERS) else f"R{i + 1}"


def sections(records: list[RunRecord]) -> list[tuple[str, list[Row]]]:
    """(title, rows) of the comparison, in the order shown."""
    metrics: dict[str, Row] = {}
    for i, record in enumerate(records):
        for item in record.headline_figures():
            row = metrics.setdefault(item.key, Row(_with_unit(item.label, item.unit), [None] * len(records), item.form))
            row.values[i] = item.value
    # The stages in their order (their index), each once, whichever runs have it.
    ordered = sorted((s.attributes.get("mlpstorage.stage.index") or 0, i, s.name)
                     for r in records for i, s in enumerate(r.stages))
    names = list(dict.fromkeys(name for _, _, name in ordered))
    stages = [Row(f"{name} (s)", [r.stage_durations().get(name) for r in records]) for name in names]
    work = []
    for kind, title in (("epoch", "epochs"), ("checkpoint", "checkpoints")):
        durations = [[bar.span.duration_s for lane in tl.lanes(r) if lane.kind == kind for bar in lane.bars]
                     for r in records]
        if any(durations):
            work.append(Row(title, [len(d) for d in durations], "{}"))
            work.append(Row(f"mean {title[:-1]} duration (s)", [sum(d) / len(d) if d else None for d in durations]))
    series = []
    for metric in tl.METRICS:
        totals = [tl.total_series(r, metric) for r in records]
        if any(totals):
            means = [sum(t.values) / len(t.values) if t and t.values else None for t in totals]
            series.append(Row(_with_unit(f"{metric.title}, {metric.total}", metric.unit), means, "{:,.2f}"))
    found = [("Headline metrics", list(metrics.values())), ("Stage durations", stages),
             ("Epochs and checkpoints", work), ("Time series, all hosts, mean over the run", series),
             ("I/O latency per operation, all hosts (io_trace.json)", _io_rows(records))]
    return [(title, rows) for title, rows in found if rows]


IO_FIGURES = ("p50", "p90", "p99", "p99.9", "max")


def _io_rows(records: list[RunRecord]) -> list[Row]:
    """Per operation any traced run made: its calls and percentiles in each run ('-' untraced)."""
    traces = [record.io for record in records]
    operations = dict.fromkeys(name for trace in traces if trace is not None for name in trace.operations())
    rows = []
    for name in operations:
        overall = [trace.overall(name) if trace is not None else None for trace in traces]
        rows.append(Row(f"{name} calls", [o.count if o else None for o in overall], "{:,}"))
        rows += [Row(f"{name} {figure} (µs)", [o.us(figure) if o else None for o in overall], "{:,.1f}")
                 for figure in IO_FIGURES]
    return rows


# ----- terminal ----------------------------------------------------------------------------
def render(records: list[RunRecord]) -> Group:
    runs = Table.grid(padding=(0, 2))
    for _ in range(3):
        runs.add_column(no_wrap=True)
    runs.add_column(overflow="fold")
    for i, record in enumerate(records):
        runs.add_row(Text(label(i), style="bold"), Text(shown(record.title)), Text(shown(record.status)),
                     Text(shown(f"{tl.utc(record.start_ns)}  {record.source}"), style="dim"))
    table = Table(box=None, padding=(0, 2), show_edge=False, header_style="bold")
    table.add_column("", no_wrap=True)
    for i in range(len(records)):
        table.add_column(label(i), justify="right", no_wrap=True)
        if i:
            table.add_column(f"{label(i)} - A", justify="right", no_wrap=True, style="dim")
    for title, rows in sections(records):
        table.add_row(Text(title, style="bold"))
        for row in rows:
            cells = [Text("  " + shown(row.label))]
            for i in range(len(records)):
                cells.append(Text(row.text(i)))
                if i:
                    cells.append(Text(row.change(i)))
            table.add_row(*cells)
    return Group(Text("Runs", style="bold"), runs, Text(""), table)


def show(records: list[RunRecord], console: Console) -> None:
    from .show import print_view

    print_view(render(records), console)


# ----- the page ----------------------------------------------------------------------------
def build_page(records: list[RunRecord]) -> str:
    from . import charts

    names = [f"{label(i)}: {shown(r.title)} {shown(r.run_dir.name if r.run_dir else r.source.name)}"
             for i, r in enumerate(records)]
    colors = charts.colors_for(names)
    longest = max((((r.end_ns or 0) - (r.start_ns or 0)) / 1e9 for r in records), default=1.0)
    x_range = charts.time_range(longest)
    figures = []
    for metric in tl.METRICS:
        lines = []
        for name, record in zip(names, records):
            total = tl.total_series(record, metric)
            if total is not None:
                lines.append(tl.Series(name, total.times_s, total.values))
        if lines:
            figure = charts.lines(f"{metric.title}, all hosts ({metric.total})", metric.unit, lines, colors, [],
                                  x_range, metric.key)
            for name, record in zip(names, records):
                charts.stage_rules(figure, tl.stage_marks(record), colors[name])
            figures.append(figure)
    bokeh_js, script, divs = charts.embed(figures)
    runs = [{"label": label(i), "title": r.title, "status": r.status, "started": tl.utc(r.start_ns), "source": r.source}
            for i, r in enumerate(records)]
    table = [(title, [{"label": row.label, "cells": [(row.text(i), row.change(i) if i else None)
                                                      for i in range(len(records))]} for row in rows])
             for title, rows in sections(records)]
    return render_page("compare.html", runs=runs, table=table, bokeh_js=Markup(bokeh_js), bokeh_script=Markup(script),
                  series=[Markup(div) for div in divs])


def write_page(records: list[RunRecord], path: Path) -> Path:
    return write_html(build_page(records), Path(path))
