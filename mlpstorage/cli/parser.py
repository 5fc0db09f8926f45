"""The command tree: every command, its options and their help. Bad usage is one line and exit
code 2 (UsageError). Handlers live in commands.py and are named here, not imported; a
command's options are added only when that command is parsed or its help shown, so
`mlpstorage --help` builds the list of commands and nothing else."""

from __future__ import annotations

import argparse
import functools
import os
import sys
from pathlib import Path

from .. import __version__
from ..errors import UsageError
from .options import (add_client_hosts, add_dlio_options, add_global_options, add_params, add_run_options,
                      positive_int)

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


class _Parser(argparse.ArgumentParser):
    """Bad usage is one line and exit code 2, never a usage dump or a traceback. A command's
    parser (one with a handler) reads the --config-file's options first, so that the command
    line's own options, which come after them, win. Every parser of one tree shares the config
    file it was built with: its subparsers are made with the same.

    build(parser), when given, adds the parser's arguments the first time it parses or shows
    its help: a command line builds only the commands it names."""

    def __init__(self, *args, config: ConfigFile | None = None, build=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.config = config or ConfigFile()
        self.is_command = False
        self._build = build

    def built(self) -> _Parser:
        build, self._build = self._build, None
        if build is not None:
            build(self)
        return self

    def error(self, message: str):
        raise UsageError(f"{message} (see '{self.prog} --help')")

    def add_subparsers(self, **kwargs):
        kwargs.setdefault("parser_class", functools.partial(_Parser, config=self.config))
        # argparse would format a usage line to find the prog; no parser here has a positional
        # before its subcommands, so it is this parser's own prog
        kwargs.setdefault("prog", self.prog)
        return super().add_subparsers(**kwargs)

    def set_defaults(self, **kwargs) -> None:
        self.is_command = self.is_command or "handler" in kwargs
        super().set_defaults(**kwargs)

    def format_usage(self) -> str:
        return super(_Parser, self.built()).format_usage()

    def format_help(self) -> str:
        return super(_Parser, self.built()).format_help()

    def _get_formatter(self):
        # shutil.get_terminal_size's answer without importing shutil (and its compression modules)
        return self.formatter_class(prog=self.prog, width=_terminal_columns() - 2)

    def parse_known_args(self, args=None, namespace=None):
        self.built()
        tokens = self.config.tokens
        if not (self.is_command and tokens):
            return super().parse_known_args(args, namespace)
        namespace, extras = super().parse_known_args(list(tokens) + list(args or []), namespace)
        unknown = [t for t in extras if t in tokens and t.startswith("-")]
        if unknown:
            raise UsageError(f"--config-file {self.config.path}: {', '.join(unknown)} is not an option of "
                             f"'{self.prog}' (see '{self.prog} --help')")
        return namespace, extras


def _terminal_columns() -> int:
    """The terminal's width as argparse would take it: $COLUMNS, else stdout's terminal, else 80."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns > 0:
        return columns
    try:
        return os.get_terminal_size(sys.__stdout__.fileno()).columns or 80
    except (AttributeError, ValueError, OSError):
        return 80


class ConfigFile:
    """The --config-file named on a command line, and its options as command-line tokens."""

    __slots__ = ("path", "tokens")

    def __init__(self, path: Path | None = None, tokens: tuple[str, ...] = ()):
        self.path = path
        self.tokens = tokens


def read_config_file(argv: list[str]) -> ConfigFile:
    path, tokens = _config_tokens(argv)
    return ConfigFile(path, tuple(tokens))


def _config_tokens(argv: list[str]) -> tuple[Path | None, list[str]]:
    """The --config-file named in argv (before any '--') and its options as tokens:
    'hosts: [a, b]' -> --hosts a b; 'skip-timeseries: true' -> --skip-timeseries;
    'params: {reader.batch_size: 2}' -> --params reader.batch_size=2."""
    head = argv[: argv.index("--")] if "--" in argv else argv
    pre = _Parser(prog="mlpstorage", add_help=False)
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


def build_parser(config: ConfigFile | None = None) -> argparse.ArgumentParser:
    """The whole command tree; config: the --config-file read from the command line (see
    read_config_file), whose options every command's parser reads first. A command's parser
    gets its options when it is first used (see _Parser)."""
    parser = _Parser(
        config=config,
        prog="mlpstorage",
        description="Run the MLPerf Storage benchmark with its whole lifecycle observable: "
        "a live display, plain log lines, JSON lines and OpenTelemetry traces from one event stream.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_global_options(parser, top=True)
    parser.add_argument("--version", action="version", version=f"mlpstorage {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    def exec_arguments(parser):
        parser.add_argument("program", metavar="PROGRAM", help="the program to run (after --)")
        parser.add_argument("program_args", metavar="ARGS", nargs=argparse.REMAINDER, help="its arguments")

    _command(
        commands, "exec", "cmd_exec", shared=(add_run_options,), own=exec_arguments,
        help="run any program under the benchmark lifecycle",
        description="Run PROGRAM under the full lifecycle (validation, cluster info, run, results), "
        "with its output passed through unchanged and kept in the results directory.",
        epilog="PROGRAM runs on this host; --hosts only says whose information and time series to collect.\n"
        "example: mlpstorage exec --render plain -- dd if=/dev/zero of=/tmp/x bs=1M count=100",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _command(
        commands, "check", "cmd_check", help="can this machine run the benchmark? (what is missing)",
        description="Look for what the benchmark needs on this machine without running it: mpirun and its MPI, "
        "mpi4py loading that same MPI, DLIO 2.0.0 and every module it imports at run time. Each problem is one "
        "line saying what is missing and how to fix it (see docs/install.md).",
        epilog="exit codes: 0 nothing missing, 2 something is missing")

    _command_group(commands, "training", "action", _add_training, help="MLPerf Storage training workloads (DLIO)",
                   description="Training workloads: unet3d (pytorch), resnet50 and cosmoflow "
                   "(tensorflow). Typical order: datasize, datagen, run.")
    _command_group(commands, "checkpointing", "action", _add_checkpointing,
                   help="MLPerf Storage checkpointing workloads (DLIO)",
                   description="Checkpointing workloads: llama3 checkpoints written by DLIO "
                   "2.0.0. Typical order: datasize, run.")
    _command_group(commands, "reports", "report_action", _add_reports,
                   help="verdicts and reports over a results directory",
                   description="Reports over the runs in a results directory (mlpstorage's own and "
                   "the existing launcher's v2.0 layout).")
    _command_group(commands, "events", "events_command", _add_events, help="work with recorded event streams")
    return parser


def _command(actions, name: str, handler: str, *, shared=(), own=None, **kwargs) -> None:
    """`NAME` on `actions`, run by commands.HANDLER. Its options, added on first use: the
    shared groups (each shared(parser)), the global options, then its own (own(parser)), in
    that order (the order of its usage line and its help)."""

    def build(parser) -> None:
        for add in shared:
            add(parser)
        add_global_options(parser, top=False)
        if own is not None:
            own(parser)
        parser.set_defaults(handler=handler)

    actions.add_parser(name, build=build, **kwargs)


def _command_group(commands, name: str, dest: str, add_actions, **kwargs) -> None:
    """`mlpstorage NAME ACTION ...`: the group's actions, its subcommands, are added by
    add_actions(actions) on first use."""

    def build(group) -> None:
        actions = group.add_subparsers(dest=dest, metavar="ACTION")
        actions.required = True
        add_actions(actions)

    commands.add_parser(name, build=build, **kwargs)


def _add_events(actions) -> None:
    def replay_arguments(parser):
        parser.add_argument("file", metavar="FILE", type=Path, help="an events.jsonl file")

    _command(
        actions, "replay", "cmd_replay", own=replay_arguments,
        help="feed a recorded events.jsonl through any renderer",
        description="Render a recorded events.jsonl again: as plain lines, JSON lines, a rich summary, or "
        "exported over OTLP with its original timestamps and trace ids (for batch jobs that had no "
        "network to the tracing backend).",
    )


RUN_HELP = "a run's results folder, or a recording (events.jsonl) alone"


def _add_report_pages(actions) -> None:
    """`reports html`, `reports show` and `reports compare`, on the reports group's subparsers."""

    def html_arguments(parser):
        parser.add_argument("run", metavar="RUN", type=Path, help=RUN_HELP)
        parser.add_argument("--output", "-o", metavar="FILE", type=Path,
                            help="where to write it (default: RUN/report.html; for a recording, NAME.report.html "
                            "beside it)")

    _command(
        actions, "html", "cmd_reports_html", own=html_arguments, help="write a run's page (report.html)",
        description="Write a run's page: one self-contained HTML file that opens offline (what ran, the verdict, "
        "the metrics against their targets, the timeline, the time series, the cluster, the files). Every run "
        "writes its own once the run is over; this makes one for any earlier run or recording.")

    _command(
        actions, "show", "cmd_reports_show", own=lambda parser: parser.add_argument("run", metavar="RUN", type=Path,
                                                                                    help=RUN_HELP),
        help="a run's essentials in the terminal",
        description="What ran, the verdict, the stages, epochs and checkpoints as bars with their durations, the "
        "metrics against their targets, and read/write sparklines per host. Plain text when piped.")

    def compare_arguments(parser):
        parser.add_argument("runs", metavar="RUN", type=Path, nargs="+", help=RUN_HELP + " (two or more)")
        parser.add_argument("--html", metavar="FILE", type=Path, help="also write a page with the time series overlaid")

    _command(
        actions, "compare", "cmd_reports_compare", own=compare_arguments,
        help="runs side by side, with the change from the first",
        description="Metrics, stage durations, epochs and time-series means of two or more runs side by side, "
        "with each run's change from the first (A); --html also writes a page with their time series overlaid.")


DLIO_RUN = (add_run_options, add_dlio_options)


def _add_training(actions) -> None:
    from ..models import ACCELERATORS, TRAINING_MODELS

    def model_args(parser, *, accelerator=True):
        parser.add_argument("--model", "-m", required=True, choices=TRAINING_MODELS, help="the workload")
        if accelerator:
            parser.add_argument("--accelerator-type", "-g", choices=ACCELERATORS, default="h100",
                                help="simulated accelerator (default h100)")

    def datasize_arguments(parser):
        model_args(parser)
        parser.add_argument("--max-accelerators", "-ma", type=positive_int, required=True,
                            help="the most accelerators you will simulate")
        add_client_hosts(parser)
        parser.add_argument("--data-dir", "-dd", type=Path, default=Path("data"), help="for the datagen command shown")
        add_params(parser)

    _command(actions, "datasize", "cmd_datasize", own=datasize_arguments,
             help="how many files a run needs, and the datagen command to make them",
             description="Apply MLPerf Storage's data size rule: the data set must be 5x the "
             "client memory and cover 500 steps of every accelerator.")

    def datagen_arguments(parser):
        model_args(parser, accelerator=False)
        parser.add_argument("--data-dir", "-dd", type=Path, required=True, help="where the data set goes")
        parser.add_argument("--num-processes", "-np", type=positive_int, default=1, help="MPI ranks (default 1)")
        parser.set_defaults(processes_flag="num_processes")

    _command(actions, "datagen", "cmd_training", shared=DLIO_RUN, own=datagen_arguments,
             help="generate the data set with DLIO")

    def run_arguments(parser):
        model_args(parser)
        parser.add_argument("--data-dir", "-dd", type=Path, required=True, help="the generated data set")
        parser.add_argument("--num-accelerators", "-na", type=positive_int, default=1,
                            help="simulated accelerators = MPI ranks (default 1)")
        parser.add_argument("--loops", type=positive_int, default=1,
                            help="run the benchmark this many times (default 1)")
        parser.set_defaults(processes_flag="num_accelerators")

    _command(actions, "run", "cmd_training", shared=DLIO_RUN, own=run_arguments,
             help="run the training benchmark with DLIO")

    def configview_arguments(parser):
        model_args(parser)
        add_params(parser)
        parser.add_argument("--datagen", action="store_true", help="the datagen workload instead of the run workload")

    _command(actions, "configview", "cmd_configview", own=configview_arguments,
             help="print the workload configuration DLIO would get")


def _add_checkpointing(actions) -> None:
    from ..models import LLAMA3

    def model_args(parser, *, folder_help: str, folder_required: bool = False):
        parser.add_argument("--model", "-m", required=True, choices=list(LLAMA3),
                            help="the model whose checkpoints are written")
        parser.add_argument("--num-processes", "-np", type=positive_int, default=None,
                            help="MPI ranks (default: the model's closed-division count)")
        parser.add_argument("--num-checkpoints", type=positive_int, default=10, help="checkpoints to write (default 10)")
        parser.add_argument("--checkpoint-folder", "-cf", type=Path, required=folder_required,
                            default=None if folder_required else Path("checkpoints"), help=folder_help)

    _command(
        actions, "run", "cmd_checkpointing", shared=DLIO_RUN,
        own=functools.partial(model_args, folder_required=True, folder_help="where checkpoints are written: the "
                              "storage under test (they are kept; llama3-8b writes 105 GiB per checkpoint)"),
        help="write llama3 checkpoints with DLIO 2.0.0",
        description="Write llama3 checkpoints (fp16 model + fp32 optimizer, ZeRO stage 3: every rank writes its "
        "shard) at the end of each epoch of a minimal DLIO 2.0.0 training loop. Closed-division process counts: "
        + ", ".join(f"{name} {arch.closed_processes}" for name, arch in LLAMA3.items()) + ".",
    )

    def datasize_arguments(parser):
        model_args(parser, folder_help="for the run command shown (default ./checkpoints)")
        add_client_hosts(parser)

    _command(
        actions, "datasize", "cmd_checkpointing_datasize", own=datasize_arguments,
        help="how much a run writes, and whether it beats the client memory",
        description="The size of a checkpoint (parameters x 14 bytes) per rank and in total, the disk space "
        "the checkpoints take, and MLPerf Storage's rule that the part of a checkpoint each client host "
        "writes must exceed the host's memory (so the page cache cannot hold it).")

    def configview_arguments(parser):
        model_args(parser, folder_help="the checkpoint folder it names (default ./checkpoints)")
        add_params(parser)

    _command(actions, "configview", "cmd_checkpointing_configview", own=configview_arguments,
             help="print the workload configuration DLIO would get")


def _add_reports(actions) -> None:
    """`mlpstorage reports ACTION`: each kind of report adds its actions to `actions`."""

    def reportgen_arguments(parser):
        parser.add_argument("--output-dir", "-od", metavar="DIR", type=Path, default=None,
                            help="where results.json, results.csv and index.html go (default: the results directory)")

    _command(
        actions, "reportgen", "cmd_reportgen", own=reportgen_arguments,
        help="every run's verdict and metrics: results.json, results.csv, index.html and a table",
        description="Walk --results-dir and judge every run (CLOSED, OPEN or INVALID, with reasons); group the runs "
        "into submission candidates and check the submission guidelines no launcher checks; write results.json "
        "and results.csv (the existing launcher's record keys, plus category and issues) and index.html into "
        "--output-dir; print a table (Rich on a terminal, plain text when piped).",
        epilog="A datasize/ folder, or a run folder without DLIO's summary.json, is skipped with one warning line.",
    )
    _add_report_pages(actions)  # html, show, compare
