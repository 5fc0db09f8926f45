"""The command line: parses arguments, chooses renderers, runs, and turns errors into one
line and an exit code. Heavy imports (Rich, OpenTelemetry) happen only once a command runs,
so `mlpstorage --help` starts fast."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
from pathlib import Path

from . import __version__
from .errors import MlpStorageError, Terminated, UsageError

RENDER_HELP = (
    "how to show the run: auto, rich, plain, jsonl, otlp or none; several with commas "
    "(e.g. rich,otlp). auto = rich on an interactive terminal, else plain, plus otlp when "
    "OTEL_EXPORTER_OTLP_ENDPOINT is set. Default: $MLPSTORAGE_RENDER or auto"
)

EPILOG = """\
render modes:
  rich   live display on stderr: current stage, bar, elapsed time, a row per spinner;
         log lines and program output scroll above it; a summary stays at the end
  plain  one line per event for logs and batch jobs:
         <timestamp> <LEVEL> [<i>/<N> <stage>] <message>
  jsonl  one JSON object per event on stdout (schema in the README)
  otlp   spans to a tracing backend (OTEL_EXPORTER_OTLP_* variables)
  none   nothing on screen
Every run also writes its events to events.jsonl in its results directory.

exit codes: 0 ok, 1 the benchmark failed, 2 bad usage or environment,
            130 interrupted (Ctrl-C), 143 terminated (SIGTERM)
