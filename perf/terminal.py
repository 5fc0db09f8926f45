"""The perf scripts' stand-in for a person's terminal: reading a pty master until every slave
side is closed."""

from __future__ import annotations

import errno
import os
from typing import Iterator


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
