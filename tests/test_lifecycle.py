"""Benchmark.run(): the behaviours users of the existing launcher rely on, checked on the
captured event stream (not on mocks of a display)."""

import io
import json
import re
import threading
from pathlib import Path

import pytest
from opentelemetry.trace import StatusCode
from rich.console import Console

from mlpstorage.benchmarks.base import STAGES, Benchmark, RunOptions
from renderers.plain import LINE_PATTERN, PlainRenderer
from renderers.rich import RichRenderer


class SleepyBenchmark(Benchmark):
    BENCHMARK_TYPE = "test"

    def __init__(self, options, fail_with=None):
        super().__init__(options, model="tiny", command="run")
        self.fail_with = fail_with
        self.ran = threading.Event()

    def _run(self):
        self.emitter.output("benchmark says hi")
        self.ran.set()
        if self.fail_with:
            raise self.fail_with


def options(tmp_path, **overrides):
    values = dict(results_dir=tmp_path, skip_timeseries=True)
    values.update(overrides)
    return RunOptions(**values)


def test_four_stages_in_order_each_started_and_finished_once(mlpstorage_capture, tmp_path):
    bench = SleepyBenchmark(options(tmp_path, hosts=["node1", "node2"], cluster_collection="ssh"))
    bench.collectors["ssh"] = lambda hosts, data_dir, spinner: {h: {"hostname": h} for h in hosts}
    bench.run()
    assert mlpstorage_capture.stage_names() == list(STAGES)
    finished = mlpstorage_capture.of_type("stage.finished")
    assert [(e["name"], e["status"]) for e in finished] == [(s, "ok") for s in STAGES]
    order = [e["type"] for e in mlpstorage_capture.of_type("stage.started", "stage.finished")]
    assert order == ["stage.started", "stage.finished"] * 4
    run = mlpstorage_capture.of_type("run.finished")[0]
    assert run["status"] == "ok"
    assert run["attributes"]["mlpstorage.benchmark"] == "test"
    # cluster collection: one spinner at the start of the run and one at the end, indeterminate
    assert [e["stage_index"] for e in mlpstorage_capture.of_type("spinner.started")] == [2, 4]
    updates = mlpstorage_capture.of_type("spinner.updated")
    assert "Collecting via SSH..." in [e["description"] for e in updates]
    assert all(e["total"] is None for e in updates)


def test_a_failing_run_still_has_its_processing_stage(mlpstorage_capture, tmp_path):
    bench = SleepyBenchmark(options(tmp_path, skip_timeseries=False, timeseries_interval=0.05),
                            fail_with=RuntimeError("DLIO exploded"))
    with pytest.raises(RuntimeError):
        bench.run()
    finished = {e["name"]: e for e in mlpstorage_capture.of_type("stage.finished")}
    assert list(finished) == list(STAGES)
    assert (finished["Running benchmark"]["status"], finished["Running benchmark"]["error"]) == (
        "error", "RuntimeError: DLIO exploded")
    assert finished["Processing results"]["status"] == "ok"
    end = [s for s in mlpstorage_capture.of_type("spinner.started") if s["stage_index"] == 4]
    assert len(end) == 1  # the end-of-run collection ran in "Processing results"
    spans = {s.name: s for s in mlpstorage_capture.spans}
    assert spans["mlpstorage test run"].status.status_code is StatusCode.ERROR
    assert spans["Processing results"].status.status_code is not StatusCode.ERROR
    # and everything of the run is cleaned up and written
    assert bench.sampler.stopped and not any(s._thread.is_alive() for s in bench.sampler.samplers)
    assert bench.cluster_info_end
    assert list(bench.run_dir.glob("*_timeseries.json"))
    metadata = json.loads(next(bench.run_dir.glob("*_metadata.json")).read_text())
    assert (metadata["status"], metadata["error"]) == ("failed", "RuntimeError: DLIO exploded")


