"""What became of a run's OTLP exports, and how long the end of the run waits for the last ones.

Each signal (traces, metrics, logs) has a Delivery: how many items its exports carried and
lost, whether the backend has answered any of them, and whether it refused the signal (HTTP
404 or 405 on the signal's path, gRPC UNIMPLEMENTED: a traces-only backend). A refused signal
is said once, with the variable that turns it off, and is not sent again in that run.

At close every signal is flushed at once, each in a daemon thread, under one deadline per
signal: its export timeout plus 1 s once its backend has answered anything (or always, when
replaying: an export afterwards is the point of a replay), and GRACE_S in a live run whose
backend has answered nothing: nothing listens there, or something that never answers. So a
dead endpoint holds a run up about GRACE_S once, not a timeout per signal one after another.
"""

from __future__ import annotations

import logging
import threading
import time
import urllib.parse
from dataclasses import dataclass
from typing import Callable

# How long the end of a live run waits for a backend that has not answered a single export.
GRACE_S = 1.0
_POLL_S = 0.02
# HTTP answers that mean "this path takes no such signal" (a traces-only backend).
_REFUSING_HTTP = (404, 405)
# gRPC status codes that the client makes up when no backend answered.
_NOT_ANSWERS = ("UNAVAILABLE", "DEADLINE_EXCEEDED")


class Delivery:
    """One signal's exports: counts, and what its backend said. Exports run on the SDK's
    threads, the warnings are made at close on the main one."""

    def __init__(self, signal: str, what: str, description: str, label: str = ""):
        """signal: TRACES, METRICS or LOGS; what: the items counted ("spans"); description:
        protocol and endpoint for messages; label: the signal's word in them ("metrics ")."""
        self.signal = signal
        self.what = what
        self.description = description
        self.label = label
        self.answered = threading.Event()
        self.refusal: str | None = None  # e.g. "HTTP 405 on http://host:4318/v1/metrics"
        self.handed = self.sent = self.failed = self.refused = 0
        self._lock = threading.Lock()

    def send(self, export: Callable[[], bool], items: int) -> bool:
        """Runs one export of `items` items (unless the backend refused the signal) and counts it."""
        if self.refusal is not None:
            with self._lock:
                self.refused += items
            return False
        try:
            ok = export()
        except Exception:
            ok = False
        with self._lock:
            if ok:
                self.sent += items
            elif self.refusal is not None:  # this very export was refused
                self.refused += items
            else:
                self.failed += items
        if ok:
            self.answered.set()
        return ok

    def hand(self, items: int = 1) -> None:
        with self._lock:
            self.handed += items

    def note_http(self, status: int, url: str) -> None:
        """An HTTP answer of the backend (a requests response hook)."""
        if status in _REFUSING_HTTP and self.refusal is None:
            self.refusal = f"HTTP {status} on {_shown(url)}"
        self.answered.set()

    def note_grpc(self, code_name: str) -> None:
        """A gRPC status an export ended with."""
        if code_name in _NOT_ANSWERS:
            return
        if code_name == "UNIMPLEMENTED" and self.refusal is None:
            self.refusal = f"gRPC UNIMPLEMENTED from {self.description.removeprefix('grpc ')}"
        self.answered.set()

    def problem(self, finished: bool, counted: bool = True) -> str | None:
        """The one warning for this signal at close, or None. counted: whether handed is kept."""
        if self.refusal is not None:
            return (f"the OTLP backend does not accept {self.label or 'traces '}({self.refusal}): "
                    f"set OTEL_{self.signal}_EXPORTER=none to stop sending them")
        lost = self.handed - self.sent - self.refused
        if finished and not self.failed and (not counted or lost <= 0):
            return None
        told = f": {lost} of {self.handed} {self.what} not delivered" if counted else ""
        silence = "" if self.answered.is_set() else " (no answer from the endpoint)"
        return f"OTLP {self.label}export to {self.description} failed{told}{silence}"


