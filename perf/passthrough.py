"""How fast the launcher passes a child's output to the terminal, measured side by side in one
run next to `cat` of the same data (ratios matter; absolute figures move with the machine).

    .venv/bin/python perf/passthrough.py [--lines 200000] [--repeat 3] [--columns 200]

A data file of DLIO-shaped log lines (about 150 characters each; every tenth a progress line
with a '\\r' inside, as DLIO's data generation prints them) is written once, then each mode
below runs --repeat times, the modes alternating within each round:

    cat -> pty                   `cat FILE` with its stdout on a pseudo-terminal
    cat -> pipe                  the same into a pipe (what the launcher itself reads from)
    mlpstorage plain -> pty      `mlpstorage exec --render plain --skip-timeseries -- cat FILE`,
                                 stderr (and stdout) on a pseudo-terminal
    mlpstorage plain -> pipe     the same with stderr into a pipe
    mlpstorage plain -> null     the same with stdout and stderr on /dev/null (lines/s from the
                                 first and last output event of the run's events.jsonl)
    mlpstorage rich -> pty       `--render rich`, stderr on a pseudo-terminal
                                 (TERM=xterm-256color, NO_COLOR and TTY_INTERACTIVE unset)

This process plays the terminal: it reads the master side of the pty (or the pipe) in a
tight loop with large reads until EOF, so the reader is never the bottleneck (cat -> pty shows
how fast it drains). lines/s is the number of data lines over the time between the first and
the last data line arriving at the terminal (the launcher's start-up and results stage are
left out; they are in the wall time). CPU is the whole child tree's user+system time (from
wait4), per data line; "beyond start-up" subtracts the same mode's CPU for a 2-line file,
measured in the same round, so the launcher's fixed cost (start-up, host information, the run's
report.html) is left out. After every launcher run the run's stdout.log must equal the input
byte for byte (asserted). Figures are medians.
"""

from __future__ import annotations

import argparse
import filecmp
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # `support`: tests/support

from support.pty_reader import open_pty, pty_chunks  # noqa: E402


BEGIN = b"PASSTHROUGH-BEGIN"
END = b"PASSTHROUGH-END"
SOURCE = "[.../dlio_benchmark/utils/statscounter.py:325]"
UTILITY = "[.../dlio_benchmark/utils/utility.py:249]"


