"""Does observing a run perturb the benchmark? The same tiny DLIO workload run bare under
mpirun and under mlpstorage with every observer on, alternating, in one run (ratios matter;
absolute figures move with the machine).

    .venv/bin/python perf/perturbation.py [--repeat 3] [--data-dir DIR] [--keep]

The workload is the quickstart's: unet3d, 16 files of 1 MiB (made once with
`mlpstorage training datagen`, or taken from --data-dir when it already holds them), 2 ranks,
reader.batch_size=2, reader.read_threads=1, train.epochs=3, checkpoint.model_size=1048576,
computation_time as configured (0.323 s).

(a) bare: the exact mpirun command `mlpstorage training run ... --what-if` prints, run
    directly (an argument list, no shell) with a fresh ++hydra.run.dir each time, the
    environment the launcher gives the ranks (DFTRACER_ENABLE=0; the forwarded TRACEPARENT,
    TRACESTATE and MLPSTORAGE_RANK_EVENTS set empty) and its output into files;
(b) observed: `mlpstorage training run ... --render rich,jsonl,otlp --timeseries-interval 1`
    with stderr on a pseudo-terminal this process drains (TERM=xterm-256color), the JSON lines
    on stdout into /dev/null, and spans exported over OTLP/HTTP to an oteltest HttpSink
    started here (OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:PORT).

One unmeasured bare run first warms the page cache (Python, torch, the data). Then a and b
alternate, --repeat times each. Each run's train_au_mean_percentage and
train_throughput_mean_samples_per_second come from its summary.json; wall time is from
spawn to exit, CPU the whole process tree's user+system time (from wait4). Printed: every
run, the medians and the ratio b/a.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # `support`: tests/support

from support.otlp_sink import Sink, quiet_http_log, start_sink  # noqa: E402
from support.pty_reader import open_pty, pty_chunks  # noqa: E402
from support.dlio_data import MODEL, RANKS, TINY, ensure_dataset  # noqa: E402


FILES = 16
RUN_PARAMS = ["reader.batch_size=2", "reader.read_threads=1", "train.epochs=3"]
# What the launcher forwards to the ranks with -x (mlpstorage.benchmarks.dlio.RANK_ENV).
RANK_ENV = {"TRACEPARENT": "", "TRACESTATE": "", "MLPSTORAGE_RANK_EVENTS": "", "DFTRACER_ENABLE": "0"}


def launcher() -> list[str]:
    script = Path(sys.executable).with_name("mlpstorage")
    return [str(script)] if script.exists() else [sys.executable, "-m", "mlpstorage"]


def base_env() -> dict[str, str]:
    """This environment without anything that changes how the launcher renders or traces."""
    drop = ("NO_COLOR", "TTY_INTERACTIVE", "FORCE_COLOR", "MLPSTORAGE_RENDER", "COLUMNS", "LINES",
            *RANK_ENV)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_") and k not in drop}
    env["TERM"] = "xterm-256color"
    return env


# ----- the OTLP receiver (support.otlp_sink, as the tests start it) --------------
def spans_received(sink: Sink) -> int:
    return len(sink.spans())


# ----- running -----------------------------------------------------------------------------
@dataclass
class Run:
    kind: str  # "bare" or "observed"
    wall_s: float
    cpu_s: float
    au: float
    throughput: float
    notes: dict = field(default_factory=dict)


def wait_tree(proc: subprocess.Popen) -> tuple[int, float]:
    """Exit code and the CPU seconds of the child and every descendant it waited for."""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, usage.ru_utime + usage.ru_stime


def summary_metrics(path: Path) -> tuple[float, float]:
    metric = json.loads(path.read_text())["metric"]
    return metric["train_au_mean_percentage"], metric["train_throughput_mean_samples_per_second"]


def count_samples(timeseries: dict) -> int:
    """Samples in a time-series file: {"hosts": {host: [samples]}} or {"samples": [...]}."""
    if isinstance(timeseries.get("hosts"), dict):
        return sum(len(samples) for samples in timeseries["hosts"].values())
    return len(timeseries.get("samples", []))


def observed_argv(data_dir: Path, results_dir: Path) -> list[str]:
    return [*launcher(), "training", "run", "--model", MODEL, "--data-dir", str(data_dir),
            "--num-accelerators", str(RANKS), "--results-dir", str(results_dir),
            "--params", f"dataset.num_files_train={FILES}", *TINY, *RUN_PARAMS]


def bare_command(data_dir: Path, work: Path) -> tuple[list[str], str]:
    """The mpirun argument list the launcher would run, and the run directory in it."""
    argv = [*observed_argv(data_dir, work / "what-if"), "--what-if"]
    done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, env=base_env(),
                          cwd=work, check=True)
    lines = done.stdout.splitlines()
    command = shlex.split(lines[lines.index("# command") + 1])
    run_dirs = [a.split("=", 1)[1] for a in command if a.startswith("++hydra.run.dir=")]
    assert len(run_dirs) == 1, command
    return command, run_dirs[0]


def run_bare(command: list[str], what_if_dir: str, run_dir: Path, work: Path) -> Run:
    run_dir.mkdir(parents=True)
    # Every path under the what-if run directory (hydra.run.dir, the checkpoint folder) moves
    # to this run's own directory.
    argv = [arg.replace(what_if_dir, str(run_dir)) for arg in command]
    env = {**base_env(), **RANK_ENV}
    with open(run_dir / "stdout.log", "wb") as out, open(run_dir / "stderr.log", "wb") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env, cwd=work)
        code, cpu = wait_tree(proc)
        wall = time.perf_counter() - start
    if code != 0:
        raise SystemExit(f"bare run failed ({code}): see {run_dir / 'stderr.log'}:\n"
                         + (run_dir / "stderr.log").read_text()[-3000:])
    au, throughput = summary_metrics(run_dir / "summary.json")
    return Run("bare", wall, cpu, au, throughput)


def drain(fd: int, received: list[int], tail: bytearray) -> None:
    """Plays the terminal: reads the pty master until every slave is closed (EIO)."""
    for chunk in pty_chunks(fd, 1 << 16):
        received[0] += len(chunk)
        tail[:] = (bytes(tail) + chunk)[-2000:]


def run_observed(data_dir: Path, results_dir: Path, work: Path, sink: Sink, interval: float) -> Run:
    argv = [*observed_argv(data_dir, results_dir), "--render", "rich,jsonl,otlp", "--timeseries-interval", str(interval)]
    env = {**base_env(), "OTEL_EXPORTER_OTLP_ENDPOINT": sink.endpoint}
    master, slave = open_pty(50, 200)
    received, tail = [0], bytearray()
    reader = threading.Thread(target=drain, args=(master, received, tail), daemon=True)
    spans_before = spans_received(sink)
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=slave, env=env, cwd=work)
    os.close(slave)
    reader.start()
    code, cpu = wait_tree(proc)
    wall = time.perf_counter() - start
    reader.join(timeout=10)
    os.close(master)
    if code != 0:
        raise SystemExit(f"observed run failed ({code}); the terminal ended with:\n"
                         + bytes(tail).decode("utf-8", "replace"))
    summaries = list(results_dir.glob(f"training/{MODEL}/run/*/summary.json"))
    assert len(summaries) == 1, f"expected one summary.json under {results_dir}, found {summaries}"
    run_dir = summaries[0].parent
    au, throughput = summary_metrics(summaries[0])
    # Spans are exported from a background thread; give the last batch a moment to land.
    deadline = time.monotonic() + 5
    while spans_received(sink) == spans_before and time.monotonic() < deadline:
        time.sleep(0.05)
    samples = sum(count_samples(json.loads(p.read_text())) for p in run_dir.glob("training_*_timeseries.json"))
    events = run_dir / "events.jsonl"
    return Run("observed", wall, cpu, au, throughput, notes={
        "spans": spans_received(sink) - spans_before,
        "timeseries samples": samples,
        "events": sum(1 for _ in open(events)) if events.exists() else 0,
        "terminal kB": round(received[0] / 1000, 1),
    })


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs of each kind, alternating (default 3)")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="the tiny unet3d data set (made there if missing; default: in the work dir)")
    parser.add_argument("--timeseries-interval", type=float, default=1.0, help="observed runs' sampling interval (default 1)")
    parser.add_argument("--work-dir", type=Path, default=None, help="where runs go (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the work dir (runs, logs, summaries)")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="mlpstorage-perturbation-", dir=args.work_dir)).absolute()
    server = None
    try:
        data_dir = (args.data_dir or work / "data").absolute()
        print(f"data: {ensure_dataset(launcher(), data_dir, FILES, work, base_env())}")
        command, what_if_dir = bare_command(data_dir, work)
        print(f"bare command: {shlex.join(command)}")
        quiet_http_log()
        server, sink = start_sink("http")
        print(f"OTLP sink: {sink.endpoint}; {args.repeat} runs of each kind, alternating bare/observed, after one warm-up")
        warm = run_bare(command, what_if_dir, work / "bare" / "warm-up", work)
        print(f"    warm-up bare: wall {warm.wall_s:.1f} s (not counted)", flush=True)

        print(f"    {'run':<4} {'kind':<9} {'wall s':>7} {'CPU s':>7} {'AU %':>8} {'samples/s':>10}  notes")
        runs: list[Run] = []
        for i in range(1, args.repeat + 1):
            for kind in ("bare", "observed"):
                if kind == "bare":
                    run = run_bare(command, what_if_dir, work / "bare" / str(i), work)
                else:
                    run = run_observed(data_dir, work / "observed" / str(i), work, sink, args.timeseries_interval)
                runs.append(run)
                notes = ", ".join(f"{k} {v}" for k, v in run.notes.items())
                print(f"    {i:<4} {kind:<9} {run.wall_s:>7.2f} {run.cpu_s:>7.2f} {run.au:>8.3f} "
                      f"{run.throughput:>10.3f}  {notes}", flush=True)

        def median(kind: str, attr: str) -> float:
            return statistics.median(getattr(r, attr) for r in runs if r.kind == kind)

        print(f"median of {args.repeat}    {'(a) bare':>10} {'(b) observed':>13} {'ratio b/a':>10}")
        for name, attr, fmt in (("AU %", "au", ".3f"), ("samples/s", "throughput", ".3f"),
                                ("wall s", "wall_s", ".2f"), ("CPU s", "cpu_s", ".2f")):
            a, b = median("bare", attr), median("observed", attr)
            print(f"    {name:<16} {a:>10{fmt}} {b:>13{fmt}} {b / a:>10.4f}")
    finally:
        if server is not None:
            server.stop()
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
