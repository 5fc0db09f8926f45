"""Golden files: text people read (terminal output, tables), checked in and compared exactly.

After a deliberate change, rewrite them with pytest's `--update-goldens` option (tests/conftest.py;
tests get it as the `update_goldens` fixture), e.g. `pytest tests/test_golden.py --update-goldens`,
then review the diff of the golden files like any other change."""

from __future__ import annotations

import difflib
from pathlib import Path


def assert_matches_golden(actual: str, golden: Path, update: bool) -> None:
    """actual is exactly golden's text; with update, golden is rewritten first."""
    if update:
        golden.write_text(actual)
    if not golden.exists():
        raise AssertionError(f"{golden} is missing: run with --update-goldens")
    expected = golden.read_text()
    if actual != expected:
        # pytest rewrites the asserts of test modules only: the diff is made here
        diff = difflib.unified_diff(expected.splitlines(keepends=True), actual.splitlines(keepends=True),
                                    f"{golden} (golden)", "actual")
        raise AssertionError(f"output differs from {golden.name} (--update-goldens after a deliberate change):\n"
                             + "".join(diff))
