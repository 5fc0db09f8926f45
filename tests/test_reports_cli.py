"""`mlpstorage reports html|show|compare` from the command line, and golden files for what
`reports show` and `reports compare` print (after a deliberate change:
`pytest tests/test_reports_cli.py --update-goldens`, then review the diff of tests/golden/)."""

from __future__ import annotations

import io
import re
import shutil
from pathlib import Path

import pytest
from rich.console import Console
from test_dlio import mlpstorage
from test_report_page import EVIL_NAME, SECRET, SMALL, make_evil_run, rewrite_events, small_run

from mlpstorage.reports import compare
from mlpstorage.reports.record import read_run
from mlpstorage.reports.show import show

from support.golden import assert_matches_golden
from support.otlp_sink import base_env

pytestmark = pytest.mark.slow  # each test runs the real CLI in a process of its own

GOLDEN = Path(__file__).parent / "golden"
WIDTH = 120  # what the command uses when piped


def env(**extra):
    values = base_env(**extra)
    for name in ("COLUMNS", "NO_COLOR"):
        values.pop(name, None)
    return values


def plain(render, *args) -> str:
    console = Console(file=io.StringIO(), width=WIDTH, color_system=None, force_terminal=False)
    render(*args, console)
    return console.file.getvalue()


@pytest.fixture
def runs(tmp_path):
    """The golden inputs: synthetic runs (ok, failed, cut short) and the golden recording."""
    recording = tmp_path / "recording" / "events.jsonl"
    recording.parent.mkdir()
    shutil.copy(GOLDEN / "ok.events.jsonl", recording)
    return {"synthetic-ok": small_run(tmp_path), "synthetic-failed": small_run(tmp_path, status="failed"),
            "synthetic-cut": small_run(tmp_path, status="cut"), "recording": recording}


# ----- show ------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["synthetic-ok", "synthetic-failed", "synthetic-cut", "recording"])
def test_show_golden(runs, name, update_goldens):
    text = plain(show, read_run(runs[name]))
    assert_matches_golden(text, GOLDEN / f"show-{name}.txt", update_goldens)
    assert "\x1b" not in text and not re.search(r" +$", text, re.M)


def test_show_piped_prints_the_golden_lines_without_colour(runs):
    result = mlpstorage("reports", "show", str(runs["synthetic-failed"]), env=env())
    assert result.returncode == 0, result.stderr
    assert result.stdout == (GOLDEN / "show-synthetic-failed.txt").read_text()
    assert result.stderr == ""


def test_show_in_colour_when_asked(runs):
    result = mlpstorage("reports", "show", str(runs["synthetic-failed"]), env=env(FORCE_COLOR="1"))
    assert result.returncode == 0, result.stderr
    assert "\x1b[31m" in result.stdout or "\x1b[1;31m" in result.stdout  # failures in red
    assert re.sub(r"\x1b\[[0-9;]*m", "", result.stdout).startswith("training unet3d run  failed")


def test_show_never_passes_control_characters_or_markup_from_a_recording(tmp_path):
    run_dir = small_run(tmp_path)

    def change(event):
        if event.get("name") == "Processing results":
            event["name"] = "Processing \x1b[2J\x1b]0;pwned\x07[bold red]results[/] " + EVIL_NAME
        return event

    rewrite_events(run_dir, change)
    text = plain(show, read_run(run_dir))
    assert "4/4 Processing \\x1b[2J\\x1b]0;pwned\\x07[bold red]results[/] <script>" in text
    assert "\x1b" not in text and "\x07" not in text


def test_show_reads_a_warning_for_each_bad_line(tmp_path):
    run_dir = small_run(tmp_path)
    with open(run_dir / "events.jsonl", "a") as handle:
        handle.write("garbage\n")
    result = mlpstorage("reports", "show", str(run_dir), env=env())
    assert result.returncode == 0
    last = len((run_dir / "events.jsonl").read_text().splitlines())
    assert result.stderr == f"mlpstorage: warning: {run_dir}/events.jsonl:{last}: skipped a line that is not JSON: " \
                            "Expecting value\n"


