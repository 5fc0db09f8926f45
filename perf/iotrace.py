"""What the I/O trace costs, measured side by side in one run (ratios matter; absolute figures
move with the machine).

    .venv/bin/python perf/iotrace.py [--events 1000000] [--ranks 4] [--repeat 3] [--quick]
                                     [--loads 16,160] [--skip-reading] [--skip-dlio]
                                     [--data-dir DIR] [--keep]

(a) Reading traces. A big trace is made from the recorded one (tests/data/iotrace: a real
    2-rank unet3d run), its events repeated with shifted timestamps: one rank of --events
    events (plain and gzip), and --ranks ranks sharing as many. Each case runs in its own
    process (`--case NAME PATH`), so peak memory (ru_maxrss) is its own: the standard
    library's json, orjson, msgspec (untyped) and msgspec into the typed structs, each a line
    at a time; msgspec typed a block at a time (reader.read_calls, what mlpstorage does);
    the whole summarise() on plain, gzip and multi-rank folders; gzip decompression alone
    with the standard library and with isal. Events per second of CPU on one core.
(b) The tracer's cost. A real DLIO training run (the quickstart's unet3d: 1 MiB files, 2
    ranks, 3 epochs, batch 2, read_threads 1) with 16 files and with 160, run through
    `mlpstorage training run` traced (--io-trace: DFTRACER_ENABLE=1 DFTRACER_INC_METADATA=1)
    and untraced (DFTRACER_ENABLE=0), alternating,
    after one unmeasured warm-up; AU and throughput from DLIO's summary.json, the launcher's
    'Running benchmark' and 'Processing results' from its recording; medians and the ratio
    traced / untraced. These runs wait on computation (0.323 s a step), which hides a cost per
    call: `--loads 160-no-compute` is the 160-file run with train.computation_time=0. CPU is
    the whole process tree's (wait4) and the launcher's own (`own`, from inside it); the
    tracer's in the ranks is the difference of the rest, also per traced event.
(c) 'Processing results' for a one-hour run: the traced runs' events per second of run x
    3600 s / the reading rate of (a), as a share of the hour (the share does not depend on
    the run's length: it is the run's event rate over the reading rate).
"""

from __future__ import annotations

import argparse
import atexit
import gzip
import importlib
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from isal import igzip

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # `support`: tests/support

from support.dlio_data import MODEL, RANKS, TINY, ensure_dataset  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RECORDED = ROOT / "tests" / "data" / "iotrace"
RUN_PARAMS = ["reader.batch_size=2", "reader.read_threads=1", "train.epochs=3"]
TRACED = {"DFTRACER_ENABLE": "1", "DFTRACER_INC_METADATA": "1"}
UNTRACED = {"DFTRACER_ENABLE": "0"}


# ----- (a) a big trace from the recorded one -------------------------------------------------
_TS = re.compile(rb'"ts":"(\d+)"')


def recorded_events(rank: int) -> tuple[list[bytes], int]:
    """The recorded file's event lines and the span they cover (first start to last end, us)."""
    lines = [line.strip() for line in (RECORDED / f"trace-{rank % 2}-of-2.pfw").read_bytes().split(b"\n")]
    events = [line for line in lines if line not in (b"", b"[", b"]")]
    starts = [int(_TS.search(line).group(1)) for line in events]
    ends = [int(json.loads(line).get("dur", 0)) + ts for line, ts in zip(events, starts)]
    return events, max(ends) - min(starts)


def synthesize(path: Path, events: int, rank: int) -> int:
    """A trace file of `events` events: the recorded rank's, repeated back to back in time
    (so a million events make about an hour of run). Gzip when the name ends with .gz."""
    lines, span = recorded_events(rank)
    gap = span + 100_000  # 0.1 s between copies
    opener = igzip.open if path.name.endswith(".gz") else open
    written = 0
    with opener(path, "wb") as out:
        out.write(b"[\n")
        copy = 0
        while written < events:
            shift = copy * gap
            chunk = lines[:events - written]
            if shift:
                chunk = [_TS.sub(lambda m: b'"ts":"%d"' % (int(m.group(1)) + shift), line, count=1) for line in chunk]
            out.write(b"\n".join(chunk) + b"\n")
            written += len(chunk)
            copy += 1
    return written


