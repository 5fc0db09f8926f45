"""What every DLIO-driven benchmark shares: validation, the mpirun launch with DLIO's output
passed through, epochs and checkpoints as spans, and results from DLIO's summary."""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

from ..emitter.events import DIVISION, VERDICT, VERDICT_NOTES, VERDICT_REASONS
from ..engines.dlio import DlioProgress, adopt_rank_spans, dlio_program, read_summary, secret_environment
from ..engines.mpi import mpi_command
from ..errors import CommandFailed, ValidationError
from ..hosts import parse_hosts
from ..models import TENSORFLOW_MODELS
from ..redaction import redact, redact_argv
from ..reports.record import RunRecord, record_of_ours
from ..reports.verdict import CLOSED, INVALID, Verdict, judge, refusal
from ..workloads import workload_config
from .base import Benchmark, RunOptions, summarise_hosts
from .io_trace import RunIoTrace, environment_requested, fetch_over_ssh, tracer_environment
from .preflight import Preflight, PreflightResult, conclude, preflight_channel
from .preflight_rules import Needs, ranks_per_host

# Forwarded to every rank with -x: the trace context, where ranks leave their spans (and their
# host and pid), the launcher's pid (whose py-spy may read their stacks), and DFTracer on
# (--io-trace) or off (on by default in 2.0.0, it prints and installs signal handlers).
RANK_ENV = ("TRACEPARENT", "TRACESTATE", "MLPSTORAGE_RANK_EVENTS", "MLPSTORAGE_LAUNCHER_PID", "DFTRACER_ENABLE", "DFTRACER_INC_METADATA")


@dataclass
class DlioOptions:
    processes: int = 1
    accelerator: str = "h100"
    params: dict[str, str] = field(default_factory=dict)
    division: str | None = None  # --closed | --open: the verdict the run must reach before it starts
    allow_invalid: bool = False  # --allow-invalid-params: --open starts an INVALID run anyway
    io_trace: bool = False  # --io-trace: DFTracer in every rank (docs/iotrace.md)


