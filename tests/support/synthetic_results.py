"""A results tree of any number of run folders, for reportgen's tests and perf scripts: the
run folders of tests/data/reportgen/results (the existing launcher's v2.0 layout and ours from
real tiny runs, training and checkpointing, CLOSED, OPEN and INVALID) copied over and over,
each copy under a folder stamp of its own, as a results directory that ran for months holds
them."""

from __future__ import annotations

import shutil
from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[1] / "data" / "reportgen" / "results"


def fixture_runs() -> list[Path]:
    """The fixture's run folders (a metadata file and summary.json each), in path order."""
    return sorted(p.parent for p in FIXTURES.rglob("summary.json"))


def write_results_tree(root: Path, runs: int) -> Path:
    """root holding `runs` run folders (<benchmark>/<model>/<command>/<stamp>), the fixture's
    folders in turn; returns root."""
    root = Path(root)
    templates = fixture_runs()
    for i in range(runs):
        template = templates[i % len(templates)]
        relative = template.relative_to(FIXTURES)
        stamp = f"2026{1 + i // 100_000 % 12:02d}{1 + i // 3600 % 28:02d}_{i // 60 % 60:02d}{i % 60:02d}{i // 1000:04d}"
        shutil.copytree(template, root / relative.parent / stamp)
    return root
