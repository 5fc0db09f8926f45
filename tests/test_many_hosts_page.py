"""The run page past 32 hosts (the spread over hosts with the slowest drawn alone, the hosts'
and ranks' lanes gathered, every host in a table), the preflight in the cluster table, and
how the time series and a compressed recording are read. The page drawn in Chromium, with its
draw time for 1,024 hosts: tests/test_browser.py; the figures: perf/thousand_hosts_reports.py."""

from __future__ import annotations

import gzip
import html
import json
import re
from pathlib import Path

import numpy as np
import pytest

from mlpstorage.reports import timeline as tl
from mlpstorage.reports.page import MAX_HOSTS_DRAWN, build_page
from mlpstorage.reports.record import read_run
from mlpstorage.reports.samples import read_timeseries
from support.synthetic_run import SyntheticRun, write_synthetic_run

pytestmark = pytest.mark.slow  # each builds a real page with Bokeh

MANY = SyntheticRun(hosts=40, duration_s=300, interval_s=10, ranks_per_host=2, epochs=2)


def many_hosts(tmp_path: Path, spec: SyntheticRun = MANY) -> Path:
    return write_synthetic_run(tmp_path / f"run-{spec.hosts}", spec)


def slow_down(run_dir: Path, host: str, factor: float) -> None:
    """host reads and receives at factor of its rate in the time series file."""
    path = next(run_dir.glob("*_timeseries.json"))
    data = json.loads(path.read_text())
    for sample in data["hosts"][host]:
        sample["read_Bps"] *= factor
        sample["rx_Bps"] *= factor
    path.write_text(json.dumps(data))


def test_past_32_hosts_a_plot_draws_the_spread_and_the_slowest_hosts_alone(tmp_path):
    run_dir = many_hosts(tmp_path)
    slow_down(run_dir, "node17", 0.1)
    page = build_page(read_run(run_dir))
    assert MAX_HOSTS_DRAWN == 32 < MANY.hosts
    assert "Read, per host" not in page and "Read, over 40 hosts (the 3 lowest alone)" in page
    assert "Load (1 min), over 40 hosts (the 3 highest alone)" in page
    # node17 reads a tenth: it is drawn alone in the read plot, named in its legend
    spread = tl.envelope(read_run(run_dir), tl.METRICS[0])
    assert spread.slowest[0].name == "node17" and len(spread.slowest) == tl.SLOWEST_DRAWN
    assert spread.figures["min"][5] <= spread.figures["p10"][5] <= spread.figures["median"][5] \
        <= spread.figures["p90"][5] <= spread.figures["max"][5]


def test_past_32_hosts_every_host_stays_findable_in_a_table(tmp_path):
    run_dir = many_hosts(tmp_path)
    slow_down(run_dir, "node17", 0.1)
    page = build_page(read_run(run_dir))
    table = page[page.index('id="host-table"'):page.index("</table>", page.index('id="host-table"'))]
    names = re.findall(r"<tr><td>(node\d+)</td>", table)
    assert names == [f"node{i:02d}" for i in range(1, 41)]  # in natural order
    row = table[table.index("<td>node17</td>"):table.index("</tr>", table.index("<td>node17</td>"))]
    assert "read, network in" in row  # drawn alone for these
    assert 'id="host-search"' in page and "function findHosts" in page


def test_past_32_hosts_the_timeline_gathers_hosts_and_ranks_and_keeps_the_failed_alone(tmp_path):
    record = read_run(many_hosts(tmp_path))
    lanes = tl.gathered(tl.lanes(record), MAX_HOSTS_DRAWN)
    labels = [lane.label for lane in lanes]
    assert "40 hosts" in labels and "80 ranks on 40 hosts" in labels
    assert len(lanes) < 20
    hosts = next(lane for lane in lanes if lane.label == "40 hosts")
    assert len(hosts.bars) == 2  # one per collection (start, end), each spanning its hosts
    assert hosts.failed and any("1 failed" in bar.span.name for bar in hosts.bars)
    assert "host node40" in labels  # its end-of-run collection failed: a lane of its own
    few = tl.gathered(tl.lanes(read_run(write_synthetic_run(tmp_path / "few", SyntheticRun(hosts=4, duration_s=60)))),
                      MAX_HOSTS_DRAWN)
    assert [lane.label for lane in few if lane.kind == "host"] == [f"host node0{i}" for i in range(1, 5)]


def test_up_to_32_hosts_the_page_draws_every_host(tmp_path):
    spec = SyntheticRun(hosts=32, duration_s=120, interval_s=10, ranks_per_host=1, epochs=1)
    page = build_page(read_run(many_hosts(tmp_path, spec)))
    assert "Read, per host" in page and "over 32 hosts" not in page and 'id="host-table"' not in page


