"""Golden tests: recorded event streams rendered by plain and rich, compared with checked-in
files (support/golden.py). After a deliberate change: `pytest tests/test_golden.py
--update-goldens`, then review the diff of tests/golden/ like any other change."""

import io
import json
import time
from pathlib import Path

import pytest
from rich.console import Console

from mlpstorage.emitter.events import iso_from_ns, ns_from_iso

from renderers.plain import AGGREGATE_PATTERN, LINE_PATTERN, PlainRenderer
from renderers.rich import RichRenderer

from support.golden import assert_matches_golden

GOLDEN = Path(__file__).parent / "golden"
# many_hosts: 64 hosts' time series (written by golden/record_many_hosts.py, deterministic)
STREAMS = ["ok", "failed", "many_hosts"]
HEIGHT = 25  # of the terminal the rich frames are drawn for


def load(name):
    return [json.loads(line) for line in (GOLDEN / f"{name}.events.jsonl").read_text().splitlines()]


@pytest.fixture
def utc(monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.parametrize("name", STREAMS)
def test_plain_golden(name, update_goldens):
    text = render_plain(load(name), min_level="info")  # the CLI's default
    assert_matches_golden(text, GOLDEN / f"{name}.plain.txt", update_goldens)
    for line in text.splitlines():
        assert LINE_PATTERN.match(line) or line.startswith("[INFO]"), line
        assert "...." not in line and ".." not in line.replace("...", "")
        if "all hosts: " in line:
            assert AGGREGATE_PATTERN.match(LINE_PATTERN.match(line).group("message")), line


def render_plain(events, min_level: str) -> str:
    out = io.StringIO()
    renderer = PlainRenderer(out, heartbeat_s=0, min_level=min_level)
    for event in events:
        renderer.handle(event)
    renderer.close()
    return out.getvalue()


@pytest.mark.parametrize("name", STREAMS)
def test_rich_golden(name, update_goldens, utc):
    events = load(name)
    run_end = events[-1]["end_unix_nano"]
    console = Console(file=io.StringIO(), width=100, height=HEIGHT, color_system=None, force_terminal=False,
                      get_time=lambda: 0.0)
    renderer = RichRenderer(console, live=False, clock_ns=lambda: run_end)
    frames = []
    for event, following in zip(events, events[1:] + [None]):
        renderer.handle(event)
        if event["type"] in ("spinner.updated", "task.started"):
            # the live display as it stood one second after this event
            frames.append(frame_text(renderer, event["type"], event["start_unix_nano"] + 1_000_000_000))
        elif event["type"] == "sample" and (following or {}).get("type") != "sample":
            # as it stood when the last of a round of samples came
            frames.append(frame_text(renderer, "samples", ns_from_iso(event["timestamp"])))
    renderer.close()
    text = console.file.getvalue() + "".join(frames)
    assert_matches_golden(text, GOLDEN / f"{name}.rich.txt", update_goldens)


def frame_text(renderer: RichRenderer, after: str, now_ns: int) -> str:
    console = Console(file=io.StringIO(), width=100, height=HEIGHT, color_system=None, get_time=lambda: 0.0)
    console.print(renderer.frame(now_ns))
    return f"--- frame after {after} ---\n" + console.file.getvalue()


TRACED_EPOCH = {"mlpstorage.io.ranks": 2, "mlpstorage.compute.time_s": 2.5912, "mlpstorage.io.wait_s": 0.2471,
                "mlpstorage.io.time_s": 0.0123, "mlpstorage.io.read_bytes": 16_884_480, "mlpstorage.io.written_bytes": 0}
TRACED_TEXT = "2 ranks traced: computing 2.59 s, waiting for data 0.25 s, in I/O calls 0.01 s, read 16.9 MB"


def with_a_traced_epoch(events: list[dict]) -> list[dict]:
    """The stream with its first epoch's span carrying what --io-trace puts there as the epoch ends."""
    first = next(e for e in events if e["type"] == "task.finished" and e["name"] == "epoch 1/2")
    first["attributes"] = {**first.get("attributes", {}), **TRACED_EPOCH}
    return events


def test_a_traced_epochs_figures_from_an_untrusted_recording_never_break_a_renderer():
    from renderers.board import describe_epoch_io

    odd = {**TRACED_EPOCH, "mlpstorage.compute.time_s": "2.5", "mlpstorage.io.read_bytes": None,
           "mlpstorage.io.wait_s": True, "mlpstorage.io.written_bytes": [1]}
    assert describe_epoch_io(odd) == "2 ranks traced: computing 0.00 s, waiting for data 0.00 s, in I/O calls 0.01 s"
    assert describe_epoch_io({**TRACED_EPOCH, "mlpstorage.io.ranks": "2"}) is None
    assert describe_epoch_io({**TRACED_EPOCH, "mlpstorage.io.ranks": True}) is None


def test_a_traced_epoch_says_where_its_time_went_as_it_ends_in_plain_and_rich(utc):
    plain = render_plain(with_a_traced_epoch(load("ok")), min_level="info").splitlines()
    assert [line.split("] ", 1)[1] for line in plain if "epoch 1/2: done" in line] == [f"epoch 1/2: done in 0.1s; {TRACED_TEXT}"]
    assert not [line for line in plain if "epoch 2/2: done" in line and "traced" in line]  # untraced: as before
    console = Console(file=io.StringIO(), width=200, color_system=None, force_terminal=False)
    renderer = RichRenderer(console, live=False)
    for event in with_a_traced_epoch(load("ok")):
        renderer.handle(event)
    renderer.close()
    printed = console.file.getvalue().splitlines()
    assert [line for line in printed if "epoch" in line and "traced" in line] == [f"  ✔ epoch 1/2 done in 0.1s: {TRACED_TEXT}"]


def test_heartbeat_names_the_open_stage_and_spinners():
    """The 'still running' line, driven by the renderer's injected clock: none before an
    interval has passed in the stage, then one each time it is asked, with the elapsed times."""
    from mlpstorage.emitter.events import iso_from_ns

    events = load("ok")
    running = next(i for i, e in enumerate(events) if e["type"] == "stage.started" and e["name"] == "Running benchmark")
    spinner = next(i for i, e in enumerate(events) if i > running and e["type"] == "spinner.started")
    stage_ns, spinner_ns = events[running]["start_unix_nano"], events[spinner]["start_unix_nano"]
    now = [0]
    plain = PlainRenderer(io.StringIO(), heartbeat_s=30, clock=lambda: now[0])
    try:
        for event in events[: spinner + 1]:
            plain.handle(event)
        now[0] = stage_ns + 29_900_000_000
        assert plain.heartbeat_line() is None
        beats = {}
        for seconds in (30, 60, 95):
            now[0] = stage_ns + seconds * 10**9
            beats[seconds] = plain.heartbeat_line()
    finally:
        plain.close()
    for seconds, beat in beats.items():
        match = LINE_PATTERN.match(beat)
        assert (match.group("stage_index"), match.group("stage")) == ("3", "Running benchmark")
        spinner_s = (stage_ns + seconds * 10**9 - spinner_ns) / 1e9
        assert match.group("message") == f"still running after {seconds}.0s; {events[spinner]['name']} {spinner_s:.1f}s"
        assert match.group("timestamp") == iso_from_ns(stage_ns + seconds * 10**9)[:23] + "Z"


# ----- time series in plain ------------------------------------------------------------------
T0 = 1_795_773_600_000_000_000  # 2026-11-27T10:00:00Z


def staggered_run(rounds: list[tuple[str, ...]]) -> list[dict]:
    """A run on hosts a, b, c; round k's samples at 10k s (+0.1 s per host), from the hosts named."""

    def at(seconds):
        return iso_from_ns(T0 + round(seconds * 1e9))

    def span(kind, what, seconds, **fields):
        return {"schema": 2, "type": f"{kind}.{what}", "timestamp": at(seconds), "level": "info", "span_id": kind,
                "name": "Running benchmark" if kind == "stage" else "run", "start_unix_nano": T0, **fields}

    stage = {"stage_index": 3, "stage_count": 4}
    events = [span("run", "started", 0, attributes={"mlpstorage.hosts": ["a:8", "b:8", "c:8"]}),
              span("stage", "started", 0, **stage)]
    for k, hosts in enumerate(rounds):
        events += [{"schema": 2, "type": "sample", "timestamp": at(10 * k + 0.1 * "abc".index(host)), "level": "info",
                    "host": host, **stage, "values": {"read_Bps": (100 * k + "abc".index(host)) * 1e6, "load1": 0.5}}
                   for host in hosts]
    return events + [span("stage", "finished", 10 * len(rounds), **stage, status="ok", duration_s=10.0 * len(rounds))]


def test_plain_prints_an_aggregate_line_per_interval_as_the_samples_tell_it():
    """An interval is over when a host reports again, or when every host that is not silent has
    reported since the last aggregate line (once a host has reported twice: before that, which
    hosts report is not known); the last one ends with the stage. Each line is stamped with the
    newest sample it sums. With three hosts, each sample has its line too."""
    text = render_plain(staggered_run([("a", "b", "c"), ("a", "b", "c"), ("a", "c"), ("a", "b", "c"), ("b", "a")]),
                        min_level="info")
    messages = [(m.group("timestamp")[11:], m.group("message")) for m in map(LINE_PATTERN.match, text.splitlines())]
    per_host = [message.split(":")[0] for _, message in messages if message[:3] in ("a: ", "b: ", "c: ")]
    assert per_host == list("abcabcacabcba")
    aggregates = [(stamp, message) for stamp, message in messages if message.startswith("all hosts: ")]
    assert aggregates == [
        ("10:00:00.200Z", "all hosts: 3/3 reporting, read 3.0 MB/s, write 0.0 MB/s, net 0.0/0.0 MB/s in/out"),
        ("10:00:10.200Z", "all hosts: 3/3 reporting, read 303.0 MB/s, write 0.0 MB/s, net 0.0/0.0 MB/s in/out; "
                          "slowest a (read 100.0 MB/s)"),
        # b is late, not yet silent: the interval ends when a reports again
        ("10:00:20.200Z", "all hosts: 3/3 reporting, read 503.0 MB/s, write 0.0 MB/s, net 0.0/0.0 MB/s in/out; "
                          "slowest b (read 101.0 MB/s)"),
        ("10:00:30.200Z", "all hosts: 3/3 reporting, read 903.0 MB/s, write 0.0 MB/s, net 0.0/0.0 MB/s in/out; "
                          "slowest a (read 300.0 MB/s)"),
        ("10:00:40.100Z", "all hosts: 3/3 reporting, read 1103.0 MB/s, write 0.0 MB/s, net 0.0/0.0 MB/s in/out; "
                          "slowest c (read 302.0 MB/s)"),
    ]
    assert text.index("10:00:40.100Z INFO    [3/4 Running benchmark] all hosts") < text.index("done in 50.0s")
    for _, message in aggregates:
        assert AGGREGATE_PATTERN.match(message), message


def test_plain_prints_a_line_per_host_with_many_hosts_only_at_debug():
    events = load("many_hosts")
    quiet, verbose = (render_plain(events, level).splitlines() for level in ("info", "debug"))
    samples = [e for e in events if e["type"] == "sample"]
    per_host = [line for line in verbose if ": read " in line and " all hosts: " not in line]
    assert len(per_host) == len(samples) and not any(": read " in line and " all hosts: " not in line for line in quiet)
    assert [line for line in verbose if line not in per_host] == quiet


def test_the_docs_document_the_aggregate_line():
    """The regex in the documentation's plain section (README or docs/) reads the golden's
    aggregate lines as AGGREGATE_PATTERN does."""
    import re

    root = Path(__file__).parent.parent
    docs = "".join(page.read_text() for page in [root / "README.md", *sorted((root / "docs").glob("*.md"))])
    section = re.search(r"Aggregate regex \(also `renderers\.plain\.AGGREGATE_PATTERN`\)[^\n]*:\n`([^`]+)`", docs)
    assert section, "no 'Aggregate regex' section in README.md or docs/*.md"
    documented = re.compile(section.group(1))
    for line in (GOLDEN / "many_hosts.plain.txt").read_text().splitlines():
        message = LINE_PATTERN.match(line).group("message") if LINE_PATTERN.match(line) else ""
        if message.startswith("all hosts: "):
            assert documented.match(message).groupdict() == AGGREGATE_PATTERN.match(message).groupdict(), line