def make_traces(work: Path, events: int, ranks: int) -> dict[str, Path]:
    """Folders of synthetic traces: one rank plain, the same gzip-compressed, `ranks` ranks,
    and one rank of 4x the events gzip-compressed (memory stays what it was)."""
    folders = {"one": work / "one", "gz": work / "gz", "multi": work / "multi", "long": work / "long"}
    for folder in folders.values():
        folder.mkdir(parents=True)
    synthesize(folders["one"] / "trace-0-of-1.pfw", events, 0)
    plain, compressed = folders["one"] / "trace-0-of-1.pfw", folders["gz"] / "trace-0-of-1.pfw.gz"
    with open(plain, "rb") as src, igzip.open(compressed, "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
    synthesize(folders["long"] / "trace-0-of-1.pfw.gz", 4 * events, 0)
    for rank in range(ranks):
        synthesize(folders["multi"] / f"trace-{rank}-of-{ranks}.pfw", events // ranks, rank)
    return folders


# ----- (a) the cases, each in its own process ------------------------------------------------
def _event_lines(path: Path):
    with open(path, "rb") as stream:
        for line in stream:
            line = line.strip().rstrip(b",")
            if line and line not in (b"[", b"]"):
                yield line


def case_stdlib_json(path: Path) -> int:
    return sum(1 for line in _event_lines(path) if json.loads(line))


def case_orjson(path: Path) -> int:
    import orjson
    return sum(1 for line in _event_lines(path) if orjson.loads(line))


def case_msgspec_untyped(path: Path) -> int:
    import msgspec
    decode = msgspec.json.Decoder().decode
    return sum(1 for line in _event_lines(path) if decode(line))


def case_msgspec_typed_line(path: Path) -> int:
    import msgspec
    from mlpstorage.iotrace.reader import Call
    decode = msgspec.json.Decoder(Call, strict=False).decode
    return sum(1 for line in _event_lines(path) if decode(line))


def case_msgspec_typed_block(path: Path) -> int:
    from mlpstorage.iotrace.reader import read_calls
    return sum(len(block) for block in read_calls(path))


def case_summarise(path: Path) -> int:
    from mlpstorage.iotrace import summarise
    return summarise(path)["events"]


def _gunzip(opener, path: Path) -> int:
    size = 0
    with opener(path, "rb") as stream:
        while chunk := stream.read(4 << 20):
            size += len(chunk)
    return size


CASES = {
    "json (stdlib), per line": case_stdlib_json,
    "orjson, per line": case_orjson,
    "msgspec untyped, per line": case_msgspec_untyped,
    "msgspec typed, per line": case_msgspec_typed_line,
    "msgspec typed, per block (read_calls)": case_msgspec_typed_block,
    "summarise()": case_summarise,
    "gunzip, stdlib gzip": lambda path: _gunzip(gzip.open, path),
    "gunzip, isal": lambda path: _gunzip(igzip.open, path),
}


def run_case(name: str, path: Path) -> None:
    """In the child: one case, its figures as one JSON line on stdout."""
    fn = CASES[name]
    if fn is case_summarise:
        importlib.import_module("mlpstorage.iotrace")  # its imports outside the timing
    before_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    cpu, wall = time.process_time(), time.perf_counter()
    units = fn(path)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"units": units, "cpu_s": cpu, "wall_s": wall, "peak_mb": peak_kb / 1024,
                      "grew_mb": (peak_kb - before_kb) / 1024}))


