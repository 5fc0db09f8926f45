"""One handler per command: each takes the parsed arguments and returns the exit code.
Heavy imports happen inside them, so `mlpstorage --help` imports none of it."""

from __future__ import annotations

import functools
import sys

from ..errors import UsageError
from .wiring import (dlio_options_from, import_structlog_without_rich, make_renderers, params_from, read_runs,
                     run_benchmarks, run_options_from, stdout_console, telemetry)


def _emitting(handler):
    """A handler whose command runs under the emitter: structlog is imported first, without Rich."""

    @functools.wraps(handler)
    def run(args) -> int:
        import_structlog_without_rich()
        return handler(args)

    return run


@_emitting
def cmd_exec(args) -> int:
    from ..benchmarks.exec import ExecBenchmark

    # argparse leaves the "--" that separates PROGRAM from mlpstorage's own options in place
    argv = [args.program, *args.program_args]
    if argv[0] == "--":
        argv = argv[1:]
    if not argv:
        raise UsageError("no PROGRAM given after -- (see 'mlpstorage exec --help')")
    options = run_options_from(args)
    with telemetry(args) as emitter:
        ExecBenchmark(options, argv, emitter=emitter).run()
    return 0


def cmd_check(args) -> int:
    from ..environment import check_environment

    found = check_environment()
    for fact in found.facts:
        print(f"found    {fact}")
    for problem in found.problems:
        print(f"missing  {problem}")
    if found.problems:
        count = len(found.problems)
        print(f"mlpstorage: error: {count} problem{'s' if count > 1 else ''}: the benchmark cannot run here yet",
              file=sys.stderr)
        return 2
    print("mlpstorage: this machine can run the benchmark")
    return 0


@_emitting
def cmd_training(args) -> int:
    from ..benchmarks.training import TrainingBenchmark

    if args.action == "datagen" and args.division:
        raise UsageError(f"--{args.division}: datagen gets no verdict; only runs are judged "
                         "(training run, checkpointing run)")
    options = _preflight_options(run_options_from(args), args)
    dlio = dlio_options_from(args, getattr(args, args.processes_flag))
    return run_benchmarks(args, lambda emitter: TrainingBenchmark(options, args.model, args.action, dlio,
                                                                   args.data_dir, emitter=emitter))


def _checkpoint_processes(args) -> int:
    from ..models import LLAMA3

    return args.num_processes or LLAMA3[args.model].closed_processes


def _checkpointing(args, options):
    """make(emitter) for the checkpointing run these arguments describe."""
    from ..benchmarks.checkpointing import CheckpointingBenchmark

    dlio = dlio_options_from(args, _checkpoint_processes(args))
    return lambda emitter: CheckpointingBenchmark(options, args.model, dlio, args.checkpoint_folder,
                                                  args.num_checkpoints, emitter=emitter)


@_emitting
def cmd_checkpointing(args) -> int:
    return run_benchmarks(args, _checkpointing(args, _preflight_options(run_options_from(args), args)))


def _preflight_options(options, args):
    """--preflight-only and --ignore-preflight (docs/clusters.md#preflight) on the run's options."""
    options.preflight_only = getattr(args, "preflight_only", False)
    options.ignore_preflight = getattr(args, "ignore_preflight", False)
    return options


def _print_config(name: str, config: dict) -> int:
    import yaml

    from ..redaction import redact

    print(f"# workload {name}")
    print(yaml.safe_dump(redact(config), sort_keys=False).rstrip())
    return 0


def cmd_configview(args) -> int:
    from ..workloads import workload_config, workload_name

    name = workload_name(args.model, "datagen" if args.datagen else "run", args.accelerator_type)
    return _print_config(name, workload_config(name, params_from(args)))


def cmd_checkpointing_configview(args) -> int:
    """What `checkpointing run` with these options gives DLIO: the workload, the keys
    mlpstorage sets for the model (its shard size, the epochs that write the checkpoints)
    and --params; the driver data folder is named after the run's planned directory."""
    from ..benchmarks.base import RunOptions
    from ..emitter import Emitter

    benchmark = _checkpointing(args, RunOptions())(Emitter())
    return _print_config(benchmark.workload, benchmark.config)


@_emitting
def cmd_checkpointing_datasize(args) -> int:
    from ..benchmarks.datasize import checkpointing_datasize

    processes = _checkpoint_processes(args)
    if args.num_client_hosts > processes:
        raise UsageError(f"--num-client-hosts {args.num_client_hosts} is more than the {processes} processes: "
                         "a host would write nothing")
    with telemetry(args) as emitter:
        checkpointing_datasize(emitter, args.results_dir, args.model, processes, args.num_checkpoints,
                               args.client_host_memory_in_gb, args.num_client_hosts, args.checkpoint_folder)
    return 0


@_emitting
def cmd_datasize(args) -> int:
    from ..benchmarks.datasize import training_datasize
    from ..workloads import required_data_size, workload_config, workload_name

    params = params_from(args)
    config = workload_config(workload_name(args.model, "run", args.accelerator_type), params)
    size = required_data_size(config, args.client_host_memory_in_gb, args.num_client_hosts, args.max_accelerators)
    arguments = {"max_accelerators": args.max_accelerators, "client_host_memory_in_gb": args.client_host_memory_in_gb,
                 "num_client_hosts": args.num_client_hosts, "accelerator": args.accelerator_type, "params": params}
    with telemetry(args) as emitter:
        training_datasize(emitter, args.results_dir, args.model, size, arguments, args.data_dir, args.max_accelerators,
                          params)
    return 0


def cmd_reportgen(args) -> int:
    from ..reports.reportgen import reportgen

    names = args.render.split(",")
    style = "rich" if "rich" in names else "plain" if "plain" in names else "auto"
    return reportgen(args.results_dir, args.output_dir, style=style)


@_emitting
def cmd_replay(args) -> int:
    from ..replay import Recording, replay
    from ..terminal import harmless

    with Recording(args.file) as recording:  # a file that is no recording: one error, before any renderer starts
        problems = replay(recording, make_renderers(args, replaying=True))
    for problem in problems:
        print(f"mlpstorage: warning: {harmless(problem)}", file=sys.stderr)
    return 0


def cmd_reports_html(args) -> int:
    from ..reports.page import build_page, default_output, write_html

    [record] = read_runs([args.run])
    output = args.output or default_output(args.run)
    print(write_html(build_page(record, output), output))
    return 0


def cmd_reports_show(args) -> int:
    from ..reports.show import show

    [record] = read_runs([args.run])
    show(record, stdout_console())
    return 0


def cmd_reports_compare(args) -> int:
    from ..reports import compare

    if len(args.runs) < 2:
        raise UsageError("compare needs two or more runs (see 'mlpstorage reports compare --help')")
    records = read_runs(args.runs)
    compare.show(records, stdout_console())
    if args.html:
        print(f"mlpstorage: wrote {compare.write_page(records, args.html)}", file=sys.stderr)
    return 0
