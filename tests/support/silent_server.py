"""A TCP server that accepts connections and never sends a byte: a host that hangs a client
until its own timeout (ssh's ConnectTimeout, say)."""

from __future__ import annotations

import contextlib
import select
import socket
import threading

from .ports import loopback


class SilentServer:
    """Accepts TCP connections on addr:port and never sends anything; closes them at stop()."""

    def __init__(self, addr: str, port: int = 0):
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((loopback(addr), port))
        self._sock.listen(64)
        self.addr, self.port = self._sock.getsockname()
        self.connections: list[socket.socket] = []
        self.accepted = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name=f"silent-{self.addr}:{self.port}", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select([self._sock], [], [], 0.1)
            except (OSError, ValueError):
                return
            if ready:
                try:
                    conn, _ = self._sock.accept()
                except OSError:
                    continue
                self.connections.append(conn)
                self.accepted += 1

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        for conn in self.connections:
            with contextlib.suppress(OSError):
                conn.close()
        self.connections.clear()
        with contextlib.suppress(OSError):
            self._sock.close()
