"""reportgen's index.html: every run with its verdict, headline metrics and a throughput
sparkline, linking to the run's own page (<run dir>/report.html, written by `reports html`;
linked whether or not it exists yet), and the submission candidates with their checks.

One self-contained file (inline CSS and SVG, no script, nothing fetched), so it works
offline and from a copied results tree. Every text is HTML-escaped; secrets never reach it
(records are redacted as they are read).
"""

from __future__ import annotations

import html
import os
from pathlib import Path
from urllib.parse import quote

from .records import RunRecord
from .verdict import CATEGORIES

RUN_PAGE = "report.html"
NONE = '<span class="none">—</span>'

STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #1d1d1f; }
h1 { font-size: 1.4em; } h2 { font-size: 1.15em; margin-top: 1.6em; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; vertical-align: top; padding: .35em .6em; border-bottom: 1px solid #ddd; }
th { background: #f4f4f6; }
.badge { display: inline-block; padding: .1em .5em; border-radius: .6em; font-weight: 600; font-size: .85em; }
.CLOSED { background: #d8f3dc; color: #1b5e20; } .OPEN { background: #fff3c4; color: #7a5d00; }
.INVALID { background: #ffd6d6; color: #8b0000; }
ul { margin: 0; padding-left: 1.1em; } .none { color: #888; }
svg.spark polyline { fill: none; stroke: #3366cc; stroke-width: 1.5; }
ul.checks { list-style: none; padding-left: 0; } .ok { color: #1b5e20; } .no { color: #8b0000; } .nowrap { white-space: nowrap; }
"""


def index_html(report, output_dir: Path) -> str:
    """The page for a reportgen Report, with links relative to output_dir (where it is written)."""
    from .reportgen import banner, describe

    rows = []
    order = sorted(report.runs, key=lambda rv: (CATEGORIES.index(rv[1].category), rv[0].run_id))
    for record, verdict in order:
        issues = "".join(f"<li>{_e(r)}</li>" for r in verdict.reasons) or '<span class="none">No issues found</span>'
        rows.append(
            "<tr>"
            f'<td><span class="badge {verdict.category}">{verdict.category}</span></td>'
            f'<td class="nowrap"><a href="{_run_page(record, output_dir)}">{_e(record.run_id)}</a></td>'
            f"<td>{_e(describe(record))}</td>"
            f'<td class="nowrap">{"<br>".join(_e(m) for m in record.headline()) or NONE}</td>'
            f"<td>{sparkline(record.throughput_series, record.throughput_unit)}</td>"
            f"<td>{'<ul>' + issues + '</ul>' if verdict.reasons else issues}</td>"
            "</tr>"
        )
    candidates = []
    for candidate in report.candidates:
        checks = "".join(f'<li class="{"ok" if c.ok else "no"}">{"✔" if c.ok else "✖"} {_e(c.text)}</li>'
                         for c in candidate.checks)
        candidates.append(
            "<tr>"
            f"<td>{_e(candidate.label)}</td><td>{len(candidate.runs)}</td>"
            f'<td><span class="badge {candidate.category}">{candidate.category}</span></td>'
            f'<td><ul class="checks">{checks}</ul></td>'
            "</tr>"
        )
    skipped = "".join(f"<li>{_e(line)}</li>" for line in report.skipped)
    return "\n".join([
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<title>MLPerf Storage results</title>",
        f"<style>{STYLE}</style></head><body>",
        "<h1>MLPerf Storage results</h1>",
        f"<p>{_e(banner(report))}</p>",
        "<h2>Runs</h2>",
        "<table><thead><tr><th>Verdict</th><th>Run</th><th>What</th><th>Metrics</th><th>Throughput</th>"
        "<th>Issues</th></tr></thead><tbody>",
        *rows,
        "</tbody></table>",
        *(["<h2>Submission candidates</h2>",
           "<table><thead><tr><th>Candidate</th><th>Runs</th><th>Category</th><th>Guideline checks</th></tr></thead>"
           "<tbody>", *candidates, "</tbody></table>"] if candidates else []),
        *([f"<h2>Skipped</h2><ul>{skipped}</ul>"] if skipped else []),
        "</body></html>",
        "",
    ])


def sparkline(values: tuple[float, ...], unit: str, width: int = 100, height: int = 24) -> str:
    """An inline SVG line of the values (per epoch or per checkpoint), their list as its title."""
    if len(values) < 2:
        return NONE
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    step = width / (len(values) - 1)
    points = " ".join(f"{i * step:.1f},{height - 2 - (v - low) / span * (height - 4):.1f}" for i, v in enumerate(values))
    title = _e(", ".join(f"{v:.1f}" for v in values) + f" {unit}")
    return (f'<svg class="spark" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
            f'aria-label="{title}"><title>{title}</title><polyline points="{points}"/></svg>')


def _run_page(record: RunRecord, output_dir: Path) -> str:
    target = os.path.relpath(Path(record.run_dir).absolute() / RUN_PAGE, Path(output_dir).absolute())
    return quote(Path(target).as_posix())


def _e(text) -> str:
    return html.escape(str(text), quote=True)
