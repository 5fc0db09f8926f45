"""The benchmark's job: its program run with its output passed through, read as DLIO-shaped
progress (epochs, steps, checkpoints), and followed by the stall watch (mlpstorage/stalls/).
Both DLIO's ranks and `exec`'s program run this way; the lifecycle (base.py) only starts and
stops it."""

from __future__ import annotations

import random
import subprocess
import time
from pathlib import Path

from ..emitter import Emitter
from ..emitter import events as ev
from ..engines.dlio import DlioProgress
from ..engines.process import exit_attributes, run_command, started_attributes
from ..errors import StallAborted, Terminated
from ..stalls.detector import StallDetector, default_timeout
from ..stalls.watch import StallWatch


class WatchedJob:
    """options: the run's (stall timeout, --on-stall, sampling interval); defaults: (step
    computation time, expected epoch seconds, kind) for the default timeout; ranks: how many
    ranks report steps (0: none known in advance)."""

    def __init__(self, emitter: Emitter, options, run_dir: Path, defaults: tuple, ranks: int):
        self.emitter = emitter
        self.run_dir = run_dir
        self.watch: StallWatch | None = None
        timeout = options.stall_timeout_s
        if timeout is None:
            timeout = default_timeout(*defaults)
        if timeout <= 0:
            return
        detector = StallDetector(timeout, ranks=ranks, interval_s=options.timeseries_interval)
        emitter.info(f"Stall detection: flagged after {timeout:g} s without progress "
                     f"(--stall-timeout), then {options.on_stall} (--on-stall)",
                     stall_timeout_s=timeout, on_stall=options.on_stall)
        self.watch = StallWatch(emitter, detector, run_dir, options.on_stall,
                                ranks_dir=run_dir / "ranks" if ranks else None, ranks=ranks)

    def progress(self, epochs: int | None = None, ranks: int | None = None,
                 computation_time_s: float | None = None) -> DlioProgress:
        """A reader of the job's DLIO-shaped output, telling the stall watch (if any)."""
        watch = self.watch
        progress = DlioProgress(self.emitter, epochs, detector=watch.detector if watch else None, ranks=ranks,
                                computation_time_s=computation_time_s)
        if watch is not None:
            watch.on_tick.append(progress.flush)
        return progress

    def run(self, argv: list[str], env: dict[str, str], progress: DlioProgress, source: str | None = None) -> int:
        """Runs the job (its output passed through and read by progress, the stall watch
        following it); whatever progress opened ends with the job, in error if it failed.
        The job's own span (JobSpan) is recorded as it ends."""
        error = None
        span = JobSpan(self.emitter, argv)
        on_start = span.started if self.watch is None else span.started_then(self.watch.start)
        try:
            code = run_command(argv, emitter=self.emitter, log_dir=self.run_dir, env=env, observer=progress.observe,
                               source=source, on_start=on_start)
            if code != 0:
                error = f"{argv[0]} exited with code {code}"
            return code
        except BaseException as exc:
            error = f"{type(exc).__name__}: {exc}".rstrip(": ")
            span.failure = exc
            raise
        finally:
            try:
                progress.close(error)
            finally:
                span.end(error)

    def sample(self, host: str, sample: dict) -> None:
        if self.watch is not None:
            self.watch.sample(host, sample)

    def stop(self, failure: BaseException | None) -> BaseException | None:
        """Stops the watch; a job it stopped (--on-stall abort) fails with StallAborted."""
        watch = self.watch
        if watch is None:
            return failure
        watch.stop()
        if watch.aborted is not None and not isinstance(failure, (KeyboardInterrupt, Terminated)):
            aborted = StallAborted(f"the job was stopped on a stall (--on-stall abort): {watch.aborted.message}")
            aborted.__cause__ = failure
            return aborted
        return failure

    def history(self) -> dict:
        return self.watch.history() if self.watch else {"timeout_s": 0, "flagged": []}


class JobSpan:
    """The span of the job's process, from its start to its exit, with the semantic
    conventions' process.* attributes (the pid, the executable, the command line redacted, the
    exit code) and error.type when it failed. It is handed to the emitter when the job has
    ended, like an MPI rank's span (Emitter.adopt_span): so it reaches the recording, OTLP and
    the reports, while the text displays, which show only spans they saw start, stay as they
    were (the stage's own line already says how the job went). Named after argv[0] (mpirun,
    or exec's program), as the conventions allow."""

    def __init__(self, emitter: Emitter, argv: list[str]):
        self.emitter = emitter
        self.argv = list(argv)
        self.parent = emitter.current_span()  # the stage that runs the job
        self.start_ns = time.time_ns()
        self.proc: subprocess.Popen | None = None
        self.attributes: dict = {}
        self.failure: BaseException | None = None

    def started(self, proc: subprocess.Popen) -> None:
        self.proc = proc
        self.attributes = started_attributes(proc, self.argv)

    def started_then(self, then):
        def on_start(proc: subprocess.Popen) -> None:
            self.started(proc)
            then(proc)

        return on_start

    def end(self, error: str | None) -> None:
        if self.proc is None or self.parent is None:  # never started, or outside any run
            return
        context = self.parent.get_span_context()
        attributes = {ev.KIND: "task", **self.attributes, **exit_attributes(self.proc.returncode, self.failure)}
        self.emitter.adopt_span(ev.span_finished(
            name=Path(self.argv[0]).name, trace_id=ev.trace_id_hex(context.trace_id),
            span_id=ev.span_id_hex(random.getrandbits(64) or 1), parent_span_id=ev.span_id_hex(context.span_id),
            attributes=attributes, start_unix_nano=self.start_ns, end_unix_nano=time.time_ns(), error=error))
