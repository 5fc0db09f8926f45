"""A traced run (--io-trace) in the reports: its io_trace.json read into the run model, the
verdict's note, `reports show`, `reports compare`, reportgen's read latency columns, and the
run page's I/O section within its budget. On the recorded traces of a real tiny run
(tests/data/iotrace: 2 ranks, 2 epochs, DFTracer 1.0.2) and on synthetic documents. The
section drawn in a real browser: tests/test_browser.py."""

from __future__ import annotations

import csv
import html
import io
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from mlpstorage.iotrace import write_summary
from mlpstorage.iotrace.aggregate import LATENCY_BOUNDS_US, N_LAT
from mlpstorage.reports import compare
from mlpstorage.reports.io_trace import IoTrace, format_bytes, format_latency
from mlpstorage.reports.record import read_run
from mlpstorage.reports.reportgen import build_report, render_plain, render_rich, write_outputs
from mlpstorage.reports.show import show
from mlpstorage.reports.verdict import CLOSED, TRACED_NOTE, judge
from support.synthetic_io_trace import synthetic_io_trace
from support.synthetic_run import SyntheticRun, host_names, write_synthetic_run
from test_verdict import training

TRACES = Path(__file__).parent / "data" / "iotrace"
REPORTGEN_RUN = Path(__file__).parent / "data" / "reportgen" / "results" / "training" / "unet3d" / "run" / "20261128_072446"
SMALL = SyntheticRun(hosts=1, duration_s=60, interval_s=10, ranks_per_host=2, epochs=2)
EVIL_FILE = '<script>window.__pwned = "file"</script>.npz'


def traced(folder: Path) -> dict:
    """The recorded rank traces summarised into folder/io_trace.json, as the run writes it."""
    for trace in TRACES.glob("*.pfw"):
        shutil.copy(trace, folder / trace.name)
    return write_summary(folder)


def align(run_dir: Path, document: dict) -> dict:
    """The recorded trace moved in time to where the synthetic run's benchmark ran (the
    recording was made on another day): the page draws it on the run's time axis."""
    [running] = [stage for stage in read_run(run_dir).stages if stage.name == "Running benchmark"]
    shift = running.start_ns // 1000 + 2_000_000 - document["start_unix_us"]
    for row in [document, document["timeline"], *document["slowest"], *document["epochs"]]:
        for key in ("start_unix_us", "end_unix_us"):
            if key in row:
                row[key] += shift
    (run_dir / "io_trace.json").write_text(json.dumps(document))
    return document


def mark_traced(run_dir: Path, document: dict) -> None:
    """The metadata says what --io-trace recorded (benchmarks/io_trace.py writes it so)."""
    [metadata] = run_dir.glob("*_metadata.json")
    facts = json.loads(metadata.read_text())
    facts["io_trace"] = {"requested": True, "file": "io_trace.json", "events": document["events"], "bad_lines": 0,
                         "ranks_traced": 2, "ranks_expected": 2, "missing": []}
    metadata.write_text(json.dumps(facts))


@pytest.fixture
def traced_run(tmp_path) -> Path:
    run_dir = write_synthetic_run(tmp_path / "traced", SMALL)
    mark_traced(run_dir, align(run_dir, traced(run_dir)))
    return run_dir


def plain(render, *args) -> str:
    console = Console(file=io.StringIO(), width=160, color_system=None, force_terminal=False)
    render(*args, console)
    return console.file.getvalue()


def one_host(latencies: dict[str, list[float]], host: str = "h1") -> list[dict]:
    """by_host rows of operation -> latencies (µs), with the tracer's buckets (upper-inclusive)."""
    rows = []
    for name, values in latencies.items():
        counts = np.bincount(np.searchsorted(LATENCY_BOUNDS_US, values, side="left"), minlength=N_LAT)
        rows.append({"operation": name, "layer": "posix", "host": host, "count": len(values), "bytes": 0,
                     "total_s": sum(values) / 1e6, "min_us": min(values), "max_us": max(values),
                     "p50_us": 0, "p90_us": 0, "p99_us": 0, "p999_us": 0,
                     "latency_counts": [[int(i), int(c)] for i, c in enumerate(counts) if c]})
    return rows


