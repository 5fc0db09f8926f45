"""Runs a child process with its output passed through, and kept on disk byte for byte.

Nothing here draws a progress bar. Output is read in chunks of whatever the pipe holds: each
chunk is written to stdout.log / stderr.log in the run's directory as it came, and its
complete lines become one `output` event (renderers print them above any live display, or
unchanged in plain mode). A chatty child thus costs one event per pipe-full, not per line,
and nothing waits in a buffer: a crash loses no output the launcher has read.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import IO, Callable, Sequence

import psutil

from ..emitter import Emitter

# How long a child gets to exit after SIGTERM before it is killed (mpirun needs a moment
# to take its ranks down with it).
TERMINATE_GRACE_S = 10.0
# How long the output of an exited child is still read (see run_command).
OUTPUT_DRAIN_S = 5.0
# Bytes per read: a full pipe (64 KiB on Linux) in one go.
CHUNK_BYTES = 65536
# A "line" that never ends (a progress bar redrawn with \r forever) is passed on at this size.
MAX_LINE_BYTES = 1 << 20


LineObserver = Callable[[str, str], None]  # (stream, line) -> None


def _pump(pipe: IO[bytes], log_path: Path, emitter: Emitter, stream: str, source: str,
          observer: LineObserver | None) -> None:
    # The pump owns its log file: output that a left-behind grandchild writes after the
    # launcher stopped waiting still lands whole in the log, never in a closed file.
    fd = pipe.fileno()
    partial = b""
    with open(log_path, "ab", buffering=0) as log:
        while chunk := os.read(fd, CHUNK_BYTES):
            log.write(chunk)
            data = partial + chunk
            cut = data.rfind(b"\n")
            if cut < 0 and len(data) < MAX_LINE_BYTES:
                partial = data
                continue
            complete, partial = (data[:cut], data[cut + 1:]) if cut >= 0 else (data, b"")
            _emit(complete, emitter, stream, source, observer)
        if partial:
            _emit(partial, emitter, stream, source, observer)
    pipe.close()


def _emit(data: bytes, emitter: Emitter, stream: str, source: str, observer: LineObserver | None) -> None:
    lines = data.decode("utf-8", errors="replace").split("\n")
    emitter.output(lines, stream=stream, source=source)
    if observer is not None:
        for line in lines:
            observer(stream, line)


def stop_process_tree(proc: subprocess.Popen, grace_s: float = TERMINATE_GRACE_S) -> None:
    """SIGTERM to the child's process group (mpirun takes its ranks down), then SIGKILL to
    anything of the tree still alive after the grace period.

    The tree is found with psutil rather than by walking /proc by hand: MPI ranks live in
    process groups of their own, so the group alone does not reach them, and psutil checks a
    process's start time before signalling it, so a recycled pid is never hit."""
    try:
        tree = psutil.Process(proc.pid).children(recursive=True)
    except psutil.Error:
        tree = []
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and (proc.poll() is None or any(_alive(p) for p in tree)):
        time.sleep(0.05)
    if proc.poll() is None:
        proc.kill()
    for process in tree:
        if _alive(process):
            try:
                process.kill()
            except psutil.Error:
                pass
    proc.wait()


def _alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def run_command(
    argv: Sequence[str],
    *,
    emitter: Emitter,
    log_dir: Path,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    source: str | None = None,
    observer: LineObserver | None = None,
) -> int:
    """Runs argv (an argument list, never a shell string) and returns its exit code.

    If the caller is interrupted (Ctrl-C, SIGTERM, an exception), the child's process group
    is stopped before the exception goes on, so no child outlives the launcher."""
    log_dir.mkdir(parents=True, exist_ok=True)
    source = source or Path(argv[0]).name
    # A session of its own: a Ctrl-C at the terminal reaches only the launcher, which then
    # ends the child in order (and the child cannot write to the terminal directly).
    proc = subprocess.Popen(
        list(argv), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env=env, cwd=cwd, start_new_session=True,
    )
    pumps = [
        threading.Thread(target=_pump, args=(pipe, log_dir / f"{name}.log", emitter, name, source, observer),
                         name=f"pump-{name}", daemon=True)
        for pipe, name in ((proc.stdout, "stdout"), (proc.stderr, "stderr"))
    ]
    for pump in pumps:
        pump.start()
    try:
        proc.wait()
    except BaseException:
        stop_process_tree(proc)
        raise
    finally:
        # Output still in the pipes is read to the end; a background grandchild that keeps
        # them open is not waited for beyond this.
        for pump in pumps:
            pump.join(timeout=OUTPUT_DRAIN_S)
    return proc.returncode
