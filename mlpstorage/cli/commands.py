"""One handler per command: each takes the parsed arguments and returns the exit code.
Heavy imports happen inside them, so `mlpstorage --help` imports none of it."""

from __future__ import annotations

import sys

from ..errors import UsageError
from .wiring import (make_renderers, telemetry, run_options_from, params_from, dlio_options_from, run_benchmarks, read_runs, stdout_console, computed_run)


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


def cmd_training(args) -> int:
    from ..benchmarks.training import TrainingBenchmark

    if args.action == "datagen" and args.division:
        raise UsageError(f"--{args.division}: datagen gets no verdict; only runs are judged "
                         "(training run, checkpointing run)")
    options = run_options_from(args)
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


def cmd_checkpointing(args) -> int:
    return run_benchmarks(args, _checkpointing(args, run_options_from(args)))


def _print_config(name: str, config: dict) -> int:
    import yaml

    from ..redaction import redact

    print(f"# workload {name}")
    print(yaml.safe_dump(redact(config), sort_keys=False).rstrip())
    return 0


def cmd_configview(args) -> int:
    from ..workloads import apply_params, load_workload, workload_name

    name = workload_name(args.model, "datagen" if args.datagen else "run", args.accelerator_type)
    return _print_config(name, apply_params(load_workload(name), params_from(args)))


def cmd_checkpointing_configview(args) -> int:
    """What `checkpointing run` with these options gives DLIO: the workload, the keys
    mlpstorage sets for the model (its shard size, the epochs that write the checkpoints)
    and --params; the driver data folder is named after the run's planned directory."""
    from ..benchmarks.base import RunOptions
    from ..emitter import Emitter

    benchmark = _checkpointing(args, RunOptions())(Emitter())
    return _print_config(benchmark.workload, benchmark.config)


def cmd_checkpointing_datasize(args) -> int:
    from ..benchmarks.checkpointing import checkpoint_size, run_hint
    from ..models import LLAMA3

    arch, processes = LLAMA3[args.model], _checkpoint_processes(args)
    if args.num_client_hosts > processes:
        raise UsageError(f"--num-client-hosts {args.num_client_hosts} is more than the {processes} processes: "
                         "a host would write nothing")
    size = checkpoint_size(arch, processes, args.num_checkpoints, args.client_host_memory_in_gb, args.num_client_hosts)
    gib = 2**30
    arguments = {"processes": processes, "num_checkpoints": args.num_checkpoints,
                 "client_host_memory_in_gb": args.client_host_memory_in_gb, "num_client_hosts": args.num_client_hosts}
    with computed_run(args, "checkpointing", arguments) as (emitter, results):
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


def cmd_datasize(args) -> int:
    from ..benchmarks.training import datagen_hint
    from ..redaction import redact
    from ..workloads import apply_params, load_workload, required_data_size, workload_name

    params = params_from(args)
    config = apply_params(load_workload(workload_name(args.model, "run", args.accelerator_type)), params)
    size = required_data_size(config, args.client_host_memory_in_gb, args.num_client_hosts, args.max_accelerators)
    arguments = {"max_accelerators": args.max_accelerators, "client_host_memory_in_gb": args.client_host_memory_in_gb,
                 "num_client_hosts": args.num_client_hosts, "accelerator": args.accelerator_type, "params": params}
    with computed_run(args, "training", arguments) as (emitter, results):
        results.update(files=size.files, bytes=size.total_bytes, files_for_memory=size.files_for_memory,
                       files_for_steps=size.files_for_steps)
        emitter.info(f"{args.model}: {size.files_for_memory} files for 5x client memory, "
                     f"{size.files_for_steps} files for 500 steps of {args.max_accelerators} accelerators")
        emitter.result(f"Files needed: {size.files}", files=size.files)
        emitter.result(f"Disk space needed: {size.total_gib:.2f} GiB", bytes=size.total_bytes)
        others = [f"{k}={v}" for k, v in redact(params).items() if k != "dataset.num_files_train"]
        emitter.result(f"Next: {datagen_hint(args.model, args.data_dir, args.max_accelerators, size.files, others)}")
    return 0


def cmd_reportgen(args) -> int:
    from ..reports.reportgen import reportgen

    names = args.render.split(",")
    style = "rich" if "rich" in names else "plain" if "plain" in names else "auto"
    return reportgen(args.results_dir, args.output_dir, style=style)


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
