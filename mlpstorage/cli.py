"""The command line: parses arguments, chooses renderers, runs, and turns errors into one
line and an exit code. Heavy imports (Rich, OpenTelemetry) happen only once a command runs,
so `mlpstorage --help` starts fast."""

from __future__ import annotations

import argparse
import contextlib
import math
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
  auto   rich on an interactive terminal, else plain; plus otlp when an OTLP endpoint is set
  rich   live display on stderr: current stage, bar, elapsed time, a row per spinner;
         log lines and program output scroll above it; a summary stays at the end
  plain  one line per event for logs and batch jobs:
         <timestamp> <LEVEL> [<i>/<N> <stage>] <message>
  jsonl  one JSON object per event on stdout (schema in the README)
  otlp   spans to a tracing backend (OTEL_EXPORTER_OTLP_* variables)
  none   nothing on screen
Every run also writes its events to events.jsonl in its results directory.

exit codes: 0 ok, 1 the benchmark failed (exec: the exit code of PROGRAM, 128+N if signal N killed it),
            2 bad usage or environment, 3 stopped on a stall (--on-stall abort),
            130 interrupted (Ctrl-C), 143 terminated (SIGTERM)
"""


# Sampling and heartbeats faster than this flood the log and measure mostly themselves.
MIN_INTERVAL_S = 0.1


class _Parser(argparse.ArgumentParser):
    """Bad usage is one line and exit code 2, never a usage dump or a traceback. A command's
    parser (one with a handler) reads the --config-file's options first, so that the command
    line's own options, which come after them, win."""

    is_command = False
    config_tokens: list[str] = []  # the --config-file's options as command-line tokens (see _config_tokens)
    config_file: Path | None = None

    def error(self, message: str):
        raise UsageError(f"{message} (see '{self.prog} --help')")

    def set_defaults(self, **kwargs) -> None:
        self.is_command = self.is_command or "handler" in kwargs
        super().set_defaults(**kwargs)

    def parse_known_args(self, args=None, namespace=None):
        if not (self.is_command and _Parser.config_tokens):
            return super().parse_known_args(args, namespace)
        tokens = list(_Parser.config_tokens)
        namespace, extras = super().parse_known_args(tokens + list(args or []), namespace)
        unknown = [t for t in extras if t in tokens and t.startswith("-")]
        if unknown:
            raise UsageError(f"--config-file {_Parser.config_file}: {', '.join(unknown)} is not an option of "
                             f"'{self.prog}' (see '{self.prog} --help')")
        return namespace, extras


