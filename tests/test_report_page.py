"""report.html: what a run's page holds, how it reads runs and recordings (untrusted input),
and that every run writes one once it is over, failed and interrupted runs too.
The page drawn in a real browser: tests/test_browser.py."""

from __future__ import annotations

import html
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from markupsafe import escape

from mlpstorage.emitter import events as ev
from mlpstorage.errors import UsageError
from mlpstorage.reports import timeline as tl
from mlpstorage.reports.page import build_page, default_output, write_html, write_run_page
from mlpstorage.reports.record import read_run
from support.synthetic_run import SyntheticRun, write_synthetic_run

pytestmark = pytest.mark.slow  # each test builds real pages with Bokeh (about 0.5 s each)

SMALL = SyntheticRun(hosts=3, duration_s=120, interval_s=10, ranks_per_host=2, epochs=2)
EVIL_NAME = '<script>window.__pwned = "span"</script>'
EVIL_HOST = '<img src=x onerror="window.__pwned = \'host\'">'
EVIL_MESSAGE = "</script><script>window.__pwned = 'message'</script>\x1b[2J\u202e"
EVIL_FILE = "javascript:window.__pwned='file'"
SECRET = "hunter2-do-not-show"


def small_run(tmp_path: Path, **changes) -> Path:
    spec = SyntheticRun(**{**SMALL.__dict__, **changes})
    return write_synthetic_run(tmp_path / f"run-{spec.status}-{spec.hosts}", spec)


def rewrite_events(run_dir: Path, change) -> None:
    path = run_dir / "events.jsonl"
    events = [json.loads(line) for line in path.read_text().splitlines()]
    path.write_text("".join(ev.to_json_line(e) for e in map(change, events)))


def make_evil_run(tmp_path: Path) -> Path:
    """A run whose recording and folder carry HTML and script in every place a page shows
    text: a span name, a host name, a log message, a file name, parameters; and a secret
    that older metadata did not redact."""
    run_dir = small_run(tmp_path)

    def change(event):
        if event.get("name") == "checkpoint 1":
            event["name"] = EVIL_NAME
        if event.get("host") == "node02":
            event["host"] = EVIL_HOST
        if event["type"] == "log" and event["level"] == "result":
            event["message"] = EVIL_MESSAGE
        return event

    rewrite_events(run_dir, change)
    timeseries = next(run_dir.glob("*_timeseries.json"))
    data = json.loads(timeseries.read_text())
    data["hosts"][EVIL_HOST] = data["hosts"].pop("node02")
    timeseries.write_text(json.dumps(data))
    metadata_path = next(run_dir.glob("*_metadata.json"))
    metadata = json.loads(metadata_path.read_text())
    metadata["arguments"]["params"].update({"reader.storage_options.secret_key": SECRET, "dataset.name": EVIL_NAME})
    metadata["resolved_parameters"]["reader"]["storage_options"]["secret_key"] = SECRET
    metadata["executed_command"].append(f"++workload.reader.storage_options.secret_key={SECRET}")
    metadata_path.write_text(json.dumps(metadata))
    (run_dir / EVIL_FILE).write_text("x")
    return run_dir


# ----- what the page holds ---------------------------------------------------------------------
def test_a_page_has_every_section_and_is_self_contained(tmp_path):
    run_dir = small_run(tmp_path)
    page = write_run_page(run_dir)
    assert page == run_dir / "report.html"
    text = page.read_text()
    for section in ("what", "verdict", "metrics", "timeline", "timeseries", "cluster", "messages", "files"):
        assert f'<section id="{section}">' in text, section
    # offline: no script, style or image from anywhere else, and BokehJS is in the page itself
    assert not re.search(r"<(script|link|img|iframe)[^>]+(src|href)=", text)
    assert "Bokeh" in text and len(text) > 1_000_000
    assert "mpirun -n 6 -host node01:2,node02:2,node03:2" in text  # the exact command
    assert "Accelerator utilisation (AU)" in text and "≥ 90 %" in text and ">met<" in text


