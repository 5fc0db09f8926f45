"""Errors a user can cause. The CLI turns each into one line and an exit code."""

import signal


class MlpStorageError(Exception):
    """Base for errors that end a run with a clear message instead of a traceback."""

    exit_code = 1


class UsageError(MlpStorageError):
    """A bad flag, value or combination of options."""

    exit_code = 2


class ValidationError(MlpStorageError):
    """The environment cannot run the benchmark (found before anything ran)."""

    exit_code = 2


class CommandFailed(MlpStorageError):
    """The benchmark's child process exited with a non-zero code (or was killed)."""

    def __init__(self, argv0: str, returncode: int, detail: str | None = None):
        if returncode < 0:
            try:
                how = f"was killed by {signal.Signals(-returncode).name}"
            except ValueError:
                how = f"was killed by signal {-returncode}"
        else:
            how = f"exited with code {returncode}"
        super().__init__(f"{argv0} {how}" + (f" ({detail})" if detail else ""))
        self.returncode = returncode

    def child_exit_code(self) -> int:
        """The code a shell gives for this child: its own, or 128+N when signal N killed it."""
        return self.returncode if self.returncode > 0 else 128 - self.returncode


class StallAborted(MlpStorageError):
    """--on-stall abort stopped the job: a rank, the whole job or a host stalled (mlpstorage/stalls/)."""

    exit_code = 3


class Terminated(BaseException):
    """Raised in the main thread when SIGTERM arrives, so every open span ends in error.

    A BaseException like KeyboardInterrupt: `except Exception` must not swallow it.
    """

    exit_code = 143
