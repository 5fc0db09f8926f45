"""Evidence of a stall, kept in the run's stalls/ folder: what a stalled process was doing.

For a process on this host: its Python stacks and its children's (py-spy, which reads the
process's memory with ptrace and works on a stopped or hung process too: --nonblocking never
pauses it), its /proc status, wchan (the kernel function it sleeps in), kernel stack where
readable, and open file descriptors. What cannot be recorded says why, in one line.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import psutil

from ..engines.process import run_collecting
from ..iotrace.reader import last_calls, trace_files
from ..results import write_text

PY_SPY_TIMEOUT_S = 20.0
TRACED_CALLS = 20  # a stalled rank's last calls from its I/O trace (--io-trace)


def py_spy() -> str | None:
    """The py-spy program: next to this Python (the venv), else on PATH."""
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


def ptrace_hint() -> str:
    """Why ptrace may be refused on this host, for the one line that says a stack is missing."""
    try:
        scope = Path("/proc/sys/kernel/yama/ptrace_scope").read_text().strip()
    except OSError:
        scope = None
    hints = {"1": "kernel.yama.ptrace_scope=1 lets only a process's ancestors trace it",
             "2": "kernel.yama.ptrace_scope=2 lets only CAP_SYS_PTRACE trace",
             "3": "kernel.yama.ptrace_scope=3 forbids ptrace"}
    return hints.get(scope, "ptrace needs CAP_SYS_PTRACE or the same user (containers often drop it)")


def python_stacks(pid: int) -> tuple[str | None, str | None]:
    """(py-spy's dump of pid and its children, None) or (None, why there is none)."""
    program = py_spy()
    if program is None:
        return None, "py-spy is not installed (pip install py-spy)"
    try:
        code, stdout, stderr = run_collecting([program, "dump", "--pid", str(pid), "--nonblocking", "--subprocesses"],
                                              PY_SPY_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return None, f"py-spy gave no answer within {PY_SPY_TIMEOUT_S:.0f} s"
    except OSError as exc:
        return None, f"py-spy could not run: {exc.strerror}"
    if code == 0 and stdout.strip():
        return stdout, None
    lines = [line.strip() for line in (stderr or stdout).splitlines() if line.strip()]
    error = next((line for line in lines if line.startswith("Error")), lines[-1] if lines else "")
    if "ermission" in error or "ptrace" in error.lower():
        return None, f"py-spy was refused ({error}): {ptrace_hint()}"
    return None, f"py-spy: {error or f'exit code {code}'}"


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text(errors="replace")
    except OSError as exc:
        return None if exc.errno is None else f"(not readable: {exc.strerror})\n"


def open_files(pid: int) -> str:
    try:
        fds = sorted(os.listdir(f"/proc/{pid}/fd"), key=int)
    except OSError as exc:
        return f"(not readable: {exc.strerror})\n"
    lines = []
    for fd in fds:
        try:
            lines.append(f"{fd} -> {os.readlink(f'/proc/{pid}/fd/{fd}')}")
        except OSError:
            continue  # closed meanwhile
    return "\n".join(lines) + "\n"


def process_report(pid: int, header: str) -> tuple[str, str | None]:
    """The evidence on one process and its children, as text; and why it has no Python
    stacks, if it has none."""
    parts = [header.rstrip() + "\n"]
    stacks, why = python_stacks(pid)
    parts.append("== Python stacks (py-spy dump --nonblocking --subprocesses)\n" + (stacks or f"not recorded: {why}\n"))
    try:
        family = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    except psutil.Error as exc:
        parts.append(f"== process {pid}: gone ({type(exc).__name__})\n")
        return "\n".join(parts), why
    for process in family:
        p = process.pid
        parts.append(f"== process {p}: {' '.join(_cmdline(process))[:300]}")
        parts.append(f"-- /proc/{p}/status\n{_read(f'/proc/{p}/status') or ''}")
        parts.append(f"-- /proc/{p}/wchan\n{(_read(f'/proc/{p}/wchan') or '').strip()}\n")
        kernel = _read(f"/proc/{p}/stack")
        if kernel:
            parts.append(f"-- /proc/{p}/stack\n{kernel}")
        parts.append(f"-- open files (/proc/{p}/fd)\n{open_files(p)}")
    return "\n".join(parts), why


def _cmdline(process: psutil.Process) -> list[str]:
    try:
        return process.cmdline()
    except psutil.Error:
        return ["?"]


def last_traced_calls(run_dir: Path, rank: int, count: int = TRACED_CALLS) -> str | None:
    """The rank's last calls in its I/O trace, as text; None when the rank is not traced.
    DFTracer writes a call when it returns, so a call still under way (the one a rank hangs
    in) is never among them: its stacks and wchan show that one."""
    trace = next((t for t in trace_files(run_dir) if t.rank == rank), None)
    if trace is None:
        return None
    try:
        calls = last_calls(trace.path, count)
    except OSError as exc:
        return f"== the I/O trace of rank {rank}: not readable ({exc.strerror})\n"
    lines = [f"== the last {len(calls)} calls in the I/O trace of rank {rank} ({trace.path.name}; DFTracer writes "
             "a call when it returns, so a call still under way is not among them)"]
    for call in calls:
        args = call.args
        lines.append(f"{_clock(call.ts)}  {call.dur / 1000:10.3f} ms  {call.cat:<12} {call.name:<28} "
                     f"{(args.fname or '') if args else ''}{f'  ret {args.ret}' if args and args.ret is not None else ''}")
    return "\n".join(lines) + "\n"


def _clock(unix_us: int) -> str:
    import datetime

    return datetime.datetime.fromtimestamp(unix_us / 1e6, datetime.timezone.utc).strftime("%H:%M:%S.%f")


def record(folder: Path, name: str, pid: int, header: str, extra: str | None = None) -> tuple[Path, str | None]:
    """Writes the evidence on pid (and extra, such as the rank's last traced calls) into
    folder/name (whole or not at all); returns the path, and why it holds no Python stacks if
    it holds none."""
    text, why = process_report(pid, header)
    return write_text(folder / name, text + ("\n" + extra if extra else "")), why