def test_the_timeline_has_a_lane_per_kind_and_stacks_overlapping_ranks(tmp_path):
    record = read_run(small_run(tmp_path))
    lanes = {lane.label: lane for lane in tl.lanes(record)}
    assert [lane.label for lane in tl.lanes(record)][:6] == [
        "mlpstorage training run", "Validating environment", "Collecting cluster info",
        "Collecting cluster info (3 hosts)", "host node01", "host node02"]
    assert [b.span.name for b in lanes["epochs"].bars] == ["epoch 1/2", "epoch 2/2"]
    assert [b.span.name for b in lanes["checkpoints"].bars] == ["checkpoint 1"]
    ranks = lanes["dlio ranks on node01"]
    assert (len(ranks.bars), ranks.rows, sorted(b.row for b in ranks.bars)) == (2, 2, [0, 1])
    assert len(lanes["host node03"].bars) == 2 and lanes["host node03"].rows == 1  # start and end collection
    assert lanes["host node03"].failed  # its end-of-run collection timed out
    assert [m.name for m in tl.stage_marks(record)] == ["Validating environment", "Collecting cluster info",
                                                        "Running benchmark", "Processing results"]


def without_time_series(run_dir: Path) -> Path:
    """The run as --skip-timeseries leaves it: no samples in its recording, no time-series file."""
    path = run_dir / "events.jsonl"
    path.write_text("".join(line + "\n" for line in path.read_text().splitlines()
                            if json.loads(line)["type"] != ev.SAMPLE))
    for series in run_dir.glob("*_timeseries.json"):
        series.unlink()
    return run_dir


def test_a_run_with_nothing_to_plot_draws_its_timeline_as_svg_with_neither_bokeh_nor_numpy(tmp_path):
    run_dir = without_time_series(small_run(tmp_path))
    rewrite_events(run_dir, lambda e: {**e, "name": EVIL_NAME} if e.get("name") == "checkpoint 1" else e)
    record = read_run(run_dir)
    assert not record.samples and record.io is None
    text = write_run_page(run_dir).read_text()
    assert "Bokeh" not in text and len(text) < 100_000  # no BokehJS: 1.3 MB less
    [svg] = re.findall(r'<svg class="timeline".*?</svg>', text, re.S)
    lanes = tl.lanes(record)
    assert svg.count("<rect ") == sum(len(lane.bars) for lane in lanes)
    for lane in lanes:
        assert f"<title>{escape(lane.label)}</title>" in svg
    assert EVIL_NAME not in text and f"<title>{escape(EVIL_NAME)}&#10;start +" in svg  # shown as text
    run = lanes[0].bars[0]
    assert (f"<title>{run.span.name}&#10;start +{tl.format_duration(run.start_s)}&#10;"
            f"duration {tl.format_duration(run.span.duration_s)}&#10;ok</title>") in svg
    assert svg.count("stroke-dasharray") == 5  # where each of the 4 stages starts, and where the last ends
    # the legend names what the timeline holds: no checkpoints here (the one was renamed), and red for node03
    legend = re.search(r'<p class="legend note">(.*?)</p>', text).group(1)
    assert re.findall(r"</span>([^<]+)", legend) == ["stages", "collection", "epochs", "MPI ranks", "other tasks",
                                                     "failed"]
    # the writer of such a page imports neither Bokeh nor numpy (about 0.5 s of the launcher's fixed cost)
    code = ("import sys; from pathlib import Path; from mlpstorage.reports.page import write_run_page; "
            f"write_run_page(Path({str(run_dir)!r})); "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'bokeh', 'numpy'}))")
    imported = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert imported.strip() == "[]"


def test_totals_add_hosts_up_per_interval_and_average_the_load(tmp_path):
    record = read_run(small_run(tmp_path))
    read = next(m for m in tl.METRICS if m.key == "read_Bps")
    load = next(m for m in tl.METRICS if m.key == "load1")
    hosts = tl.host_series(record, read)
    total = tl.total_series(record, read)
    assert len(hosts) == 3 and len(total.values) == len(hosts[0].values) == 13
    assert total.values[5] == pytest.approx(sum(h.values[5] for h in hosts))
    loads = tl.host_series(record, load)
    assert tl.total_series(record, load).values[5] == pytest.approx(sum(h.values[5] for h in loads) / 3)


def test_a_recording_alone_gives_the_timeline_series_and_metrics_from_its_events(tmp_path):
    run_dir = small_run(tmp_path)
    alone = tmp_path / "elsewhere" / "events.jsonl"
    alone.parent.mkdir()
    alone.write_bytes((run_dir / "events.jsonl").read_bytes())
    record = read_run(alone)
    assert record.run_dir is None and record.interval_s == 10
    assert {h: len(s) for h, s in record.samples.items()} == {"node01": 13, "node02": 13, "node03": 13}
    assert record.metrics["train_au_mean_percentage"] == 93.12  # from the run span's attributes
    page = write_run_page(alone)
    assert page == alone.with_name("events.report.html")
    text = page.read_text()
    assert '<section id="timeline">' in text and '<section id="files">' not in text
    assert "93.12 %" in text and "≥ 90 %" in text  # the target from the shipped workload