def _config_tokens(argv: list[str]) -> tuple[Path | None, list[str]]:
    """The --config-file named in argv (before any '--') and its options as tokens:
    'hosts: [a, b]' -> --hosts a b; 'skip-timeseries: true' -> --skip-timeseries;
    'params: {reader.batch_size: 2}' -> --params reader.batch_size=2."""
    head = argv[: argv.index("--")] if "--" in argv else argv
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config-file", type=Path)
    path = pre.parse_known_args(head)[0].config_file
    if path is None:
        return None, []
    import yaml

    try:
        config = yaml.safe_load(path.read_text()) or {}
    except OSError as exc:
        raise UsageError(f"--config-file {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise UsageError(f"--config-file {path}: not YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(config, dict):
        raise UsageError(f"--config-file {path}: expected a mapping of option names to values")
    tokens: list[str] = []
    for key, value in config.items():
        flag = "--" + str(key).lstrip("-").replace("_", "-")
        if flag == "--config-file":
            raise UsageError(f"--config-file {path}: a config file cannot name another")
        if value is True:
            tokens.append(flag)
        elif value is False or value is None:
            continue
        elif isinstance(value, dict):
            tokens += [flag, *(f"{k}={v}" for k, v in value.items())]
        elif isinstance(value, list):
            tokens += [flag, *map(str, value)]
        else:
            tokens += [flag, str(value)]
    return path, tokens


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be a number greater than 0")
    return value


def _interval(text: str) -> float:
    value = _positive_float(text)
    if value < MIN_INTERVAL_S:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least {MIN_INTERVAL_S} seconds")
    return value


def _port(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port (1-65535)")
    return int(text)


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be a whole number of at least 1")
    return int(text)


LOG_LEVELS = ("debug", "info", "status", "warning", "error")


def _global_options(top: bool) -> argparse.ArgumentParser:
    """Options every command takes, before or after the command's name. The top-level parser
    holds the defaults; a command's own copy has none (SUPPRESS), so it only overrides what
    is given after the command."""

    def default(value):
        return value if top else argparse.SUPPRESS

    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("global options (before or after the command)")
    group.add_argument("--render", metavar="R", default=default(os.environ.get("MLPSTORAGE_RENDER", "auto")),
                       help=RENDER_HELP)
    group.add_argument("--results-dir", "-rd", metavar="DIR", type=Path,
                       default=default(Path(os.environ.get("MLPERF_RESULTS_DIR") or "results")),
                       help="where runs are kept: DIR/<benchmark>/<model>/<command>/<YYYYMMDD_HHMMSS>/ "
                       "(default: $MLPERF_RESULTS_DIR, else ./results)")
    group.add_argument("--events-file", metavar="PATH", type=Path, default=default(None),
                       help="also write the JSON lines event stream to PATH")
    group.add_argument("--heartbeat", metavar="SECONDS", type=_interval, default=default(30.0),
                       help="plain mode: print a 'still running' line at this interval while a stage runs (default 30)")
    group.add_argument("--verbose", "-v", action="store_true", default=default(False),
                       help="also show debug messages (the exact commands run, for example)")
    group.add_argument("--debug", action="store_true", default=default(False),
                       help="--verbose, plus the debug logging of the libraries mlpstorage runs in-process")
    group.add_argument("--stream-log-level", metavar="LEVEL", choices=LOG_LEVELS, default=default(None),
                       help=f"the least level of message shown on the terminal: {', '.join(LOG_LEVELS)} (default info, "
                       "debug with --verbose/--debug); stage lines, errors and results always show")
    group.add_argument("--config-file", metavar="FILE", type=Path, default=default(None),
                       help="a YAML file of option defaults (e.g. 'hosts: [node1, node2]', 'results-dir: /data/r'); "
                       "options on the command line win")
    return parent


def _add_params(parser) -> None:
    parser.add_argument("--params", "-p", metavar="KEY=VALUE", nargs="+", action="extend", default=[],
                        help="DLIO workload overrides, e.g. -p reader.batch_size=2 train.epochs=1 "
                        "(keys DLIO 2.0.0 reads; values reach DLIO as given, ${...} included)")
    parser.add_argument("--allow-invalid-params", action="store_true",
                        help="pass a --params key DLIO 2.0.0 does not read anyway, with a warning")


def _dlio_options() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("DLIO and MPI")
    _add_params(group)
    group.add_argument("--what-if", action="store_true",
                       help="print the exact command and the resolved configuration, run nothing")
    group.add_argument("--mpi-bin", choices=["mpirun", "mpiexec", "srun"], default="mpirun",
                       help="MPI launcher (default mpirun; srun --mpi=pmix inside a Slurm allocation)")
    group.add_argument("--oversubscribe", action="store_true", default=None,
                       help="allow more ranks than cores (default: when the ranks outnumber this machine's cores)")
    group.add_argument("--allow-run-as-root", action="store_true", default=None,
                       help="let mpirun run as root (default: when running as root)")
    group.add_argument("--map-by", choices=["node", "socket"], default="socket", help="rank placement (default socket)")
    division = group.add_mutually_exclusive_group()
    division.add_argument("--closed", dest="division", action="store_const", const="closed", default=None,
                          help="stop before anything runs unless the run would be CLOSED (MLPerf Storage's rules; "
                          "the reasons in one line, exit code 2)")
    division.add_argument("--open", dest="division", action="store_const", const="open",
                          help="stop before anything runs if the run would be INVALID (unless --allow-invalid-params). "
                          "Without --closed or --open the verdict is a warning")
    return parent


def _run_options() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("run")
    group.add_argument("--hosts", "-s", metavar="HOST[:SLOTS]", nargs="+", default=None,
                       help="client hosts (default: inside a Slurm job, the allocation's nodes with their task "
                       "counts; else localhost)")
    group.add_argument("--cluster-collection", choices=["auto", "local", "ssh", "mpi", "none"], default="auto",
                       help="how host information is collected (default auto: local when the only host is this one, "
                       "else mpi for DLIO workloads and ssh for exec)")
    ssh = parent.add_argument_group("SSH (cluster information and time series from other hosts)")
    ssh.add_argument("--ssh-user", metavar="USER", help="remote user (default: ssh's own default)")
    ssh.add_argument("--ssh-port", metavar="PORT", type=_port, help="remote port")
    ssh.add_argument("--ssh-identity", metavar="FILE", type=Path, help="private key file (ssh -i)")
    ssh.add_argument("--ssh-config", metavar="FILE", type=Path, help="an ssh_config file (ssh -F)")
    ssh.add_argument("--ssh-timeout", metavar="SECONDS", type=_interval, default=10.0,
                     help="per host: connect and collect within this time (default 10)")
    group.add_argument("--skip-timeseries", action="store_true", help="do not sample /proc counters during the run")
    group.add_argument("--metrics-port", metavar="PORT", type=_port, default=None,
                       help="serve the time series as Prometheus metrics on this port while the run lasts "
                       "(on $OTEL_EXPORTER_PROMETHEUS_HOST, default localhost)")
    group.add_argument("--timeseries-interval", metavar="SECONDS", type=_interval, default=10.0,
                       help="seconds between time-series samples (default 10)")
    group.add_argument("--max-timeseries-samples", metavar="N", type=_positive_int, default=3600,
                       help="stop sampling after N samples (default 3600)")
    stalls = parent.add_argument_group("stalls (see 'When a run hangs' in the README)")
    stalls.add_argument("--stall-timeout", metavar="SECONDS", type=_stall_timeout, default=None,
                        help="flag a rank with no step, or the whole job with no step, output or I/O, for this long "
                        "(default: 20 steps' computation time or a tenth of an epoch, within 60-600 s; 300 for "
                        "checkpointing, 120 for exec; 0: off)")
    stalls.add_argument("--on-stall", choices=["warn", "dump", "abort"], default="warn",
                        help="on a stall: warn (a warning line and a highlighted row), dump (also record the stalled "
                        "processes' Python stacks and /proc state into stalls/ in the run's directory), abort (dump, "
                        "then stop the job: exit code 3) (default warn)")
    return parent


def _stall_timeout(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if value != 0 and not 1 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} must be 0 (off) or at least 1 second")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="mlpstorage",
        description="Run the MLPerf Storage benchmark with its whole lifecycle observable: "
        "a live display, plain log lines, JSON lines and OpenTelemetry traces from one event stream.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[_global_options(top=True)],
    )
    parser.add_argument("--version", action="version", version=f"mlpstorage {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True

    exec_parser = commands.add_parser(
        "exec",
        parents=[_run_options(), _global_options(top=False)],
        help="run any program under the benchmark lifecycle",
        description="Run PROGRAM under the full lifecycle (validation, cluster info, run, results), "
        "with its output passed through unchanged and kept in the results directory.",
        epilog="PROGRAM runs on this host; --hosts only says whose information and time series to collect.\n"
        "example: mlpstorage exec --render plain -- dd if=/dev/zero of=/tmp/x bs=1M count=100",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    exec_parser.add_argument("program", metavar="PROGRAM", help="the program to run (after --)")
    exec_parser.add_argument("program_args", metavar="ARGS", nargs=argparse.REMAINDER, help="its arguments")
    exec_parser.set_defaults(handler=_cmd_exec)

    _add_training(commands)
    _add_checkpointing(commands)
    _add_reports(commands)

    events_commands = _command_group(commands, "events", "events_command", help="work with recorded event streams")
    replay = events_commands.add_parser(
        "replay",
        parents=[_global_options(top=False)],
        help="feed a recorded events.jsonl through any renderer",
        description="Render a recorded events.jsonl again: as plain lines, JSON lines, a rich summary, or "
        "exported over OTLP with its original timestamps and trace ids (for batch jobs that had no "
        "network to the tracing backend).",
    )
    replay.add_argument("file", metavar="FILE", type=Path, help="an events.jsonl file")
    replay.set_defaults(handler=_cmd_replay)

    return parser


def _command_group(commands, name: str, dest: str, **kwargs):
    """`mlpstorage NAME ACTION ...`: the group's parser, whose actions (returned) are its subcommands."""
    group = commands.add_parser(name, **kwargs)
    actions = group.add_subparsers(dest=dest, metavar="ACTION", parser_class=_Parser)
    actions.required = True
    return actions


def _add_report_pages(actions) -> None:
    """`reports html`, `reports show` and `reports compare`, on the reports group's subparsers."""
    run_help = "a run's results folder, or a recording (events.jsonl) alone"
    page = actions.add_parser(
        "html", parents=[_global_options(top=False)], help="write a run's page (report.html)",
        description="Write a run's page: one self-contained HTML file that opens offline (what ran, the verdict, "
        "the metrics against their targets, the timeline, the time series, the cluster, the files). Every run "
        "writes its own during 'Processing results'; this makes one for any earlier run or recording.")
    page.add_argument("run", metavar="RUN", type=Path, help=run_help)
    page.add_argument("--output", "-o", metavar="FILE", type=Path,
                      help="where to write it (default: RUN/report.html; for a recording, NAME.report.html beside it)")
    page.set_defaults(handler=_cmd_reports_html)

    show = actions.add_parser(
        "show", parents=[_global_options(top=False)], help="a run's essentials in the terminal",
        description="What ran, the verdict, the stages, epochs and checkpoints as bars with their durations, the "
        "metrics against their targets, and read/write sparklines per host. Plain text when piped.")
    show.add_argument("run", metavar="RUN", type=Path, help=run_help)
    show.set_defaults(handler=_cmd_reports_show)

    compare = actions.add_parser(
        "compare", parents=[_global_options(top=False)], help="runs side by side, with the change from the first",
        description="Metrics, stage durations, epochs and time-series means of two or more runs side by side, "
        "with each run's change from the first (A); --html also writes a page with their time series overlaid.")
    compare.add_argument("runs", metavar="RUN", type=Path, nargs="+", help=run_help + " (two or more)")
    compare.add_argument("--html", metavar="FILE", type=Path, help="also write a page with the time series overlaid")
    compare.set_defaults(handler=_cmd_reports_compare)


def _add_training(commands) -> None:
    from .models import ACCELERATORS, TRAINING_MODELS

    actions = _command_group(commands, "training", "action", help="MLPerf Storage training workloads (DLIO)",
                             description="Training workloads: unet3d (pytorch), resnet50 and cosmoflow "
                             "(tensorflow). Typical order: datasize, datagen, run.")

    def model_args(parser, *, accelerator=True):
        parser.add_argument("--model", "-m", required=True, choices=TRAINING_MODELS, help="the workload")
        if accelerator:
            parser.add_argument("--accelerator-type", "-g", choices=ACCELERATORS, default="h100",
                                help="simulated accelerator (default h100)")

    datasize = actions.add_parser("datasize", parents=[_global_options(top=False)],
                                  help="how many files a run needs, and the datagen command to make them",
                                  description="Apply MLPerf Storage's data size rule: the data set must be 5x the "
                                  "client memory and cover 500 steps of every accelerator.")
    model_args(datasize)
    datasize.add_argument("--max-accelerators", "-ma", type=_positive_int, required=True,
                          help="the most accelerators you will simulate")
    datasize.add_argument("--client-host-memory-in-gb", "-cm", type=_positive_float, required=True,
                          help="memory per client host, GiB")
    datasize.add_argument("--num-client-hosts", "-nc", type=_positive_int, default=1, help="client hosts (default 1)")
    datasize.add_argument("--data-dir", "-dd", type=Path, default=Path("data"), help="for the datagen command shown")
    _add_params(datasize)
    datasize.set_defaults(handler=_cmd_datasize)

    datagen = actions.add_parser("datagen", parents=[_run_options(), _dlio_options(), _global_options(top=False)],
                                 help="generate the data set with DLIO")
    model_args(datagen, accelerator=False)
    datagen.add_argument("--data-dir", "-dd", type=Path, required=True, help="where the data set goes")
    datagen.add_argument("--num-processes", "-np", type=_positive_int, default=1, help="MPI ranks (default 1)")
    datagen.set_defaults(handler=_cmd_training, processes_flag="num_processes")

    run = actions.add_parser("run", parents=[_run_options(), _dlio_options(), _global_options(top=False)],
                             help="run the training benchmark with DLIO")
    model_args(run)
    run.add_argument("--data-dir", "-dd", type=Path, required=True, help="the generated data set")
    run.add_argument("--num-accelerators", "-na", type=_positive_int, default=1,
                     help="simulated accelerators = MPI ranks (default 1)")
    run.add_argument("--loops", type=_positive_int, default=1, help="run the benchmark this many times (default 1)")
    run.set_defaults(handler=_cmd_training, processes_flag="num_accelerators")

    configview = actions.add_parser("configview", parents=[_global_options(top=False)],
                                    help="print the workload configuration DLIO would get")
    model_args(configview)
    _add_params(configview)
    configview.add_argument("--datagen", action="store_true", help="the datagen workload instead of the run workload")
    configview.set_defaults(handler=_cmd_configview)


def _add_checkpointing(commands) -> None:
    from .models import LLAMA3

    actions = _command_group(commands, "checkpointing", "action", help="MLPerf Storage checkpointing workloads (DLIO)",
                             description="Checkpointing workloads: llama3 checkpoints written by DLIO "
                             "2.0.0. Typical order: datasize, run.")

    def model_args(parser, *, folder_help: str, folder_required: bool = False):
        parser.add_argument("--model", "-m", required=True, choices=list(LLAMA3),
                            help="the model whose checkpoints are written")
        parser.add_argument("--num-processes", "-np", type=_positive_int, default=None,
                            help="MPI ranks (default: the model's closed-division count)")
        parser.add_argument("--num-checkpoints", type=_positive_int, default=10, help="checkpoints to write (default 10)")
        parser.add_argument("--checkpoint-folder", "-cf", type=Path, required=folder_required,
                            default=None if folder_required else Path("checkpoints"), help=folder_help)

    run = actions.add_parser(
        "run", parents=[_run_options(), _dlio_options(), _global_options(top=False)],
        help="write llama3 checkpoints with DLIO 2.0.0",
        description="Write llama3 checkpoints (fp16 model + fp32 optimizer, ZeRO stage 3: every rank writes its "
        "shard) at the end of each epoch of a minimal DLIO 2.0.0 training loop. Closed-division process counts: "
        + ", ".join(f"{name} {arch.closed_processes}" for name, arch in LLAMA3.items()) + ".",
    )
    model_args(run, folder_required=True, folder_help="where checkpoints are written: the storage under test "
               "(they are kept; llama3-8b writes 105 GiB per checkpoint)")
    run.set_defaults(handler=_cmd_checkpointing)

    datasize = actions.add_parser(
        "datasize", parents=[_global_options(top=False)],
        help="how much a run writes, and whether it beats the client memory",
        description="The size of a checkpoint (parameters x 14 bytes) per rank and in total, the disk space "
        "the checkpoints take, and MLPerf Storage's rule that the part of a checkpoint each client host "
        "writes must exceed the host's memory (so the page cache cannot hold it).")
    model_args(datasize, folder_help="for the run command shown (default ./checkpoints)")
    datasize.add_argument("--client-host-memory-in-gb", "-cm", type=_positive_float, required=True,
                          help="memory per client host, GiB")
    datasize.add_argument("--num-client-hosts", "-nc", type=_positive_int, default=1, help="client hosts (default 1)")
    datasize.set_defaults(handler=_cmd_checkpointing_datasize)

    configview = actions.add_parser("configview", parents=[_global_options(top=False)],
                                    help="print the workload configuration DLIO would get")
    model_args(configview, folder_help="the checkpoint folder it names (default ./checkpoints)")
    _add_params(configview)
    configview.set_defaults(handler=_cmd_checkpointing_configview)


def _add_reports(commands) -> None:
    """`mlpstorage reports ACTION`: each kind of report adds its actions to `actions`."""
    actions = _command_group(commands, "reports", "report_action", help="verdicts and reports over a results directory",
                             description="Reports over the runs in a results directory (mlpstorage's own and "
                             "the existing launcher's v2.0 layout).")
    reportgen = actions.add_parser(
        "reportgen", parents=[_global_options(top=False)],
        help="every run's verdict and metrics: results.json, results.csv, index.html and a table",
        description="Walk --results-dir and judge every run (CLOSED, OPEN or INVALID, with reasons); group the runs "
        "into submission candidates and check the submission guidelines no launcher checks; write results.json "
        "and results.csv (the existing launcher's record keys, plus category and issues) and index.html into "
        "--output-dir; print a table (Rich on a terminal, plain text when piped).",
        epilog="A datasize/ folder, or a run folder without DLIO's summary.json, is skipped with one warning line.",
    )
    reportgen.add_argument("--output-dir", "-od", metavar="DIR", type=Path, default=None,
                           help="where results.json, results.csv and index.html go (default: the results directory)")
    reportgen.set_defaults(handler=_cmd_reportgen)
    _add_report_pages(actions)  # html, show, compare


# ----- renderer selection (the edge: nothing upstream knows which renderers run) ----------
def _stream_level(args) -> str:
    """--stream-log-level, else debug with --verbose or --debug, else info."""
    return args.stream_log_level or ("debug" if args.verbose or args.debug else "info")


def _make_renderers(args, *, replaying: bool) -> list:
    from renderers import RenderOptions, RenderSpecError, create, metrics_exporters, resolve

    from .terminal import is_interactive, wants_color

    interactive = is_interactive(sys.stderr)
    try:
        names = resolve(args.render, interactive)
    except RenderSpecError as exc:
        raise UsageError(f"--render: {exc}") from None
    if "rich" in names and not interactive and not replaying:
        raise UsageError("--render rich needs an interactive terminal on stderr (use --render plain, or set TTY_INTERACTIVE=1)")
    metrics_port = getattr(args, "metrics_port", None)
    if not replaying and "prometheus" not in names and (metrics_port or "prometheus" in metrics_exporters()):
        names.append("prometheus")  # a scrape endpoint while the run lasts
    options = RenderOptions(
        min_level=_stream_level(args),
        color=wants_color(sys.stderr),
        heartbeat_s=0 if replaying else args.heartbeat,
        live=not replaying,
        metrics_port=metrics_port,
    )
    renderers = [create(name, options) for name in names]
    if args.events_file:
        from renderers.jsonl import JsonlRenderer

        renderers.append(JsonlRenderer.to_file(args.events_file))
    return renderers


@contextlib.contextmanager
def _telemetry(args):
    """An emitter wired to the chosen renderers (each run attaches its own events.jsonl)."""
    from .emitter import Emitter, use_emitter

    import logging

    emitter = Emitter(_make_renderers(args, replaying=False))
    root = logging.getLogger()
    level = root.level
    if args.debug:  # the libraries mlpstorage runs in-process log into the stream too
        root.setLevel(logging.DEBUG)
    with use_emitter(emitter):
        try:
            yield emitter
        finally:
            root.setLevel(level)
            # Any span a signal left open ends as what happened, before the renderers close.
            stopping = sys.exc_info()[1]
            reason = {Terminated: "terminated", KeyboardInterrupt: "interrupted"}.get(type(stopping), "interrupted")
            emitter.close(reason)


def _default_hosts() -> list[str]:
    from .slurm import allocation_hosts, job_id

    return allocation_hosts() if job_id() else ["localhost"]


def _run_options_from(args):
    from .benchmarks.base import RunOptions
    from .collectors.ssh import SshOptions
    from .hosts import parse_hosts

    for flag in ("ssh_identity", "ssh_config"):
        path = getattr(args, flag)
        if path is not None and not path.is_file():
            raise UsageError(f"--{flag.replace('_', '-')} {path}: no such file")
    ssh = SshOptions(user=args.ssh_user, port=args.ssh_port, timeout_s=args.ssh_timeout,
                     identity=str(args.ssh_identity) if args.ssh_identity else None,
                     config=str(args.ssh_config) if args.ssh_config else None)
    data_dir = getattr(args, "data_dir", None) or getattr(args, "checkpoint_folder", None)
    return RunOptions(
        ssh=ssh,
        mpi=_mpi_options_from(args),
        data_dir=str(Path(data_dir).absolute()) if data_dir else None,
        results_dir=args.results_dir,
        hosts=[str(h) for h in parse_hosts(args.hosts or _default_hosts())],
        cluster_collection=args.cluster_collection,
        skip_timeseries=args.skip_timeseries,
        timeseries_interval=args.timeseries_interval,
        max_timeseries_samples=args.max_timeseries_samples,
        stall_timeout_s=args.stall_timeout,
        on_stall=args.on_stall,
    )


# ----- commands ----------------------------------------------------------------------------
def _cmd_exec(args) -> int:
    from .benchmarks.exec import ExecBenchmark

    # argparse leaves the "--" that separates PROGRAM from mlpstorage's own options in place
    argv = [args.program, *args.program_args]
    if argv[0] == "--":
        argv = argv[1:]
    if not argv:
        raise UsageError("no PROGRAM given after -- (see 'mlpstorage exec --help')")
    options = _run_options_from(args)
    with _telemetry(args) as emitter:
        ExecBenchmark(options, argv, emitter=emitter).run()
    return 0


def _mpi_options_from(args):
    from .engines.mpi import MpiOptions

    if not hasattr(args, "mpi_bin"):  # exec: MPI only for --cluster-collection mpi, with defaults
        return MpiOptions()
    return MpiOptions(mpi_bin=args.mpi_bin, oversubscribe=args.oversubscribe,
                      allow_run_as_root=args.allow_run_as_root, map_by=args.map_by)


def _params_from(args) -> dict[str, str]:
    """--params, every key one DLIO 2.0.0 reads; with --allow-invalid-params, another is
    passed on with a warning line."""
    from .workloads import check_params, parse_params

    params = parse_params(args.params)
    for warning in check_params(params, allow_invalid=args.allow_invalid_params):
        print(f"mlpstorage: warning: {warning}", file=sys.stderr)
    return params


def _dlio_options_from(args, processes: int):
    from .benchmarks.dlio import DlioOptions

    return DlioOptions(
        processes=processes,
        accelerator=getattr(args, "accelerator_type", "h100"),
        params=_params_from(args),
        division=getattr(args, "division", None),
        allow_invalid=args.allow_invalid_params,
    )


def _what_if(benchmark) -> int:
    import shlex

    import yaml

    print("# command")
    print(shlex.join(benchmark.shown_command()))
    print("# resolved configuration (workload " + benchmark.workload + ")")
    print(yaml.safe_dump(benchmark.shown_config(), sort_keys=False).rstrip())
    if benchmark.is_judged():
        # as far as it is known without collecting anything from other hosts
        verdict = benchmark.verdict(benchmark.launch_memory(collect=False))
        print(f"# verdict at launch: {verdict.category}")
        for reason in verdict.reasons:
            print(f"#   {reason}")
    return 0


def _run_benchmarks(args, make) -> int:
    """Runs make(emitter) --loops times (once unless asked), or prints it with --what-if."""
    if args.what_if:
        from .emitter import Emitter

        return _what_if(make(Emitter()))
    with _telemetry(args) as emitter:
        for _ in range(getattr(args, "loops", 1)):
            make(emitter).run()
    return 0


def _cmd_training(args) -> int:
    from .benchmarks.training import TrainingBenchmark

    if args.action == "datagen" and args.division:
        raise UsageError(f"--{args.division}: datagen gets no verdict; only runs are judged "
                         "(training run, checkpointing run)")
    options = _run_options_from(args)
    dlio = _dlio_options_from(args, getattr(args, args.processes_flag))
    return _run_benchmarks(args, lambda emitter: TrainingBenchmark(options, args.model, args.action, dlio,
                                                                   args.data_dir, emitter=emitter))


def _checkpoint_processes(args) -> int:
    from .models import LLAMA3

    return args.num_processes or LLAMA3[args.model].closed_processes


def _checkpointing(args, options):
    """make(emitter) for the checkpointing run these arguments describe."""
    from .benchmarks.checkpointing import CheckpointingBenchmark

    dlio = _dlio_options_from(args, _checkpoint_processes(args))
    return lambda emitter: CheckpointingBenchmark(options, args.model, dlio, args.checkpoint_folder,
                                                  args.num_checkpoints, emitter=emitter)


def _cmd_checkpointing(args) -> int:
    return _run_benchmarks(args, _checkpointing(args, _run_options_from(args)))


def _print_config(name: str, config: dict) -> int:
    import yaml

    from .redaction import redact

    print(f"# workload {name}")
    print(yaml.safe_dump(redact(config), sort_keys=False).rstrip())
    return 0


def _cmd_configview(args) -> int:
    from .workloads import apply_params, load_workload, workload_name

    name = workload_name(args.model, "datagen" if args.datagen else "run", args.accelerator_type)
    return _print_config(name, apply_params(load_workload(name), _params_from(args)))


def _cmd_checkpointing_configview(args) -> int:
    """What `checkpointing run` with these options gives DLIO: the workload, the keys
    mlpstorage sets for the model (its shard size, the epochs that write the checkpoints)
    and --params; the driver data folder is named after the run's planned directory."""
    from .benchmarks.base import RunOptions
    from .emitter import Emitter

    benchmark = _checkpointing(args, RunOptions())(Emitter())
    return _print_config(benchmark.workload, benchmark.config)


def _cmd_checkpointing_datasize(args) -> int:
    from .benchmarks.checkpointing import checkpoint_size, run_hint
    from .models import LLAMA3

    arch, processes = LLAMA3[args.model], _checkpoint_processes(args)
    if args.num_client_hosts > processes:
        raise UsageError(f"--num-client-hosts {args.num_client_hosts} is more than the {processes} processes: "
                         "a host would write nothing")
    size = checkpoint_size(arch, processes, args.num_checkpoints, args.client_host_memory_in_gb, args.num_client_hosts)
    gib = 2**30
    arguments = {"processes": processes, "num_checkpoints": args.num_checkpoints,
                 "client_host_memory_in_gb": args.client_host_memory_in_gb, "num_client_hosts": args.num_client_hosts}
    with _computed_run(args, "checkpointing", arguments) as (emitter, results):
        results.update(checkpoint_bytes=size.checkpoint_bytes, bytes_per_rank=size.shard_bytes,
                       disk_bytes=size.disk_bytes, bytes_per_host=size.per_host_bytes,
                       memory_rule_met=size.exceeds_memory)
        emitter.info(f"{args.model}: {arch.parameters():,} parameters x 14 bytes (fp16 weights, fp32 master "
                     f"weights and two Adam moments), split across {processes} ranks")
        emitter.result(f"Checkpoint size: {size.shard_bytes / gib:.2f} GiB per rank, "
                       f"{size.checkpoint_bytes / gib:.2f} GiB for {processes} ranks",
                       bytes=size.checkpoint_bytes, bytes_per_rank=size.shard_bytes, processes=processes)
        emitter.result(f"Disk space needed: {size.disk_bytes / gib:.2f} GiB for {args.num_checkpoints} checkpoints",
                       bytes=size.disk_bytes)
        least = " at least" if processes % args.num_client_hosts else ""
        writes = f"each client host writes{least} {size.per_host_bytes / gib:.2f} GiB of every checkpoint"
        memory = f"{args.client_host_memory_in_gb:g} GiB of memory"
        emitter.result(f"Client memory rule holds: {writes}, more than its {memory}" if size.exceeds_memory else
                       f"Client memory rule does not hold: {writes}, not more than its {memory} "
                       "(its page cache can keep what it writes)",
                       bytes_per_host=size.per_host_bytes, memory_rule_met=size.exceeds_memory)
        emitter.result(f"Next: {run_hint(args.model, args.checkpoint_folder, processes, args.num_checkpoints)}")
    return 0


@contextlib.contextmanager
def _computed_run(args, benchmark: str, arguments: dict):
    """A command that only computes (datasize) as a run of its own: a run span, and a small
    record in <results-dir>/<benchmark>/<model>/datasize/<YYYYMMDD_HHMMSS>/ (events.jsonl and
    the metadata: arguments with secrets redacted, and the results the caller fills in)."""
    import datetime

    from .redaction import redact
    from .results import check_writable, claim_run_dir, run_dir_base, write_json

    check_writable(args.results_dir, "results directory")
    stamp = datetime.datetime.now().strftime("%Y%m%d_%H%M%S")
    run_dir = claim_run_dir(run_dir_base(args.results_dir, benchmark, args.model, "datasize"), stamp)
    run_id = f"{benchmark}-{args.model}-datasize-{run_dir.name}"
    attributes = {"mlpstorage.benchmark": benchmark, "mlpstorage.model": args.model, "mlpstorage.command": "datasize",
                  "mlpstorage.run_id": run_id, "mlpstorage.results_dir": str(run_dir)}
    results: dict = {}
    with _telemetry(args) as emitter, emitter.run(f"mlpstorage {benchmark} datasize", attributes):
        emitter.attach_recording(run_dir)
        yield emitter, results
        write_json(run_dir / f"{benchmark}_{run_dir.name}_metadata.json",
                   {"benchmark": benchmark, "model": args.model, "command": "datasize", "run_id": run_id,
                    "arguments": redact(arguments), "results": results})


def _cmd_datasize(args) -> int:
    from .benchmarks.training import datagen_hint
    from .redaction import redact
    from .workloads import apply_params, load_workload, required_data_size, workload_name

    params = _params_from(args)
    config = apply_params(load_workload(workload_name(args.model, "run", args.accelerator_type)), params)
    size = required_data_size(config, args.client_host_memory_in_gb, args.num_client_hosts, args.max_accelerators)
    arguments = {"max_accelerators": args.max_accelerators, "client_host_memory_in_gb": args.client_host_memory_in_gb,
                 "num_client_hosts": args.num_client_hosts, "accelerator": args.accelerator_type, "params": params}
    with _computed_run(args, "training", arguments) as (emitter, results):
        results.update(files=size.files, bytes=size.total_bytes, files_for_memory=size.files_for_memory,
                       files_for_steps=size.files_for_steps)
        emitter.info(f"{args.model}: {size.files_for_memory} files for 5x client memory, "
                     f"{size.files_for_steps} files for 500 steps of {args.max_accelerators} accelerators")
        emitter.result(f"Files needed: {size.files}", files=size.files)
        emitter.result(f"Disk space needed: {size.total_gib:.2f} GiB", bytes=size.total_bytes)
        others = [f"{k}={v}" for k, v in redact(params).items() if k != "dataset.num_files_train"]
        emitter.result(f"Next: {datagen_hint(args.model, args.data_dir, args.max_accelerators, size.files, others)}")
    return 0


def _cmd_reportgen(args) -> int:
    from .reports.reportgen import reportgen

    names = args.render.split(",")
    style = "rich" if "rich" in names else "plain" if "plain" in names else "auto"
    return reportgen(args.results_dir, args.output_dir, style=style)


def _cmd_replay(args) -> int:
    from .replay import Recording, harmless, replay

    with Recording(args.file) as recording:  # a file that is no recording: one error, before any renderer starts
        problems = replay(recording, _make_renderers(args, replaying=True))
    for problem in problems:
        print(f"mlpstorage: warning: {harmless(problem)}", file=sys.stderr)
    return 0


def _read_runs(paths: list[Path]) -> list:
    """Each run read (a bad one: one error line), and what was left out of it as warnings."""
    from .replay import harmless
    from .reports.record import read_run

    records = [read_run(path) for path in paths]
    for record in records:
        for problem in record.problems:
            print(f"mlpstorage: warning: {harmless(problem)}", file=sys.stderr)
    return records


def _stdout_console():
    from rich.console import Console

    from .terminal import wants_color

    color = wants_color(sys.stdout)
    # Piped, no terminal sets the width: lines may be as long as a table needs.
    width = None if sys.stdout.isatty() else int(os.environ.get("COLUMNS", "0") or 0) or 120
    return Console(file=sys.stdout, force_terminal=color or None, color_system="auto" if color else None,
                   highlight=False, width=width)


def _cmd_reports_html(args) -> int:
    from .reports.page import build_page, default_output, write_html

    [record] = _read_runs([args.run])
    output = args.output or default_output(args.run)
    print(write_html(build_page(record, output), output))
    return 0


def _cmd_reports_show(args) -> int:
    from .reports.show import show

    [record] = _read_runs([args.run])
    show(record, _stdout_console())
    return 0


def _cmd_reports_compare(args) -> int:
    from .reports import compare

    if len(args.runs) < 2:
        raise UsageError("compare needs two or more runs (see 'mlpstorage reports compare --help')")
    records = _read_runs(args.runs)
    compare.show(records, _stdout_console())
    if args.html:
        print(f"mlpstorage: wrote {compare.write_page(records, args.html)}", file=sys.stderr)
    return 0


# ----- the edge ------------------------------------------------------------------------------
def _raise_terminated(signum, frame):
    raise Terminated()


def _stop_children() -> None:
    """No child outlives the launcher, whatever way it leaves (see engines/process.py)."""
    process = sys.modules.get(f"{__package__}.engines.process")
    if process is None:  # a command that started no child never imported it
        return
    # Already on the way out: a second Ctrl-C or SIGTERM must not cut the stopping short.
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        process.CHILDREN.stop_all()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        _Parser.config_file, _Parser.config_tokens = _config_tokens(argv)
        args = parser.parse_args(argv)
        previous = signal.signal(signal.SIGTERM, _raise_terminated)
        try:
            return args.handler(args)
        finally:
            _stop_children()
            signal.signal(signal.SIGTERM, previous)
    except MlpStorageError as exc:
        print(f"mlpstorage: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:
        # the reader went away (`--what-if | head`): stop quietly, as other Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except KeyboardInterrupt:
        print("mlpstorage: interrupted", file=sys.stderr)
        return 130
    except Terminated:
        print("mlpstorage: terminated", file=sys.stderr)
        return 143