def write_data(path: Path, lines: int, seed: int = 1) -> tuple[int, int]:
    """DLIO-shaped lines: step records, and every tenth a progress line that redraws with \\r.
    Returns (bytes, lines with a '\\r')."""
    rng = random.Random(seed)
    with_cr = 0
    with open(path, "w", encoding="utf-8", newline="\n") as out:
        for i in range(lines):
            stamp = f"2026-11-27T10:{(i // 6000) % 60:02d}:{(i // 100) % 60:02d}.{rng.randrange(10**6):06d}"
            if i == 0:
                text = f"[INFO] {stamp} {BEGIN.decode()} passthrough data, {lines} lines {SOURCE}"
            elif i == lines - 1:
                text = f"[INFO] {stamp} {END.decode()} last line of the passthrough data {SOURCE}"
            elif i % 10 == 5:
                done = (i // 10) % 61
                text = (f"[INFO] \r[INFO] {stamp} Generating NPZ Data: [{'=' * done}>{'-' * (60 - done)}] "
                        f"{done / 0.6:.1f}% {done} of 60  {UTILITY}")
                with_cr += 1
            else:
                text = (f"[INFO] {stamp} Rank {i % 2} step {i // 2} processed 2 samples in "
                        f"{rng.uniform(0.3, 0.4):.16f} s {SOURCE}")
            out.write(text + "\n")
    return path.stat().st_size, with_cr


def launcher() -> list[str]:
    script = Path(sys.executable).with_name("mlpstorage")
    return [str(script)] if script.exists() else [sys.executable, "-m", "mlpstorage"]


def child_env() -> dict[str, str]:
    """This environment without anything that changes how the launcher renders."""
    drop = ("NO_COLOR", "TTY_INTERACTIVE", "FORCE_COLOR", "MLPSTORAGE_RENDER", "COLUMNS", "LINES")
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_") and k not in drop}
    env["TERM"] = "xterm-256color"
    return env


@dataclass
class Reading:
    bytes: int = 0
    newlines: int = 0
    first: float | None = None  # perf_counter when the first data line arrived
    last: float | None = None  # ... and the last
    busy: float = 0.0  # the reader's own CPU time over its wall time while draining
    tail: bytes = b""


def drain(fd: int) -> Reading:
    """Reads fd until EOF (a pty master reports EOF as EIO once every slave is closed),
    noting when the first and the last data line arrive."""
    reading = Reading()
    keep = max(len(BEGIN), len(END))
    previous = b""
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for chunk in pty_chunks(fd):
        now = time.perf_counter()
        reading.bytes += len(chunk)
        reading.newlines += chunk.count(b"\n")
        window = previous + chunk
        if reading.first is None and BEGIN in window:
            reading.first = now
        if reading.last is None and END in window:
            reading.last = now
        previous = chunk[-keep:]
    reading.busy = (time.process_time() - cpu0) / max(time.perf_counter() - wall0, 1e-9)
    reading.tail = previous
    return reading


@dataclass
class Measure:
    lines_per_s: float
    wall_s: float
    cpu_us_per_line: float
    cpu_s: float
    terminal_bytes: int
    reader_busy: float
    log_check: str


def measure(mode: str, target: str, data: Path, lines: int, work: Path, rows: int, columns: int) -> Measure:
    results = Path(tempfile.mkdtemp(prefix="results-", dir=work)) if mode != "cat" else None
    if mode == "cat":
        argv = ["cat", str(data)]
    else:
        argv = [*launcher(), "exec", "--render", mode, "--skip-timeseries", "--results-dir", str(results),
                "--", "cat", str(data)]
    if target == "null":
        read_fd = slave = None
        out = err = subprocess.DEVNULL
    elif target == "pty":
        master, slave = open_pty(rows, columns)
        out, err, read_fd = slave, slave, master
    else:
        read_fd, write_fd = os.pipe()
        out, err = (write_fd, subprocess.DEVNULL) if mode == "cat" else (subprocess.DEVNULL, write_fd)
        slave = write_fd
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=child_env())
    if target == "null":
        reading = Reading(newlines=lines)
    else:
        os.close(slave)  # the child holds the only writing end now: EOF when it (and cat) exit
        try:
            reading = drain(read_fd)
        finally:
            os.close(read_fd)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited with {proc.returncode}; terminal ended with {reading.tail!r}")
    if target != "null" and (reading.first is None or reading.last is None):
        raise SystemExit(f"{mode} -> {target}: the first or last data line never reached the terminal")
    assert reading.newlines >= lines, f"{mode} -> {target}: {reading.newlines} lines arrived, {lines} sent"
    check = "-"
    if results is not None:
        logs = list(results.glob("exec/cat/run/*/stdout.log"))
        assert len(logs) == 1, f"expected one stdout.log under {results}, found {logs}"
        assert filecmp.cmp(logs[0], data, shallow=False), f"{logs[0]} differs from {data}"
        check = "identical"
        if target == "null":  # nothing to watch: the run's own output events say when the lines came
            reading.first, reading.last = output_span(logs[0].with_name("events.jsonl"))
        shutil.rmtree(results)
    return Measure(
        lines_per_s=(lines - 1) / (reading.last - reading.first) if reading.last > reading.first else float("inf"),
        wall_s=wall,
        cpu_us_per_line=(usage.ru_utime + usage.ru_stime) / lines * 1e6,
        cpu_s=usage.ru_utime + usage.ru_stime,
        terminal_bytes=reading.bytes,
        reader_busy=reading.busy,
        log_check=check,
    )


