"""What an OTLP endpoint that does not answer costs a run, before and after a change, side by side:
the same run with nothing listening on the port (dead) and with a listener that accepts and
never answers (silent), over OTLP/HTTP and gRPC with the default export timeout, and for
scale to a working receiver (oteltest's sinks), alternating in one run (ratios matter; absolute figures move with the machine).

    .venv/bin/python perf/otlp_dead_endpoint.py [--before REV] [--repeat 3]

Every run is `mlpstorage exec --render plain,otlp -- true` (the time series on, so metrics are
exported too), timed from spawn to exit; the same run with `--render plain` is the baseline.
"after" is this checkout; "before" is REV (default: the commit before the logs signal and the
shared close deadline), exported with `git archive` into a temporary folder and run from there.
Printed per case: the median wall time, its excess over the baseline, and the OTLP warnings of
the last run.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # `support`: tests/support

from support.otlp_sink import base_env, exporter_env, quiet_http_log, start_sink  # noqa: E402
from support.ports import free_port  # noqa: E402
from support.silent_server import SilentServer  # noqa: E402

BEFORE = "5707901"  # docs: the I/O metrics in the clusters' metric table (before the logs signal)


def exported_tree(rev: str, into: Path) -> Path:
    """The files of REV under into (git archive: the checkout itself is left alone)."""
    archive = subprocess.run(["git", "-C", str(REPO), "archive", "--format=tar", rev], check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def run_once(tree: Path, results: Path, render: str, env: dict[str, str]) -> tuple[float, list[str]]:
    """Wall seconds of one run of the code in tree, and its OTLP warnings."""
    argv = [sys.executable, "-m", "mlpstorage", "exec", "--render", render, "--results-dir", str(results), "--",
            "true"]
    started = time.perf_counter()
    done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, cwd=tree,
                          env={**env, "PYTHONPATH": str(tree)})
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} in {tree} exited with {done.returncode}:\n{done.stderr[-2000:]}")
    return wall, [line for line in done.stderr.splitlines() if line.startswith("mlpstorage: warning:") and "OTLP" in line]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default=BEFORE, help=f"the revision to compare with (default {BEFORE})")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each case, alternating (default 3)")
    args = parser.parse_args()

    with contextlib.ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        (work / "before").mkdir()
        trees = {"before": exported_tree(args.before, work / "before"), "after": REPO}
        silent = SilentServer("127.0.0.1")
        stack.callback(silent.stop)
        endpoints = {"dead": f"http://127.0.0.1:{free_port()}", "silent": f"http://127.0.0.1:{silent.port}"}
        cases = {"no OTLP (baseline)": ("plain", base_env())}
        quiet_http_log()
        for protocol in ("http", "grpc"):  # for scale: a receiver that answers
            server, sink = start_sink(protocol)
            stack.callback(server.stop)
            cases[f"working receiver {protocol}"] = ("plain,otlp", sink.env())
        for name, endpoint in endpoints.items():
            for protocol in ("http", "grpc"):
                cases[f"{name} {protocol}"] = ("plain,otlp", exporter_env(endpoint, protocol))

        times = {(tree, case): [] for tree in trees for case in cases}
        warnings: dict[tuple[str, str], list[str]] = {}
        for i in range(args.repeat):
            for case, (render, env) in cases.items():
                for tree, path in trees.items():
                    wall, warnings[tree, case] = run_once(path, work / "results", render, env)
                    times[tree, case].append(wall)
            print(f"    round {i + 1} of {args.repeat} done", flush=True)

    print(f"median of {args.repeat}, wall s (over the baseline)      before             after     warnings before/after")
    for case in cases:
        row = []
        for tree in trees:
            base = statistics.median(times[tree, "no OTLP (baseline)"])
            median = statistics.median(times[tree, case])
            row.append(f"{median:6.2f} ({median - base:+5.2f})")
        counts = "/".join(str(len(warnings[tree, case])) for tree in trees)
        print(f"    {case:<36} {row[0]:>16}  {row[1]:>16}   {counts:>9}")
    for case in cases:
        for line in warnings["after", case]:
            print(f"    after, {case}: {line}")


if __name__ == "__main__":
    main()
