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
import time
from pathlib import Path
from typing import IO, Callable, Sequence

from ..emitter import Emitter

# How long a child gets to exit after SIGTERM before it is killed (mpirun needs a moment
# to take its ranks down with it).
TERMINATE_GRACE_S = 10.0
# How long the output of an exited child is still read (see run_command).
OUTPUT_DRAIN_S = 5.0


LineObserver = Callable[[str, str], None]  # (stream, line) -> None


def _pump(pipe: IO[bytes], log_path: Path, emitter: Emitter, stream: str, source: str,
          observer: LineObserver | None) -> None:
    # The pump owns its log file: output that a left-behind grandchild writes after the
    # launcher stopped waiting still lands whole in the log, never in a closed file.
    with open(log_path, "ab") as log:
        for raw in iter(pipe.readline, b""):
            log.write(raw)
            log.flush()
            line = raw.decode("utf-8", errors="replace").rstrip("\n")
            emitter.output(line, stream=stream, source=source)
            if observer is not None:
                observer(stream, line)
    pipe.close()


def descendants(pid: int) -> set[int]:
    """Every process below pid, from /proc (MPI ranks live in process groups of their own,
    so signalling the launcher's group alone does not reach them)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                stat = handle.read()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def stop_process_tree(proc: subprocess.Popen, grace_s: float = TERMINATE_GRACE_S) -> None:
    """SIGTERM to the child's process group (mpirun takes its ranks down), then SIGKILL to
    anything of the tree still alive after the grace period."""
    tree = descendants(proc.pid)
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and (proc.poll() is None or any(_alive(p) for p in tree)):
        time.sleep(0.05)
    for pid in [proc.pid, *tree]:
        if _alive(pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    proc.wait()


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
