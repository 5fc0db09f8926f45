"""Between the parsed arguments and the work: which renderers run (the edge: nothing upstream
knows), the emitter they hang on, and the options objects each benchmark takes."""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
from pathlib import Path

from ..errors import Terminated, UsageError


def import_structlog_without_rich() -> None:
    """structlog imports Rich when it can, for its console renderer's tracebacks: about 50 ms,
    twice an interpreter's start. The launcher's structlog pipeline ends in the emitter and
    never uses that renderer, so structlog is imported with Rich hidden from it; Rich stays
    importable for the rich renderer and the reports, which import it themselves."""
    if "structlog" in sys.modules or "rich" in sys.modules:
        return
    sys.modules["rich"] = None  # an import of rich raises ImportError while this lasts
    try:
        importlib.import_module("structlog")
    finally:
        del sys.modules["rich"]


def stream_level(args) -> str:
    """--stream-log-level, else debug with --verbose or --debug, else info."""
    return args.stream_log_level or ("debug" if args.verbose or args.debug else "info")


def process_resource():
    """The OpenTelemetry resource of this process, made here at the edge: the service, and the
    Slurm job it runs in (the emitter knows nothing of Slurm)."""
    from ..emitter.core import default_resource
    from ..slurm import job_attributes

    return default_resource(job_attributes())


def make_renderers(args, *, replaying: bool, resource=None) -> list:
    from renderers import RenderOptions, RenderSpecError, create, metrics_exporters, resolve

    from ..terminal import is_interactive, wants_color

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
    metrics_push = getattr(args, "metrics_push", None)
    if not replaying and "pushgateway" not in names and (metrics_push or os.environ.get("MLPSTORAGE_METRICS_PUSH")):
        names.append("pushgateway")  # each run's final metrics, pushed as it ends
    options = RenderOptions(
        min_level=stream_level(args),
        color=wants_color(sys.stderr),
        heartbeat_s=0 if replaying else args.heartbeat,
        live=not replaying,
        metrics_port=metrics_port,
        metrics_push=metrics_push,
        resource=resource or process_resource(),
    )
    renderers = [create(name, options) for name in names]
    if args.events_file:
        from renderers.jsonl import JsonlRenderer

        renderers.append(JsonlRenderer.to_file(args.events_file))
    return renderers


@contextlib.contextmanager
def telemetry(args):
    """An emitter wired to the chosen renderers (each run attaches its own events.jsonl)."""
    import logging

    from ..emitter import Emitter, use_emitter

    resource = process_resource()
    emitter = Emitter(make_renderers(args, replaying=False, resource=resource), resource=resource)
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


def default_hosts() -> list[str]:
    from ..slurm import allocation_hosts, job_id

    return allocation_hosts() if job_id() else ["localhost"]


def run_options_from(args):
    from ..benchmarks.base import RunOptions
    from ..collectors.ssh import SshOptions
    from ..hosts import parse_hosts

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
        mpi=mpi_options_from(args),
        data_dir=str(Path(data_dir).absolute()) if data_dir else None,
        results_dir=args.results_dir,
        hosts=[str(h) for h in parse_hosts(args.hosts or default_hosts())],
        cluster_collection=args.cluster_collection,
        skip_timeseries=args.skip_timeseries,
        skip_page=args.skip_page,
        timeseries_interval=args.timeseries_interval,
        max_timeseries_samples=args.max_timeseries_samples,
        stall_timeout_s=args.stall_timeout,
        on_stall=args.on_stall,
    )


def mpi_options_from(args):
    from ..engines.mpi import MpiOptions

    if not hasattr(args, "mpi_bin"):  # exec: MPI only for --cluster-collection mpi, with defaults
        return MpiOptions()
    return MpiOptions(mpi_bin=args.mpi_bin, oversubscribe=args.oversubscribe,
                      allow_run_as_root=args.allow_run_as_root, map_by=args.map_by)


def params_from(args) -> dict[str, str]:
    """--params, every key one DLIO 2.0.0 reads; with --allow-invalid-params, another is
    passed on with a warning line."""
    from ..workloads import check_params, parse_params

    params = parse_params(args.params)
    for warning in check_params(params, allow_invalid=args.allow_invalid_params):
        print(f"mlpstorage: warning: {warning}", file=sys.stderr)
    return params


def dlio_options_from(args, processes: int):
    from ..benchmarks.dlio import DlioOptions

    return DlioOptions(
        processes=processes,
        accelerator=getattr(args, "accelerator_type", "h100"),
        params=params_from(args),
        division=getattr(args, "division", None),
        allow_invalid=args.allow_invalid_params,
        io_trace=getattr(args, "io_trace", False),
    )


def what_if(benchmark) -> int:
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


def run_benchmarks(args, make) -> int:
    """Runs make(emitter) --loops times (once unless asked), or prints it with --what-if."""
    if args.what_if:
        from ..emitter import Emitter

        return what_if(make(Emitter()))
    with telemetry(args) as emitter:
        for _ in range(getattr(args, "loops", 1)):
            make(emitter).run()
    return 0


def read_runs(paths: list[Path]) -> list:
    """Each run read (a bad one: one error line), and what was left out of it as warnings."""
    from ..reports.record import read_run
    from ..terminal import harmless

    records = [read_run(path) for path in paths]
    for record in records:
        for problem in record.problems:
            print(f"mlpstorage: warning: {harmless(problem)}", file=sys.stderr)
    return records


def stdout_console():
    from rich.console import Console

    from ..terminal import wants_color

    color = wants_color(sys.stdout)
    # Piped, no terminal sets the width: lines may be as long as a table needs.
    width = None if sys.stdout.isatty() else int(os.environ.get("COLUMNS", "0") or 0) or 120
    return Console(file=sys.stdout, force_terminal=color or None, color_system="auto" if color else None,
                   highlight=False, width=width)
