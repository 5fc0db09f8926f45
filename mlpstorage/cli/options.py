"""The options several commands share (the global ones, a run's, DLIO's and MPI's) and the
types their values are checked with: a bad value is one line naming the option."""

from __future__ import annotations

import argparse
import math
import os
from pathlib import Path

RENDER_HELP = (
    "how to show the run: auto, rich, plain, jsonl, otlp or none; several with commas "
    "(e.g. rich,otlp). auto = rich on an interactive terminal, else plain, plus otlp when "
    "OTEL_EXPORTER_OTLP_ENDPOINT is set. Default: $MLPSTORAGE_RENDER or auto"
)

# Sampling and heartbeats faster than this flood the log and measure mostly themselves.
MIN_INTERVAL_S = 0.1


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be a number greater than 0")
    return value


def interval(text: str) -> float:
    value = positive_float(text)
    if value < MIN_INTERVAL_S:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least {MIN_INTERVAL_S} seconds")
    return value


def port(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port (1-65535)")
    return int(text)


def positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be a whole number of at least 1")
    return int(text)


LOG_LEVELS = ("debug", "info", "status", "warning", "error")


def add_global_options(parser, top: bool) -> None:
    """Options every command takes, before or after the command's name. The top-level parser
    holds the defaults; a command's own copy has none (SUPPRESS), so it only overrides what
    is given after the command."""

    def default(value):
        return value if top else argparse.SUPPRESS

    group = parser.add_argument_group("global options (before or after the command)")
    group.add_argument("--render", metavar="R", default=default(os.environ.get("MLPSTORAGE_RENDER", "auto")),
                       help=RENDER_HELP)
    group.add_argument("--results-dir", "-rd", metavar="DIR", type=Path,
                       default=default(Path(os.environ.get("MLPERF_RESULTS_DIR") or "results")),
                       help="where runs are kept: DIR/<benchmark>/<model>/<command>/<YYYYMMDD_HHMMSS>/ "
                       "(default: $MLPERF_RESULTS_DIR, else ./results)")
    group.add_argument("--events-file", metavar="PATH", type=Path, default=default(None),
                       help="also write the JSON lines event stream to PATH")
    group.add_argument("--heartbeat", metavar="SECONDS", type=interval, default=default(30.0),
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


def add_params(parser) -> None:
    parser.add_argument("--params", "-p", metavar="KEY=VALUE", nargs="+", action="extend", default=[],
                        help="DLIO workload overrides, e.g. -p reader.batch_size=2 train.epochs=1 "
                        "(keys DLIO 2.0.0 reads; values reach DLIO as given, ${...} included)")
    parser.add_argument("--allow-invalid-params", action="store_true",
                        help="pass a --params key DLIO 2.0.0 does not read anyway, with a warning")


def add_client_hosts(parser) -> None:
    """The client hosts' memory and count, which the datasize commands judge the sizes with."""
    parser.add_argument("--client-host-memory-in-gb", "-cm", type=positive_float, required=True,
                        help="memory per client host, GiB")
    parser.add_argument("--num-client-hosts", "-nc", type=positive_int, default=1,
                        help="client hosts (default 1)")


def add_dlio_options(parser) -> None:
    group = parser.add_argument_group("DLIO and MPI")
    add_params(group)
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


def add_run_options(parser) -> None:
    group = parser.add_argument_group("run")
    group.add_argument("--hosts", "-s", metavar="HOST[:SLOTS]", nargs="+", default=None,
                       help="client hosts (default: inside a Slurm job, the allocation's nodes with their task "
                       "counts; else localhost)")
    group.add_argument("--cluster-collection", choices=["auto", "local", "ssh", "mpi", "none"], default="auto",
                       help="how host information is collected (default auto: local when the only host is this one, "
                       "else mpi for DLIO workloads and ssh for exec)")
    ssh = parser.add_argument_group("SSH (cluster information and time series from other hosts)")
    ssh.add_argument("--ssh-user", metavar="USER", help="remote user (default: ssh's own default)")
    ssh.add_argument("--ssh-port", metavar="PORT", type=port, help="remote port")
    ssh.add_argument("--ssh-identity", metavar="FILE", type=Path, help="private key file (ssh -i)")
    ssh.add_argument("--ssh-config", metavar="FILE", type=Path, help="an ssh_config file (ssh -F)")
    ssh.add_argument("--ssh-timeout", metavar="SECONDS", type=interval, default=10.0,
                     help="per host: connect and collect within this time (default 10)")
    group.add_argument("--skip-timeseries", action="store_true", help="do not sample /proc counters during the run")
    group.add_argument("--skip-page", action="store_true",
                       help="do not write the run's page (report.html) when it ends: about half a second, most of the "
                       "cost of a short run ('mlpstorage reports html RUN' writes it later)")
    group.add_argument("--metrics-port", metavar="PORT", type=port, default=None,
                       help="serve the time series as Prometheus metrics on this port while the run lasts "
                       "(on $OTEL_EXPORTER_PROMETHEUS_HOST, default localhost)")
    group.add_argument("--metrics-push", metavar="URL", default=None,
                       help="push each run's final metrics to this Prometheus Pushgateway as it ends "
                       "(default $MLPSTORAGE_METRICS_PUSH; docs/clusters.md)")
    group.add_argument("--timeseries-interval", metavar="SECONDS", type=interval, default=10.0,
                       help="seconds between time-series samples (default 10)")
    group.add_argument("--max-timeseries-samples", metavar="N", type=positive_int, default=3600,
                       help="stop sampling after N samples (default 3600)")
    stalls = parser.add_argument_group("stalls (see docs/stalls.md)")
    stalls.add_argument("--stall-timeout", metavar="SECONDS", type=stall_timeout, default=None,
                        help="flag a rank with no step, or the whole job with no step, output or I/O, for this long "
                        "(default: 20 steps' computation time or a tenth of an epoch, within 60-600 s; 300 for "
                        "checkpointing, 120 for exec; 0: off)")
    stalls.add_argument("--on-stall", choices=["warn", "dump", "abort"], default="warn",
                        help="on a stall: warn (a warning line and a highlighted row), dump (also record the stalled "
                        "processes' Python stacks and /proc state into stalls/ in the run's directory), abort (dump, "
                        "then stop the job: exit code 3) (default warn)")


def stall_timeout(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if value != 0 and not 1 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} must be 0 (off) or at least 1 second")
    return value
