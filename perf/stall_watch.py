"""What stall detection costs the launcher, measured side by side in one run.

    .venv/bin/python perf/stall_watch.py [--seconds 20] [--repeat 3]

1. Reading output: DlioProgress.observe on batches of DLIO-shaped lines (step records, every
   tenth a data-generation progress line, as perf/passthrough.py writes them), per line,
   with the stall detector and without one, next to joining the batch (a floor: one pass
   over the text). stdout and stderr (stderr also looks for exception lines).
2. Watching an idle job: `mlpstorage exec --render none --skip-timeseries -- sleep SECONDS`
   with detection on (a stall is flagged after 2 s, then the watch measures the job's I/O
   every second) and off (--stall-timeout 0), alternating; CPU of the launcher's whole tree
   (from wait4) over the run, and the difference per second of the job, as % of one core.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from passthrough import write_data  # noqa: E402  (the same data as the pass-through figures)

from mlpstorage.emitter import Emitter  # noqa: E402
from mlpstorage.engines.dlio import DlioProgress  # noqa: E402
from mlpstorage.stalls.detector import StallDetector  # noqa: E402

BATCH_LINES = 430  # about what one 64 KiB read of such lines holds


def parse_costs() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "lines.txt"
        write_data(path, 20 * BATCH_LINES)
        lines = path.read_text().split("\n")
    batches = [lines[i:i + BATCH_LINES] for i in range(0, 20 * BATCH_LINES, BATCH_LINES)]
    with_detector = DlioProgress(Emitter(), None, detector=StallDetector(60))
    without = DlioProgress(Emitter(), None)
    rounds = 200

    def per_line(call) -> float:
        best = min(timeit.repeat(lambda: [call(b) for b in batches], number=rounds // 20, repeat=5))
        return best / (rounds // 20) / (20 * BATCH_LINES) * 1e6

    print(f"{'reading output, per line':44s} {'stdout':>8s} {'stderr':>8s}")
    for label, progress in (("with the stall detector", with_detector), ("without a detector", without)):
        out = per_line(lambda b: progress.observe("stdout", b))
        err = per_line(lambda b: progress.observe("stderr", b))
        print(f"  {label:42s} {out:6.3f} us {err:6.3f} us")
    floor = per_line(lambda b: "\n".join(b))
    print(f"  {'joining the batch (a floor)':42s} {floor:6.3f} us")


def cpu_of(argv: list[str]) -> float:
    """User+system seconds of argv's whole tree."""
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    _, _, usage = os.wait4(proc.pid, 0)
    return usage.ru_utime + usage.ru_stime


def idle_costs(seconds: float, repeat: int) -> None:
    cli = str(Path(sys.executable).with_name("mlpstorage"))
    results = Path(tempfile.mkdtemp(prefix="mlps-perf-stall-"))
    base = [cli, "exec", "--render", "none", "--skip-timeseries", "--results-dir", str(results)]
    on, off = [], []
    for _ in range(repeat):
        on.append(cpu_of([*base, "--stall-timeout", "2", "--", "sleep", str(seconds)]))
        off.append(cpu_of([*base, "--stall-timeout", "0", "--", "sleep", str(seconds)]))
    on_s, off_s = statistics.median(on), statistics.median(off)
    print(f"idle job (sleep {seconds:g} s), launcher tree CPU, median of {repeat}: "
          f"detection on {on_s:.3f} s, off {off_s:.3f} s")
    print(f"  the watch of an idle job: {(on_s - off_s) / seconds * 100:.2f} % of one core")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    parse_costs()
    idle_costs(args.seconds, args.repeat)


if __name__ == "__main__":
    started = time.monotonic()
    main()
    print(f"({time.monotonic() - started:.0f} s)")