def test_a_recording_alone_shows_the_command_of_its_debug_line_redacted(tmp_path):
    run_dir = small_run(tmp_path)
    line = f"command: mpirun -n 6 python -m mlpstorage.engines.dlio_rank ++workload.storage.secret_key={SECRET}"
    with open(run_dir / "events.jsonl", "a") as handle:
        handle.write(ev.to_json_line(ev.log("debug", line)))
    text = build_page(read_run(run_dir / "events.jsonl"))
    assert "mpirun -n 6 python -m mlpstorage.engines.dlio_rank ++workload.storage.secret_key=***" in text
    assert SECRET not in text


def test_a_recording_of_two_runs_is_reported_as_its_last(tmp_path):
    first, second = small_run(tmp_path), small_run(tmp_path, hosts=2, seed=7)
    both = tmp_path / "both.jsonl"
    both.write_text((first / "events.jsonl").read_text() + (second / "events.jsonl").read_text())
    record = read_run(both)
    assert record.problems == [f"{both} holds 2 runs; this report is of the last one"]
    assert set(record.samples) == {"node01", "node02"}
    assert [s.name for s in record.spans if s.name.startswith("host ")] == ["host node01", "host node02"] * 2


def test_a_recording_cut_short_shows_what_was_open_as_unfinished(tmp_path):
    record = read_run(small_run(tmp_path, status="cut"))
    assert record.status == "unfinished"
    unfinished = [s.name for s in record.spans if s.error == "unfinished (recording ends)"]
    assert {"mlpstorage training run", "Running benchmark", "epoch 2/2"} <= set(unfinished)
    assert "The recording ends before the run did" in build_page(record)


def test_a_finished_run_shows_finished_and_only_a_recording_cut_short_says_so(tmp_path):
    finished = build_page(read_run(small_run(tmp_path)))
    assert "The recording ends before the run did" not in finished and "Written while" not in finished
    assert "#b0b0b0" not in finished and "still open" not in finished  # no grey bar, no open span
    cut = build_page(read_run(small_run(tmp_path, status="cut")))
    assert "The recording ends before the run did" in cut and '<span class="badge unfinished">' in cut


def test_the_page_puts_the_verdict_and_metrics_first_and_the_details_last(tmp_path):
    text = build_page(read_run(small_run(tmp_path)))
    order = [text.index(f'<section id="{section}">') for section in
             ("verdict", "metrics", "timeline", "timeseries", "what", "cluster", "messages")]
    assert order == sorted(order)


def test_the_cluster_table_highlights_the_host_that_differs(tmp_path):
    text = write_run_page(small_run(tmp_path, hosts=8)).read_text()
    cluster = text[text.index('<section id="cluster">'):text.index('<section id="messages">')]
    assert "1 host(s) differ from the others" in cluster
    [row] = re.findall(r"<tr class=differs>.*?</tr>", cluster)
    assert "node07" in row and '<td class="differs" title="most hosts: 512.0 GiB">256.0 GiB</td>' in row


def test_a_cluster_where_no_host_answered_is_a_row_of_errors(tmp_path):
    run_dir = small_run(tmp_path)
    [start] = run_dir.glob("*_cluster_start.json")
    start.write_text(json.dumps({"node01": {"error": "timed out"}, "node02": {"error": "refused"}}))
    text = write_run_page(run_dir).read_text()
    assert "no information: timed out" in text and "no information: refused" in text


def test_a_recording_of_samples_alone_has_its_time_axis_from_them(tmp_path):
    recording = tmp_path / "samples.jsonl"
    recording.write_text("".join(ev.to_json_line(ev.sample("node01", {"read_Bps": 1e6 * i}, ev.iso_from_ns(t)))
                                 for i, t in enumerate(range(10**18, 10**18 + 5 * 10**9, 10**9))))
    record = read_run(recording)
    assert (record.start_ns, record.end_ns, record.interval_s) == (10**18, 10**18 + 4 * 10**9, 1.0)
    [line] = tl.host_series(record, tl.METRICS[0])
    assert (line.times_s, line.values) == ([0.0, 1.0, 2.0, 3.0, 4.0], [0.0, 1.0, 2.0, 3.0, 4.0])
    text = build_page(record)
    assert "No spans in the recording." in text and "Read, per host" in text