"""


class _Parser(argparse.ArgumentParser):
    """Bad usage is one line and exit code 2, never a usage dump or a traceback."""

    def error(self, message: str):
        raise UsageError(f"{message} (see '{self.prog} --help')")


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be greater than 0")
    return value


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be a whole number of at least 1")
    return int(text)


def _display_options() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("display")
    group.add_argument("--render", metavar="R", default=os.environ.get("MLPSTORAGE_RENDER", "auto"), help=RENDER_HELP)
    group.add_argument("--events-file", metavar="PATH", type=Path, help="also write the JSON lines event stream to PATH")
    group.add_argument("--heartbeat", metavar="SECONDS", type=_positive_float, default=30.0,
                       help="plain mode: print a 'still running' line at this interval while a stage runs (default 30)")
    return parent


def _run_options() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("run")
    group.add_argument("--results-dir", "-rd", metavar="DIR", type=Path, default=Path("results"),
                       help="where runs are kept: DIR/<benchmark>/<model>/<command>/<YYYYMMDD_HHMMSS>/ (default ./results)")
    group.add_argument("--hosts", "-s", metavar="HOST[:SLOTS]", nargs="+", default=["localhost"],
                       help="client hosts (default localhost)")
    group.add_argument("--cluster-collection", choices=["auto", "local", "ssh", "none"], default="auto",
                       help="how host information is collected (default auto: local for this host, else ssh)")
    group.add_argument("--skip-timeseries", action="store_true", help="do not sample /proc counters during the run")
    group.add_argument("--timeseries-interval", metavar="SECONDS", type=_positive_float, default=10.0,
                       help="seconds between time-series samples (default 10)")
    group.add_argument("--max-timeseries-samples", metavar="N", type=_positive_int, default=3600,
                       help="stop sampling after N samples (default 3600)")
    return parent


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="mlpstorage",
        description="Run the MLPerf Storage benchmark with its whole lifecycle observable: "
        "a live display, plain log lines, JSON lines and OpenTelemetry traces from one event stream.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"mlpstorage {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True

    exec_parser = commands.add_parser(
        "exec",
        parents=[_run_options(), _display_options()],
        help="run any program under the benchmark lifecycle",
        description="Run PROGRAM under the full lifecycle (validation, cluster info, run, results), "
        "with its output passed through unchanged and kept in the results directory.",
        epilog="example: mlpstorage exec --render plain -- dd if=/dev/zero of=/tmp/x bs=1M count=100",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    exec_parser.add_argument("program", metavar="PROGRAM", help="the program to run (after --)")
    exec_parser.add_argument("program_args", metavar="ARGS", nargs=argparse.REMAINDER, help="its arguments")
    exec_parser.set_defaults(handler=_cmd_exec)

    events = commands.add_parser("events", help="work with recorded event streams")
    events_commands = events.add_subparsers(dest="events_command", metavar="ACTION", parser_class=_Parser)
    events_commands.required = True
    replay = events_commands.add_parser(
        "replay",
        parents=[_display_options()],
        help="feed a recorded events.jsonl through any renderer",
        description="Render a recorded events.jsonl again: as plain lines, JSON lines, a rich summary, or "
        "exported over OTLP with its original timestamps and trace ids (for batch jobs that had no "
        "network to the tracing backend).",
    )
    replay.add_argument("file", metavar="FILE", type=Path, help="an events.jsonl file")
    replay.set_defaults(handler=_cmd_replay)
    return parser


# ----- renderer selection (the edge: nothing upstream knows which renderers run) ----------
def _make_renderers(args, *, replaying: bool) -> list:
    from renderers import RenderOptions, RenderSpecError, create, resolve

    from .terminal import is_interactive, wants_color

    interactive = is_interactive(sys.stderr)
    try:
        names = resolve(args.render, interactive)
    except RenderSpecError as exc:
        raise UsageError(f"--render: {exc}") from None
    if "rich" in names and not interactive and not replaying:
        raise UsageError("--render rich needs an interactive terminal on stderr (use --render plain, or set TTY_INTERACTIVE=1)")
    options = RenderOptions(
        color=wants_color(sys.stderr),
        heartbeat_s=0 if replaying else args.heartbeat,
        live=not replaying,
    )
    renderers = [create(name, options) for name in names]
    if args.events_file:
        from renderers.jsonl import JsonlRenderer

        try:
            renderers.append(JsonlRenderer.to_file(args.events_file))
        except OSError as exc:
            raise UsageError(f"--events-file {args.events_file}: {exc.strerror}") from None
    return renderers


@contextlib.contextmanager
def _telemetry(args):
    """An emitter wired to the chosen renderers (and to the run's own events.jsonl)."""
    from renderers.jsonl import RunEventsFile

    from .emitter import Emitter, use_emitter

    emitter = Emitter([*_make_renderers(args, replaying=False), RunEventsFile()])
    with use_emitter(emitter):
        try:
            yield emitter
        finally:
            emitter.close()


def _run_options_from(args):
    from .benchmarks.base import RunOptions
    from .hosts import parse_hosts

    return RunOptions(
        results_dir=args.results_dir,
        hosts=[str(h) for h in parse_hosts(args.hosts)],
        cluster_collection=args.cluster_collection,
        skip_timeseries=args.skip_timeseries,
        timeseries_interval=args.timeseries_interval,
        max_timeseries_samples=args.max_timeseries_samples,
    )


# ----- commands ----------------------------------------------------------------------------
def _cmd_exec(args) -> int:
    from .benchmarks.exec import ExecBenchmark

    argv = [args.program, *args.program_args]
    if argv and argv[0] == "--":
        argv = argv[1:]
    if args.program_args[:1] == ["--"]:
        argv = [args.program, *args.program_args[1:]]
    options = _run_options_from(args)
    with _telemetry(args) as emitter:
        ExecBenchmark(options, argv, emitter=emitter).run()
    return 0


def _cmd_replay(args) -> int:
    from .replay import replay_file

    renderers = _make_renderers(args, replaying=True)
    try:
        problems = replay_file(args.file, renderers)
    finally:
        for renderer in renderers:
            renderer.close()
    for problem in problems:
        print(f"mlpstorage: warning: {problem}", file=sys.stderr)
    return 0


# ----- the edge ------------------------------------------------------------------------------
def _raise_terminated(signum, frame):
    raise Terminated()


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        previous = signal.signal(signal.SIGTERM, _raise_terminated)
        try:
            return args.handler(args)
        finally:
            signal.signal(signal.SIGTERM, previous)
    except MlpStorageError as exc:
        print(f"mlpstorage: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("mlpstorage: interrupted", file=sys.stderr)
        return 130
    except Terminated:
        print("mlpstorage: terminated", file=sys.stderr)
        return 143
