"""`mlpstorage exec -- PROGRAM ARGS...`: any program under the full lifecycle.

Useful on its own (time and trace a storage tool, a copy, a script) and the way to see the
live display, the plain log and the trace of a run without DLIO.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from ..errors import CommandFailed, ValidationError
from .base import Benchmark, RunOptions


class ExecBenchmark(Benchmark):
    BENCHMARK_TYPE = "exec"

    def __init__(self, options: RunOptions, argv: list[str], emitter=None):
        super().__init__(options, model=Path(argv[0]).name, command="run", emitter=emitter)
        self.argv = list(argv)
        self.returncode: int | None = None

    def _validate(self) -> None:
        program = self.argv[0]
        if os.sep in program:
            if not (os.path.isfile(program) and os.access(program, os.X_OK)):
                raise ValidationError(f"{program}: not an executable file")
        elif shutil.which(program) is None:
            raise ValidationError(f"{program}: command not found on PATH")

    def _run(self) -> None:
        env = {**os.environ, **self.emitter.trace_environment()}
        count = len(self.argv) - 1
        self.emitter.status(f"Running {self.argv[0]} ({count} argument{'' if count == 1 else 's'})")
        # A program printing DLIO-shaped epoch and step lines gets DLIO's epochs and stall rules;
        # any other, the whole-job rule (no output and no I/O for the timeout).
        self.returncode = self._run_job(self.argv, env, self._progress())
        if self.returncode != 0:
            failed = CommandFailed(self.argv[0], self.returncode)
            failed.exit_code = failed.child_exit_code()  # exec exits as its program did, like time(1)
            raise failed

    def metadata(self) -> dict:
        return {**super().metadata(), "executed_command": self.argv, "returncode": self.returncode}

    def _process_results(self) -> None:
        super()._process_results()
        self.emitter.result(f"{self.argv[0]} finished in {self.runtime:.1f}s (exit code {self.returncode})")