# ----- the run model ---------------------------------------------------------------------------
def test_a_traced_run_reads_its_trace_and_says_it_was_traced(traced_run, tmp_path):
    record = read_run(traced_run)
    assert record.traced and record.io is not None and record.problems == []
    assert record.io_trace["ranks_traced"] == 2
    untraced = read_run(write_synthetic_run(tmp_path / "untraced", SMALL))
    assert not untraced.traced and untraced.io is None


def test_the_operations_shown_are_the_main_system_calls_then_dlios_busiest(traced_run):
    trace = read_run(traced_run).io
    operations = trace.operations()
    assert operations[:4] == ["read", "open", "close", "lseek"]  # the run wrote nothing, never fsynced
    dlio = operations[4:]
    assert 1 <= len(dlio) <= 4 and not any(name.endswith("__init__") for name in dlio)
    assert all(row["layer"] == "dlio" for row in trace.by_host if row["operation"] in dlio)


def test_figures_of_one_host_are_the_tracers_own_and_the_slowest_rank_has_the_highest_p99(traced_run):
    trace = read_run(traced_run).io
    document = json.loads((traced_run / "io_trace.json").read_text())
    [row] = [r for r in document["by_host"] if r["operation"] == "read"]
    read = trace.overall("read")
    assert (read.count, read.bytes) == (480, 33_707_456) == (row["count"], row["bytes"])
    assert [read.us(label) for label in ("p50", "p90", "p99", "p99.9", "max")] == \
        [row["p50_us"], row["p90_us"], row["p99_us"], row["p999_us"], row["max_us"]]
    ranks = [r for r in document["operations"] if r["operation"] == "read"]
    slowest = max(ranks, key=lambda r: r["p99_us"])
    assert trace.slowest_rank("read").where == f"rank {slowest['rank']} (vm)"
    assert trace.read_percentiles() == (row["p50_us"], row["p99_us"])


def test_percentiles_over_hosts_come_from_their_histograms_not_their_percentiles():
    fast, slow = [10.0] * 90, [1000.0] * 10
    trace = IoTrace({"by_host": one_host({"read": fast}, "a") + one_host({"read": slow}, "b")})
    overall = trace.overall("read")
    assert overall.count == 100
    assert overall.us("p50") <= 10.0  # 90 % of the calls took 10 µs: the median is one of them
    assert 800 < overall.us("p99") <= 1000.0  # within the 1000 µs bucket
    assert overall.us("max") == 1000.0
    assert trace.slowest_host("read").where == "b"


def test_every_read_system_call_counts_as_a_read():
    trace = IoTrace({"by_host": one_host({"read": [10.0] * 50, "pread": [100.0] * 50, "open": [5.0]})})
    reads = trace.reads()
    assert reads.count == 100 and reads.us("max") == 100.0


def test_rows_of_another_shape_are_left_out_and_counted():
    rows = one_host({"read": [10.0] * 5, "open": [5.0]})
    rows[1]["p50_us"] = "fast"
    rows.append({"operation": "close", "latency_counts": [[999, 1]], **{k: 1 for k in rows[0] if k.endswith("_us")},
                 "count": 1, "bytes": 0})
    trace = IoTrace({"by_host": rows, "epochs": [{"rank": "zero"}], "files": {"hottest": "none"}})
    assert trace.operations() == ["read"]
    assert trace.problems == ["io_trace.json: 1 row of by_host not as this version writes them; left out",
                              "io_trace.json: 1 row of by_host not as this version writes them; left out",
                              "io_trace.json: 1 row of epochs not as this version writes them; left out"]


