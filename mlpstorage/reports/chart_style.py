"""The look every chart of a page shares, whether Bokeh draws it (charts.py) or it is plain
SVG (svg_timeline.py): one frame width and left border, so that time axes line up; a colour
per kind of span; the clock the time axis reads in. Imports nothing heavy."""

from __future__ import annotations

FRAME_WIDTH = 900
LEFT = 240  # room for the timeline's lane labels, on every figure so the time axes line up
LANE_PX = 20
FAILED = "#d00000"
KIND_COLORS = {"run": "#7f7f7f", "stage": "#1f77b4", "spinner": "#17becf", "host": "#17becf", "epoch": "#2ca02c",
               "checkpoint": "#bcbd22", "rank": "#9467bd", "task": "#8c564b", "io": "#e377c2"}
TINY_SHARE = 0.004  # a span shorter than this share of the time axis also gets a marker, to be found and hovered


def axis_bounds(end_s: float, pads: int = 1) -> tuple[float, float]:
    """The time axis of a run end_s long, with pads times a hundredth of it either side (the
    axis shown: 1; how far Bokeh lets a reader pan: 5)."""
    pad = max(end_s, 1e-3) * 0.01 * pads
    return -pad, end_s + pad


def clock(t: float, step_s: float = 0.01) -> str:
    """A tick's text on ticks step_s apart: seconds below a minute (0.25s, 30s, with the
    decimals the step needs), then m:ss and h:mm:ss (as charts._CLOCK)."""
    if abs(t) < 60:
        decimals = next((d for d in range(4) if abs(step_s * 10 ** d - round(step_s * 10 ** d)) < 1e-9), 3)
        return f"{t:.{decimals}f}s"
    s = round(t)
    h, m, r = s // 3600, s % 3600 // 60, s % 60
    return f"{h}:{m:02d}:{r:02d}" if h else f"{m}:{r:02d}"


# A clock's steps: 1-2-5 seconds, then 1, 2, 5, 10, 15, 30 minutes, then hours.
_STEPS_S = tuple(m * 10.0 ** e for e in range(-3, 2) for m in (1, 2, 5) if m * 10.0 ** e <= 30) + \
    tuple(60.0 * m for m in (1, 2, 5, 10, 15, 30)) + tuple(3600.0 * m for m in (1, 2, 3, 6, 12, 24))


def clock_ticks(start_s: float, end_s: float, at_most: int = 10) -> list[float]:
    """Round times between start_s and end_s, at most at_most of them (fewer for a long run
    past a day)."""
    width = max(end_s - start_s, 1e-9)
    step = next((s for s in _STEPS_S if width / s <= at_most), _STEPS_S[-1])
    first = -(-start_s // step) * step
    return [round(first + i * step, 6) for i in range(int((end_s - first) / step) + 1)]
