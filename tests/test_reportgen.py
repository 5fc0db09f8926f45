"""`mlpstorage reports reportgen` over tests/data/reportgen/results: run folders of the
existing launcher's v2.0 layout and of ours, with folders that are not runs among them.
Golden files for the terminal table: `pytest tests/test_reportgen.py --update-goldens` after
a deliberate change, then review the diff like any other."""

import csv
import io
import json
import math
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from mlpstorage.reports.reportgen import build_report, render_plain, render_rich

from support.golden import assert_matches_golden
from support.otlp_sink import base_env

DATA = Path(__file__).parent / "data" / "reportgen"
RESULTS = DATA / "results"
LAUNCHER_KEYS = ["run_id", "benchmark_type", "model", "command", "parameters", "system_info", "metrics"]
SKIPPED = [
    "skipped training/unet3d/datagen/20261128_072444: no summary.json (a datagen run)",
    "skipped training/unet3d/datasize: datasize records, not runs",
    "skipped training/unet3d/run/20250607_100000: no summary.json",
    "skipped training/unet3d/run/20250607_110000: 2 metadata files (training_20250607_110000_metadata.json, "
    "training_20250607_110001_metadata.json); a run folder holds one",
]


def reportgen(*args, env=None):
    return subprocess.run([sys.executable, "-m", "mlpstorage", "reports", "reportgen", *args], capture_output=True,
                          text=True, env=env or base_env(), timeout=60, stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def report():
    return build_report(RESULTS)


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """One real reportgen over the fixtures, writing into a folder of its own."""
    out = tmp_path_factory.mktemp("out")
    result = reportgen("--results-dir", str(RESULTS), "--output-dir", str(out))
    assert result.returncode == 0, result.stderr
    return result, out


# ----- which folders are runs ------------------------------------------------------------------
def test_one_record_per_run_of_either_layout_and_one_warning_per_skipped_folder(report, generated):
    layouts = {record.run_id: record.layout for record, _ in report.runs}
    assert len(layouts) == 20
    assert layouts["training/unet3d/run/20261128_072446"] == "mlpstorage"
    assert layouts["training/unet3d/run/20250601_100000"] == "launcher"
    assert report.skipped == SKIPPED
    result, _ = generated
    assert result.stderr.splitlines() == [f"mlpstorage: warning: {line}" for line in SKIPPED]


def test_nothing_in_a_tree_makes_reportgen_fail(tmp_path):
    results = tmp_path / "results"
    shutil.copytree(RESULTS / "training/unet3d/run/20250601_100000", results / "good")
    broken = {"summary-not-json": ("summary.json", "{"), "config-not-yaml": ("dlio_config/config.yaml", "a: [b"),
              "metadata-a-list": ("training_x_metadata.json", "[]")}
    for name, (file, text) in broken.items():
        shutil.copytree(RESULTS / "training/unet3d/run/20250601_100000", results / name)
        if file.endswith("metadata.json"):
            for old in (results / name).glob("*_metadata.json"):
                old.unlink()
        (results / name / file).write_text(text)
    (results / "summary-alone").mkdir()
    (results / "summary-alone" / "summary.json").write_text("{}")
    (results / "datasize").mkdir()
    result = reportgen("--results-dir", str(results), "--output-dir", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [
        "mlpstorage: warning: skipped config-not-yaml: dlio_config/config.yaml is not YAML (while parsing a flow "
        "sequence)",
        "mlpstorage: warning: skipped datasize: datasize records, not runs",
        "mlpstorage: warning: skipped metadata-a-list: training_x_metadata.json is not a metadata object",
        "mlpstorage: warning: skipped summary-alone: no *_metadata.json (not a run folder)",
        "mlpstorage: warning: skipped summary-not-json: summary.json is not JSON (Expecting property name enclosed "
        "in double quotes: line 1 column 2 (char 1))",
    ]
    assert [r["run_id"] for r in json.loads((tmp_path / "out" / "results.json").read_text())] == ["good"]


@pytest.mark.parametrize("args, message", [
    (["--results-dir", "/nonexistent/results"], "--results-dir /nonexistent/results: no such directory"),
    (["--results-dir", str(RESULTS), "--output-dir", str(RESULTS / "training/unet3d/run/20250601_100000/summary.json")],
     "is not a directory"),
])
def test_bad_directories_are_one_line_and_exit_code_2(args, message):
    result = reportgen(*args)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("mlpstorage: error: ") and message in result.stderr


# ----- results.json and results.csv --------------------------------------------------------------
def test_results_json_has_the_launchers_keys_plus_category_issues_notes_and_read_latency(generated, report):
    _, out = generated
    results = json.loads((out / "results.json").read_text())
    assert [list(r) for r in results] == [LAUNCHER_KEYS + ["category", "issues", "notes", "read_p50_us",
                                                           "read_p99_us"]] * len(report.runs)
    assert all(r["notes"] == [] and r["read_p50_us"] is None and r["read_p99_us"] is None for r in results)
    first = next(r for r in results if r["run_id"] == "training/unet3d/run/20250603_110000")
    assert (first["benchmark_type"], first["model"], first["command"], first["category"]) == \
        ("training", "unet3d", "run", "INVALID")
    assert first["issues"][0] == "reader.batch_size=14: may not be changed in either division (INVALID)"
    assert first["parameters"]["reader"]["batch_size"] == 14
    assert first["system_info"] == {"total_memory_bytes": 128 * 2**30, "total_cores": 64}
    assert first["metrics"]["train_au_mean_percentage"] == 97.0


def test_results_csv_columns_are_the_sorted_dotted_keys_over_all_runs(generated):
    _, out = generated
    with open(out / "results.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    columns = list(rows[0])
    assert columns == sorted(columns)
    for column in ("run_id", "category", "issues", "read_p50_us", "read_p99_us", "parameters.dataset.num_files_train",
                   "metrics.train_au_mean_percentage", "system_info.total_memory_bytes"):
        assert column in columns
    row = next(r for r in rows if r["run_id"] == "training/unet3d/run/20250603_120000")
    assert row["category"] == "INVALID" and row["issues"].startswith("dataset.num_files_train=20000: fewer than")


def test_nan_is_left_out_of_the_csv_and_null_in_the_json(tmp_path):
    run = tmp_path / "results" / "run"
    shutil.copytree(RESULTS / "training/unet3d/run/20250601_100000", run)
    summary = json.loads((run / "summary.json").read_text())
    summary["metric"]["eval_au_mean_percentage"] = math.nan
    (run / "summary.json").write_text(json.dumps(summary))  # NaN, as DLIO writes it
    assert reportgen("--results-dir", str(tmp_path / "results"), "--output-dir", str(tmp_path)).returncode == 0
    assert "NaN" not in (tmp_path / "results.json").read_text()
    assert json.loads((tmp_path / "results.json").read_text())[0]["metrics"]["eval_au_mean_percentage"] is None
    assert "metrics.eval_au_mean_percentage" not in (tmp_path / "results.csv").read_text()


def test_output_dir_is_honoured_and_defaults_to_the_results_dir(tmp_path):
    results = tmp_path / "results"
    shutil.copytree(RESULTS / "training/resnet50", results / "training/resnet50")
    out = tmp_path / "elsewhere" / "reports"
    assert reportgen("--results-dir", str(results), "--output-dir", str(out)).returncode == 0
    assert sorted(p.name for p in out.iterdir()) == ["index.html", "results.csv", "results.json"]
    assert not (results / "results.json").exists()
    result = reportgen("--results-dir", str(results))
    assert result.returncode == 0 and (results / "results.json").exists()
    assert result.stdout.splitlines()[-1] == f"Wrote results.json, results.csv, index.html in {results}"
    # and what it wrote is not read as a run the next time
    again = reportgen("--results-dir", str(results))
    assert again.stdout == result.stdout and again.stderr == ""


def test_secrets_are_never_shown_or_written(tmp_path):
    run = tmp_path / "results" / "run"
    shutil.copytree(RESULTS / "training/unet3d/run/20250601_100000", run)
    overrides = run / "dlio_config/overrides.yaml"
    overrides.write_text(overrides.read_text() + "- ++workload.storage.storage_options.secret_key=hunter2\n")
    config = run / "dlio_config/config.yaml"
    config.write_text(config.read_text() + "  storage:\n    storage_options:\n      secret_key: hunter2\n")
    result = reportgen("--results-dir", str(tmp_path / "results"), "--output-dir", str(tmp_path / "out"))
    assert "storage.storage_options.secret_key=***: may not be changed" in result.stdout
    shown = result.stdout + result.stderr + "".join(p.read_text() for p in (tmp_path / "out").iterdir())
    assert "hunter2" not in shown


# ----- submission candidates ---------------------------------------------------------------------
def test_submission_candidates_and_the_guideline_checks(report):
    candidates = {c.label: c for c in report.candidates}
    ready = candidates["training unet3d h100 x 8 on node1, node2"]
    assert (len(ready.runs), ready.category, ready.ready) == (6, "CLOSED", True)
    assert ready.checks[2].text == ("results within 5% of each other: 168.9 to 171.6 samples/s over the measured "
                                    "runs (1.6% apart)")
    resnet = candidates["training resnet50 a100 x 4 on node3"]
    assert resnet.category == "INVALID" and not resnet.ready  # one run has O_DIRECT
    assert [c.ok for c in resnet.checks] == [False, True, False, False, True]
    assert "below the target in training/resnet50/run/20250602_110000 85.5% < 90%" in resnet.checks[3].text
    paired = candidates["checkpointing llama3-8b 8 processes on node1"]
    assert [(c.ok, c.text) for c in paired.checks] == [
        (True, "write and read runs paired (1 pair)"),
        (True, "10 checkpoints written and 10 read in each pair"),
        (False, "5 write and read pairs (1)"),
        (True, "at least 4 simulated accelerators per host")]
    ours = candidates["checkpointing llama3-8b 2 processes on localhost"]
    assert "mlpstorage runs write only: DLIO 2.0.0 cannot read a checkpoint back" in ours.checks[0].text
    assert not ours.checks[-1].ok  # 2 simulated accelerators on the host
    assert "training unet3d h100 x 8 on node9" not in candidates  # neither of its folders is a run


def test_ten_runs_use_the_last_five_as_measured(tmp_path):
    results = tmp_path / "results"
    source = RESULTS / "training/unet3d/run/20250601_100000"
    for i, throughput in enumerate([100.0, 100.0, 100.0, 100.0, 150.0, 170.0, 171.0, 172.0, 173.0, 174.0]):
        run = results / f"20250601_1{i}0000"
        shutil.copytree(source, run)
        summary = json.loads((run / "summary.json").read_text())
        summary["metric"]["train_throughput_mean_samples_per_second"] = throughput
        summary["start"] = f"2025-06-01T1{i}:00:00"
        (run / "summary.json").write_text(json.dumps(summary))
    [candidate] = build_report(results).candidates
    assert candidate.checks[0].text == "a warm-up run and 5 measured runs (10 runs; the first 4 not counted)"
    assert candidate.checks[2].ok and "170.0 to 174.0" in candidate.checks[2].text


# ----- the terminal ------------------------------------------------------------------------------
def test_plain_table_golden(report, update_goldens):
    assert_matches_golden(render_plain(report), DATA / "golden.plain.txt", update_goldens)


def test_rich_table_golden(report, update_goldens):
    out = io.StringIO()
    render_rich(report, Console(file=out, width=160, color_system=None, force_terminal=True, highlight=False))
    assert_matches_golden(out.getvalue(), DATA / "golden.rich.txt", update_goldens)


def test_piped_output_is_the_plain_table_and_a_terminal_gets_rich(generated, report, tmp_path):
    result, _ = generated
    assert result.stdout.startswith(render_plain(report))
    tty = reportgen("--results-dir", str(RESULTS), "--output-dir", str(tmp_path),
                    env=base_env(TTY_INTERACTIVE="1", NO_COLOR="1", COLUMNS="160"))
    assert tty.returncode == 0 and "┏━" in tty.stdout and "Guideline checks" in tty.stdout
    assert not re.search(r"\x1b\[(?:\d+;)*(?:3[0-8]|9[0-7])[;m]", tty.stdout)  # NO_COLOR: no colour
    plain = reportgen("--results-dir", str(RESULTS), "--output-dir", str(tmp_path), "--render", "plain",
                      env=base_env(TTY_INTERACTIVE="1"))
    assert plain.stdout.startswith(render_plain(report))


# ----- index.html --------------------------------------------------------------------------------
def test_index_lists_every_run_with_its_verdict_and_links_to_its_page(generated, report):
    _, out = generated
    page = (out / "index.html").read_text()
    for record, verdict in report.runs:
        href = Path(re.search(rf'href="([^"]*)">{re.escape(record.run_id)}</a>', page).group(1))
        assert (out / href).resolve() == (record.run_dir / "report.html").resolve()
    assert page.count('<span class="badge CLOSED">CLOSED</span>') >= 13
    assert page.count('<svg class="spark"') == sum(1 for r, _ in report.runs if len(r.throughput_series) >= 2) > 10
    assert "Submission candidates" in page and "datasize records, not runs" in page
    # nothing from the network: it works offline and from a copied results tree
    assert "<script" not in page and "src=" not in page and "http" not in page


def test_index_escapes_what_it_shows(tmp_path):
    results = tmp_path / "results"
    shutil.copytree(RESULTS / "training/unet3d/run/20250603_100000", results / "a<b>&c")
    assert reportgen("--results-dir", str(results), "--output-dir", str(tmp_path)).returncode == 0
    page = (tmp_path / "index.html").read_text()
    assert "a&lt;b&gt;&amp;c</a>" in page and "a<b>" not in page
    assert 'href="results/a%3Cb%3E%26c/report.html"' in page