def test_a_file_that_is_no_io_trace_is_one_problem_and_the_run_reads_without_it(traced_run):
    (traced_run / "io_trace.json").write_text('{"format": "something else"}')
    record = read_run(traced_run)
    assert record.io is None and record.traced  # the metadata still says it was traced
    [problem] = [p for p in record.problems if "io_trace.json" in p]
    assert problem.endswith("not an io_trace.json of version 1; the I/O trace is left out")


@pytest.mark.parametrize("us, text", [(0.5, "0.50 µs"), (12.34, "12.3 µs"), (99.96, "100 µs"), (999.7, "1.00 ms"),
                                      (1234.5, "1.23 ms"), (3.4e6, "3.40 s")])
def test_one_format_for_a_latency(us, text):
    assert format_latency(us) == text


def test_one_format_for_bytes():
    assert [format_bytes(v) for v in (0, 512, 999.8, 2.1e6, 6.71e12)] == ["0 B", "512 B", "1.00 kB", "2.10 MB",
                                                                          "6.71 TB"]


# ----- the verdict -------------------------------------------------------------------------------
def test_a_traced_run_keeps_its_category_and_gets_a_note():
    untraced, traced_ = judge(training()), judge(training(io_trace={"requested": True}))
    assert untraced.category == traced_.category == CLOSED
    assert untraced.notes == () and traced_.notes == (TRACED_NOTE,)
    assert traced_.reasons == untraced.reasons
    assert traced_.as_dict() == {"category": CLOSED, "reasons": [], "notes": [TRACED_NOTE]}
    assert "--io-trace" in TRACED_NOTE and "untraced" in TRACED_NOTE


def test_a_folder_with_an_io_trace_is_traced_whatever_its_metadata_says(tmp_path):
    run_dir = write_synthetic_run(tmp_path / "run", SMALL)
    traced(run_dir)
    assert judge(read_run(run_dir, recording=False)).notes == (TRACED_NOTE,)


# ----- reports show and compare ------------------------------------------------------------------
def test_show_prints_the_percentiles_per_operation_and_the_note(traced_run):
    text = plain(show, read_run(traced_run))
    assert f"note: {TRACED_NOTE}" in text
    section = text[text.index("I/O per operation"):]
    assert "io_trace.json: 1,435 traced events from 2 ranks" in section
    read_all = next(line for line in section.splitlines() if line.split()[:3] == ["read", "all", "hosts"])
    assert read_all.split()[3:] == ["480", "33.7", "MB", "1.80", "µs", "20.7", "µs", "66.4", "µs", "127", "µs", "127",
                                    "µs"]
    assert re.search(r"slowest: rank \d \(vm\)", section)


def test_show_prints_every_host_of_a_run_of_many(tmp_path):
    run_dir = write_synthetic_run(tmp_path / "run", SyntheticRun(hosts=3, duration_s=60, ranks_per_host=2, epochs=2,
                                                                 io_trace=True))
    section = plain(show, read_run(run_dir)).split("I/O per operation")[1]
    rows = [line.split()[:2] for line in section.splitlines()[2:] if line.strip()]
    assert ["read", "all"] in rows and all([host] in [r[:1] for r in rows] for host in host_names(3))
    assert section.count("slowest: rank") == 10  # each operation's slowest rank


def test_compare_puts_the_percentiles_side_by_side_with_their_change(traced_run, tmp_path):
    faster = tmp_path / "faster"
    shutil.copytree(traced_run, faster)
    document = json.loads((faster / "io_trace.json").read_text())
    for row in document["by_host"]:
        row["p99_us"] = row["p99_us"] / 2
    (faster / "io_trace.json").write_text(json.dumps(document))
    untraced = write_synthetic_run(tmp_path / "untraced", SMALL)
    records = [read_run(traced_run), read_run(faster), read_run(untraced)]
    [rows] = [rows for title, rows in compare.sections(records) if title.startswith("I/O latency")]
    p99 = next(row for row in rows if row.label == "read p99 (µs)")
    assert [p99.text(i) for i in range(3)] == ["66.4", "33.2", "-"]
    assert p99.change(1) == "-33.2 (-50.0 %)" and p99.change(2) == ""
    assert "read p99 (µs)" in plain(compare.show, records)