@dataclass
class CaseResult:
    name: str
    what: str
    units: int
    cpu_s: float
    wall_s: float
    peak_mb: float
    grew_mb: float


def measure(name: str, path: Path, what: str) -> CaseResult:
    done = subprocess.run([sys.executable, __file__, "--case", name, str(path)], capture_output=True, text=True,
                          cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    if done.returncode:
        raise SystemExit(f"case {name!r} failed:\n{done.stderr[-3000:]}")
    return CaseResult(name, what, **json.loads(done.stdout.splitlines()[-1]))


def reading(folders: dict[str, Path], ranks: int) -> list[CaseResult]:
    one, gz = folders["one"] / "trace-0-of-1.pfw", folders["gz"] / "trace-0-of-1.pfw.gz"
    plan = [(name, one, "1 rank") for name in list(CASES)[:5]]
    plan += [("summarise()", folders["one"], "1 rank"), ("summarise()", folders["gz"], "1 rank, gzip"),
             ("summarise()", folders["multi"], f"{ranks} ranks"), ("summarise()", folders["long"], "1 rank, 4x, gzip"),
             ("gunzip, stdlib gzip", gz, "bytes"), ("gunzip, isal", gz, "bytes")]
    results = []
    for name, path, what in plan:
        result = measure(name, path, what)
        results.append(result)
        rate = result.units / result.cpu_s
        unit = f"{rate / 1e9:6.2f} GB/s" if what == "bytes" else f"{rate / 1e6:6.2f} M events/s"
        print(f"    {name + ' (' + what + ')':<50} {unit}  CPU {result.cpu_s:6.2f} s  "
              f"peak RSS {result.peak_mb:5.0f} MB (+{result.grew_mb:.0f})", flush=True)
    return results


# ----- (b) the tracer per call, in one process ---------------------------------------------
CALLS = 20_000
SETTINGS = {  # what the child process's DFTracer is given
    "off": {"DFTRACER_ENABLE": "0"},
    "on (--io-trace)": TRACED,
    "on, without metadata": {"DFTRACER_ENABLE": "1", "DFTRACER_INC_METADATA": "0"},
    "on, 1 MiB write buffer": {**TRACED, "DFTRACER_WRITE_BUFFER_SIZE": str(1 << 20)},
}


def run_tracer_case(folder: Path) -> None:
    """In the child: DFTracer started as DLIO starts it, then CALLS lseek+read pairs on a file
    of the traced data folder and CALLS empty DLIO-style function events (dft_fn)."""
    from dftracer.logger import dft_fn, dftracer

    data = folder / "data"
    data.mkdir(parents=True)
    (data / "file.bin").write_bytes(os.urandom(1 << 20))
    tracer = dftracer.initialize_log(logfile=str(folder / "trace.pfw"), data_dir=str(data), process_id=0)
    fd = os.open(data / "file.bin", os.O_RDONLY)

    def posix():
        for i in range(CALLS):
            os.lseek(fd, (i % 256) * 4096, os.SEEK_SET)
            os.read(fd, 4096)

    def function_events():
        for _ in range(CALLS):
            with dft_fn("reader", "event"):
                pass

    def best_us(fn) -> float:
        times = []
        for _ in range(3):
            cpu = time.process_time()
            fn()
            times.append(time.process_time() - cpu)
        return min(times) / CALLS * 1e6

    figures = {"posix_pair_us": best_us(posix), "function_us": best_us(function_events)}
    os.close(fd)
    tracer.finalize()
    print(json.dumps(figures))


def tracer_per_call(work: Path) -> None:
    base = None
    for number, (name, env) in enumerate(SETTINGS.items()):
        done = subprocess.run([sys.executable, __file__, "--tracer-case", str(work / "tracer" / str(number))],
                              capture_output=True, text=True, cwd=ROOT, env={**base_env(), **env})
        if done.returncode:
            raise SystemExit(f"tracer case {name!r} failed:\n{done.stderr[-3000:]}")
        pair, event = json.loads(done.stdout.splitlines()[-1]).values()
        base = base or (pair, event)
        print(f"    {name:<24} lseek+read {pair:6.2f} us (+{pair - base[0]:5.2f}), "
              f"function event {event:6.2f} us (+{event - base[1]:5.2f})", flush=True)


# ----- (b) DLIO traced and untraced -------------------------------------------------------
LAUNCHER_CPU = "MLPSTORAGE_PERF_LAUNCHER_CPU"  # where the launcher's own CPU seconds go
LAUNCH = [sys.executable, __file__, "--launcher"]  # the launcher, in a process that can say its own CPU


def run_launcher(argv: list[str]) -> None:
    """In the child: the launcher itself (what the mlpstorage script runs), its own CPU time
    (without mpirun's and the ranks') written to $MLPSTORAGE_PERF_LAUNCHER_CPU as it exits."""
    target = os.environ.pop(LAUNCHER_CPU, None)

    def report():
        usage = resource.getrusage(resource.RUSAGE_SELF)
        Path(target).write_text(str(usage.ru_utime + usage.ru_stime))

    if target:
        atexit.register(report)
    sys.argv = ["mlpstorage", *argv]
    from mlpstorage.cli.main import main
    sys.exit(main())


def base_env() -> dict[str, str]:
    drop = ("DFTRACER_ENABLE", "DFTRACER_INC_METADATA", "MLPSTORAGE_RENDER")
    return {k: v for k, v in os.environ.items() if not k.startswith("OTEL_") and k not in drop}


@dataclass
class DlioRun:
    traced: bool
    wall_s: float
    cpu_s: float  # the whole process tree's user + system time
    launcher_cpu_s: float  # the launcher's own
    au: float
    throughput: float
    benchmark_s: float  # the launcher's 'Running benchmark' stage (mpirun, start-up to exit)
    processing_s: float  # its 'Processing results' stage
    events: int  # traced events, all ranks
    run_s: float  # first to last traced moment (the traced run), else DLIO's wall


@dataclass(frozen=True)
class Workload:
    label: str
    files: int
    params: tuple[str, ...] = ()  # beyond the quickstart's


def dlio_run(data_dir: Path, load: Workload, results: Path, traced: bool, work: Path) -> DlioRun:
    argv = [*LAUNCH, "training", "run", "--model", MODEL, "--data-dir", str(data_dir), "--num-accelerators", str(RANKS),
            "--results-dir", str(results), "--render", "plain", "--skip-timeseries",
            *(["--io-trace"] if traced else []),
            "--params", f"dataset.num_files_train={load.files}", *TINY, *RUN_PARAMS, *load.params]
    env = {**base_env(), **({} if traced else UNTRACED), LAUNCHER_CPU: str(results.with_suffix(".cpu"))}
    log = results.with_suffix(".log")
    results.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "wb") as out:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=work)
        _, status, usage = os.wait4(proc.pid, 0)  # CPU of the whole tree: the launcher, mpirun, the ranks
        proc.returncode = code = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - start
    if code:
        raise SystemExit(f"DLIO run failed ({code}): see {log}:\n" + log.read_text()[-3000:])
    summary = next(results.glob(f"training/{MODEL}/run/*/summary.json"))
    metric = json.loads(summary.read_text())["metric"]
    events, run_s = 0, wall
    traces = list(summary.parent.glob("trace-*.pfw*"))
    if traced:
        if not traces:
            raise SystemExit(f"traced run wrote no trace files in {summary.parent}")
        from mlpstorage.iotrace import load_summary, summarise
        document = load_summary(summary.parent) or summarise(summary.parent)
        events, run_s = document["events"], (document["end_unix_us"] - document["start_unix_us"]) / 1e6
    elif traces:
        raise SystemExit(f"untraced run wrote trace files in {summary.parent}")
    stages = stage_seconds(summary.parent / "events.jsonl")
    launcher_cpu = float(results.with_suffix(".cpu").read_text())
    return DlioRun(traced, wall, usage.ru_utime + usage.ru_stime, launcher_cpu, metric["train_au_mean_percentage"],
                   metric["train_throughput_mean_samples_per_second"], stages.get("Running benchmark", 0.0),
                   stages.get("Processing results", 0.0), events, run_s)


