"""structlog as the front door: the pipeline every log message goes through.

The emitter's own messages (emitter.info(...)), any code that logs with
`structlog.get_logger()`, and stdlib `logging` records (through StdlibBridge) all become
`log` events with the current run's trace and span ids and stage. While an emitter is
installed (use_emitter), structlog is configured with PROCESSORS, so
`structlog.testing.capture_logs()` and level filtering behave as structlog users expect.
"""

from __future__ import annotations

import logging
import sys
import threading
from typing import Callable

import structlog


# structlog and stdlib method names -> the schema's levels
_LEVEL_OF_METHOD = {
    "debug": "debug", "info": "info", "msg": "info", "warning": "warning", "warn": "warning",
    "error": "error", "exception": "error", "critical": "error", "fatal": "error",
}
_LEVEL_OF_NUMBER = {logging.DEBUG: "debug", logging.INFO: "info", logging.WARNING: "warning",
                    logging.ERROR: "error", logging.CRITICAL: "error"}
LEVEL_NUMBERS = {"debug": logging.DEBUG, "info": logging.INFO, "status": logging.INFO, "result": logging.INFO,
                 "warning": logging.WARNING, "error": logging.ERROR}


class EmitterSink:
    """What structlog calls "the logger": it names the emitter the event goes to, or None for
    the one current when the event is made (loggers from structlog.get_logger())."""

    def __init__(self, emitter=None):
        self.emitter = emitter


def to_log_event(logger, method: str, event_dict: dict) -> dict:
    """structlog's event dict -> the fields of a `log` event (its `event` is the message; an
    exc_info becomes the formatted `exception`)."""
    if "exc_info" in event_dict:
        event_dict = structlog.processors.format_exc_info(logger, method, event_dict)
    event_dict["message"] = str(event_dict.pop("event", ""))
    event_dict.setdefault("level", _LEVEL_OF_METHOD.get(method, "info"))
    return event_dict


def make_route(current: Callable[[], object]):
    def route(logger, _method, event_dict: dict):
        emitter = logger.emitter if isinstance(logger, EmitterSink) and logger.emitter is not None else current()
        emitter.publish_log(event_dict)
        raise structlog.DropEvent

    return route


def processors(current: Callable[[], object]) -> list:
    return [structlog.contextvars.merge_contextvars, to_log_event, make_route(current)]


def configure(current: Callable[[], object], min_level: str = "debug") -> dict:
    """Configures structlog for the stream; returns the previous configuration."""
    previous = structlog.get_config()
    structlog.configure(
        processors=processors(current),
        wrapper_class=structlog.make_filtering_bound_logger(LEVEL_NUMBERS[min_level]),
        logger_factory=lambda *args: EmitterSink(),
        context_class=dict,
        cache_logger_on_first_use=False,
    )
    return previous


class StdlibBridge(logging.Handler):
    """Stdlib logging records -> `log` events of the current emitter (logger name kept)."""

    def __init__(self, current: Callable[[], object]):
        super().__init__()
        self._current = current
        self._busy = threading.local()  # a renderer that logs while handling must not loop

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(self._busy, "active", False):
            return
        self._busy.active = True
        try:
            fields = {"level": _LEVEL_OF_NUMBER.get(record.levelno, "info"), "logger": record.name}
            if record.exc_info:
                fields["exception"] = logging.Formatter().formatException(record.exc_info)
            self._current().publish_log({"message": record.getMessage(), **fields})
        except Exception:
            self.handleError(record)
        finally:
            self._busy.active = False


class StderrLines:
    """The last resort of code that never installs an emitter and whose edge handed in no
    fallback renderer (see core.set_fallback_renderer): log messages as `LEVEL message` lines."""

    def handle(self, event: dict) -> None:
        if event.get("type") == "log":
            print(f"{str(event.get('level', 'info')).upper()} {event.get('message', '')}", file=sys.stderr, flush=True)

    def close(self) -> None:
        pass