def test_an_interrupted_run_skips_the_end_of_run_collection(mlpstorage_capture, tmp_path):
    bench = SleepyBenchmark(options(tmp_path), fail_with=KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        bench.run()
    assert bench.cluster_info_end is None
    assert [s["stage_index"] for s in mlpstorage_capture.of_type("spinner.started")] == [2]
    assert any("skipped" in m for m in mlpstorage_capture.messages("warning"))
    metadata = json.loads(next(bench.run_dir.glob("*_metadata.json")).read_text())
    assert metadata["status"] == "interrupted"


def test_plain_output_has_a_status_line_per_stage(mlpstorage_capture, tmp_path):
    SleepyBenchmark(options(tmp_path)).run()
    out = io.StringIO()
    plain = PlainRenderer(out, heartbeat_s=0)
    for event in mlpstorage_capture.events:
        plain.handle(event)
    lines = out.getvalue().splitlines()
    for index, stage in enumerate(STAGES, start=1):
        started = [l for l in lines if l.endswith(f"[{index}/4 {stage}] started")]
        done = [l for l in lines if re.search(rf"\[{index}/4 {stage}\] done in \d+\.\ds$", l)]
        assert len(started) == 1 and len(done) == 1, lines
        assert LINE_PATTERN.match(done[0]).group("stage") == stage
    assert "benchmark says hi" in lines
    assert not any("..." in l and "...." in l for l in lines)


def test_cluster_collection_opens_an_indeterminate_spinner(mlpstorage_capture, tmp_path):
    SleepyBenchmark(options(tmp_path)).run()
    spinners = mlpstorage_capture.of_type("spinner.started")
    assert [s["name"] for s in spinners] == ["Collecting cluster info (1 host)..."] * 2
    assert all("total" not in s for s in spinners)
    assert [s["stage_index"] for s in spinners] == [2, 4]
    updates = mlpstorage_capture.of_type("spinner.updated")
    assert {u["description"] for u in updates} == {"Collecting locally..."}


def test_spinner_text_says_ssh_when_ssh_is_used(mlpstorage_capture, tmp_path):
    bench = SleepyBenchmark(options(tmp_path, hosts=["node1", "node2"], cluster_collection="ssh"))
    seen = []
    bench.collectors["ssh"] = lambda hosts, data_dir, spinner: seen.append(hosts) or {h: {"hostname": h} for h in hosts}
    bench.run()
    assert seen == [["node1", "node2"], ["node1", "node2"]]
    assert mlpstorage_capture.of_type("spinner.started")[0]["name"] == "Collecting cluster info (2 hosts)..."
    assert [u["description"] for u in mlpstorage_capture.of_type("spinner.updated")] == ["Collecting via SSH..."] * 2


def test_auto_collection_is_local_for_this_host_and_ssh_for_others(tmp_path):
    assert SleepyBenchmark(options(tmp_path, hosts=["localhost", "127.0.0.1"])).collection_method() == "local"
    assert SleepyBenchmark(options(tmp_path, hosts=["localhost", "node9:4"])).collection_method() == "ssh"


def test_exception_in_run_ends_every_span_and_stops_the_display(mlpstorage_capture, tmp_path):
    console = Console(file=io.StringIO(), force_terminal=True, force_interactive=True, width=100)
    rich = RichRenderer(console, refresh_per_second=20)
    mlpstorage_capture.emitter.add_renderer(rich)
    bench = SleepyBenchmark(options(tmp_path, skip_timeseries=False, timeseries_interval=0.05),
                            fail_with=RuntimeError("DLIO exploded"))
    with pytest.raises(RuntimeError, match="DLIO exploded"):
        bench.run()
    spans = mlpstorage_capture.spans
    assert all(s.end_time is not None for s in spans)
    by_name = {s.name: s for s in spans}
    assert by_name["Running benchmark"].status.status_code is StatusCode.ERROR
    assert by_name["mlpstorage test run"].status.status_code is StatusCode.ERROR
    assert by_name["Processing results"].status.status_code is not StatusCode.ERROR
    assert not rich.is_live  # the live display stopped: the terminal is restored
    screen = console.file.getvalue()
    assert "\x1b[?25h" in screen  # cursor shown again
    assert "failed after" in screen and "DLIO exploded" in screen
    # "Processing results" still ran: sampler stopped, cluster info collected, samples written
    assert not any(s._thread.is_alive() for s in bench.sampler.samplers)
    assert bench.cluster_info_end
    timeseries = json.loads(next(bench.run_dir.glob("*_timeseries.json")).read_text())
    [samples] = timeseries["hosts"].values()
    assert samples


def test_results_and_metadata_are_written(mlpstorage_capture, tmp_path):
    bench = SleepyBenchmark(options(tmp_path))
    bench.run()
    assert bench.run_dir.parent == tmp_path / "test" / "tiny" / "run"
    metadata = json.loads((bench.run_dir / f"test_{bench.run_datetime}_metadata.json").read_text())
    assert list(metadata["stage_durations_s"]) == list(STAGES[:3])
    assert metadata["runtime_s"] >= 0
    assert metadata["cluster"]["host_count"] == 1
    assert metadata["cluster"]["total_memory_bytes"] > 0


@pytest.mark.parametrize("where, message", [("under-a-file", "cannot be created: .* is not a directory"),
                                            ("proc", "is not writable")])
def test_a_results_dir_that_cannot_be_written_fails_validation(mlpstorage_capture, tmp_path, where, message):
    from mlpstorage.errors import ValidationError

    blocker = tmp_path / "file"
    blocker.write_text("x")
    # /proc refuses new entries even to root, whose permission bits say yes everywhere
    results = blocker / "results" if where == "under-a-file" else Path("/proc/mlpstorage-results")
    with pytest.raises(ValidationError, match=message):
        SleepyBenchmark(options(results)).run()
    assert mlpstorage_capture.of_type("stage.finished")[0]["status"] == "error"
    assert list(tmp_path.iterdir()) == [blocker]


def test_runs_started_together_get_directories_of_their_own(mlpstorage_capture, tmp_path):
    benches = [SleepyBenchmark(options(tmp_path)) for _ in range(3)]
    for bench in benches[1:]:  # as if started in the same second: the same planned name
        bench.run_dir, bench.run_datetime = benches[0].run_dir, benches[0].run_datetime
    for bench in benches:
        bench.run()
    assert len({b.run_dir for b in benches}) == 3 and all(b.run_dir.is_dir() for b in benches)
    assert sorted(p.name for p in benches[0].run_dir.parent.iterdir())[1:] == [
        f"{benches[0].run_dir.name}_2", f"{benches[0].run_dir.name}_3"]



@pytest.mark.parametrize("skip_page", [False, True])
def test_the_page_is_written_unless_skipped_and_the_results_are_processed_either_way(mlpstorage_capture, tmp_path,
                                                                                      skip_page):
    bench = SleepyBenchmark(options(tmp_path, skip_page=skip_page))
    bench.run()
    assert (bench.run_dir / "report.html").exists() is not skip_page
    announced = [e["message"] for e in mlpstorage_capture.of_type("log") if e["message"].startswith("Report:")]
    assert announced == ([] if skip_page else [f"Report: {bench.run_dir / 'report.html'}"])
    assert list(bench.run_dir.glob("test_*_metadata.json"))
    assert mlpstorage_capture.of_type("stage.finished")[-1]["status"] == "ok"