def _shown(url: str) -> str:
    """A URL for a message: scheme, host, port and path only (no credentials, no query)."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    return f"{parts.scheme}://{host}{f':{parts.port}' if parts.port else ''}{parts.path}"


def http_session(delivery: Delivery):
    """A requests session for an OTLP/HTTP exporter that tells delivery each answer."""
    import requests

    session = requests.Session()
    session.hooks["response"].append(lambda response, *args, **kwargs: delivery.note_http(response.status_code,
                                                                                           response.url))
    return session


class _GrpcOutcomes(logging.Filter):
    """The gRPC exporters say how an export ended only in their log records (the status code
    is one of the record's arguments, next to the signal's name). Read there as the first filter
    of their logger, before the SDK's own DuplicateFilter drops a second signal's record of the
    same failure; the records go no further than a NullHandler."""

    LOGGER = "opentelemetry.exporter.otlp.proto.grpc.exporter"

    def __init__(self):
        super().__init__()
        self.deliveries: dict[str, Delivery] = {}  # "traces", "metrics", "logs" -> Delivery

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args if isinstance(record.args, tuple) else ()
        code = next((a for a in args if type(a).__name__ == "StatusCode"), None)
        signal = next((a for a in args if isinstance(a, str) and a in self.deliveries), None)
        if code is not None and signal is not None:
            self.deliveries[signal].note_grpc(code.name)
        return True


_GRPC_OUTCOMES = _GrpcOutcomes()


def watch_grpc(signal_name: str, delivery: Delivery) -> None:
    """Lets delivery hear how the gRPC exports of a signal ("traces", "metrics", "logs") end.
    Nothing of their logger reaches the terminal any more."""
    logger = logging.getLogger(_GrpcOutcomes.LOGGER)
    if _GRPC_OUTCOMES not in logger.filters:
        logger.filters.insert(0, _GRPC_OUTCOMES)
        logger.addHandler(logging.NullHandler())
    logger.setLevel(logging.WARNING)
    logger.propagate = False
    _GRPC_OUTCOMES.deliveries[signal_name] = delivery


class CountingExporter:
    """An exporter of spans or log records wrapped: each export's items counted into the
    signal's Delivery, and the inner exporter shut down once (close() may abandon it before
    the processor stops it). A signal's class puts this first and its SDK exporter base after,
    and names that base's result type as SUCCESS and FAILURE."""

    SUCCESS: object
    FAILURE: object

    def __init__(self, inner, delivery: Delivery):
        self._inner = inner
        self._delivery = delivery
        self._lock = threading.Lock()
        self._shut_down = False

    def export(self, batch):
        ok = self._delivery.send(lambda: self._inner.export(batch) is self.SUCCESS, len(batch))
        return self.SUCCESS if ok else self.FAILURE

    def shutdown(self) -> None:
        with self._lock:
            if self._shut_down:
                return
            self._shut_down = True
        self._inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._inner.force_flush(timeout_millis)


@dataclass
class Closing:
    """One signal's last exports at close."""

    delivery: Delivery
    work: Callable[[], None]  # flushes and shuts down; may block as long as the backend does
    abandon: Callable[[], None]  # stops the exporter: aborts its retries, refuses more
    budget_s: float  # the wait allowed once the backend has answered
    counted: bool = True  # the delivery counts items (spans, log records), not only exports


def close_all(closings: list[Closing], live: bool) -> list[str]:
    """Runs every closing's work at once and waits for each until its deadline (see the module
    docstring); abandons those still running. Returns the warnings, one per signal at most."""
    start = time.monotonic()
    running = [(closing, _started(closing.work, closing.delivery.signal)) for closing in closings]

    def deadline(closing: Closing) -> float:
        answered = closing.delivery.answered.is_set() or not live
        return start + (closing.budget_s if answered else min(GRACE_S, closing.budget_s))

    while True:
        waiting = [(c, t) for c, t in running if t.is_alive() and time.monotonic() < deadline(c)]
        if not waiting:
            break
        waiting[0][1].join(_POLL_S)
    problems = []
    for closing, thread in running:
        finished = not thread.is_alive()
        if not finished:
            try:
                closing.abandon()
            except Exception:
                pass
        problem = closing.delivery.problem(finished, closing.counted)
        if problem:
            problems.append(problem)
    return problems


def _started(work: Callable[[], None], signal: str) -> threading.Thread:
    thread = threading.Thread(target=_quietly(work), name=f"mlpstorage-otlp-close-{signal.lower()}", daemon=True)
    thread.start()
    return thread


def _quietly(work: Callable[[], None]) -> Callable[[], None]:
    def run() -> None:
        try:
            work()
        except Exception:  # the counts say what was lost
            pass

    return run