def output_span(events: Path) -> tuple[float, float]:
    """Seconds (since the epoch) of the first and the last output event of a recording."""
    from mlpstorage.emitter.events import ns_from_iso

    stamps = [ns_from_iso(e["timestamp"]) / 1e9 for e in map(json.loads, events.read_text().splitlines())
              if e["type"] == "output"]
    return stamps[0], stamps[-1]


MODES = [("cat", "pty"), ("cat", "pipe"), ("plain", "pty"), ("plain", "pipe"), ("plain", "null"), ("rich", "pty")]


def label(mode: str, target: str) -> str:
    return f"{'cat' if mode == 'cat' else 'mlpstorage ' + mode} -> {target}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=200_000, help="data lines (default 200000)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each mode, alternating (default 3)")
    parser.add_argument("--columns", type=int, default=200, help="width of the pseudo-terminal (default 200)")
    parser.add_argument("--rows", type=int, default=50, help="height of the pseudo-terminal (default 50)")
    parser.add_argument("--work-dir", type=Path, default=None, help="where the data and results go (default: a temp dir)")
    args = parser.parse_args()
    if args.lines < 2:
        parser.error("--lines must be at least 2")

    work = Path(tempfile.mkdtemp(prefix="mlpstorage-passthrough-", dir=args.work_dir))
    try:
        data = work / "dlio-lines.log"
        size, with_cr = write_data(data, args.lines)
        tiny = work / "two-lines.log"
        write_data(tiny, 2)
        fixed: dict[tuple[str, str], list[Measure]] = {m: [] for m in MODES}
        print(f"data: {args.lines} lines, {size / 1e6:.1f} MB ({size / args.lines:.0f} bytes a line), "
              f"{with_cr} with a '\\r' inside; pty {args.columns}x{args.rows}; "
              f"{args.repeat} runs of each mode, alternating")
        runs: dict[tuple[str, str], list[Measure]] = {m: [] for m in MODES}
        for round_ in range(args.repeat):
            for mode, target in MODES:
                result = measure(mode, target, data, args.lines, work, args.rows, args.columns)
                runs[(mode, target)].append(result)
                fixed[(mode, target)].append(measure(mode, target, tiny, 2, work, args.rows, args.columns))
                print(f"    round {round_ + 1}  {label(mode, target):<26} {result.lines_per_s:>12,.0f} lines/s  "
                      f"wall {result.wall_s:6.2f} s  stdout.log {result.log_check}", flush=True)

        cat = statistics.median(m.lines_per_s for m in runs[("cat", "pty")])
        print(f"median of {args.repeat}")
        print(f"    {'mode':<26} {'lines/s':>12} {'vs cat->pty':>12} {'wall s':>8} {'CPU us/line':>12} "
              f"{'beyond start-up':>16} {'to terminal':>12} {'reader busy':>12}  stdout.log")
        for key in MODES:
            measures = runs[key]
            rate = statistics.median(m.lines_per_s for m in measures)
            wall = statistics.median(m.wall_s for m in measures)
            cpu = statistics.median(m.cpu_us_per_line for m in measures)
            marginal = (statistics.median(m.cpu_s for m in measures)
                        - statistics.median(m.cpu_s for m in fixed[key])) / (args.lines - 2) * 1e6
            sent = statistics.median(m.terminal_bytes for m in measures)
            busy = statistics.median(m.reader_busy for m in measures)
            checks = {m.log_check for m in measures}
            print(f"    {label(*key):<26} {rate:>12,.0f} {rate / cat:>11.3f}x {wall:>8.2f} {cpu:>12.2f} "
                  f"{marginal:>16.2f} {sent / 1e6:>9.1f} MB {busy * 100:>11.0f}%  {'/'.join(sorted(checks))}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
