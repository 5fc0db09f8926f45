"""Runs a child process with its output passed through, line by line, and kept on disk.

Nothing here draws a progress bar: each line becomes an `output` event (renderers print it
above any live display, or unchanged in plain mode) and is written, byte for byte, to
stdout.log / stderr.log in the run's directory.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from pathlib import Path
from typing import IO, Sequence

from ..emitter import Emitter

# How long a child gets to exit after SIGTERM before it is killed (mpirun needs a moment
# to take its ranks down with it).
TERMINATE_GRACE_S = 10.0


def _pump(pipe: IO[bytes], log: IO[bytes], emitter: Emitter, stream: str, source: str) -> None:
    for raw in iter(pipe.readline, b""):
        log.write(raw)
        log.flush()
        emitter.output(raw.decode("utf-8", errors="replace").rstrip("\n"), stream=stream, source=source)
    pipe.close()


def stop_process_group(proc: subprocess.Popen, grace_s: float = TERMINATE_GRACE_S) -> None:
    """SIGTERM to the child's whole process group, then SIGKILL if it has not gone."""
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait_s)
            return
        except subprocess.TimeoutExpired:
            continue


def run_command(
    argv: Sequence[str],
    *,
    emitter: Emitter,
    log_dir: Path,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    source: str | None = None,
) -> int:
    """Runs argv (an argument list, never a shell string) and returns its exit code.

    If the caller is interrupted (Ctrl-C, SIGTERM, an exception), the child's process group
    is stopped before the exception goes on, so no child outlives the launcher."""
    log_dir.mkdir(parents=True, exist_ok=True)
    source = source or Path(argv[0]).name
    with open(log_dir / "stdout.log", "ab") as out_log, open(log_dir / "stderr.log", "ab") as err_log:
        # A session of its own: a Ctrl-C at the terminal reaches only the launcher, which
        # then ends the child in order (and the child cannot write to the terminal directly).
        proc = subprocess.Popen(
            list(argv), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=env, cwd=cwd, start_new_session=True,
        )
        pumps = [
            threading.Thread(target=_pump, args=(proc.stdout, out_log, emitter, "stdout", source), daemon=True),
            threading.Thread(target=_pump, args=(proc.stderr, err_log, emitter, "stderr", source), daemon=True),
        ]
        for pump in pumps:
            pump.start()
        try:
            proc.wait()
        except BaseException:
            stop_process_group(proc)
            raise
        finally:
            for pump in pumps:
                pump.join(timeout=5)
    return proc.returncode
