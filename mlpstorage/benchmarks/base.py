"""The benchmark lifecycle: four stages, each a span, every step an event.

    Validating environment -> Collecting cluster info -> Running benchmark -> Processing results

Subclasses implement _validate() and _run() (and may extend _preflight() and
_process_results()); the base class owns the stages and what happens between them: the cluster information (cluster.py),
the job under the stall watch (job.py) and the time series (sampling.py). It reports only
through the emitter and never knows how the run is displayed.
"""

from __future__ import annotations

import datetime
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..collectors.ssh import SshConnections, SshOptions
from ..emitter import Emitter, current_emitter, use_emitter
from ..engines.mpi import MpiOptions
from ..engines.process import HeldSignals
from ..errors import StallAborted, Terminated
from ..reports.record import write_run_record
from ..results import check_writable, claim_run_dir, run_dir_base, write_json
from ..slurm import job_attributes
from ..stalls.watch import StallWatch
from .cluster import ClusterCollection, summarise_hosts
from .job import WatchedJob
from .sampling import RunTimeseries

REPORT_FILE = "report.html"
STAGES = ("Validating environment", "Collecting cluster info", "Running benchmark", "Processing results")


@dataclass
class RunOptions:
    """What every benchmark run takes from the command line."""

    results_dir: Path = Path("results")
    hosts: list[str] = field(default_factory=lambda: ["localhost"])
    cluster_collection: str = "auto"  # auto | local | ssh | mpi | none
    skip_timeseries: bool = False
    skip_page: bool = False  # --skip-page: no report.html (reports html writes it later)
    timeseries_interval: float = 10.0
    max_timeseries_samples: int = 3600
    data_dir: str | None = None
    ssh: SshOptions = field(default_factory=SshOptions)
    mpi: MpiOptions = field(default_factory=MpiOptions)  # for MPI collection
    stall_timeout_s: float | None = None  # None: the benchmark's default; 0: no stall detection
    on_stall: str = "warn"  # warn | dump | abort (mlpstorage/stalls/watch.py)
    preflight_only: bool = False  # --preflight-only: validate and check every host, run nothing
    ignore_preflight: bool = False  # --ignore-preflight: a failing host is a warning, the run goes on