def stage_seconds(recording: Path) -> dict[str, float]:
    """Each stage's duration from the run's recording."""
    stages = {}
    for line in recording.read_text().splitlines():
        event = json.loads(line)
        if event.get("type") == "stage.finished":
            stages[event["name"]] = event.get("duration_s") or 0.0
    return stages


def tracer_cost(work: Path, data_root: Path, loads: list[Workload], repeat: int) -> dict[str, list[DlioRun]]:
    print("    traced with --io-trace; "
          f"untraced with DFTRACER_ENABLE=0; {repeat} pairs per size, alternating, after one warm-up")
    runs: dict[str, list[DlioRun]] = {}
    for number, load in enumerate(loads):
        data_dir = data_root / f"{MODEL}-{load.files}"
        print(f"    {load.label}: data {ensure_dataset(LAUNCH, data_dir, load.files, work, base_env())}", flush=True)
        folder = work / f"runs-{number}"
        dlio_run(data_dir, load, folder / "warm-up", False, work)
        mine = runs[load.label] = []
        print(f"      {'pair':<5} {'kind':<9} {'wall s':>7} {'CPU s':>7} {'own s':>6} {'bench s':>8} {'results s':>9} "
              f"{'AU %':>8} {'samples/s':>10} {'events':>8}")
        for i in range(1, repeat + 1):
            for traced in (i % 2 == 1, i % 2 == 0):  # traced first in odd pairs, second in even ones
                run = dlio_run(data_dir, load, folder / f"{i}-{'traced' if traced else 'untraced'}", traced, work)
                mine.append(run)
                print(f"      {i:<5} {'traced' if traced else 'untraced':<9} {run.wall_s:>7.2f} {run.cpu_s:>7.2f} "
                      f"{run.launcher_cpu_s:>6.2f} "
                      f"{run.benchmark_s:>8.2f} {run.processing_s:>9.3f} {run.au:>8.3f} {run.throughput:>10.3f} "
                      f"{run.events:>8}", flush=True)
        medians = {kind: {attr: statistics.median(getattr(r, attr) for r in mine if r.traced == kind)
                          for attr in COMPARED} for kind in (True, False)}
        for attr, label in COMPARED.items():
            t, u = medians[True][attr], medians[False][attr]
            ratio = f"{t / u:.4f}" if u else "-"
            print(f"      median {label:<20} traced {t:9.3f}  untraced {u:9.3f}  ratio {ratio}")
        ranks = {kind: statistics.median(r.cpu_s - r.launcher_cpu_s for r in mine if r.traced == kind)
                 for kind in (True, False)}
        events = statistics.median(r.events for r in mine if r.traced)
        print(f"      CPU of mpirun and the ranks, traced - untraced (medians): {ranks[True] - ranks[False]:+.2f} s, "
              f"{(ranks[True] - ranks[False]) / events * 1e6:.0f} us per traced event")
    return runs