# ----- reportgen ---------------------------------------------------------------------------------
def test_reportgen_writes_read_p50_and_p99_of_a_traced_run_and_empty_cells_for_the_others(tmp_path):
    results = tmp_path / "results"
    run_dir = results / "training" / "unet3d" / "run" / REPORTGEN_RUN.name
    shutil.copytree(REPORTGEN_RUN, run_dir)
    shutil.copytree(REPORTGEN_RUN, results / "training" / "unet3d" / "run" / "20261128_080000")
    document = traced(run_dir)
    [p50, p99] = next((r["p50_us"], r["p99_us"]) for r in document["by_host"] if r["operation"] == "read")
    report = build_report(results)
    write_outputs(report, tmp_path)
    by_id = {r["run_id"]: r for r in json.loads((tmp_path / "results.json").read_text())}
    traced_result, other = by_id[f"training/unet3d/run/{run_dir.name}"], by_id["training/unet3d/run/20261128_080000"]
    assert (traced_result["read_p50_us"], traced_result["read_p99_us"]) == (p50, p99)
    assert traced_result["notes"] == [TRACED_NOTE] and traced_result["category"] == other["category"]
    assert (other["read_p50_us"], other["read_p99_us"], other["notes"]) == (None, None, [])
    with open(tmp_path / "results.csv", newline="") as handle:
        rows = {row["run_id"]: row for row in csv.DictReader(handle)}
    assert rows[traced_result["run_id"]]["read_p99_us"] == str(p99)
    assert rows[other["run_id"]]["read_p99_us"] == rows[other["run_id"]]["notes"] == ""
    text = render_plain(report)
    assert "    read p50 1.80 µs, p99 66.4 µs" in text and f"    note: {TRACED_NOTE}" in text
    console = Console(file=io.StringIO(), width=200, color_system=None, force_terminal=True)
    render_rich(report, console)
    assert "Read latency" in console.file.getvalue() and "p99 66.4 µs" in console.file.getvalue()


def test_reportgen_warns_of_an_io_trace_that_does_not_read_and_leaves_its_columns_empty(tmp_path):
    run_dir = tmp_path / "results" / "run"
    shutil.copytree(REPORTGEN_RUN, run_dir)
    (run_dir / "io_trace.json").write_text("{cut short")
    warnings = []
    report = build_report(tmp_path / "results", warn=warnings.append)
    [line] = warnings
    assert line.startswith("run: ") and "io_trace.json" in line and line.endswith("the I/O trace is left out")
    [(record, verdict)] = report.runs
    assert verdict.notes == (TRACED_NOTE,)  # the folder holds a trace: the run was traced
    write_outputs(report, tmp_path)
    [result] = json.loads((tmp_path / "results.json").read_text())
    assert (result["read_p50_us"], result["read_p99_us"]) == (None, None)


# ----- the page ----------------------------------------------------------------------------------
@pytest.mark.slow  # builds real pages with Bokeh
def test_the_page_has_an_io_section_with_its_figures_and_tables(traced_run):
    from mlpstorage.reports.page import build_page

    text = build_page(read_run(traced_run))
    section = text[text.index('<section id="io">'):text.index('<section id="what">')]
    assert "Traced run: DFTracer ran in every rank" in section
    verdict = html.unescape(text[text.index('<section id="verdict">'):text.index('<section id="metrics">')])
    assert f"Note: {TRACED_NOTE}" in verdict
    for name in ("io latency", "io operation", "io heatmap", "io epochs"):
        assert f'"name":"{name}"' in text
    assert '"name":"Select","id"' in text and "bokeh-widgets" in text  # the select, and BokehJS's widgets for it
    for heading in ("Latency per operation", "I/O over time per rank", "I/O against compute per epoch",
                    "Slowest calls", "Hottest files", "Files not read in an epoch"):
        assert f"<h3>{heading}</h3>" in section
    assert "/tmp/t16/data/u/train/img_08_of_16.npz" in section  # the hottest file of the recorded run
    assert "A bar per epoch and rank." in section
    # the recorded run's epochs each read every file: one line, not a table of zeros
    assert "None: every epoch opened every file the run read." in section and "io-unread" not in section