# ----- html ------------------------------------------------------------------------------------
def test_html_writes_the_page_into_the_folder_or_where_asked(tmp_path):
    run_dir = small_run(tmp_path)
    result = mlpstorage("reports", "html", str(run_dir), env=env())
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{run_dir / 'report.html'}\n"
    elsewhere = tmp_path / "page.html"
    result = mlpstorage("reports", "html", str(run_dir / "events.jsonl"), "-o", str(elsewhere), env=env())
    assert result.returncode == 0, result.stderr
    assert "<title>mlpstorage: training unet3d run</title>" in elsewhere.read_text()


@pytest.mark.parametrize("args, message", [
    (lambda tmp: [str(tmp / "missing")], "{tmp}/missing: no such run folder or recording"),
    (lambda tmp: [str(tmp)], "{tmp}: not a run folder (no events.jsonl in it)"),
    (lambda tmp: [str(Path(__file__))], "test_reports_cli.py: not an mlpstorage recording"),
    (lambda tmp: [str(small_run(tmp)), "-o", str(tmp / "no" / "such" / "x.html")],
     "{tmp}/no/such/x.html: cannot write (No such file or directory)"),
])
def test_html_bad_input_is_one_line_and_exit_code_2(tmp_path, args, message):
    result = mlpstorage("reports", "html", *args(tmp_path), env=env())
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("mlpstorage: error: ")
    assert message.format(tmp=tmp_path) in result.stderr
    assert result.stdout == "" and not list(tmp_path.rglob("*.html")) and not list(tmp_path.rglob(".*.tmp"))


# ----- compare ---------------------------------------------------------------------------------
def test_compare_golden(runs, tmp_path, update_goldens):
    records = [read_run(runs["synthetic-ok"]), read_run(runs["synthetic-failed"]), read_run(runs["recording"])]
    text = plain(compare.show, records).replace(str(tmp_path), "<tmp>")
    assert_matches_golden(text, GOLDEN / "compare-synthetic.txt", update_goldens)


def test_compare_shows_the_change_from_the_first_run(tmp_path):
    faster = small_run(tmp_path, hosts=SMALL.hosts + 1, duration_s=60)
    result = mlpstorage("reports", "compare", str(small_run(tmp_path)), str(faster), env=env())
    assert result.returncode == 0, result.stderr
    row = next(line for line in result.stdout.splitlines() if line.strip().startswith("Running benchmark (s)"))
    assert row.split() == ["Running", "benchmark", "(s)", "120.000", "60.000", "-60.000", "(-50.0", "%)"]
    accelerators = next(line for line in result.stdout.splitlines() if line.strip().startswith("Accelerators"))
    assert accelerators.split() == ["Accelerators", "6", "8", "+2", "(+33.3", "%)"]


def test_compare_html_overlays_the_runs(tmp_path):
    page = tmp_path / "compare.html"
    a, b = small_run(tmp_path), make_evil_run(tmp_path / "evil")
    result = mlpstorage("reports", "compare", str(a), str(b), "--html", str(page), env=env())
    assert result.returncode == 0, result.stderr
    assert result.stderr == f"mlpstorage: wrote {page}\n"
    text = page.read_text()
    assert "<h1>Comparison of runs</h1>" in text and '<section id="timeseries">' in text
    assert "<script>window" not in text and SECRET not in text


@pytest.mark.parametrize("args, message", [
    (lambda tmp: [str(small_run(tmp))], "compare needs two or more runs"),
    (lambda tmp: [str(small_run(tmp)), str(tmp / "missing")], "missing: no such run folder or recording"),
])
def test_compare_bad_input_is_one_line_and_exit_code_2(tmp_path, args, message):
    result = mlpstorage("reports", "compare", *args(tmp_path), env=env())
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and message in result.stderr and result.stdout == ""
