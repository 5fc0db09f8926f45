"""How large a recording grows (docs/performance.md, A thousand hosts): a finished run's
recording past the bound is compressed (events.jsonl.gz) as it closes, and reads, replays and
is found as the plain one is; with --loops, as the next run starts; a smaller one stays plain; a compressed one cut short reads up to its cut; a
failed compression keeps the plain file; time-series rates are kept in whole bytes a second."""

from __future__ import annotations

import gzip
import json
import math
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from mlpstorage.collectors import hostinfo
from mlpstorage.collectors.timeseries import LocalSampler, compact
from mlpstorage.emitter import recording as recording_module
from mlpstorage.emitter.reading import Recording, find_recording
from mlpstorage.emitter.recording import COMPRESSED_NAME, FILE_NAME, RunRecording
from mlpstorage.replay import UNFINISHED

from support.otlp_sink import base_env
from support.synthetic_run import SyntheticRun, write_synthetic_run


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    """The synthetic one-hour run of 16 hosts (3.3 MB, 6,361 events) as the writer writes it."""
    return write_synthetic_run(tmp_path_factory.mktemp("source"), SyntheticRun(hosts=16)) / FILE_NAME


def recorded(source: Path, folder: Path, compress_above: int | None) -> tuple[RunRecording, list[dict]]:
    """source's events written by a RunRecording attached to folder (the run ends with them),
    closed as the launcher closes it on its way out."""
    events = [json.loads(line) for line in source.read_text().splitlines()]
    writer = RunRecording(compress_above=compress_above)
    writer.handle(events[0])
    writer.attach(folder)
    for event in events[1:]:
        writer.handle(event)
    # the run has ended: its page is written from the plain file, then the launcher closes the recording
    assert sorted(p.name for p in folder.iterdir()) == [FILE_NAME]
    writer.close()
    return writer, events


def mlpstorage(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mlpstorage", *args], capture_output=True, text=True,
                          env=base_env(), timeout=120, stdin=subprocess.DEVNULL)


def test_a_finished_run_past_the_bound_is_compressed_and_reads_as_it_was_written(source, tmp_path):
    writer, events = recorded(source, tmp_path, compress_above=1_000_000)
    assert sorted(p.name for p in tmp_path.iterdir()) == [COMPRESSED_NAME]
    assert writer.path == tmp_path / COMPRESSED_NAME == find_recording(tmp_path)
    assert writer.path.stat().st_size < source.stat().st_size / 4
    assert gzip.decompress(writer.path.read_bytes()) == source.read_bytes()  # zcat gives the plain file back
    for path in (writer.path, tmp_path / FILE_NAME):  # the name the run had while it lasted opens it too
        with Recording(path) as recording:
            assert list(recording) == events and recording.problems == []


def test_with_loops_a_runs_recording_is_compressed_as_the_next_run_starts(source, tmp_path):
    events = [json.loads(line) for line in source.read_text().splitlines()]
    writer = RunRecording(compress_above=1_000_000)
    for run in ("first", "second"):
        writer.handle(events[0])
        (tmp_path / run).mkdir()
        writer.attach(tmp_path / run)
        for event in events[1:]:
            writer.handle(event)
    assert find_recording(tmp_path / "first") == tmp_path / "first" / COMPRESSED_NAME
    assert find_recording(tmp_path / "second") == tmp_path / "second" / FILE_NAME  # its page still to be written
    writer.close()
    assert find_recording(tmp_path / "second") == tmp_path / "second" / COMPRESSED_NAME


def test_a_smaller_recording_stays_plain(source, tmp_path):
    writer, _ = recorded(source, tmp_path, compress_above=source.stat().st_size)
    assert sorted(p.name for p in tmp_path.iterdir()) == [FILE_NAME]
    assert writer.path == find_recording(tmp_path) == tmp_path / FILE_NAME
    assert writer.path.read_bytes() == source.read_bytes()
    assert find_recording(tmp_path / "elsewhere") is None


def test_replaying_a_compressed_recording_prints_what_the_plain_one_does(source, tmp_path):
    recorded(source, tmp_path, compress_above=0)
    plain, compressed = (mlpstorage("events", "replay", str(path), "--render", "plain")
                         for path in (source, tmp_path / FILE_NAME))
    assert plain.returncode == compressed.returncode == 0, compressed.stderr
    assert compressed.stderr == plain.stderr and "all hosts: 16/16 reporting" in plain.stderr


