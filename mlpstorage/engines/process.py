"""Runs a child process with its output passed through, and kept on disk byte for byte.

Nothing here draws a progress bar. Output is read in chunks of whatever the pipe holds: each
chunk is written to stdout.log / stderr.log in the run's directory as it came, and its
complete lines become one `output` event (renderers print them above any live display, or
unchanged in plain mode). A chatty child thus costs one event per pipe-full, not per line,
and nothing waits in a buffer: a crash loses no output the launcher has read.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import select
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import IO, Callable, Sequence

import psutil
from opentelemetry.semconv._incubating.attributes.process_attributes import (
    PROCESS_COMMAND_ARGS,
    PROCESS_EXECUTABLE_NAME,
    PROCESS_EXECUTABLE_PATH,
    PROCESS_EXIT_CODE,
    PROCESS_PID,
)
from opentelemetry.semconv.attributes.error_attributes import ERROR_TYPE

from ..emitter import Emitter
from ..redaction import redact_argv
from . import parent_death
from .parent_death import die_with_parent
from .watchdog import SessionGuard

# How long a child gets to exit after SIGTERM before it is killed (mpirun needs a moment
# to take its ranks down with it).
TERMINATE_GRACE_S = 10.0
# How long the output of an exited child is still read (see run_command).
OUTPUT_DRAIN_S = 5.0
# Bytes per read: a full pipe (64 KiB on Linux) in one go.
CHUNK_BYTES = 65536
# A "line" that never ends (a progress bar redrawn with \r forever) is passed on at this size.
MAX_LINE_BYTES = 1 << 20


LineObserver = Callable[[str, list], None]  # (stream, the lines of one batch) -> None


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
        observer(stream, lines)


def stop_process_tree(proc: subprocess.Popen, grace_s: float = TERMINATE_GRACE_S) -> None:
    """SIGTERM to the child's process group (mpirun takes its ranks down), then SIGKILL to
    anything of the tree still alive after the grace period."""
    stop_process_trees([proc], grace_s)


def stop_process_trees(procs: list[subprocess.Popen], grace_s: float = TERMINATE_GRACE_S) -> None:
    """Stops several trees at once, sharing one grace period.

    The trees are found with psutil rather than by walking /proc by hand: MPI ranks live in
    process groups of their own, so a group alone does not reach them, and psutil checks a
    process's start time before signalling it, so a recycled pid is never hit."""
    trees = []
    for proc in procs:
        try:
            trees.extend(psutil.Process(proc.pid).children(recursive=True))
        except psutil.Error:
            pass
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            pass
    # A stopped process (SIGSTOP, a debugger) only acts on SIGTERM once it runs again.
    for proc in procs:
        try:
            os.killpg(proc.pid, signal.SIGCONT)
        except (ProcessLookupError, PermissionError):
            pass
    for process in trees:
        try:
            process.resume()
        except psutil.Error:
            pass
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and (any(p.poll() is None for p in procs) or any(_alive(t) for t in trees)):
        time.sleep(0.05)
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
    for process in trees:
        if _alive(process):
            try:
                process.kill()
            except psutil.Error:
                pass
    for proc in procs:
        proc.wait()


def _alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def wait_for_exit(proc: subprocess.Popen) -> int:
    """proc.wait(), but a signal to the launcher always ends the wait.

    Python runs signal handlers in the main thread only. A process-directed signal may land
    in another thread (glibc blocks all signals in the main thread for a moment each time it
    starts a thread), and then only sets a flag: a main thread asleep in wait4() never sees
    it and waits for the child. Here the main thread sleeps in select() on the child's pidfd
    and on the signal wakeup fd, which Python writes to whichever thread the signal hit, so
    the handler runs at once (KeyboardInterrupt, Terminated). Nothing polls: an idle wait
    costs nothing."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(os, "pidfd_open"):
        return proc.wait()
    try:
        pidfd = os.pidfd_open(proc.pid)
    except OSError:  # already reaped, or a kernel without pidfds (before 5.3)
        return proc.wait()
    wake_read, wake_write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        previous = signal.set_wakeup_fd(wake_write, warn_on_full_buffer=False)
        try:
            while proc.poll() is None:
                select.select([pidfd, wake_read], [], [])
                with contextlib.suppress(BlockingIOError):
                    os.read(wake_read, 512)  # Python has already noted which signals came
        finally:
            signal.set_wakeup_fd(previous, warn_on_full_buffer=False)
    finally:
        for fd in (pidfd, wake_read, wake_write):
            os.close(fd)
    return proc.returncode


class HeldSignals:
    """SIGINT and SIGTERM held back for a block of the main thread (elsewhere: nothing to do,
    Python runs signal handlers in the main thread only), then handled as they would have
    been: a child is never started without being registered first."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __enter__(self):
        self._active = threading.current_thread() is threading.main_thread()
        if self._active:
            self._caught: list[int] = []
            self._previous = {sig: signal.signal(sig, lambda signum, frame: self._caught.append(signum))
                              for sig in self.SIGNALS}
        return self

    def __exit__(self, *exc) -> None:
        if not self._active:
            return
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        for signum in self._caught[:1]:
            handler = self._previous[signum]
            if callable(handler):
                handler(signum, None)  # e.g. KeyboardInterrupt, or the CLI's Terminated
            elif handler == signal.SIG_DFL:
                os.kill(os.getpid(), signum)


