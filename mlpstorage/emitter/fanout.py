"""Hands each event to every renderer, with one error policy shared by live runs and replay:
a renderer that raises is dropped with one warning, and the others go on."""

from __future__ import annotations

import sys
import threading
from typing import Callable, Iterable, Protocol


class Renderer(Protocol):
    """A consumer of the event stream (see renderers/). It may also offer span_processor(),
    an OpenTelemetry SpanProcessor the emitter attaches to its TracerProvider."""

    def handle(self, event: dict) -> None: ...

    def close(self) -> None: ...


def _warn(message: str) -> None:
    print(f"mlpstorage: warning: {message}", file=sys.stderr)


class Fanout:
    def __init__(self, renderers: Iterable[Renderer] = (), warn: Callable[[str], None] = _warn):
        self._renderers: list[Renderer] = list(renderers)
        self._lock = threading.RLock()
        self._warn = warn

    @property
    def renderers(self) -> list[Renderer]:
        return list(self._renderers)

    def add(self, renderer: Renderer) -> None:
        with self._lock:
            self._renderers.append(renderer)

    def publish(self, event: dict) -> None:
        # One lock for the whole hand-out: every renderer sees events in the same order.
        with self._lock:
            for renderer in self._renderers:
                try:
                    renderer.handle(event)
                except Exception as exc:  # one broken consumer must not end the run
                    self._drop(renderer, f"renderer {type(renderer).__name__} stopped: {exc}")

    def _drop(self, renderer: Renderer, message: str) -> None:
        # A new list: the loop in publish() goes on over the old one.
        self._renderers = [r for r in self._renderers if r is not renderer]
        self._warn(message)

    def close(self) -> None:
        """Closes every renderer (each flushes and restores what it took over)."""
        with self._lock:
            renderers, self._renderers = self._renderers, []
        for renderer in renderers:
            try:
                renderer.close()
            except Exception as exc:
                self._warn(f"renderer {type(renderer).__name__} did not close cleanly: {exc!r}")
