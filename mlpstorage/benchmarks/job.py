"""The benchmark's job: its program run with its output passed through, read as DLIO-shaped
progress (epochs, steps, checkpoints), and followed by the stall watch (mlpstorage/stalls/).
Both DLIO's ranks and `exec`'s program run this way; the lifecycle (base.py) only starts and
stops it."""

from __future__ import annotations

from pathlib import Path

from ..emitter import Emitter
from ..engines.dlio import DlioProgress
from ..engines.process import run_command
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
        following it); whatever progress opened ends with the job, in error if it failed."""
        error = None
        try:
            code = run_command(argv, emitter=self.emitter, log_dir=self.run_dir, env=env, observer=progress.observe,
                               source=source, on_start=self.watch.start if self.watch is not None else None)
            if code != 0:
                error = f"{argv[0]} exited with code {code}"
            return code
        except BaseException as exc:
            error = f"{type(exc).__name__}: {exc}".rstrip(": ")
            raise
        finally:
            progress.close(error)

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