class Children:
    """Every child process the launcher starts, owned in one place.

    Each child gets a session of its own (a Ctrl-C at the terminal reaches only the launcher,
    which then ends the child in order), is told by the kernel to get SIGTERM if the launcher
    dies without a word (PR_SET_PDEATHSIG: even SIGKILL; mpirun then takes its ranks down),
    and is registered before any signal can interrupt. stop_all() stops every tree still
    running: the CLI calls it on every way out."""

    def __init__(self):
        self._lock = threading.Lock()
        self._procs: set[subprocess.Popen] = set()
        self._closed = False

    def spawn(self, argv: Sequence[str], **popen_args) -> subprocess.Popen:
        preexec = die_with_parent if parent_death.available() else None
        with self._lock, HeldSignals():
            if self._closed:
                raise ChildProcessError("the launcher is stopping: no new child processes")
            proc = subprocess.Popen(list(argv), start_new_session=True, preexec_fn=preexec, **popen_args)
            self._procs.add(proc)
        return proc

    def forget(self, proc: subprocess.Popen) -> None:
        """proc has been waited for: nothing to stop any more."""
        with self._lock:
            self._procs.discard(proc)

    def stop(self, proc: subprocess.Popen, grace_s: float = TERMINATE_GRACE_S) -> None:
        stop_process_tree(proc, grace_s)
        self.forget(proc)

    def running(self) -> list[subprocess.Popen]:
        with self._lock:
            return [p for p in self._procs if p.poll() is None]

    def stop_all(self, grace_s: float = TERMINATE_GRACE_S) -> None:
        """Stops every registered tree; a thread that tries to start a child meanwhile is
        refused (and any child started after this returns still dies with the launcher)."""
        with self._lock:
            self._closed = True
            procs, self._procs = list(self._procs), set()
        try:
            stop_process_trees([p for p in procs if p.poll() is None], grace_s)
        finally:
            self._closed = False


CHILDREN = Children()


def run_command(
    argv: Sequence[str],
    *,
    emitter: Emitter,
    log_dir: Path,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    source: str | None = None,
    observer: LineObserver | None = None,
    on_start: Callable[[subprocess.Popen], None] | None = None,
) -> int:
    """Runs argv (an argument list, never a shell string) and returns its exit code.

    If the caller is interrupted (Ctrl-C, SIGTERM, an exception), the child's process tree
    is stopped before the exception goes on; if the launcher dies without a word (SIGKILL),
    a watchdog stops the child's whole session (watchdog.py): no child outlives the launcher.
    observer gets each batch of output lines; on_start the child as soon as it runs (the
    stall watch)."""
    log_dir.mkdir(parents=True, exist_ok=True)
    source = source or Path(argv[0]).name
    proc = CHILDREN.spawn(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          env=env, cwd=cwd)
    guard = SessionGuard(proc.pid)  # the child leads its session: the whole tree goes if the launcher dies
    pumps = []
    try:
        if on_start is not None:  # first: /proc/PID/exe is readable only while the child runs
            on_start(proc)
        context = contextvars.copy_context()  # the pumps' events belong to the caller's stage
        for pipe, name in ((proc.stdout, "stdout"), (proc.stderr, "stderr")):
            pump = threading.Thread(target=context.copy().run,
                                    args=(_pump, pipe, log_dir / f"{name}.log", emitter, name, source, observer),
                                    name=f"pump-{name}", daemon=True)
            pump.start()
            pumps.append(pump)
        wait_for_exit(proc)
        CHILDREN.forget(proc)
    except BaseException:
        CHILDREN.stop(proc)
        raise
    finally:
        # Output still in the pipes is read to the end; a background grandchild that keeps
        # them open is not waited for beyond this.
        for pump in pumps:
            pump.join(timeout=OUTPUT_DRAIN_S)
        guard.release()
    return proc.returncode


def run_collecting(argv: Sequence[str], timeout_s: float, input_text: str | None = None) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of a short-lived child (a collector, under MPI or ssh),
    owned like every other child: its whole tree is stopped on a timeout (TimeoutExpired is
    raised), an interrupt or any other way out."""
    proc = CHILDREN.spawn(argv, stdin=subprocess.PIPE if input_text is not None else subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        stdout, stderr = proc.communicate(input_text, timeout=timeout_s)
    except BaseException:
        CHILDREN.stop(proc, grace_s=2.0)
        raise
    CHILDREN.forget(proc)
    return proc.returncode, stdout, stderr


# ----- a child in OpenTelemetry's words ----------------------------------------------------------
def started_attributes(proc: subprocess.Popen, argv: Sequence[str]) -> dict:
    """The semantic conventions' process.* attributes of a started child: its pid, its
    executable (the target of /proc/PID/exe, as the conventions say: mpirun is orterun, sh is
    dash on Debian; argv[0]'s name when it cannot be read) and its command line, secrets
    redacted (mlpstorage/redaction.py)."""
    try:
        path = os.readlink(f"/proc/{proc.pid}/exe")
    except OSError:
        path = None
    attributes = {PROCESS_PID: proc.pid, PROCESS_EXECUTABLE_NAME: Path(path or argv[0]).name,
                  PROCESS_COMMAND_ARGS: redact_argv(list(argv))}
    if path:
        attributes[PROCESS_EXECUTABLE_PATH] = path
    return attributes


def exit_attributes(returncode: int | None, failure: BaseException | None = None) -> dict:
    """process.exit.code (a child killed by signal N: 128+N, as a shell reports it) and, when
    the job failed, error.type: the exit code as text, or the class of what stopped the
    launcher's wait (KeyboardInterrupt, Terminated...)."""
    attributes = {}
    if returncode is not None:
        attributes[PROCESS_EXIT_CODE] = returncode if returncode >= 0 else 128 - returncode
    if failure is not None:
        attributes[ERROR_TYPE] = type(failure).__name__
    elif returncode:
        attributes[ERROR_TYPE] = str(attributes[PROCESS_EXIT_CODE])
    return attributes
