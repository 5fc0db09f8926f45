"""The pages' charts, drawn by Bokeh; the only module that imports it.

Why Bokeh (measured on the synthetic one-hour, 16-host recording; see docs/reports.md): its
JavaScript, inlined, is 1.27 MB (Plotly's is 4.8 MB, which alone nearly fills the 5 MB budget
and drew in 2.4 s), it draws on a canvas in about 0.6 s, its data travel as base64 typed
arrays, and one shared x range makes the timeline and every plot pan and zoom together, which
a one-hour run needs: a 0.2 s stage is a sliver until you zoom in. Static SVG (matplotlib,
Vega through vl-convert) was smaller and faster but has no hover and no zoom.

All figures share one frame width and left border, so their time axes line up on the page.
Strings from a recording reach Bokeh as data only (tooltips and legends show them as text).

A traced run's figures (latency_distribution, io_heatmap, epoch_bars) get aggregates only:
a line per host and operation of at most 92 buckets, one cell per rank and time bin (at most
240 bins), one bar per epoch and rank or host; never one point per call.
"""

from __future__ import annotations

import numpy as np
from bokeh.embed import components
from bokeh.models import (AdaptiveTicker, ColorBar, ColumnDataSource, CompositeTicker, CustomJS, CustomJSHover,
                          CustomJSTickFormatter, FactorRange, HoverTool, Legend, LegendItem, LinearColorMapper,
                          PrintfTickFormatter, Range1d, Select, Span as Rule)
from bokeh.palettes import Blues256
from bokeh.plotting import figure
from bokeh.resources import Resources

from .chart_style import FAILED, FRAME_WIDTH, KIND_COLORS, LANE_PX, LEFT, TINY_SHARE, axis_bounds
from .timeline import Envelope, Lane, Series, StageMark

PLOT_PX = 190
MAX_LEGEND = 32  # lines
TOOLS = "xpan,xwheel_zoom,xbox_zoom,reset,save"
# 20 distinguishable colours (Category20's dark then light halves): a host keeps its colour in every plot.
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94", "#f7b6d2", "#c7c7c7",
           "#dbdb8d", "#9edae5")
TOTAL_COLOR = "#000000"  # a line with no colour of its own

# Ticks as h:mm:ss past a minute, seconds below (as chart_style.clock).
_CLOCK = """
const t = tick;
if (Math.abs(t) < 60) return (Math.round(t * 100) / 100) + "s";
const s = Math.round(t), h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
const pad = (n) => String(n).padStart(2, "0");
return h ? h + ":" + pad(m) + ":" + pad(r) : m + ":" + pad(r);
"""


def _clock_ticker() -> CompositeTicker:
    """Ticks a clock would have: 1-2-5 seconds, then 1, 2, 5, 10, 15, 30 minutes, then hours."""
    return CompositeTicker(tickers=[
        AdaptiveTicker(base=10, mantissas=[1, 2, 5], max_interval=30, num_minor_ticks=5),
        AdaptiveTicker(base=60, mantissas=[1, 2, 5, 10, 15, 30], min_interval=60, max_interval=1800, num_minor_ticks=4),
        AdaptiveTicker(base=3600, mantissas=[1, 2, 3, 6, 12], min_interval=3600, num_minor_ticks=4)])


def time_range(end_s: float) -> Range1d:
    """The one x range every figure of a page shares."""
    return Range1d(*axis_bounds(end_s), bounds=axis_bounds(end_s, pads=5))


def _figure(x_range: Range1d, height: int, title: str | None = None):
    fig = figure(frame_width=FRAME_WIDTH, height=height, x_range=x_range, tools=TOOLS, title=title,
                 min_border_left=LEFT, min_border_right=10, active_scroll=None, toolbar_location="right")
    fig.toolbar.logo = None
    fig.xaxis.formatter = CustomJSTickFormatter(code=_CLOCK)
    fig.xaxis.ticker = _clock_ticker()
    fig.xgrid.grid_line_alpha = 0.4
    fig.ygrid.grid_line_alpha = 0.4
    return fig


def stage_rules(fig, marks: list[StageMark], color: str = "#888888") -> None:
    """Stage boundaries: a dashed rule where each stage starts (red for one that failed), and
    where the last one ends."""
    for mark in marks:
        fig.add_layout(Rule(location=mark.start_s, dimension="height", line_dash="dashed", line_width=1,
                            line_color=FAILED if mark.failed else color))
    if marks:
        fig.add_layout(Rule(location=marks[-1].end_s, dimension="height", line_dash="dashed", line_color=color))