def test_a_compressed_recording_cut_short_reads_up_to_its_cut(source, tmp_path):
    writer, events = recorded(source, tmp_path, compress_above=0)
    whole = writer.path.read_bytes()
    cut = tmp_path / "cut" / COMPRESSED_NAME
    cut.parent.mkdir()
    cut.write_bytes(whole[: len(whole) // 2])
    complete_lines = zlib.decompressobj(31).decompress(cut.read_bytes()).count(b"\n")
    with Recording(cut) as recording:
        read = list(recording)
    assert read == events[:complete_lines] and 0 < complete_lines < len(events)
    assert recording.problems == [f"{cut}: the compressed recording ends early after line {complete_lines} "
                                  "(Compressed file ended before the end-of-stream marker was reached); read up to there"]
    replayed = mlpstorage("events", "replay", str(cut), "--render", "jsonl")
    assert replayed.returncode == 0, replayed.stderr
    assert replayed.stderr.splitlines() == [f"mlpstorage: warning: {recording.problems[0]}"]
    ends = [json.loads(line) for line in replayed.stdout.splitlines()][complete_lines:]
    # the open epoch, then "Running benchmark", then the run, each ended where the recording is cut
    assert [e["name"] for e in ends][-2:] == ["Running benchmark", "mlpstorage training run"]
    assert ends[0]["name"].startswith("epoch ") and {e["error"] for e in ends} == {UNFINISHED}


def test_a_compression_that_fails_keeps_the_plain_recording(source, tmp_path, monkeypatch):
    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("isal.igzip.open", full_disk)
    writer, _ = recorded(source, tmp_path, compress_above=0)
    assert sorted(p.name for p in tmp_path.iterdir()) == [FILE_NAME]
    assert writer.path.read_bytes() == source.read_bytes()


@pytest.mark.slow
def test_a_real_run_past_the_bound_leaves_its_recording_compressed(tmp_path):
    """A real exec run whose program prints more than the bound: its recording (the output
    events) is compressed as the run ends, stdout.log stays as printed, and `events replay`
    of the events.jsonl the run had while it lasted gives the lines back."""
    results = tmp_path / "results"
    line = "y" * 99
    count = recording_module.COMPRESS_ABOVE_BYTES // 100 + 20_000
    program = f"import sys; sys.stdout.write(({line!r} + '\\n') * {count})"
    run = mlpstorage("exec", "--render", "none", "--results-dir", str(results), "--skip-timeseries", "--",
                     sys.executable, "-c", program)
    assert run.returncode == 0, run.stderr
    [folder] = {p.parent for p in results.glob("exec/*/run/*/stdout.log")}
    assert find_recording(folder) == folder / COMPRESSED_NAME and not (folder / FILE_NAME).exists()
    assert (folder / "stdout.log").stat().st_size == count * 100
    replayed = mlpstorage("events", "replay", str(folder / FILE_NAME), "--render", "jsonl")
    assert replayed.returncode == 0, replayed.stderr
    lines = [x for e in map(json.loads, replayed.stdout.splitlines()) if e["type"] == "output" for x in e["lines"]]
    assert lines == [line] * count


# ----- the samples ---------------------------------------------------------------------------
def test_compact_keeps_rates_in_whole_bytes_a_second_and_everything_else_as_it_is():
    sample = {"timestamp_ns": 1, "elapsed_s": 10.000123, "read_bytes": 6965367008, "load1": 8.02,
              "read_Bps": 696536700.8069551, "write_Bps": 169605.5, "rx_Bps": 0.0, "tx_Bps": math.inf}
    assert compact(sample) is sample
    assert sample == {"timestamp_ns": 1, "elapsed_s": 10.000123, "read_bytes": 6965367008, "load1": 8.02,
                      "read_Bps": 696536701, "write_Bps": 169606, "rx_Bps": 0, "tx_Bps": math.inf}
    assert compact({"read_Bps": "12.5"}) == {"read_Bps": "12.5"}  # what a remote host sent, left for others to judge


def test_the_local_sampler_hands_over_whole_rates():
    got = []
    sampler = LocalSampler("localhost", 0.05, 3, lambda host, sample: got.append(sample))
    sampler.start()
    sampler._thread.join(timeout=10)
    assert len(got) == 3 and all(type(s[rate]) is int for s in got for rate in hostinfo.RATES.values())