class DlioBenchmark(Benchmark):
    """A benchmark run by DLIO under MPI; subclasses choose the workload and the checks."""

    def __init__(self, options: RunOptions, model: str, command: str, dlio: DlioOptions, emitter=None):
        super().__init__(options, model, command, emitter=emitter)
        self.dlio = dlio
        self.hosts = parse_hosts(options.hosts)
        self.workload = self.workload_name()
        self.summary: dict | None = None
        self.progress: DlioProgress | None = None
        self.returncode: int | None = None
        self.launch_verdict: Verdict | None = None
        self.launch_memory_bytes: float | None = None  # the client memory the launch verdict used
        self.early_cluster_info: dict | None = None  # gathered during validation (see launch_memory)
        self.io: RunIoTrace | None = None  # the I/O trace, from "Running benchmark" on
        self.rank_spans: dict[int, str] = {}  # rank -> the span id of its adopted span
        self.preflight: PreflightResult | None = None  # every host checked, during validation

    @property
    def traced(self) -> bool:
        """Whether the ranks run under DFTracer: --io-trace, or DFTRACER_ENABLE=1 in the environment."""
        return self.dlio.io_trace or environment_requested()

    # ----- what runs ---------------------------------------------------------------------
    @property
    def config(self) -> dict:
        """The workload as DLIO will see it (recomputed: it names the run's directory)."""
        return workload_config(self.workload, self.overrides())

    def workload_name(self) -> str:
        raise NotImplementedError

    def forced_overrides(self) -> dict[str, object]:
        """Keys mlpstorage always sets (paths DLIO would otherwise put in the working directory)."""
        return {"checkpoint.checkpoint_folder": str(self.run_dir / "checkpoints")}

    def overrides(self) -> dict[str, object]:
        return {**self.forced_overrides(), **self.dlio.params}

    def command_line(self) -> list[str]:
        # a secret travels in the environment, forwarded by name: on no command line, in no file
        mpi = dataclasses.replace(self.options.mpi, export_env=[*RANK_ENV, *secret_environment(self.overrides())])
        program = dlio_program(self.workload, self.run_dir, self.overrides())
        return mpi_command(mpi, self.hosts, self.dlio.processes, program)

    # What mlpstorage writes and shows of the command and the configuration (metadata,
    # --what-if): secret values as *** (mlpstorage/redaction.py). DLIO gets command_line().
    def shown_command(self) -> list[str]:
        return redact_argv(self.command_line())

    def shown_config(self) -> dict:
        return redact(self.config)

    def run_attributes(self) -> dict:
        division = {DIVISION: self.dlio.division} if self.dlio.division else {}
        return {**super().run_attributes(), "mlpstorage.workload": self.workload,
                "mlpstorage.processes": self.dlio.processes, **division}

    # The hosts already run MPI for DLIO, so cluster information comes the same way.
    REMOTE_COLLECTION = "mpi"

    # ----- validation --------------------------------------------------------------------
    def _validate(self) -> None:
        self.command_line()  # the host slots must hold the processes
        mpi_bin = self.options.mpi.mpi_bin
        if shutil.which(mpi_bin) is None:
            raise ValidationError(f"{mpi_bin} not found: install OpenMPI (apt-get install openmpi-bin)")
        if importlib.util.find_spec("dlio_benchmark") is None:
            raise ValidationError(f"DLIO is not installed for {sys.executable}: run scripts/setup.sh "
                                  "(pip install --no-deps dlio-benchmark==2.0.0)")
        if self.model in TENSORFLOW_MODELS and importlib.util.find_spec("tensorflow") is None:
            raise ValidationError(f"{self.model} reads tfrecord files through tensorflow: pip install tensorflow-cpu")
        self._validate_data()
        if self.is_judged() and not self.judged_after_collection():
            self._judge_at_launch(self.launch_memory(collect=True))

    def _validate_data(self) -> None:
        """Subclasses check the data directory."""

    # ----- preflight: every host, before mpirun (preflight.py) ---------------------------
    def _preflight(self) -> None:
        channel = preflight_channel(self.collection_method(), self.options.hosts, self.options.mpi.mpi_bin,
                                    self.REMOTE_COLLECTION)
        self.preflight = Preflight(self.emitter, self.options, self.preflight_needs(), channel,
                                   self.ssh_connections).run()
        conclude(self.emitter, self.preflight, ignore=self.options.ignore_preflight and not self.options.preflight_only)

    def preflight_needs(self) -> Needs:
        """What every host must offer this run; subclasses add their folders."""
        argv = self.command_line()
        oversubscribe = "--oversubscribe" in argv  # as the launch will say it
        mpi_bin = self.options.mpi.mpi_bin
        # srun places the ranks by the allocation: the hosts' slots only spread them (never refuse)
        spread = oversubscribe or mpi_bin == "srun"
        return Needs(interpreter=sys.executable, launcher=None if mpi_bin == "srun" else mpi_bin,
                     ranks=ranks_per_host(self.hosts, self.dlio.processes, self.options.mpi.map_by, spread),
                     oversubscribe=oversubscribe)

    # ----- the verdict (mlpstorage/reports/verdict.py) -----------------------------------
    def is_judged(self) -> bool:
        """Whether this run gets a verdict (training: only `run`, as in the existing launcher)."""
        return True

    def judged_after_collection(self) -> bool:
        """Whether the launch verdict waits for the cluster information (the hosts' memory)."""
        return False

    def launch_memory(self, collect: bool) -> float | None:
        """The client hosts' memory the launch verdict judges with (the data-size rule needs it)."""
        return None

    def record(self, memory_bytes: float | None = None, facts: dict | None = None) -> RunRecord:
        """This run as reports read it (mlpstorage/reports/record.py), from what it would write."""
        return record_of_ours(facts or self._facts(), self.run_dir, summary=self.summary, memory_bytes=memory_bytes)

    def verdict(self, memory_bytes: float | None) -> Verdict:
        return judge(self.record(memory_bytes))

    def _judge_at_launch(self, memory_bytes: float | None) -> None:
        """Before anything runs: --closed stops a run that would not be CLOSED, --open one that
        would be INVALID (unless --allow-invalid-params); otherwise the verdict is a warning."""
        self.launch_memory_bytes = memory_bytes
        verdict = self.launch_verdict = self.verdict(memory_bytes)
        self.emitter.set_run_attributes(verdict_attributes(verdict))
        why = refusal(verdict, self.dlio.division, self.dlio.allow_invalid)
        if why:
            raise ValidationError(why)
        if verdict.category == CLOSED:
            self.emitter.info("Verdict at launch: CLOSED", verdict=CLOSED)
        elif verdict.category == INVALID and self.dlio.division == "open":
            self.emitter.warning(f"Running an INVALID run (--allow-invalid-params): {'; '.join(verdict.reasons)}",
                                 verdict=INVALID)
        else:
            self.emitter.warning(f"Verdict at launch: {verdict.category}: {'; '.join(verdict.reasons)}",
                                 verdict=verdict.category)

    def _collect_cluster_start(self) -> dict:
        info = self._collect_cluster("start", self.early_cluster_info)
        if self.is_judged() and self.launch_verdict is None:
            self._judge_at_launch(cluster_memory(info))
        return info

    # ----- running -----------------------------------------------------------------------
    def _run(self) -> None:
        ranks = self.run_dir / "ranks"
        ranks.mkdir(exist_ok=True)
        env = {**os.environ, "TRACESTATE": "", **self.emitter.trace_environment(),
               "MLPSTORAGE_RANK_EVENTS": str(ranks), "MLPSTORAGE_LAUNCHER_PID": str(os.getpid()),
               **tracer_environment(self.traced), **secret_environment(self.overrides())}
        self.io = RunIoTrace(self.emitter, self.run_dir, self.traced, self.dlio.processes, [h.name for h in self.hosts])
        argv = self.command_line()
        self.emitter.status(f"Running DLIO {self.workload} with {self.dlio.processes} processes on "
                            f"{len(self.hosts)} host{'s' if len(self.hosts) != 1 else ''}{self.io.status()}",
                            io_trace=self.traced)
        self.emitter.debug("command: " + " ".join(redact_argv(argv)))
        computation_time, _, _ = self.stall_defaults()
        self.progress = self._progress(self.config.get("train", {}).get("epochs"), self.dlio.processes, computation_time)
        self.progress.epoch_attributes = self.io.epoch_reader()
        try:
            self.returncode = self._run_job(argv, env, self.progress, source="dlio")
        finally:
            watch = self.stall_watch
            self.rank_spans = adopt_rank_spans(self.emitter, ranks, watch.rank_attributes() if watch else None)
        if self.returncode != 0:
            raise CommandFailed(argv[0], self.returncode, self.progress.last_error)

    def stall_defaults(self) -> tuple[float | None, float | None, str]:
        """The workload's computation time per step, and its epoch's expected length (DLIO's
        steps per epoch: files x samples per file / batch size / ranks, times that time)."""
        config = self.config
        try:
            computation = float((config.get("train") or {}).get("computation_time") or 0) or None
            dataset, batch = config.get("dataset") or {}, int((config.get("reader") or {}).get("batch_size") or 1)
            steps = int(dataset.get("num_files_train", 0)) * int(dataset.get("num_samples_per_file", 1)) // \
                (max(1, batch) * self.dlio.processes)
        except (TypeError, ValueError, AttributeError):  # a value --params made unreadable: DLIO will say so
            return None, None, self.BENCHMARK_TYPE
        return computation, (steps * computation if computation and steps else None), self.BENCHMARK_TYPE

    def stall_ranks(self) -> int:
        return self.dlio.processes

    # ----- results -----------------------------------------------------------------------
    def metrics(self) -> dict:
        """Headline metrics from DLIO's summary.json (empty when DLIO wrote none)."""
        return {}

    def _process_results(self) -> None:
        self.summary = read_summary(self.run_dir)
        self._read_io_trace()
        metrics = self.metrics()
        attributes = {f"mlpstorage.metric.{k}": v for k, v in metrics.items() if isinstance(v, (int, float, str, bool))}
        verdict = self.verdict(self.launch_memory_bytes) if self.is_judged() else None
        if verdict is not None:
            attributes.update(verdict_attributes(verdict))
        self.emitter.set_run_attributes(attributes)
        super()._process_results()
        self.report(metrics)
        if self.io is not None:
            self.io.report()
        if verdict is not None:
            self.report_verdict(verdict)

    def report(self, metrics: dict) -> None:
        """RESULT lines for the headline metrics."""

    def _read_io_trace(self) -> None:
        """io_trace.json, the io.summary event and the slowest calls as spans, from the ranks'
        traces (those left on other hosts brought back over ssh when the collection is ssh)."""
        if self.io is None:
            return
        fetch = None
        if self.collection_method() == "ssh":
            fetch = fetch_over_ssh(self.ssh_connections, [h.name for h in self.hosts], self.run_dir,
                                   self.dlio.processes, self.emitter.info)
        self.io.process(self.rank_spans, fetch)

    def _salvage_results(self, interrupted: bool) -> None:
        """A failed or stalled run's traces are read as a finished run's are; an interrupted
        run stops quickly, its trace files left in the run folder."""
        if self.io is None:
            return
        if interrupted:
            if self.traced:
                self.emitter.info(f"The I/O trace was not read (the run was interrupted): the rank traces stay in "
                                  f"{self.run_dir}")
            return
        self._read_io_trace()

    def report_verdict(self, verdict: Verdict) -> None:
        launch = self.launch_verdict
        changed = f" (at launch: {launch.category})" if launch and launch.category != verdict.category else ""
        self.emitter.result(f"Verdict: {verdict.category}{changed}", verdict=verdict.category)
        for reason in verdict.reasons:
            self.emitter.result(f"- {reason}")
        for note in verdict.notes:
            self.emitter.result(f"note: {note}")

    def metadata(self) -> dict:
        facts = self._facts()
        if self.is_judged():
            verdict = judge(self.record(self.launch_memory_bytes, facts))
            facts["verdict"] = {**verdict.as_dict(), "division": self.dlio.division,
                                "at_launch": self.launch_verdict.as_dict() if self.launch_verdict else None}
        return facts

    def _facts(self) -> dict:
        """The metadata but the verdict, which is judged from it."""
        return {
            **super().metadata(),
            "arguments": {"processes": self.dlio.processes, "accelerator": self.dlio.accelerator,
                          "params": redact(self.dlio.params), "hosts": [str(h) for h in self.hosts],
                          "division": self.dlio.division},
            "workload": self.workload,
            "resolved_parameters": self.shown_config(),
            "executed_command": self.shown_command(),
            "returncode": self.returncode,
            "metrics": self.metrics(),
            "dlio_summary": self.summary,
            "io_trace": self.io.metadata() if self.io is not None else {"requested": self.traced, "file": None},
            "preflight": self.preflight.metadata() if self.preflight is not None else None,
        }


def verdict_attributes(verdict: Verdict) -> dict:
    return {VERDICT: verdict.category, VERDICT_REASONS: list(verdict.reasons), VERDICT_NOTES: list(verdict.notes)}


def cluster_memory(info: dict) -> float | None:
    """The client hosts' memory together, when every host told its own."""
    summary = summarise_hosts(info)
    if not info or summary["hosts_without_information"]:
        return None
    return float(summary["total_memory_bytes"]) or None


def count_files(folder: Path, suffix: str) -> int:
    try:
        return sum(1 for entry in os.scandir(folder) if entry.is_file() and entry.name.endswith(suffix))
    except OSError:
        return 0