def timeline(lanes: list[Lane], marks: list[StageMark], x_range: Range1d, bar_text) -> object:
    """The Gantt chart: a lane per row (label on the left), a bar per span, failures in red;
    hover shows bar_text(bar) -> {name, start, duration, status}. Spans too
    short to see at this scale also get a marker, so that they can be found and hovered."""
    columns = {k: [] for k in ("left", "right", "top", "bottom", "color", "name", "start", "duration", "status", "y")}
    width = max(x_range.end - x_range.start, 1e-9)
    tiny = []
    for i, lane in enumerate(lanes):
        for bar in lane.bars:
            height = 0.8 / lane.rows
            top = -i - 0.1 - bar.row * height
            text = bar_text(bar)
            color = FAILED if bar.span.failed else KIND_COLORS.get(lane.kind)
            for key, value in (("left", bar.start_s), ("right", bar.end_s), ("top", top), ("bottom", top - height),
                               ("color", color), ("y", top - height / 2), *text.items()):
                columns[key].append(value)
            tiny.append((bar.end_s - bar.start_s) / width < TINY_SHARE)
    source = ColumnDataSource({k: _array(v) if k in ("left", "right", "top", "bottom", "y") else v
                               for k, v in columns.items()})
    fig = _figure(x_range, LANE_PX * len(lanes) + 60)
    fig.y_range = Range1d(-len(lanes), 0)
    # a white outline keeps bars that follow each other (the epochs) apart
    bars = fig.quad(left="left", right="right", top="top", bottom="bottom", fill_color="color", line_color="white",
                    line_width=1, source=source)
    small = ColumnDataSource({k: [v for v, t in zip(columns[k], tiny) if t] for k in columns})
    markers = fig.scatter(x="left", y="y", marker="diamond", size=9, fill_color="color", line_color="color",
                          source=small)
    fig.add_tools(HoverTool(renderers=[bars, markers], tooltips=[("", "@name"), ("start", "@start"),
                                                                 ("duration", "@duration"), ("status", "@status")]))
    fig.yaxis.ticker = [-i - 0.5 for i in range(len(lanes))]
    indent = "\u00a0\u00a0"  # non-breaking: an axis label keeps it
    fig.yaxis.major_label_overrides = {-i - 0.5: indent * lane.depth + lane.label for i, lane in enumerate(lanes)}
    fig.ygrid.grid_line_color = None
    fig.yaxis.minor_tick_line_color = None
    stage_rules(fig, marks)
    fig.name = "timeline"
    return fig


def lines(title: str, unit: str, series: list[Series], colors: dict[str, str], marks: list[StageMark],
          x_range: Range1d, name: str) -> object:
    """A time-series plot: a line per series (colours[series.name], else black), a legend on
    the right, hover for the value. All lines are one glyph (MultiLine): a renderer per line
    costs Bokeh about 2.5x the time to build and 1.8x to draw for 16 hosts."""
    fig = _figure(x_range, PLOT_PX, f"{title} ({unit})" if unit else title)
    source = ColumnDataSource({"xs": [_array(line.times_s) for line in series],
                               "ys": [_array(line.values) for line in series],
                               "name": [line.name for line in series],
                               "color": [colors.get(line.name, TOTAL_COLOR) for line in series]})
    renderer = fig.multi_line("xs", "ys", source=source, line_color="color", line_width=1.4)
    _legend(fig, renderer, [line.name for line in series])
    fig.add_tools(HoverTool(tooltips=[("", "@name"), ("at", "$snap_x{0.0} s"), (unit or "value", "$snap_y{0,0.00}")],
                            line_policy="nearest"))
    fig.y_range = _padded_range([v for line in series for v in line.values])
    stage_rules(fig, marks)
    fig.name = name
    return fig


def _padded_range(values: list[float]) -> Range1d:
    """From just below 0 (a line of zeros stays visible above the axis) to just above the top."""
    low, top = min(values + [0.0]), max(values + [0.0])
    span = (top - low) or 1.0
    return Range1d(low - 0.03 * span, top + 0.08 * span)


SPREAD_COLOR = "#1f77b4"


