"""A stand-in for a person's terminal, for the perf scripts: a pseudo-terminal of a given size,
and reading its master side until every slave side is closed."""

from __future__ import annotations

import errno
import fcntl
import os
import pty
import struct
import termios
from typing import Iterator


def open_pty(rows: int, columns: int) -> tuple[int, int]:
    """(master, slave) file descriptors of a new pseudo-terminal of rows x columns."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
    return master, slave


def pty_chunks(fd: int, size: int = 1 << 20) -> Iterator[bytes]:
    """Chunks read from fd until EOF (a pty master reports EOF as EIO once every slave is closed)."""
    while True:
        try:
            chunk = os.read(fd, size)
        except OSError as exc:
            if exc.errno == errno.EIO:
                return
            raise
        if not chunk:
            return
        yield chunk
