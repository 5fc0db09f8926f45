"""What the launcher costs before it runs anything, side by side with `python -c pass` of the
same venv in one run (ratios matter; absolute figures move with the machine).

    .venv/bin/python perf/fixed_costs.py [--repeat 11] [--venv .venv] [--pythonpath DIR]

Each case below runs --repeat times, the cases alternating within each round (so a loaded
machine slows them alike), after one unmeasured round that fills a private bytecode cache
(PYTHONPYCACHEPREFIX: every module compiled once, as an installed package ships it, with
nothing written into the checkout or the venv); the figures are medians of wall time and of
the child's CPU time (user+system, from wait4), and of the wall ratio to the same round's
`python -c pass`:

    python -c pass            the interpreter alone (the venv's site, the editable finder included)
    mlpstorage --help         the command tree's help
    training run --help       one command's help (its choices are read from the models)
    exec ... -- true          `mlpstorage exec --render plain --skip-timeseries
                              --cluster-collection none -- true`: a whole run of `true`, its
                              results folder and report.html (the page exists when it returns)
      the same, --skip-page   the same run without its page (in a checkout older than the
                              switch: the page writer stubbed out, so the two compare)
      page modules alone      `python -c "import mlpstorage.reports.page, ...charts"` (Bokeh)
    pytest, plugin            an empty project's one-test session (`pytest -q -p no:cacheprovider`)
    pytest, no plugin         the same with `-p no:mlpstorage`

--pythonpath DIR runs `python -m mlpstorage` with DIR first on PYTHONPATH instead of the venv's
console script: the figures of another checkout (a `git worktree` of an older commit) with the
same venv. Given more than once, the checkouts alternate within each round too and their
figures stand side by side.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXEC_ARGS = ["exec", "--render", "plain", "--skip-timeseries", "--cluster-collection", "none", "--", "true"]
# The run without its page in a checkout older than --skip-page: the page writer stubbed out
NO_PAGE = ("import sys; from mlpstorage.benchmarks.base import Benchmark; Benchmark._write_report = lambda self: None; "
           "from mlpstorage.cli import main; sys.exit(main(sys.argv[1:]))")
EMPTY_TEST = "def test_nothing():\n    assert 1 + 1 == 2\n"


def timed(argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the child and its children) of one run that must succeed."""
    start = time.perf_counter()
    process = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    stderr = process.stderr.read().decode(errors="replace")
    process.stderr.close()
    if process.returncode != 0:
        raise SystemExit(f"{argv} exited {process.returncode}:\n{stderr}")
    return wall, usage.ru_utime + usage.ru_stime


def no_page_run(python: str, launcher: list[str], work: Path, env: dict[str, str]) -> list[str]:
    """`exec --skip-page ...` where the launcher has the switch, else the stubbed run."""
    shown = subprocess.run([*launcher, "exec", "--help"], cwd=work, env=env, capture_output=True, text=True).stdout
    if "--skip-page" in shown:
        return [*launcher, EXEC_ARGS[0], "--skip-page", *EXEC_ARGS[1:]]
    return [python, "-c", NO_PAGE, *EXEC_ARGS]


def cases(python: str, launcher: list[str], work: Path, env: dict[str, str]) -> dict[str, list[str]]:
    return {
        "python -c pass": [python, "-c", "pass"],
        "mlpstorage --help": [*launcher, "--help"],
        "training run --help": [*launcher, "training", "run", "--help"],
        "exec ... -- true": [*launcher, *EXEC_ARGS],
        "  the same, --skip-page": no_page_run(python, launcher, work, env),
        "  page modules alone": [python, "-c", "import mlpstorage.reports.page, mlpstorage.reports.charts"],
        "pytest, plugin": [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_empty.py"],
        "pytest, no plugin": [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:mlpstorage",
                              "test_empty.py"],
    }


def measure(setups: dict[str, dict[str, list[str]]], repeat: int, work: Path) -> dict[str, dict[str, list]]:
    """setups: {label: (env, {case: argv})}; every case of every setup once per round."""
    runs: dict[str, dict[str, list]] = {label: {name: [] for name in commands} for label, (_, commands) in setups.items()}
    for label, (env, commands) in setups.items():  # once each, unmeasured: caches warm for all
        for argv in commands.values():
            timed(argv, work, env)
    for _ in range(repeat):
        for label, (env, commands) in setups.items():
            for name, argv in commands.items():
                runs[label][name].append(timed(argv, work, env))
    return runs


def report(runs: dict[str, dict[str, list]]) -> None:
    print(f"{'':<24}" + "".join(f"{label[-30:]:>32}" for label in runs))
    print(f"{'case':<24}" + f"{'wall ms':>12}{'CPU ms':>10}{'x pass':>10}" * len(runs))
    for name in next(iter(runs.values())):
        row = f"{name:<24}"
        for samples in runs.values():
            wall = statistics.median(w for w, _ in samples[name])
            cpu = statistics.median(c for _, c in samples[name])
            # paired: each run over the same round's `python -c pass`, a load spike shared by both
            ratio = statistics.median(w / p for (w, _), (p, _) in zip(samples[name], samples["python -c pass"]))
            row += f"{wall * 1e3:12.1f}{cpu * 1e3:10.1f}{ratio:10.2f}"
        print(row)


def setup(python: str, venv: Path, checkout: Path | None, work: Path) -> tuple[dict, dict]:
    """(environment, cases) of the venv's own launcher, or of a checkout on PYTHONPATH."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("OTEL_", "MLPSTORAGE_", "MLPERF_")) and k != "PYTHONDONTWRITEBYTECODE"}
    # Compiled bytecode, as an installed package has it, kept apart from the checkout and the venv
    env.update(NO_COLOR="1", TTY_INTERACTIVE="0", MLPERF_RESULTS_DIR=str(work / "results"),
               PYTHONPYCACHEPREFIX=str(work / "pycache"))
    launcher = [str(venv / "bin" / "mlpstorage")]
    if checkout is not None:
        env["PYTHONPATH"] = str(checkout.resolve())
        launcher = [python, "-m", "mlpstorage"]
    return env, cases(python, launcher, work, env)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=11)
    parser.add_argument("--venv", type=Path, default=ROOT / ".venv")
    parser.add_argument("--pythonpath", type=Path, action="append", default=[],
                        help="a checkout to run instead of the venv's launcher (again: several, side by side)")
    args = parser.parse_args()
    python = str(args.venv / "bin" / "python")
    with tempfile.TemporaryDirectory(prefix="fixed-costs-") as work:
        work = Path(work)
        (work / "test_empty.py").write_text(EMPTY_TEST)
        setups = {str(checkout): setup(python, args.venv, checkout, work) for checkout in args.pythonpath} \
            or {"the venv": setup(python, args.venv, None, work)}
        runs = measure(setups, args.repeat, work)
    print(f"{args.repeat} rounds, medians (x pass: of wall / the same round's `python -c pass` wall)")
    report(runs)


if __name__ == "__main__":
    main()