@pytest.mark.slow
def test_only_the_epochs_that_left_files_unread_are_listed(traced_run):
    from mlpstorage.reports.page import build_page

    document = json.loads((traced_run / "io_trace.json").read_text())
    assert [row["count"] for row in document["files"]["unread_per_epoch"]] == [0, 0]
    document["files"]["unread_per_epoch"][1].update(count=3, examples=["/data/a.npz", "/data/b.npz"])
    (traced_run / "io_trace.json").write_text(json.dumps(document))
    text = build_page(read_run(traced_run))
    table = text[text.index('<table class="grid io-unread">'):]
    table = table[:table.index("</table>")]
    assert table.count("<tr><td") == 1 and '<td class="num">2</td><td class="num">3</td>' in table
    assert "/data/a.npz<br>/data/b.npz" in table and "every epoch opened every file" not in text


@pytest.mark.slow
def test_file_names_from_a_trace_are_shown_as_text(traced_run):
    from mlpstorage.reports.page import build_page

    document = json.loads((traced_run / "io_trace.json").read_text())
    document["slowest"][0]["file"] = EVIL_FILE
    document["files"]["hottest"][0]["file"] = EVIL_FILE
    (traced_run / "io_trace.json").write_text(json.dumps(document))
    text = build_page(read_run(traced_run))
    assert EVIL_FILE not in text
    assert html.unescape(text).count(EVIL_FILE) == 2


@pytest.mark.slow
def test_an_untraced_page_has_no_io_section_and_no_widgets(tmp_path):
    from mlpstorage.reports.page import build_page

    text = build_page(read_run(write_synthetic_run(tmp_path / "run", SMALL)))
    assert '<section id="io">' not in text and "bokeh-widgets" not in text


@pytest.mark.slow
def test_the_one_hour_sixteen_host_traced_page_keeps_its_budget_whatever_the_number_of_calls(tmp_path):
    """16 hosts of 8 ranks for an hour with the I/O section: at most 5 MB; and the page ships
    aggregates only: ten times the calls make the same page."""
    from mlpstorage.reports.page import build_page

    run_dir = write_synthetic_run(tmp_path / "run", SyntheticRun(io_trace=True))
    record = read_run(run_dir)
    page = build_page(record)
    assert record.io is not None and len(record.io.sources) == 128
    assert len(page.encode()) <= 5_000_000
    document = json.loads((run_dir / "io_trace.json").read_text())
    for row in document["operations"] + document["by_host"]:
        row["count"] *= 10
        row["latency_counts"] = [[bucket, count * 10] for bucket, count in row["latency_counts"]]
    (run_dir / "io_trace.json").write_text(json.dumps(document))
    assert abs(len(build_page(read_run(run_dir)).encode()) - len(page.encode())) < 2_000


def test_the_synthetic_trace_reads_as_a_real_one():
    document = synthetic_io_trace(host_names(2), 2, 1_795_774_200_000_000, 120.0, [(5, 60), (60, 115)])
    trace = IoTrace(document)
    assert trace.problems == [] and len(trace.sources) == 4 and len(trace.epochs) == 8
    assert trace.timeline is not None and len(trace.timeline["ranks"]) == 4
    assert trace.operations()[:6] == ["read", "write", "open", "close", "lseek", "fsync"]