def test_the_cluster_table_shows_each_hosts_preflight(tmp_path):
    run_dir = write_synthetic_run(tmp_path / "run", SyntheticRun(hosts=3, duration_s=60))
    path = next(run_dir.glob("*_metadata.json"))
    metadata = json.loads(path.read_text())
    metadata["preflight"] = {"passed": 1, "failed": ["node02"], "per_host": {
        "node01": {"status": "ok", "problems": [], "warnings": []},
        "node02": {"status": "failed", "problems": ["node02: <b>dlio_benchmark</b> is not importable by "
                                                    "/venv/bin/python: pip install dlio-benchmark==2.0.0"],
                   "warnings": ["node02: clock 1.4 s ahead of this host"]},
        "node03": {"status": "warning", "problems": [], "warnings": ["node03: the results folder is not shared"]},
        "node09": {"status": "failed", "problems": [], "warnings": [], "error": "ssh: connection refused"}}}
    path.write_text(json.dumps(metadata))
    page = build_page(read_run(run_dir))
    cluster = html.unescape(page[page.index('<section id="cluster">'):page.index('<section id="messages">')])
    assert "<th>Preflight</th>" in cluster and "2 host(s) failed" in cluster
    row = lambda host: cluster[cluster.index(f"<td>{host}</td>"):cluster.index("</tr>", cluster.index(f"<td>{host}</td>"))]
    assert ">passed<" in row("node01")
    assert "failed<br>node02: <b>dlio_benchmark</b> is not importable" in row("node02")  # shown as text
    assert "<b>dlio" not in page  # escaped on the page itself
    assert "clock 1.4 s ahead" in row("node02") and "results folder is not shared" in row("node03")
    assert "no cluster information" in row("node09") and "ssh: connection refused" in row("node09")
    without = build_page(read_run(write_synthetic_run(tmp_path / "plain", SyntheticRun(hosts=2, duration_s=60))))
    assert "Preflight" not in without


def test_a_timeseries_of_another_shape_is_read_the_forgiving_way():
    ours = {"interval_s": 10, "hosts": {"a": [{"timestamp_ns": 2, "read_Bps": 5}, {"timestamp_ns": 1, "read_Bps": 4.5,
                                                                                   "host": "a", "elapsed_s": 0}]}}
    samples, interval = read_timeseries(json.dumps(ours).encode())
    assert interval == 10 and samples["a"].times_ns.tolist() == [1, 2]
    assert samples["a"].values["read_Bps"].tolist() == [4.5, 5.0]
    assert np.isnan(samples["a"].values["load1"]).all()
    odd = {"interval_s": "x", "hosts": {"a": [{"timestamp_ns": 1, "read_Bps": "fast", "load1": 2},
                                              {"timestamp_ns": 2**70, "read_Bps": 1}, "not a sample"]}}
    samples, interval = read_timeseries(json.dumps(odd).encode())
    assert interval is None and samples["a"].times_ns.tolist() == [1]
    assert np.isnan(samples["a"].values["read_Bps"][0]) and samples["a"].values["load1"].tolist() == [2.0]
    assert read_timeseries(b'{"hosts": 3}') is None
    with pytest.raises(ValueError):
        read_timeseries(b"{not json")


def test_a_compressed_recording_reads_as_the_plain_one(tmp_path):
    run_dir = write_synthetic_run(tmp_path / "run", SyntheticRun(hosts=3, duration_s=60))
    plain = read_run(run_dir)
    recording = run_dir / "events.jsonl"
    (run_dir / "events.jsonl.gz").write_bytes(gzip.compress(recording.read_bytes()))
    recording.unlink()
    compressed = read_run(run_dir)
    assert [s.name for s in compressed.spans] == [s.name for s in plain.spans] and compressed.spans
    assert compressed.source == run_dir and len(compressed.messages) == len(plain.messages)


def test_samples_come_from_the_recording_when_the_folder_has_no_timeseries(tmp_path):
    run_dir = write_synthetic_run(tmp_path / "run", SyntheticRun(hosts=3, duration_s=60))
    with_file = read_run(run_dir)
    next(run_dir.glob("*_timeseries.json")).unlink()
    from_events = read_run(run_dir)
    assert {h: len(s) for h, s in from_events.samples.items()} == {h: len(s) for h, s in with_file.samples.items()}
    assert np.allclose(from_events.samples["node02"].values["read_Bps"], with_file.samples["node02"].values["read_Bps"])