LOADS = {"16": Workload("16 files (the quickstart's)", 16), "160": Workload("160 files", 160),
         "160-no-compute": Workload("160 files, no computation", 160, ("train.computation_time=0",))}
COMPARED = {"au": "AU %", "throughput": "samples/s", "wall_s": "wall s", "cpu_s": "CPU s",
            "launcher_cpu_s": "launcher's CPU s",
            "benchmark_s": "Running benchmark s", "processing_s": "Processing results s"}


# ----- (c) 'Processing results' for a one-hour run ---------------------------------------
def processing_share(runs: dict[str, list[DlioRun]], rate: float) -> None:
    for label, kind in runs.items():
        traced = [r for r in kind if r.traced]
        per_s = statistics.median(r.events / r.run_s for r in traced)
        grew = (statistics.median(r.processing_s for r in traced)
                - statistics.median(r.processing_s for r in kind if not r.traced))
        seconds = per_s * 3600 / rate
        print(f"    {label}: 'Processing results' {grew * 1000:+.0f} ms traced (median), for "
              f"{statistics.median(r.events for r in traced):,.0f} events; {per_s:,.0f} events per second of run -> "
              f"{per_s * 3600:,.0f} in an hour, read in {seconds:.1f} s = {seconds / 36:.2f} % of the hour")
    print(f"    the 10 % bound: a run may make up to {rate * 0.1:,.0f} events per second (all ranks)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="events of the synthetic trace (default 1 M)")
    parser.add_argument("--ranks", type=int, default=4, help="ranks of the multi-rank trace (default 4)")
    parser.add_argument("--repeat", type=int, default=3, help="traced/untraced pairs per size (default 3)")
    parser.add_argument("--quick", action="store_true", help="200k events, one pair, the 16-file run only")
    parser.add_argument("--loads", default="16,160",
                        help="DLIO runs, of " + ", ".join(LOADS) + " (default 16,160; 160-no-compute: "
                             "train.computation_time=0, the tracer's cost where waiting does not hide it)")
    parser.add_argument("--skip-reading", action="store_true")
    parser.add_argument("--skip-dlio", action="store_true")  # the tracer's cost and the DLIO runs
    parser.add_argument("--data-dir", type=Path, default=None, help="where the data sets are (made if missing)")
    parser.add_argument("--work-dir", type=Path, default=None, help="where traces and runs go (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the work dir")
    parser.add_argument("--case", nargs=2, metavar=("NAME", "PATH"), help=argparse.SUPPRESS)
    parser.add_argument("--tracer-case", metavar="DIR", help=argparse.SUPPRESS)
    if sys.argv[1:2] == ["--launcher"]:
        return run_launcher(sys.argv[2:])
    args = parser.parse_args()
    if args.case:
        return run_case(args.case[0], Path(args.case[1]))
    if args.tracer_case:
        return run_tracer_case(Path(args.tracer_case))
    events, repeat, names = (200_000, 1, "16") if args.quick else (args.events, args.repeat, args.loads)
    loads = [LOADS[name] for name in names.split(",")]

    work = Path(tempfile.mkdtemp(prefix="mlpstorage-iotrace-", dir=args.work_dir)).absolute()
    rate = None
    try:
        if not args.skip_reading:
            start = time.perf_counter()
            folders = make_traces(work / "traces", events, args.ranks)
            size = (folders["one"] / "trace-0-of-1.pfw").stat().st_size
            gz_size = (folders["gz"] / "trace-0-of-1.pfw.gz").stat().st_size
            print(f"(a) reading {events:,} events ({size / 1e6:.0f} MB, gzip {gz_size / 1e6:.0f} MB; "
                  f"made in {time.perf_counter() - start:.0f} s), CPU of one process per case")
            results = reading(folders, args.ranks)
            rate = next(r.units / r.cpu_s for r in results if r.name == "summarise()")
        if not args.skip_dlio:
            print(f"(b) the tracer's cost per call: {CALLS:,} lseek+read pairs (two events) and {CALLS:,} "
                  "function events in one process, CPU per pair / event (best of 3)")
            tracer_per_call(work)
            print("    DLIO traced / untraced")
            runs = tracer_cost(work, (args.data_dir or work / "data").absolute(), loads, repeat)
            if rate:
                print(f"(c) 'Processing results' at {rate / 1e6:.2f} M events/s (summarise(), 1 rank)")
                processing_share(runs, rate)
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
