"""The benchmark lifecycle: four stages, each a span, every step an event.

    Validating environment -> Collecting cluster info -> Running benchmark -> Processing results

Subclasses implement _validate() and _run() (and may extend _process_results()); the base
class owns the stages, the cluster-info spinners and the time-series sampler. It reports only
through the emitter and never knows how the run is displayed.
"""

from __future__ import annotations

import datetime
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..collectors.hostinfo import collect_local
from ..collectors.mpi import MpiCollectionError, collect_via_mpi
from ..collectors.ssh import SshConnections, SshOptions, collect_via_ssh
from ..collectors.timeseries import Timeseries
from ..emitter import Emitter, current_emitter, use_emitter
from ..errors import StallAborted, Terminated
from ..engines.dlio import DlioProgress
from ..engines.mpi import MpiOptions
from ..engines.process import HeldSignals, run_command
from ..hosts import Host, host_names, is_local_host
from ..slurm import job_attributes
from ..results import check_writable, claim_run_dir, run_dir_base, write_json
from ..stalls.detector import StallDetector, default_timeout
from ..stalls.watch import StallWatch

STAGES = ("Validating environment", "Collecting cluster info", "Running benchmark", "Processing results")

COLLECTION_LABELS = {"local": "locally", "ssh": "via SSH", "mpi": "via MPI"}


@dataclass
class Spinner:
    """The open collection spinner, handed to the collectors: its two callables and its span
    (the parent of per-host spans opened from worker threads)."""

    update: Callable[..., None]
    set_description: Callable[[str], None]
    span: object


