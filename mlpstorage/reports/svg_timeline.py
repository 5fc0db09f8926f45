"""The timeline of a page that has nothing else to plot (no time series, no I/O trace: an
`exec` or a run with --skip-timeseries), as inline SVG instead of a Bokeh figure.

Why: such a page needs no BokehJS (1.27 MB inlined) and its writer no Bokeh, whose import
alone is about 0.4 s of the launcher's fixed cost (docs/performance.md); the page is a few
KB. What it keeps of the Bokeh timeline: the same lanes, bars, colours, stage rules, clock
ticks and markers for spans too short to see, and each bar's name, start, duration and
status on hover (the browser's own tooltip). What it gives up: zoom, which only matters when
there are plots to follow it. The drawing is templates/timeline_svg.html; this module only
places things."""

from __future__ import annotations

from dataclasses import dataclass, field

from . import timeline as tl
from .chart_style import FAILED, FRAME_WIDTH, KIND_COLORS, LANE_PX, LEFT, TINY_SHARE, axis_bounds, clock, clock_ticks

TOP, AXIS_PX, RIGHT = 8, 28, 10
LABEL_CHARS = 34  # a longer lane label is cut, whole in its tooltip
INDENT_PX = 10


@dataclass
class SvgTimeline:
    width: int
    height: int
    axis_y: float
    left: int = LEFT  # where the time axis starts
    right: int = LEFT + FRAME_WIDTH  # and where it ends
    lanes: list[dict] = field(default_factory=list)  # y, label, whole, x
    bars: list[dict] = field(default_factory=list)  # x, y, w, h, color, tiny, and bar_text's name/start/duration/status
    rules: list[dict] = field(default_factory=list)  # x, color
    ticks: list[dict] = field(default_factory=list)  # x, text


def place(lanes: list[tl.Lane], marks: list[tl.StageMark], end_s: float, bar_text) -> SvgTimeline:
    """Where each lane, bar, stage rule and tick goes; bar_text(bar) -> {name, start, duration, status}."""
    start_s, stop_s = axis_bounds(end_s)
    scale = FRAME_WIDTH / (stop_s - start_s)

    def x_of(t: float) -> float:
        return round(LEFT + (t - start_s) * scale, 2)

    axis_y = TOP + LANE_PX * len(lanes)
    drawing = SvgTimeline(LEFT + FRAME_WIDTH + RIGHT, axis_y + AXIS_PX, axis_y)
    for i, lane in enumerate(lanes):
        top = TOP + i * LANE_PX
        label = lane.label if len(lane.label) <= LABEL_CHARS else lane.label[:LABEL_CHARS - 1] + "…"
        drawing.lanes.append({"y": top + LANE_PX / 2, "label": label, "whole": lane.label,
                              "x": 4 + INDENT_PX * lane.depth})
        height = 0.8 * LANE_PX / lane.rows
        for bar in lane.bars:
            left, right = x_of(bar.start_s), x_of(bar.end_s)
            drawing.bars.append({"x": left, "y": round(top + 0.1 * LANE_PX + bar.row * height, 2),
                                 "w": round(max(right - left, 0.5), 2), "h": round(height, 2),
                                 "color": FAILED if bar.span.failed else KIND_COLORS.get(lane.kind, KIND_COLORS["task"]),
                                 "tiny": right - left < TINY_SHARE * FRAME_WIDTH, **bar_text(bar)})
    for mark in marks:
        drawing.rules.append({"x": x_of(mark.start_s), "color": FAILED if mark.failed else "#888888"})
    if marks:
        drawing.rules.append({"x": x_of(marks[-1].end_s), "color": "#888888"})
    ticks = clock_ticks(start_s, stop_s)
    step = ticks[1] - ticks[0] if len(ticks) > 1 else 1.0
    drawing.ticks = [{"x": x_of(t), "text": clock(t, step)} for t in ticks]
    return drawing
