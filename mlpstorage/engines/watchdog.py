"""Takes a job's whole process tree along when the launcher dies, even by SIGKILL.

The kernel's death signal (parent_death.py) reaches the launcher's direct child only; what
that child started (mpirun's ranks, their PyTorch data-loader workers, a shell's `sleep`)
would live on, reparented to init. Every process of the tree stays in the session the
launcher gave the job, so this small process, started beside the job, waits on a pipe from
the launcher and, when the pipe closes without a word (the launcher is gone), stops every
process of that session: SIGTERM, then SIGKILL after a grace period.

Standard library only, run as a script (`python -I -S watchdog.py SESSION`): it must start in
milliseconds and import nothing of the launcher's.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

GRACE_S = 3.0
RELEASE = b"r"  # the launcher's word: the job is over, stop nothing


def session_members(sid: int) -> list[int]:
    """The pids of every process in session sid (field 6 of /proc/PID/stat)."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_bytes()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2:].split()  # the command name may hold spaces
        if int(fields[3]) == sid:
            members.append(int(entry))
    return members


def stop_session(sid: int, grace_s: float = GRACE_S) -> None:
    for sig in (signal.SIGTERM, signal.SIGCONT):
        for pid in session_members(sid):
            try:
                os.kill(pid, sig)
            except OSError:
                pass
    deadline = time.monotonic() + grace_s
    while session_members(sid) and time.monotonic() < deadline:
        time.sleep(0.05)
    for pid in session_members(sid):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


class SessionGuard:
    """The launcher's end: start() beside a job whose child leads session sid; release()
    when the launcher itself has finished with the job."""

    def __init__(self, sid: int):
        self._proc: subprocess.Popen | None = None
        try:
            # No death signal and a session of its own: it must outlive the launcher and be
            # out of reach of a Ctrl-C at the terminal.
            self._proc = subprocess.Popen([sys.executable, "-I", "-S", __file__, str(sid)], stdin=subprocess.PIPE,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        except OSError:
            pass  # the job still dies with its direct child's death signal

    def release(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            proc.stdin.write(RELEASE)
            proc.stdin.close()
        except OSError:
            pass
        proc.wait()


def main() -> None:
    sid = int(sys.argv[1])
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.stdin.buffer.read(1) != RELEASE:  # end of file: the launcher is gone
        stop_session(sid)


if __name__ == "__main__":
    main()
