"""The command tree: every command, its options and their help. Bad usage is one line and exit
code 2 (UsageError). Handlers live in commands.py; nothing heavy is imported here, so
`mlpstorage --help` starts fast."""

from __future__ import annotations

import argparse
import functools
import math
import os
from dataclasses import dataclass
from pathlib import Path

from .. import __version__
from ..errors import UsageError
from . import commands as handlers

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
  jsonl  one JSON object per event on stdout (schema in docs/events.md)
  otlp   spans to a tracing backend (OTEL_EXPORTER_OTLP_* variables)
  none   nothing on screen
Every run also writes its events to events.jsonl in its results directory.

exit codes: 0 ok, 1 the benchmark failed (exec: the exit code of PROGRAM, 128+N if signal N killed it),
            2 bad usage or environment, 3 stopped on a stall (--on-stall abort),
            4 a host failed the preflight (--ignore-preflight runs anyway),
            130 interrupted (Ctrl-C), 143 terminated (SIGTERM)
"""


# Sampling and heartbeats faster than this flood the log and measure mostly themselves.
MIN_INTERVAL_S = 0.1


class _Parser(argparse.ArgumentParser):
    """Bad usage is one line and exit code 2, never a usage dump or a traceback. A command's
    parser (one with a handler) reads the --config-file's options first, so that the command
    line's own options, which come after them, win. Every parser of one tree shares the config
    file it was built with: its subparsers are made with the same."""

    def __init__(self, *args, config: ConfigFile | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.config = config or ConfigFile()
        self.is_command = False

    def error(self, message: str):
        raise UsageError(f"{message} (see '{self.prog} --help')")

    def add_subparsers(self, **kwargs):
        kwargs.setdefault("parser_class", functools.partial(_Parser, config=self.config))
        return super().add_subparsers(**kwargs)

    def set_defaults(self, **kwargs) -> None:
        self.is_command = self.is_command or "handler" in kwargs
        super().set_defaults(**kwargs)

    def parse_known_args(self, args=None, namespace=None):
        tokens = self.config.tokens
        if not (self.is_command and tokens):
            return super().parse_known_args(args, namespace)
        namespace, extras = super().parse_known_args(list(tokens) + list(args or []), namespace)
        unknown = [t for t in extras if t in tokens and t.startswith("-")]
        if unknown:
            raise UsageError(f"--config-file {self.config.path}: {', '.join(unknown)} is not an option of "
                             f"'{self.prog}' (see '{self.prog} --help')")
        return namespace, extras


@dataclass(frozen=True)
class ConfigFile:
    """The --config-file named on a command line, and its options as command-line tokens."""

    path: Path | None = None
    tokens: tuple[str, ...] = ()


def read_config_file(argv: list[str]) -> ConfigFile:
    path, tokens = _config_tokens(argv)
    return ConfigFile(path, tuple(tokens))


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
    preflight = group.add_mutually_exclusive_group()
    preflight.add_argument("--preflight-only", action="store_true",
                           help="validate and check every host of --hosts (its interpreter, MPI, data, room, slots, "
                           "clock), say what is wrong, run nothing (exit code 4 when a host fails; docs/clusters.md)")
    preflight.add_argument("--ignore-preflight", action="store_true",
                           help="run even when a host fails the preflight (its problems become warnings)")
    group.add_argument("--mpi-bin", choices=["mpirun", "mpiexec", "srun"], default="mpirun",
                       help="MPI launcher (default mpirun; srun --mpi=pmix inside a Slurm allocation)")
    group.add_argument("--oversubscribe", action="store_true", default=None,
                       help="allow more ranks than cores (default: when the ranks outnumber this machine's cores)")
    group.add_argument("--allow-run-as-root", action="store_true", default=None,
                       help="let mpirun run as root (default: when running as root)")
    group.add_argument("--map-by", choices=["node", "socket"], default="socket", help="rank placement (default socket)")
    group.add_argument("--io-trace", action="store_true",
                       help="trace every rank's I/O with DLIO's DFTracer (off by default: it slows the ranks down): "
                       "per operation, host and rank the latency percentiles (RESULT lines, io_trace.json, the run's "
                       "page), the slowest calls as spans, I/O and compute per epoch (see docs/iotrace.md)")
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
    group.add_argument("--metrics-push", metavar="URL", default=None,
                       help="push each run's final metrics to this Prometheus Pushgateway as it ends "
                       "(default $MLPSTORAGE_METRICS_PUSH; docs/clusters.md)")
    group.add_argument("--timeseries-interval", metavar="SECONDS", type=_interval, default=10.0,
                       help="seconds between time-series samples (default 10)")
    group.add_argument("--max-timeseries-samples", metavar="N", type=_positive_int, default=3600,
                       help="stop sampling after N samples (default 3600)")
    stalls = parent.add_argument_group("stalls (see docs/stalls.md)")
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


def build_parser(config: ConfigFile | None = None) -> argparse.ArgumentParser:
    """The whole command tree; config: the --config-file read from the command line (see
    read_config_file), whose options every command's parser reads first."""
    parser = _Parser(
        config=config,
        prog="mlpstorage",
        description="Run the MLPerf Storage benchmark with its whole lifecycle observable: "
        "a live display, plain log lines, JSON lines and OpenTelemetry traces from one event stream.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[_global_options(top=True)],
    )
    parser.add_argument("--version", action="version", version=f"mlpstorage {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
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
    exec_parser.set_defaults(handler=handlers.cmd_exec)

    check = commands.add_parser(
        "check", parents=[_global_options(top=False)], help="can this machine run the benchmark? (what is missing)",
        description="Look for what the benchmark needs on this machine without running it: mpirun and its MPI, "
        "mpi4py loading that same MPI, DLIO 2.0.0 and every module it imports at run time. Each problem is one "
        "line saying what is missing and how to fix it (see docs/install.md).",
        epilog="exit codes: 0 nothing missing, 2 something is missing")
    check.set_defaults(handler=handlers.cmd_check)

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
    replay.set_defaults(handler=handlers.cmd_replay)

    return parser


def _command_group(commands, name: str, dest: str, **kwargs):
    """`mlpstorage NAME ACTION ...`: the group's parser, whose actions (returned) are its subcommands."""
    group = commands.add_parser(name, **kwargs)
    actions = group.add_subparsers(dest=dest, metavar="ACTION")
    actions.required = True
    return actions


def _add_report_pages(actions) -> None:
    """`reports html`, `reports show` and `reports compare`, on the reports group's subparsers."""
    run_help = "a run's results folder, or a recording (events.jsonl) alone"
    page = actions.add_parser(
        "html", parents=[_global_options(top=False)], help="write a run's page (report.html)",
        description="Write a run's page: one self-contained HTML file that opens offline (what ran, the verdict, "
        "the metrics against their targets, the timeline, the time series, the cluster, the files). Every run "
        "writes its own once the run is over; this makes one for any earlier run or recording.")
    page.add_argument("run", metavar="RUN", type=Path, help=run_help)
    page.add_argument("--output", "-o", metavar="FILE", type=Path,
                      help="where to write it (default: RUN/report.html; for a recording, NAME.report.html beside it)")
    page.set_defaults(handler=handlers.cmd_reports_html)

    show = actions.add_parser(
        "show", parents=[_global_options(top=False)], help="a run's essentials in the terminal",
        description="What ran, the verdict, the stages, epochs and checkpoints as bars with their durations, the "
        "metrics against their targets, and read/write sparklines per host. Plain text when piped.")
    show.add_argument("run", metavar="RUN", type=Path, help=run_help)
    show.set_defaults(handler=handlers.cmd_reports_show)

    compare = actions.add_parser(
        "compare", parents=[_global_options(top=False)], help="runs side by side, with the change from the first",
        description="Metrics, stage durations, epochs and time-series means of two or more runs side by side, "
        "with each run's change from the first (A); --html also writes a page with their time series overlaid.")
    compare.add_argument("runs", metavar="RUN", type=Path, nargs="+", help=run_help + " (two or more)")
    compare.add_argument("--html", metavar="FILE", type=Path, help="also write a page with the time series overlaid")
    compare.set_defaults(handler=handlers.cmd_reports_compare)


def _add_training(commands) -> None:
    from ..models import ACCELERATORS, TRAINING_MODELS

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
    datasize.set_defaults(handler=handlers.cmd_datasize)

    datagen = actions.add_parser("datagen", parents=[_run_options(), _dlio_options(), _global_options(top=False)],
                                 help="generate the data set with DLIO")
    model_args(datagen, accelerator=False)
    datagen.add_argument("--data-dir", "-dd", type=Path, required=True, help="where the data set goes")
    datagen.add_argument("--num-processes", "-np", type=_positive_int, default=1, help="MPI ranks (default 1)")
    datagen.set_defaults(handler=handlers.cmd_training, processes_flag="num_processes")

    run = actions.add_parser("run", parents=[_run_options(), _dlio_options(), _global_options(top=False)],
                             help="run the training benchmark with DLIO")
    model_args(run)
    run.add_argument("--data-dir", "-dd", type=Path, required=True, help="the generated data set")
    run.add_argument("--num-accelerators", "-na", type=_positive_int, default=1,
                     help="simulated accelerators = MPI ranks (default 1)")
    run.add_argument("--loops", type=_positive_int, default=1, help="run the benchmark this many times (default 1)")
    run.set_defaults(handler=handlers.cmd_training, processes_flag="num_accelerators")

    configview = actions.add_parser("configview", parents=[_global_options(top=False)],
                                    help="print the workload configuration DLIO would get")
    model_args(configview)
    _add_params(configview)
    configview.add_argument("--datagen", action="store_true", help="the datagen workload instead of the run workload")
    configview.set_defaults(handler=handlers.cmd_configview)


def _add_checkpointing(commands) -> None:
    from ..models import LLAMA3

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
    run.set_defaults(handler=handlers.cmd_checkpointing)

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
    datasize.set_defaults(handler=handlers.cmd_checkpointing_datasize)

    configview = actions.add_parser("configview", parents=[_global_options(top=False)],
                                    help="print the workload configuration DLIO would get")
    model_args(configview, folder_help="the checkpoint folder it names (default ./checkpoints)")
    _add_params(configview)
    configview.set_defaults(handler=handlers.cmd_checkpointing_configview)


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
    reportgen.set_defaults(handler=handlers.cmd_reportgen)
    _add_report_pages(actions)  # html, show, compare