@dataclass
class RunOptions:
    """What every benchmark run takes from the command line."""

    results_dir: Path = Path("results")
    hosts: list[str] = field(default_factory=lambda: ["localhost"])
    cluster_collection: str = "auto"  # auto | local | ssh | mpi | none
    skip_timeseries: bool = False
    timeseries_interval: float = 10.0
    max_timeseries_samples: int = 3600
    data_dir: str | None = None
    ssh: SshOptions = field(default_factory=SshOptions)
    mpi: MpiOptions = field(default_factory=MpiOptions)  # for MPI collection
    stall_timeout_s: float | None = None  # None: the benchmark's default; 0: no stall detection
    on_stall: str = "warn"  # warn | dump | abort (mlpstorage/stalls/watch.py)


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
        self.sampler: Timeseries | None = None
        self.ssh_connections = SshConnections(options.ssh)  # one login per remote host per run
        self.timeseries: dict[str, list[dict]] = {}
        self.failure: BaseException | None = None  # what ended "Running benchmark", if it failed
        self.results_processed = False  # "Processing results" ran: the run has a page to write
        self.stall_watch: StallWatch | None = None  # while "Running benchmark" runs (see _watch_stalls)
        # method -> callable(hosts, data_dir, spinner) -> {host: info}; see _collect_cluster.
        self.collectors = {"local": self._collect_locally, "ssh": self._collect_via_ssh, "mpi": self._collect_via_mpi}

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
                if self.results_processed:
                    self._write_report()

    def _lifecycle(self) -> None:
        emitter = self.emitter
        with emitter.run(f"mlpstorage {self.BENCHMARK_TYPE} {self.command}", self.run_attributes()):
            with emitter.stages(STAGES) as advance_stage, self.ssh_connections:
                check_writable(self.options.results_dir, "results directory")
                self._validate()
                self.run_dir = claim_run_dir(self.run_dir.parent, self.run_datetime)
                self.run_datetime = self.run_dir.name
                emitter.attach_recording(self.run_dir)
                emitter.set_run_attributes({"mlpstorage.run_id": self.run_id, "mlpstorage.results_dir": str(self.run_dir)})
                emitter.info("Environment validation passed")
                emitter.info(f"Results in {self.run_dir}", results_dir=str(self.run_dir))
                advance_stage()

                self._open_ssh_connections()
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
            self.stall_watch = self._watch_stalls()
            self._start_timeseries()
            started = time.perf_counter()
            self._run()
            self.runtime = time.perf_counter() - started
        except BaseException as exc:
            failure = exc
        try:
            with HeldSignals():  # a second signal: still into stage 4, once the job is stopped
                failure = self._stop_stall_watch(failure)
                if failure is not None:
                    self.failure = failure
                    self.emitter.fail_stage(failure)
                self._stop_timeseries()
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
        self.results_processed = True
        for step in (lambda: self._finish_run(interrupted), self._write_metadata):
            try:
                step()
            except Exception as exc:
                self.emitter.warning(f"While keeping what the failed run left: {type(exc).__name__}: {exc}")

    # ----- hooks for subclasses --------------------------------------------------------
    def _validate(self) -> None:
        """Raise ValidationError when the environment cannot run the benchmark."""

    def _run(self) -> None:
        raise NotImplementedError

    def _process_results(self) -> None:
        self.results_processed = True
        self._write_metadata()

    def _write_metadata(self) -> None:
        write_json(self.run_dir / f"{self.BENCHMARK_TYPE}_{self.run_datetime}_metadata.json", self.metadata())

    def _write_report(self) -> None:
        """report.html, the run's page, from the run's folder once the run is over. The page is
        secondary: a problem writing it is a warning and the run's outcome stands."""
        try:
            from ..reports.page import write_run_page  # imported here: only a run that gets this far needs it

            page = write_run_page(self.run_dir)
            self.emitter.info(f"Report: {page}", report=str(page))
        except Exception as exc:
            self.emitter.warning(f"No report.html: {type(exc).__name__}: {exc}")

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
            "stalls": self.stall_watch.history() if self.stall_watch else {"timeout_s": 0, "flagged": []},
            **({"slurm": slurm} if (slurm := job_attributes()) else {}),
            "files": sorted(p.name for p in self.run_dir.iterdir() if p.is_file()) if self.run_dir.exists() else [],
        }

    # ----- cluster information ---------------------------------------------------------
    # Work that launches with MPI prefers MPI collection (see DlioBenchmark).
    REMOTE_COLLECTION = "ssh"

    def collection_method(self) -> str:
        """auto: local when the only host is this one, else REMOTE_COLLECTION."""
        method = self.options.cluster_collection
        if method != "auto":
            return method
        return "local" if all(is_local_host(h) for h in self.options.hosts) else self.REMOTE_COLLECTION

    def _collect_cluster(self, when: str, info: dict | None = None) -> dict:
        """Host information (gathered now unless given) kept as <benchmark>_<datetime>_cluster_<when>.json."""
        if info is None:
            if self.collection_method() == "none":
                return {}
            info = self.gather_cluster_info()
        write_json(self.run_dir / f"{self.BENCHMARK_TYPE}_{self.run_datetime}_cluster_{when}.json", info)
        return info

    def gather_cluster_info(self) -> dict:
        """{host: info} from every host by the collection method, under a spinner; a host that
        gave none is a warning."""
        hosts = host_names(self.options.hosts)
        method = self.collection_method()
        if method == "none":
            return {}
        count = len(hosts)
        plural = "s" if count != 1 else ""
        with self.emitter.spinner(f"Collecting cluster info ({count} host{plural})...", None) as handle:
            update, set_description = handle.update, handle.set_description
            spinner = Spinner(update, set_description, self.emitter.current_span())
            set_description(f"Collecting {COLLECTION_LABELS[method]}...")
            info = self.collectors[method](hosts, self.options.data_dir, spinner)
        for host, host_info in info.items():
            if "error" in host_info:
                self.emitter.warning(f"No cluster information from {host}: {host_info['error']}", host=host)
        return info

    def _collect_cluster_start(self) -> dict:
        return self._collect_cluster("start")

    def _collect_cluster_end(self) -> dict:
        return self._collect_cluster("end")

    def _collect_locally(self, hosts: list[str], data_dir: str | None, spinner: Spinner) -> dict:
        info = collect_local(data_dir)
        return {info["hostname"]: info}

    def _collect_via_ssh(self, hosts: list[str], data_dir: str | None, spinner: Spinner) -> dict:
        """Every host in parallel, each a child span of the spinner, whose text counts them."""

        def as_span(host: str, work) -> dict:
            span = self.emitter.start_task(f"host {host}", {"host.name": host}, parent=spinner.span)
            info = collect_local(data_dir) if is_local_host(host) else work()  # no ssh to ourselves
            self.emitter.end_task(span, {"mlpstorage.hostname": info.get("hostname", host)}, error=info.get("error"))
            return info

        def done(count: int) -> None:
            spinner.update(completed=count, description=f"Collecting via SSH... {count}/{len(hosts)} hosts")

        return collect_via_ssh(hosts, data_dir, self.options.ssh, run_host=as_span, on_done=done,
                               connections=self.ssh_connections)

    def _collect_via_mpi(self, hosts: list[str], data_dir: str | None, spinner: Spinner) -> dict:
        """One rank per host; if MPI fails, SSH (or local for this host alone), with a warning."""
        try:
            return collect_via_mpi([Host(h) for h in hosts], data_dir, self.options.mpi, self.options.ssh.timeout_s + 20)
        except MpiCollectionError as exc:
            fallback = "local" if all(is_local_host(h) for h in hosts) else "ssh"
            self.emitter.warning(f"MPI collection failed ({exc}); collecting {COLLECTION_LABELS[fallback]} instead")
            spinner.set_description(f"Collecting {COLLECTION_LABELS[fallback]}...")
            return self.collectors[fallback](hosts, data_dir, spinner)

    def _open_ssh_connections(self) -> None:
        """When the run will use SSH, one master connection per remote host, from before the
        collection at the start to after the one at the end (closed as run() leaves, on every
        way out): every use is a session on it. The hosts log in while the collection's
        spinner runs (each host's first use waits for its own master)."""
        if self.collection_method() == "ssh" or not self.options.skip_timeseries:
            try:
                self.ssh_connections.open(host_names(self.options.hosts))
            except OSError as exc:  # no private directory for the sockets: each use logs in
                self.emitter.warning(f"SSH connections are not shared in this run: {exc}")

    # ----- stalls (mlpstorage/stalls/) --------------------------------------------------
    def stall_defaults(self) -> tuple[float | None, float | None, str]:
        """(step computation time, expected epoch seconds, kind) for the default timeout."""
        return None, None, self.BENCHMARK_TYPE

    def stall_ranks(self) -> int:
        """How many ranks report steps (0: none known in advance)."""
        return 0

    def _watch_stalls(self) -> StallWatch | None:
        timeout = self.options.stall_timeout_s
        if timeout is None:
            timeout = default_timeout(*self.stall_defaults())
        if timeout <= 0:
            return None
        ranks = self.stall_ranks()
        detector = StallDetector(timeout, ranks=ranks, interval_s=self.options.timeseries_interval)
        self.emitter.info(f"Stall detection: flagged after {timeout:g} s without progress "
                          f"(--stall-timeout), then {self.options.on_stall} (--on-stall)",
                          stall_timeout_s=timeout, on_stall=self.options.on_stall)
        return StallWatch(self.emitter, detector, self.run_dir, self.options.on_stall,
                          ranks_dir=self.run_dir / "ranks" if ranks else None, ranks=ranks)

    def _job_started(self, proc) -> None:
        """run_command's on_start: the benchmark's job runs; the stall watch follows it."""
        if self.stall_watch is not None:
            self.stall_watch.start(proc)

    def _progress(self, epochs: int | None = None, ranks: int | None = None,
                  computation_time_s: float | None = None) -> DlioProgress:
        """A reader of the job's DLIO-shaped output, telling the stall watch (if any)."""
        watch = self.stall_watch
        progress = DlioProgress(self.emitter, epochs, detector=watch.detector if watch else None, ranks=ranks,
                                computation_time_s=computation_time_s)
        if watch is not None:
            watch.on_tick.append(progress.flush)
        return progress

    def _run_job(self, argv: list[str], env: dict[str, str], progress: DlioProgress, source: str | None = None) -> int:
        """Runs the benchmark's job (its output passed through and read by progress, the stall
        watch following it); whatever progress opened ends with the job, in error if it failed."""
        error = None
        try:
            code = run_command(argv, emitter=self.emitter, log_dir=self.run_dir, env=env, observer=progress.observe,
                               source=source, on_start=self._job_started)
            if code != 0:
                error = f"{argv[0]} exited with code {code}"
            return code
        except BaseException as exc:
            error = f"{type(exc).__name__}: {exc}".rstrip(": ")
            raise
        finally:
            progress.close(error)

    def _stop_stall_watch(self, failure: BaseException | None) -> BaseException | None:
        """Stops the watch; a job it stopped (--on-stall abort) fails with StallAborted."""
        watch = self.stall_watch
        if watch is None:
            return failure
        watch.stop()
        if watch.aborted is not None and not isinstance(failure, (KeyboardInterrupt, Terminated)):
            aborted = StallAborted(f"the job was stopped on a stall (--on-stall abort): {watch.aborted.message}")
            aborted.__cause__ = failure
            return aborted
        return failure

    def _on_sample(self, host: str, sample: dict) -> None:
        self.emitter.sample(host, sample)
        if self.stall_watch is not None:
            self.stall_watch.sample(host, sample)

    # ----- time series -----------------------------------------------------------------
    def _start_timeseries(self) -> None:
        if self.options.skip_timeseries:
            return
        self.sampler = Timeseries(
            host_names(self.options.hosts),
            self.options.timeseries_interval,
            self.options.max_timeseries_samples,
            on_sample=self._on_sample,
            on_limit=lambda n: self.emitter.warning(f"Time-series sampling stopped at its limit of {n} samples per host"),
            ssh=self.options.ssh,
            connections=self.ssh_connections,
        )
        self.sampler.start()

    def _stop_timeseries(self) -> None:
        if self.sampler is not None and not self.sampler.stopped:
            self.timeseries = self.sampler.stop()
            for host, error in self.sampler.errors().items():
                self.emitter.warning(f"No time series from {host}: {error}", host=host)

    def _write_timeseries(self) -> None:
        if self.sampler is not None:
            write_json(
                self.run_dir / f"{self.BENCHMARK_TYPE}_{self.run_datetime}_timeseries.json",
                {"interval_s": self.sampler.interval_s, "max_samples": self.sampler.max_samples,
                 "hosts": self.timeseries, "errors": self.sampler.errors()},
            )


def run_status(failure: BaseException | None) -> str:
    if failure is None:
        return "ok"
    if isinstance(failure, StallAborted):
        return "stalled"
    return "interrupted" if isinstance(failure, (KeyboardInterrupt, Terminated)) else "failed"


def summarise_hosts(infos: dict) -> dict:
    """Totals for the metadata, and the hosts whose CPU, memory or OS differ from the first."""
    hosts = list(infos.values())
    if not hosts:
        return {"host_count": 0}

    def shape(h: dict) -> tuple:
        return (h.get("cpu", {}).get("model"), h.get("cpu", {}).get("cores"), h.get("memory", {}).get("total_bytes"),
                h.get("os", {}).get("kernel"))

    answered = {name: h for name, h in infos.items() if "error" not in h}
    hosts = list(answered.values()) or hosts
    first = shape(hosts[0])
    return {
        "host_count": len(infos),
        "hosts_without_information": sorted(set(infos) - set(answered)),
        "total_memory_bytes": sum(h.get("memory", {}).get("total_bytes", 0) for h in hosts),
        "total_cores": sum(h.get("cpu", {}).get("cores", 0) for h in hosts),
        "differing_hosts": [name for name, h in answered.items() if shape(h) != first],
    }