def envelope(title: str, unit: str, spread: Envelope, marks: list[StageMark], x_range: Range1d, name: str) -> object:
    """A metric of many hosts: per time bin the band from the least to the most of any host
    (light), from p10 to p90 (darker), the median (a line), and the slowest hosts each drawn
    alone in a colour of its own, named in the legend; hover gives the figures of a bin."""
    fig = _figure(x_range, PLOT_PX, f"{title} ({unit})" if unit else title)
    band = ColumnDataSource({"t": _array(spread.times_s), **{k: _array(v) for k, v in spread.figures.items()}})
    fig.varea(x="t", y1="min", y2="max", source=band, fill_color=SPREAD_COLOR, fill_alpha=0.15)
    fig.varea(x="t", y1="p10", y2="p90", source=band, fill_color=SPREAD_COLOR, fill_alpha=0.3)
    median = fig.line(x="t", y="median", source=band, line_color=SPREAD_COLOR, line_width=1.6)
    fig.add_tools(HoverTool(renderers=[median], mode="vline", tooltips=[
        ("at", "@t{0.0} s"), ("max", "@max{0,0.00}"), ("p90", "@p90{0,0.00}"), ("median", "@median{0,0.00}"),
        ("p10", "@p10{0,0.00}"), ("min", "@min{0,0.00}")]))
    colors = {line.name: PALETTE[3 + i] for i, line in enumerate(spread.slowest)}  # red, purple, brown
    alone = ColumnDataSource({"xs": [_array(line.times_s) for line in spread.slowest],
                              "ys": [_array(line.values) for line in spread.slowest],
                              "name": [line.name for line in spread.slowest],
                              "color": [colors[line.name] for line in spread.slowest]})
    slowest = fig.multi_line("xs", "ys", source=alone, line_color="color", line_width=1.2)
    fig.add_tools(HoverTool(renderers=[slowest], tooltips=[("", "@name"), ("at", "$snap_x{0.0} s"),
                                                           (unit or "value", "$snap_y{0,0.00}")], line_policy="nearest"))
    items = [LegendItem(label="median, p10-p90, min-max", renderers=[median])]
    items += [LegendItem(label=line.name, renderers=[slowest], index=i) for i, line in enumerate(spread.slowest)]
    fig.add_layout(Legend(items=items, label_text_font_size="9pt", spacing=0, padding=4, glyph_height=12,
                          label_height=12), "right")
    fig.y_range = _padded_range([v for v in spread.figures["min"] + spread.figures["max"] if v == v])
    stage_rules(fig, marks)
    fig.name = name
    return fig


def colors_for(names: list[str]) -> dict[str, str]:
    return {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(names)}


def embed(figures: list) -> tuple[str, str, list[str]]:
    """(the BokehJS <script> to put in <head>, the script that draws, a <div> per figure):
    one document, so the figures share their x range."""
    if not figures:
        return "", "", []
    script, divs = components(tuple(figures))
    # BokehJS's widgets (0.38 MB more) only on a page with one: a traced run's select of the operation
    widgets = ["bokeh-widgets"] if any(isinstance(f, Select) for f in figures) else []
    return Resources(mode="inline", components=["bokeh", *widgets]).render_js(), script, list(divs)


def _array(values) -> np.ndarray:
    """float32: half the bytes of float64, and exact enough for seconds and rates on a page."""
    return np.asarray(values, dtype=np.float32)


# ----- a traced run's I/O (reports/io_page.py) ------------------------------------------------
# Microseconds as a person reads them: 5 µs, 1.2 ms, 3 s.
_LATENCY = """
const t = tick, f = (v) => String(+v.toPrecision(3));
return t >= 1e6 ? f(t / 1e6) + " s" : t >= 1e3 ? f(t / 1e3) + " ms" : f(t) + " µs";
"""
# The select shows the lines of the operation chosen: every operation's lines travel once, in `all`.
_CHOOSE = """
const pick = (column) => all.data.operation.flatMap((op, i) => op === select.value ? [all.data[column][i]] : []);
shown.data = {xs: pick("xs"), ys: pick("ys"), name: pick("name"), color: pick("color")};
"""
IO_COLORS = {"compute": "#2ca02c", "wait": "#d62728", "other": "#c7c7c7"}


def latency_distribution(lines: dict[str, list[Series]], colors: dict[str, str]) -> tuple[object, object]:
    """(a select of the operation, the figure): per host, the share of its calls in each latency
    bucket, on a log axis. lines: operation -> a Series per host (times_s holds microseconds),
    every operation with the same hosts in the same order, so that the legend holds for each."""
    operations = list(lines)
    columns = {"operation": [], "xs": [], "ys": [], "name": [], "color": []}
    for operation, series in lines.items():
        for line in series:
            for key, value in (("operation", operation), ("xs", _array(line.times_s)), ("ys", _array(line.values)),
                               ("name", line.name), ("color", colors.get(line.name, TOTAL_COLOR))):
                columns[key].append(value)
    everything = ColumnDataSource(columns)
    first = [i for i, op in enumerate(columns["operation"]) if op == operations[0]]
    shown = ColumnDataSource({key: [columns[key][i] for i in first] for key in ("xs", "ys", "name", "color")})
    fig = figure(frame_width=FRAME_WIDTH, height=PLOT_PX + 60, x_axis_type="log",
                 tools="pan,wheel_zoom,box_zoom,reset,save",
                 title="Latency distribution per host (share of the host's calls in each bucket, %)",
                 min_border_left=LEFT, min_border_right=10, active_scroll=None, toolbar_location="right")
    fig.toolbar.logo = None
    fig.xaxis.formatter = CustomJSTickFormatter(code=_LATENCY)
    fig.xaxis.axis_label = "latency of one call"
    renderer = fig.multi_line("xs", "ys", source=shown, line_color="color", line_width=1.6)
    _legend(fig, renderer, [line.name for line in lines[operations[0]]])
    fig.add_tools(HoverTool(tooltips=[("", "@name"), ("latency", "$snap_x{0,0.0} µs"), ("calls", "$snap_y{0.0} %")],
                            line_policy="nearest"))
    fig.y_range.start = 0
    fig.name = "io latency"
    select = Select(title="Operation", value=operations[0], options=operations, width=320, name="io operation")
    select.js_on_change("value", CustomJS(args={"all": everything, "shown": shown, "select": select}, code=_CHOOSE))
    return select, fig


