"""How long an OTLP endpoint can hold a run up: the same tiny run exporting to a working
receiver, to a port nothing listens on (dead) and to a listener that never answers (silent),
over OTLP/HTTP and OTLP/gRPC, with the default export timeout and with
OTEL_EXPORTER_OTLP_TIMEOUT=1, measured alternating in one run (ratios matter; absolute
figures move with the machine).

    .venv/bin/python perf/otlp_endpoints.py [--repeat 3]

Every run is `mlpstorage exec --render plain,otlp --skip-timeseries -- true`, timed from
spawn to exit; the same run with `--render plain` (no OTLP) is the baseline. At exit the
launcher waits for the last spans at most the export timeout plus 1 s, then warns once
(renderers/otlp.py); each run's exit code and warnings are checked. Printed: every case's
median wall time and its excess over the baseline.
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # `support`: tests/support

from support.otlp_sink import base_env, exporter_env, quiet_http_log, silent_endpoint, start_sink  # noqa: E402
from support.ports import free_port  # noqa: E402


WARNING = "mlpstorage: warning: OTLP export to "


def run_once(results: Path, render: str, env: dict[str, str]) -> tuple[float, list[str]]:
    """Wall seconds of one run, and its OTLP warnings."""
    argv = [sys.executable, "-m", "mlpstorage", "exec", "--render", render, "--results-dir", str(results),
            "--skip-timeseries", "--", "true"]
    started = time.perf_counter()
    done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited with {done.returncode}:\n{done.stderr[-2000:]}")
    return wall, [line for line in done.stderr.splitlines() if line.startswith(WARNING)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs of each case, alternating (default 3)")
    args = parser.parse_args()

    quiet_http_log()
    dead = f"http://127.0.0.1:{free_port()}"
    with contextlib.ExitStack() as stack:
        silent = stack.enter_context(silent_endpoint())
        receivers = {}
        for protocol in ("http", "grpc"):
            server, receivers[protocol] = start_sink(protocol)
            stack.callback(server.stop)
        # case -> (render, env, warnings expected)
        cases: dict[str, tuple[str, dict[str, str], int]] = {"no OTLP (baseline)": ("plain", base_env(), 0)}
        for protocol in ("http", "grpc"):
            cases[f"{protocol} receiver"] = ("plain,otlp", receivers[protocol].env(), 0)
            for name, endpoint in (("dead", dead), ("silent", silent)):
                for timeout in (None, "1"):
                    timeout_env = {"OTEL_EXPORTER_OTLP_TIMEOUT": timeout} if timeout else {}
                    env = exporter_env(endpoint, protocol, **timeout_env)
                    cases[f"{protocol} {name}, timeout {timeout or 'default'}"] = ("plain,otlp", env, 1)

        times: dict[str, list[float]] = {case: [] for case in cases}
        work = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        for i in range(args.repeat):
            for case, (render, env, expected) in cases.items():
                wall, warnings = run_once(work / f"{i}", render, env)
                if len(warnings) != expected:
                    raise SystemExit(f"{case}: {len(warnings)} OTLP warnings, expected {expected}: {warnings}")
                times[case].append(wall)
            print(f"    round {i + 1} of {args.repeat} done", flush=True)

    base = statistics.median(times["no OTLP (baseline)"])
    print(f"median of {args.repeat}                         wall s   over baseline")
    for case, values in times.items():
        median = statistics.median(values)
        print(f"    {case:<36} {median:>6.2f}   {median - base:+6.2f} s")


if __name__ == "__main__":
    main()