# ----- untrusted input -------------------------------------------------------------------------
def test_times_no_calendar_has_are_shown_as_unknown(tmp_path):
    run_dir = small_run(tmp_path)

    def change(event):
        if event.get("name") == "mlpstorage training run":
            event["start_unix_nano"] = 10**30
        return event

    rewrite_events(run_dir, change)
    assert "started unknown" in build_page(read_run(run_dir))


def test_html_from_a_recording_or_a_folder_is_escaped_and_secrets_are_redacted(tmp_path):
    run_dir = make_evil_run(tmp_path)
    text = write_run_page(run_dir).read_text()
    for evil in (EVIL_NAME, EVIL_HOST, EVIL_MESSAGE, "<script>window", "<img src=x"):
        assert evil not in text
    assert "&lt;script&gt;window.__pwned" in text  # shown as text, in the parameters table
    assert "\\x1b[2J" in text and "\\u202e" in text and "\x1b" not in text and "\u202e" not in text
    assert SECRET not in text
    assert text.count("secret_key") >= 3 and "secret_key=***" in text
    assert 'href="./javascript%3Awindow.__pwned%3D%27file%27"' in text


def test_links_to_the_files_are_relative_to_where_the_page_is(tmp_path):
    run_dir = small_run(tmp_path)
    elsewhere = tmp_path / "pages" / "one.html"
    elsewhere.parent.mkdir()
    text = write_run_page(run_dir, elsewhere).read_text()
    assert f'href="./../{run_dir.name}/events.jsonl"' in text
    assert 'href="./report.html"' not in text  # the page is not in the folder
    assert 'href="./report.html"' in write_run_page(run_dir).read_text()


@pytest.mark.parametrize("make, message", [
    (lambda tmp: tmp / "missing", "no such run folder or recording"),
    (lambda tmp: tmp, "not a run folder (no events.jsonl in it)"),
    (lambda tmp: (tmp / "notes.txt", (tmp / "notes.txt").write_text("hello\n"))[0], "not an mlpstorage recording"),
    (lambda tmp: (tmp / "empty.jsonl", (tmp / "empty.jsonl").write_text(""))[0], "not an mlpstorage recording"),
])
def test_what_is_no_run_is_one_clear_error(tmp_path, make, message):
    path = make(tmp_path)
    with pytest.raises(UsageError) as caught:
        read_run(path)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_broken_files_in_the_folder_are_left_out_with_a_warning(tmp_path):
    run_dir = small_run(tmp_path)
    next(run_dir.glob("*_metadata.json")).write_text("{not json")
    next(run_dir.glob("*_cluster_start.json")).write_text("[1, 2]")
    next(run_dir.glob("*_timeseries.json")).write_text('{"hosts": 3}')
    with open(run_dir / "events.jsonl", "a") as handle:
        handle.write('{"schema": 2, "type": "stage.finished", "trunc')
    record = read_run(run_dir)
    problems = "\n".join(record.problems)
    assert "metadata.json: not JSON" in problems and "cluster_start.json: not a JSON dict" in problems
    assert "no hosts in it; the time series come from the events" in problems and "skipped a line" in problems
    assert len(record.samples) == 3  # from the sample events instead
    text = build_page(record)
    assert '<section id="problems">' in text and "93.12" in text  # the metrics from the run span


@pytest.mark.parametrize("failure, raised", [(OSError(28, "No space left on device"), UsageError),
                                             (KeyboardInterrupt(), KeyboardInterrupt)])
def test_a_page_is_written_whole_or_not_at_all(tmp_path, monkeypatch, failure, raised):
    page = tmp_path / "report.html"
    page.write_text("the previous page")
    import mlpstorage.reports.page as page_module

    def broken_replace(src, dst):
        raise failure

    monkeypatch.setattr(page_module.os, "replace", broken_replace)
    with pytest.raises(raised) as caught:
        write_html("<html>new</html>", page)
    if raised is UsageError:
        assert str(caught.value) == f"{page}: cannot write (No space left on device)"
    assert page.read_text() == "the previous page"
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]  # no temporary file left


def test_default_output_is_beside_a_recording_or_in_the_folder(tmp_path):
    assert default_output(tmp_path) == tmp_path / "report.html"
    assert default_output(tmp_path / "x" / "events.jsonl") == tmp_path / "x" / "events.report.html"