def io_heatmap(busy: np.ndarray, labels: list[str], ticks: dict[float, str], start_s: float, bin_s: float,
               x_range: Range1d) -> object:
    """I/O over time per rank: a row per rank (labels, top to bottom), a cell per time bin
    coloured by the share of the bin the rank spent in I/O calls (threads added up, so it can
    pass 1), on the page's time axis. ticks: y -> the label shown there."""
    rows, bins = busy.shape
    fig = _figure(x_range, max(140, min(560, rows * 6)) + 70, "I/O over time per rank (share of each "
                  f"{bin_s:g} s spent in I/O calls)")
    fig.y_range = Range1d(0, rows)
    mapper = LinearColorMapper(palette=Blues256[::-1], low=0, high=max(float(busy.max()), 1e-6))
    image = fig.image(image=[np.asarray(busy[::-1], dtype=np.float32)], x=start_s, y=0, dw=bins * bin_s, dh=rows,
                      color_mapper=mapper)
    rank_of = CustomJSHover(args={"labels": labels}, code="return labels[labels.length - 1 - Math.floor(value)] || ''")
    fig.add_tools(HoverTool(renderers=[image], tooltips=[("rank", "$y{custom}"), ("at", "$x{0,0} s"),
                                                         ("busy", "@image{0.000}")], formatters={"$y": rank_of}))
    fig.yaxis.ticker = list(ticks)
    fig.yaxis.major_label_overrides = ticks
    fig.ygrid.grid_line_color = None
    fig.add_layout(ColorBar(color_mapper=mapper, width=10, padding=4, formatter=PrintfTickFormatter(format="%.3g")),
                   "right")
    fig.name = "io heatmap"
    return fig


def epoch_bars(factors: list[tuple[str, str]], parts: dict[str, list[float]], io_s: list[float]) -> object:
    """I/O against compute per epoch: a stacked bar per (epoch, rank or host) of the seconds
    computing, waiting for data and the rest of the epoch, and a mark at the seconds spent in
    I/O calls (all the rank's threads and loader processes)."""
    source = ColumnDataSource({"x": factors, **{k: _array(v) for k, v in parts.items()}, "io": _array(io_s),
                               "label": [f"{epoch}, {who}" for epoch, who in factors]})
    fig = figure(frame_width=FRAME_WIDTH, height=PLOT_PX + 150, x_range=FactorRange(*factors), tools="xpan,reset,save",
                 title="Each epoch: computing, waiting for data, the rest (s); the mark: time in I/O calls",
                 min_border_left=LEFT, min_border_right=10, toolbar_location="right")
    fig.toolbar.logo = None
    bars = fig.vbar_stack(list(parts), x="x", width=0.8, source=source, color=[IO_COLORS[k] for k in parts],
                          legend_label=["computing", "waiting for data", "the rest"])
    marks = fig.scatter(x="x", y="io", marker="dash", size=14, line_width=2, color="#000000", source=source,
                        legend_label="in I/O calls")
    fig.add_tools(HoverTool(renderers=[*bars, marks], tooltips=[("", "@label"), ("computing", "@compute{0.00} s"),
                                                                ("waiting", "@wait{0.00} s"),
                                                                ("in I/O calls", "@io{0.000} s")]))
    fig.xaxis.major_label_orientation = 1.2 if len(factors) > 24 else 0
    fig.xgrid.grid_line_color = None
    fig.y_range.start = 0
    fig.legend.location = "top_left"
    fig.legend.orientation = "horizontal"
    fig.add_layout(fig.legend[0], "above")
    fig.name = "io epochs"
    return fig


def _legend(fig, renderer, names: list[str]) -> None:
    """A legend entry per line of the MultiLine, on the right."""
    if len(names) <= MAX_LEGEND:  # past that a legend is a wall of names: hover names a line
        rows = max(1, (PLOT_PX - 40) // 19)
        items = [LegendItem(label=name, renderers=[renderer], index=i) for i, name in enumerate(names)]
        fig.add_layout(Legend(items=items, label_text_font_size="9pt", spacing=0, padding=4,
                              ncols=max(1, -(-len(names) // rows)), glyph_height=12, label_height=12), "right")
