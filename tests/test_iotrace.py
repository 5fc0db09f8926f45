"""The I/O trace read back (mlpstorage/iotrace/), on DFTracer files recorded from a real DLIO
run: tests/data/iotrace holds the traces of a 2-rank unet3d run, 16 files of about 1 MiB,
2 epochs, batch 2 (each rank reads 8 files an epoch)."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from mlpstorage.iotrace import event_payload, load_summary, summarise, write_summary
from mlpstorage.iotrace.aggregate import LATENCY_BOUNDS_US, METRIC_BOUNDS_S, N_LAT, percentile
from mlpstorage.iotrace.reader import ReadCount, read_calls, trace_files
from mlpstorage.iotrace.summary import IO_TRACE_FILE, NotAnIoTrace, metric_counts

RECORDED = Path(__file__).parent / "data" / "iotrace"


def _ops(document: dict, name: str) -> list[dict]:
    return [row for row in document["operations"] if row["operation"] == name]


@pytest.fixture(scope="module")
def document():
    return summarise(RECORDED)


def test_counts_and_bytes_agree_with_what_dlio_did(document):
    assert document["events"] == 1435 and document["bad_lines"] == 0
    files = sorted((RECORDED).glob("trace-*.pfw"))
    assert [s["file"] for s in document["sources"]] == [f.name for f in files]
    # every rank opened 8 files in each of 2 epochs, and read each whole (the npz header included)
    opens = _ops(document, "open")
    assert [(r["rank"], r["count"]) for r in opens] == [(0, 16), (1, 16)]
    reads = _ops(document, "read")
    assert all(r["bytes"] == 16853728 for r in reads)  # 16 files of 1,053,358 bytes
    assert all(r["count"] == 240 for r in reads)
    # one host, every rank on it: the host rows add the ranks up
    host_read = [r for r in document["by_host"] if r["operation"] == "read"]
    assert host_read == [dict(host_read[0], count=480, bytes=2 * 16853728)]
    assert "rank" not in host_read[0]


def test_system_calls_are_named_once_whatever_the_libc_entry(document):
    names = {r["operation"] for r in document["operations"] if r["layer"] == "posix"}
    assert {"open", "read", "lseek", "close"} <= names
    assert not any(name.endswith("64") for name in names)
    assert {"NPZReader.open", "NPZReader.read_index"} <= {r["operation"] for r in document["operations"]
                                                           if r["layer"] == "dlio"}


def test_percentiles_are_ordered_and_within_min_and_max(document):
    for row in document["operations"]:
        values = [row["min_us"], row["p50_us"], row["p90_us"], row["p99_us"], row["p999_us"], row["max_us"]]
        assert values == sorted(values), row["operation"]
        assert sum(n for _, n in row["latency_counts"]) == row["count"]
        assert sum(row["metric_counts"]) == row["count"]
        assert len(row["metric_counts"]) == len(METRIC_BOUNDS_S) + 1


def test_epochs_split_compute_from_waiting_for_data(document):
    epochs = document["epochs"]
    assert [(e["rank"], e["epoch"]) for e in epochs] == [(0, 1), (0, 2), (1, 1), (1, 2)]
    for e in epochs:
        # 4 steps of unet3d's 0.323 s computation an epoch
        assert e["compute_s"] == pytest.approx(4 * 0.323, rel=0.01)
        assert 0 < e["wait_s"] < e["duration_s"] - e["compute_s"] + 1e-6
        assert e["io_s"] > 0 and e["bytes"] > 0
    # the epochs share no time bins: their bytes add up to at most what the rank read
    for rank in (0, 1):
        assert sum(e["bytes"] for e in epochs if e["rank"] == rank) <= 16853728


def test_slowest_calls_and_hottest_files(document):
    slowest = document["slowest"]
    assert slowest and all(a["duration_us"] >= b["duration_us"] for a, b in zip(slowest, slowest[1:]))
    assert all(s["layer"] == "posix" and s["host"] == "vm" for s in slowest)
    files = document["files"]
    assert files["read"] == 16
    hottest = files["hottest"][0]
    assert hottest["opens"] == 2 and hottest["read_bytes"] == 2 * 1053358
    # every file of the data set was read in both epochs
    assert [u["count"] for u in files["unread_per_epoch"]] == [0, 0]


def test_timeline_per_rank(document):
    timeline = document["timeline"]
    assert [r["rank"] for r in timeline["ranks"]] == [0, 1]
    for row in timeline["ranks"]:
        assert len(row["busy"]) == len(row["bytes"]) <= 240
        assert sum(row["bytes"]) == sum(r["bytes"] for r in _ops(document, "read") if r["rank"] == row["rank"])


def test_gzip_traces_read_the_same(tmp_path, document):
    for trace in RECORDED.glob("trace-*.pfw"):
        (tmp_path / (trace.name + ".gz")).write_bytes(gzip.compress(trace.read_bytes()))
    again = summarise(tmp_path)
    assert again["operations"] == document["operations"] and again["epochs"] == document["epochs"]


def test_a_cut_or_corrupt_file_is_one_warning_and_the_rest_is_read(tmp_path):
    good, other = sorted(RECORDED.glob("trace-*.pfw"))
    text = good.read_bytes()
    lines = text.split(b"\n")
    lines[40] = b'{"id":"x","name":"read","cat":"POSIX" garbage'
    (tmp_path / good.name).write_bytes(b"\n".join(lines))
    raw = other.read_bytes()
    (tmp_path / other.name).write_bytes(raw[: len(raw) // 2])  # cut in the middle of a line
    warnings = []
    document = summarise(tmp_path, warn=warnings.append)
    assert len(warnings) == 2
    assert "trace-0-of-2.pfw: 1 line could not be read" in warnings[0]
    assert "trace-1-of-2.pfw: 1 line could not be read" in warnings[1]
    assert document["bad_lines"] == 2
    assert document["sources"][0]["events"] == 719 - 1


def test_a_value_of_an_unexpected_type_keeps_its_event(tmp_path):
    (tmp_path / "trace-0-of-1.pfw").write_text(
        '[\n{"name":"read","cat":"POSIX","pid":"0","ts":"10","dur":"5","args":{"hostname":"h","ret":"0x1",'
        '"fname":"/d/a"}}\n{"name":"read","cat":"POSIX","pid":"0","ts":"20","dur":"7","args":{"hostname":"h",'
        '"ret":"4096","fname":"/d/a"}}\n')
    count = ReadCount()
    calls = [c for block in read_calls(tmp_path / "trace-0-of-1.pfw", count) for c in block]
    assert count.bad_lines == 0 and [c.dur for c in calls] == [5, 7]
    assert [c.args.ret for c in calls] == [None, 4096]


def test_trace_files_by_rank(tmp_path):
    for name in ("trace-1-of-2.pfw", "trace-0-of-2.pfw.gz", "trace-0-of-2.pfw", "dft.log", "trace-x-of-2.pfw"):
        (tmp_path / name).write_text("[\n")
    assert [(t.rank, t.path.name) for t in trace_files(tmp_path)] == [(0, "trace-0-of-2.pfw"), (1, "trace-1-of-2.pfw")]
    assert summarise(tmp_path / "nothing") is None


def test_percentile_interpolates_within_its_bucket():
    latency = np.zeros(N_LAT, np.int64)
    bucket = int(np.searchsorted(LATENCY_BOUNDS_US, 22_000))  # (20 ms, 25 ms]
    latency[bucket] = 100
    assert LATENCY_BOUNDS_US[bucket - 1] == 20_000
    assert percentile(latency, 0.5, 20_100, 24_000) == pytest.approx(22_500)
    assert percentile(latency, 0.99, 20_100, 24_000) == 24_000  # clamped to the exact max
    assert metric_counts(latency)[METRIC_BOUNDS_S.index(0.05)] == 100  # in (20 ms, 50 ms]
    assert METRIC_BOUNDS_S[:4] == [1e-6, 2e-6, 5e-6, 1e-5] and METRIC_BOUNDS_S[-1] == 100.0
    # a call of exactly 20 us is in (10 us, 20 us], as OpenTelemetry counts it
    exact = np.zeros(N_LAT, np.int64)
    exact[int(np.searchsorted(LATENCY_BOUNDS_US, 20))] = 1
    assert metric_counts(exact)[METRIC_BOUNDS_S.index(2e-5)] == 1


def test_written_file_and_event(tmp_path, document):
    for trace in RECORDED.glob("trace-*.pfw"):
        shutil.copy(trace, tmp_path)
    written = write_summary(tmp_path)
    assert load_summary(tmp_path) == json.loads(json.dumps(written))
    assert not list(tmp_path.glob("*.partial"))
    payload = event_payload(written)
    assert payload["file"] == IO_TRACE_FILE and payload["events"] == 1435
    assert {"latency_counts", "size_counts"}.isdisjoint(payload["operations"][0])
    (tmp_path / IO_TRACE_FILE).write_text('{"format": "something else"}')
    with pytest.raises(NotAnIoTrace):
        load_summary(tmp_path)
    assert load_summary(tmp_path / "elsewhere") is None


def test_epochs_read_live_as_the_files_grow(tmp_path, document):
    """EpochIo, as DLIO says each epoch ended: the ranks' files written up to that epoch's span
    (DFTracer writes a line as its call returns), the launcher seeing the epoch start 5 ms late.
    Each epoch's compute and wait are the recorded ones, its system calls those inside its span."""
    from mlpstorage.iotrace.aggregate import EPOCH, SYSTEM
    from mlpstorage.iotrace.live import EpochIo

    files = sorted(RECORDED.glob("trace-*.pfw"))
    pieces = []  # per file: the text up to and with each epoch's span line, then the rest
    for trace in files:
        lines = trace.read_bytes().splitlines(keepends=True)
        cuts = [i + 1 for i, line in enumerate(lines) if f'"name":"{EPOCH}"'.encode() in line]
        pieces.append([b"".join(lines[a:b]) for a, b in zip([0, *cuts], [*cuts, len(lines)])])
    calls = {t.name: [c for block in read_calls(t) for c in block] for t in files}
    live = EpochIo(tmp_path)
    for epoch in (1, 2):
        for trace, parts in zip(files, pieces):
            with open(tmp_path / trace.name, "ab") as out:
                out.write(parts[epoch - 1])
        spans = [sorted((c for c in calls[t.name] if c.name == EPOCH), key=lambda c: c.ts)[epoch - 1] for t in files]
        start_ns = (min(s.ts for s in spans) + 5000) * 1000
        attributes = live(start_ns, max(s.ts + s.dur for s in spans) * 1000)
        rows = [e for e in document["epochs"] if e["epoch"] == epoch]
        assert attributes["mlpstorage.io.ranks"] == 2
        assert attributes["mlpstorage.compute.time_s"] == pytest.approx(sum(e["compute_s"] for e in rows))
        assert attributes["mlpstorage.io.wait_s"] == pytest.approx(sum(e["wait_s"] for e in rows))
        inside = [c for t, span in zip(files, spans) for c in calls[t.name]
                  if c.cat in SYSTEM and span.ts <= c.ts < span.ts + span.dur]
        assert attributes["mlpstorage.io.calls"] == len(inside)
        assert attributes["mlpstorage.io.time_s"] == pytest.approx(sum(c.dur for c in inside) / 1e6)
        assert attributes["mlpstorage.io.read_bytes"] > 0
