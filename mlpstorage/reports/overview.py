"""reportgen's index.html: every run with its verdict and notes, headline metrics (a traced
run's read latency too) and a throughput sparkline, linking to the run's own page
(<run dir>/report.html, written by `reports html`; linked whether or not it exists yet), and
the submission candidates with their checks.

One self-contained file (the stylesheet and SVG inline, no script, nothing fetched), so it
works offline and from a copied results tree. The HTML comes from templates/index.html with
autoescape (templating.py); secrets never reach it (records are redacted as they are read).
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import quote

from .io_trace import read_text
from .record import REPORT, RunRecord
from .templating import render_page
from .verdict import CATEGORIES


def index_html(report, output_dir: Path) -> str:
    """The page for a reportgen Report (its runs, candidates, skipped lines and banner), with
    links relative to output_dir (where it is written)."""
    order = sorted(report.runs, key=lambda rv: (CATEGORIES.index(rv[1].category), rv[0].run_id))
    runs = [{"record": record, "verdict": verdict, "href": _run_page(record, output_dir),
             "spark": sparkline(record.throughput_series, record.throughput_unit), "read": read_text(record.io)}
            for record, verdict in order]
    return render_page("index.html", banner=report.banner(), runs=runs, candidates=report.candidates,
                  skipped=report.skipped)


def sparkline(values: tuple[float, ...], unit: str, width: int = 100, height: int = 24) -> dict | None:
    """An inline SVG line of the values (per epoch or per checkpoint): its size, its points and
    the values as its title; None for fewer than two values."""
    if len(values) < 2:
        return None
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    step = width / (len(values) - 1)
    points = " ".join(f"{i * step:.1f},{height - 2 - (v - low) / span * (height - 4):.1f}"
                      for i, v in enumerate(values))
    return {"width": width, "height": height, "points": points,
            "title": ", ".join(f"{v:.1f}" for v in values) + f" {unit}"}


def _run_page(record: RunRecord, output_dir: Path) -> str:
    target = os.path.relpath(Path(record.run_dir).absolute() / REPORT, Path(output_dir).absolute())
    return quote(Path(target).as_posix())