# ----- the verdict (mlpstorage/reports/verdict.py comes from another branch) -----------------
def test_a_recording_alone_has_no_verdict(tmp_path):
    from mlpstorage.reports.verdict import verdict_of

    record = read_run(small_run(tmp_path) / "events.jsonl")
    assert record.layout is None and verdict_of(record) == (None, None)
    assert "No verdict." in build_page(record)


def test_the_verdict_and_its_reasons_are_on_the_page(tmp_path, monkeypatch):
    run_dir = small_run(tmp_path)
    from mlpstorage.reports.verdict import verdict_of_run

    expected = verdict_of_run(run_dir)
    text = build_page(read_run(run_dir))
    verdict = text[text.index('<section id="verdict">'):text.index('<section id="metrics">')]
    assert f">{expected.category}</span>" in verdict
    assert all(f"<li>{reason}</li>" in html.unescape(verdict) for reason in expected.reasons)

    def broken(record):
        raise RuntimeError("rules broke")

    monkeypatch.setattr("mlpstorage.reports.verdict.judge", broken)
    text = build_page(read_run(run_dir))
    assert "No verdict." in text and "<li>no verdict: RuntimeError: rules broke</li>" in text


# ----- every run writes its page --------------------------------------------------------------
def exec_run(tmp_path, argv, **options):
    from mlpstorage.benchmarks.base import RunOptions
    from mlpstorage.benchmarks.exec import ExecBenchmark

    benchmark = ExecBenchmark(RunOptions(results_dir=tmp_path, timeseries_interval=0.1, **options), argv)
    return benchmark


@pytest.mark.parametrize("argv, status", [(["true"], "ok"), (["sh", "-c", "exit 3"], "failed")])
def test_a_run_writes_its_page_once_it_is_over(mlpstorage_capture, tmp_path, argv, status):
    from mlpstorage.errors import CommandFailed

    benchmark = exec_run(tmp_path, argv)
    if status == "ok":
        benchmark.run()
    else:
        with pytest.raises(CommandFailed):
            benchmark.run()
    text = (benchmark.run_dir / "report.html").read_text()
    assert f'<span class="badge {status}">{status}</span>' in text
    assert "The recording ends before the run did" not in text and "Written while" not in text
    said = [e["message"] for e in mlpstorage_capture.of_type("log") if "report.html" in e["message"]]
    assert said == [f"Report: {benchmark.run_dir / 'report.html'}"]
    record = read_run(benchmark.run_dir)  # what the page was made of: the whole recording
    assert [s.name for s in record.stages] == ["Validating environment", "Collecting cluster info",
                                              "Running benchmark", "Processing results"]
    assert record.status == status and not any(s.error == "unfinished (recording ends)" for s in record.spans)


def test_an_interrupted_run_writes_its_page_too(mlpstorage_capture, tmp_path, monkeypatch):
    benchmark = exec_run(tmp_path, ["sleep", "5"], skip_timeseries=True)

    def interrupt(self):
        raise KeyboardInterrupt

    monkeypatch.setattr(type(benchmark), "_run", interrupt)
    with pytest.raises(KeyboardInterrupt):
        benchmark.run()
    text = (benchmark.run_dir / "report.html").read_text()
    assert '<span class="badge interrupted">interrupted</span>' in text and "KeyboardInterrupt" in text


def test_a_second_interrupt_while_the_page_is_built_is_not_swallowed(mlpstorage_capture, tmp_path, monkeypatch):
    import mlpstorage.reports.page as page_module

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(page_module, "write_run_page", interrupted)
    benchmark = exec_run(tmp_path, ["true"], skip_timeseries=True)
    with pytest.raises(KeyboardInterrupt):
        benchmark.run()
    assert not (benchmark.run_dir / "report.html").exists()


def test_a_page_that_cannot_be_written_is_a_warning_and_the_run_stands(mlpstorage_capture, tmp_path, monkeypatch):
    import mlpstorage.reports.page as page_module

    def broken(*args, **kwargs):
        raise UsageError("report.html: cannot write (Read-only file system)")

    monkeypatch.setattr(page_module, "write_run_page", broken)
    benchmark = exec_run(tmp_path, ["true"], skip_timeseries=True)
    benchmark.run()
    assert not (benchmark.run_dir / "report.html").exists()
    warnings = [e["message"] for e in mlpstorage_capture.of_type("log") if e["level"] == "warning"]
    assert warnings == ["No report.html: UsageError: report.html: cannot write (Read-only file system)"]
    assert mlpstorage_capture.of_type("run.finished")[0]["status"] == "ok"