class Benchmark:
    BENCHMARK_TYPE = "benchmark"

    def __init__(self, options: RunOptions, model: str, command: str, emitter: Emitter | None = None):
        self.options = options
        self.model = model
        self.command = command
        self.emitter = emitter or current_emitter()
        # The run's directory is claimed (created) once validation has passed; until then it is
        # the planned name, which --what-if shows.
        self.run_datetime = datetime.datetime.now().strftime("%Y%m%d_%H%M%S")
        self.run_dir = run_dir_base(options.results_dir, self.BENCHMARK_TYPE, model, command) / self.run_datetime
        self.runtime: float | None = None
        self.cluster_info_start: dict | None = None
        self.cluster_info_end: dict | None = None
        self.ssh_connections = SshConnections(options.ssh)  # one login per remote host per run
        self.cluster = ClusterCollection(options, self.emitter, self.ssh_connections, remote=self.REMOTE_COLLECTION)
        self.job: WatchedJob | None = None  # while "Running benchmark" runs
        self.sampling = RunTimeseries(options, self.emitter, self.ssh_connections, self._on_sample)
        self.failure: BaseException | None = None  # what ended "Running benchmark", if it failed
        self.page_due = False  # "Processing results" ran and --skip-page was not given

    @property
    def collectors(self) -> dict:
        """method -> callable(hosts, data_dir, spinner) -> {host: info} (see cluster.py)."""
        return self.cluster.collectors

    @property
    def stall_watch(self) -> StallWatch | None:
        return self.job.watch if self.job is not None else None

    @property
    def sampler(self):
        return self.sampling.sampler

    @property
    def timeseries(self) -> dict[str, list[dict]]:
        """{host: samples} once "Running benchmark" has ended."""
        return self.sampling.samples

    @property
    def run_id(self) -> str:
        return f"{self.BENCHMARK_TYPE}-{self.model}-{self.command}-{self.run_datetime}"

    # ----- the lifecycle ---------------------------------------------------------------
    def run_attributes(self) -> dict:
        return {
            "mlpstorage.benchmark": self.BENCHMARK_TYPE,
            "mlpstorage.model": self.model,
            "mlpstorage.command": self.command,
            "mlpstorage.hosts": list(self.options.hosts),
            "mlpstorage.run_id": self.run_id,
            "mlpstorage.results_dir": str(self.run_dir),
        }

    def run(self) -> None:
        emitter = self.emitter
        with use_emitter(emitter):
            try:
                self._lifecycle()
            finally:
                # The page shows the finished run, so it is written once the run span has
                # ended (the recording holds its end) and whatever way the run ended.
                if self.page_due:
                    self._write_report()

    def _lifecycle(self) -> None:
        emitter = self.emitter
        with emitter.run(f"mlpstorage {self.BENCHMARK_TYPE} {self.command}", self.run_attributes()):
            with emitter.stages(STAGES) as advance_stage, self.ssh_connections:
                check_writable(self.options.results_dir, "results directory")
                self._validate()
                self._preflight()
                if self.options.preflight_only:
                    emitter.info("Preflight only: nothing was run")
                    return
                self.run_dir = claim_run_dir(self.run_dir.parent, self.run_datetime)
                self.run_datetime = self.run_dir.name
                emitter.attach_recording(self.run_dir)
                emitter.set_run_attributes({"mlpstorage.run_id": self.run_id, "mlpstorage.results_dir": str(self.run_dir)})
                emitter.info("Environment validation passed")
                emitter.info(f"Results in {self.run_dir}", results_dir=str(self.run_dir))
                advance_stage()

                self.cluster.open_connections()
                self.cluster_info_start = self._collect_cluster_start()
                failure = self._run_benchmark_stage(advance_stage)

                # "Processing results" runs after a failure too, with what the run left; on
                # Ctrl-C or SIGTERM the end-of-run collection is skipped, so stopping is quick.
                if failure is None:
                    try:
                        self._finish_run(interrupted=False)
                        self._process_results()
                    except BaseException as exc:  # a signal while the results are processed
                        failure = self.failure = exc
                        emitter.fail_stage(exc)
                        self._salvage(exc)
                else:
                    self._salvage(failure)
                advance_stage()
                if failure is not None:
                    raise failure

    def _run_benchmark_stage(self, advance_stage) -> BaseException | None:
        """Stage 3, from its start to the start of stage 4; returns what made it fail. Every
        way out of it, a signal at any moment included, leads to "Processing results": the
        stage opens with signals held, and everything after is inside the try."""
        failure = None
        try:
            with HeldSignals():
                advance_stage()
            # The sampler covers exactly "Running benchmark": started once it is open and
            # stopped before it ends, so every sample belongs to that stage.
            self.job = WatchedJob(self.emitter, self.options, self.run_dir, self.stall_defaults(), self.stall_ranks())
            self.sampling.start()
            started = time.perf_counter()
            self._run()
            self.runtime = time.perf_counter() - started
        except BaseException as exc:
            failure = exc
        try:
            with HeldSignals():  # a second signal: still into stage 4, once the job is stopped
                failure = self.job.stop(failure) if self.job is not None else failure
                if failure is not None:
                    self.failure = failure
                    self.emitter.fail_stage(failure)
                self.sampling.stop()
                advance_stage()
        except BaseException as exc:  # the held signal, now raised: stage 4 is open
            failure = failure or exc
            self.failure = failure
        return failure

    def _finish_run(self, interrupted: bool) -> None:
        if interrupted:
            self.emitter.warning("End-of-run cluster information skipped: the run was interrupted")
        else:
            self.cluster_info_end = self._collect_cluster_end()
        self._write_timeseries()

    def _salvage(self, failure: BaseException) -> None:
        """What a failed run can still keep (time series, metadata, its page); a problem here
        is a warning, so it never hides the failure itself."""
        interrupted = isinstance(failure, (KeyboardInterrupt, Terminated))
        self._announce_report()
        for step in (lambda: self._finish_run(interrupted), lambda: self._salvage_results(interrupted),
                     self._write_metadata):
            try:
                step()
            except Exception as exc:
                self.emitter.warning(f"While keeping what the failed run left: {type(exc).__name__}: {exc}")

    # ----- hooks for subclasses --------------------------------------------------------
    def _validate(self) -> None:
        """Raise ValidationError when the environment cannot run the benchmark."""

    def _preflight(self) -> None:
        """Check every host before anything runs on them (the DLIO benchmarks: preflight.py)."""

    def _run(self) -> None:
        raise NotImplementedError

    def _process_results(self) -> None:
        self._announce_report()
        self._write_metadata()

    def _salvage_results(self, interrupted: bool) -> None:
        """What of the results a failed run can still process (its I/O trace, for DLIO)."""

    def _write_metadata(self) -> None:
        write_run_record(self.run_dir, self.BENCHMARK_TYPE, self.metadata())

    def _announce_report(self) -> None:
        """The run will have a page: said while "Processing results" runs, so the line is part
        of the recording and stands above the summary the live display leaves."""
        if self.options.skip_page:
            return
        self.page_due = True
        page = self.run_dir / REPORT_FILE
        self.emitter.info(f"Report: {page}", report=str(page))

    def _write_report(self) -> None:
        """report.html, the run's page, from the run's folder once the run is over. The page is
        secondary: a problem writing it is a warning and the run's outcome stands."""
        try:
            from ..reports.page import write_run_page  # imported here: only a run that gets this far needs it

            write_run_page(self.run_dir, self.run_dir / REPORT_FILE)
        except Exception as exc:
            self.emitter.warning(f"No {REPORT_FILE}: {type(exc).__name__}: {exc}")

    def metadata(self) -> dict:
        return {
            "benchmark": self.BENCHMARK_TYPE,
            "model": self.model,
            "command": self.command,
            "run_id": self.run_id,
            "hosts": list(self.options.hosts),
            "status": run_status(self.failure),
            **({"error": f"{type(self.failure).__name__}: {self.failure}".rstrip(": ")} if self.failure else {}),
            "runtime_s": self.runtime,
            "stage_durations_s": self.emitter.stage_durations(),
            "cluster": summarise_hosts(self.cluster_info_start or {}),
            "stalls": self.job.history() if self.job else {"timeout_s": 0, "flagged": []},
            **({"slurm": slurm} if (slurm := job_attributes()) else {}),
            "files": sorted(p.name for p in self.run_dir.iterdir() if p.is_file()) if self.run_dir.exists() else [],
        }

    # ----- cluster information (cluster.py) ---------------------------------------------
    # Work that launches with MPI prefers MPI collection (see DlioBenchmark).
    REMOTE_COLLECTION = "ssh"

    def collection_method(self) -> str:
        return self.cluster.method()

    def gather_cluster_info(self) -> dict:
        return self.cluster.gather()

    def _collect_cluster(self, when: str, info: dict | None = None) -> dict:
        """Host information (gathered now unless given) kept as <benchmark>_<datetime>_cluster_<when>.json."""
        if info is None:
            if self.collection_method() == "none":
                return {}
            info = self.gather_cluster_info()
        write_json(self.run_dir / f"{self.BENCHMARK_TYPE}_{self.run_datetime}_cluster_{when}.json", info)
        return info

    def _collect_cluster_start(self) -> dict:
        return self._collect_cluster("start")

    def _collect_cluster_end(self) -> dict:
        return self._collect_cluster("end")

    # ----- the job under the stall watch (job.py) ------------------------------------
    def stall_defaults(self) -> tuple[float | None, float | None, str]:
        """(step computation time, expected epoch seconds, kind) for the default timeout."""
        return None, None, self.BENCHMARK_TYPE

    def stall_ranks(self) -> int:
        """How many ranks report steps (0: none known in advance)."""
        return 0

    def _progress(self, epochs: int | None = None, ranks: int | None = None, computation_time_s: float | None = None):
        return self.job.progress(epochs, ranks, computation_time_s)

    def _run_job(self, argv: list[str], env: dict[str, str], progress, source: str | None = None) -> int:
        return self.job.run(argv, env, progress, source)

    def _on_sample(self, host: str, sample: dict) -> None:
        if self.job is not None:
            self.job.sample(host, sample)

    def _write_timeseries(self) -> None:
        self.sampling.write(self.run_dir / f"{self.BENCHMARK_TYPE}_{self.run_datetime}_timeseries.json")


def run_status(failure: BaseException | None) -> str:
    if failure is None:
        return "ok"
    if isinstance(failure, StallAborted):
        return "stalled"
    return "interrupted" if isinstance(failure, (KeyboardInterrupt, Terminated)) else "failed"
