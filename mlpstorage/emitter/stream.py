"""The emitter: the one place benchmark code reports what it does.

Benchmark code opens spans (a run, its stages, spinners, tasks) and logs messages; each change
becomes a structlog event dict that is fanned out to the attached renderers. The emitter never
knows which renderers run: the CLI chooses them at the edge.
"""

from __future__ import annotations

import contextlib
import functools
import sys
import threading
import time
from typing import Callable, Iterable, Iterator, Protocol

import structlog
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.propagate import inject
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanLimits, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_ON
from opentelemetry.trace import Status, StatusCode

from .. import __version__
from . import events as ev
from .spans import COMPLETED, DESCRIPTION, KIND, STAGE_COUNT, STAGE_INDEX, TOTAL, SpanEvents


# Time-series samples travel as span events of the running stage, up to this many (a span is
# exported whole, and OTLP receivers limit a request's size); the event stream keeps them all.
MAX_SPAN_EVENTS = 4096


class Renderer(Protocol):
    """A consumer of the event stream (see renderers/)."""

    def handle(self, event: dict) -> None: ...

    def close(self) -> None: ...


def _add_timestamp(_logger, _method, event: dict) -> dict:
    event.setdefault("timestamp", ev.iso_from_ns(time.time_ns()))
    return event


def _order_fields(_logger, _method, event: dict) -> dict:
    head = {
        "schema": ev.SCHEMA_VERSION,
        "type": event.pop("type"),
        "timestamp": event.pop("timestamp"),
        "level": event.pop("level", "info"),
    }
    head.update(event)
    return head


class Emitter:
    """Owns a private TracerProvider and a structlog pipeline whose last step is the fan-out."""

    def __init__(self, renderers: Iterable[Renderer] = (), span_processors: Iterable[SpanProcessor] = ()):
        self._lock = threading.RLock()
        self._renderers: list[Renderer] = list(renderers)
        self._open: dict[int, trace.Span] = {}  # span_id -> span, spans this emitter has open
        self._stage: trace.Span | None = None
        self._run: trace.Span | None = None
        self._stage_durations: dict[str, float] = {}
        # These spans are the event stream itself, not optional telemetry: record every one
        # whatever OTEL_SDK_DISABLED or OTEL_TRACES_SAMPLER say (they govern the OTLP export).
        self._provider = TracerProvider(resource=Resource.create({"service.name": "mlpstorage"}), sampler=ALWAYS_ON,
                                        span_limits=SpanLimits(max_events=MAX_SPAN_EVENTS))
        self._provider._disabled = False  # read from OTEL_SDK_DISABLED; the SDK has no public override
        self._provider.add_span_processor(SpanEvents(self._emit_span_event))
        for processor in span_processors:
            self._provider.add_span_processor(processor)
        self._tracer = self._provider.get_tracer("mlpstorage", __version__)
        self._logger = structlog.wrap_logger(
            None,
            processors=[
                structlog.processors.EventRenamer("type"),
                self._add_span_context,
                _add_timestamp,
                _order_fields,
                self._dispatch,
            ],
        )

    # ----- renderers -------------------------------------------------------------------
    def add_renderer(self, renderer: Renderer) -> None:
        with self._lock:
            self._renderers.append(renderer)

    def close(self) -> None:
        """Closes every renderer (each flushes and restores what it took over)."""
        with self._lock:
            renderers, self._renderers = self._renderers, []
        for renderer in renderers:
            renderer.close()
        self._provider.shutdown()

    # ----- structlog pipeline ----------------------------------------------------------
    def _add_span_context(self, _logger, _method, event: dict) -> dict:
        if "span_id" not in event:
            span = self._parent_span()
            if span is not None:
                ctx = span.get_span_context()
                event["trace_id"] = format(ctx.trace_id, "032x")
                event["span_id"] = format(ctx.span_id, "016x")
        stage = self._stage
        if "stage_index" not in event and stage is not None:
            event["stage_index"] = stage.attributes[STAGE_INDEX]
            event["stage_count"] = stage.attributes[STAGE_COUNT]
        return event

    def _dispatch(self, _logger, _method, event: dict) -> dict:
        with self._lock:
            for renderer in list(self._renderers):
                try:
                    renderer.handle(event)
                except Exception as exc:  # one broken consumer must not end the run
                    self._renderers.remove(renderer)
                    print(f"mlpstorage: warning: renderer {type(renderer).__name__} stopped: {exc}", file=sys.stderr)
        raise structlog.DropEvent

    def _emit_span_event(self, event_type: str, fields: dict) -> None:
        self._logger.msg(event_type, **fields)

    # ----- spans -----------------------------------------------------------------------
    def _parent_span(self) -> trace.Span | None:
        """The span new work belongs to: the caller's current span when it is one of ours
        (and not the run itself), else the open stage, else the run.

        Worker threads start with an empty context, so they land on the open stage."""
        current = trace.get_current_span()
        span_id = current.get_span_context().span_id
        if span_id in self._open and current is not self._run:
            return current
        return self._stage or self._run

    def _start(self, name: str, kind: str, attributes: dict, parent: trace.Span | None = None) -> trace.Span:
        parent = parent or self._parent_span()
        parent_ctx = trace.set_span_in_context(parent) if parent is not None else otel_context.Context()
        span = self._tracer.start_span(name, context=parent_ctx, attributes={KIND: kind, **attributes})
        with self._lock:
            self._open[span.get_span_context().span_id] = span
        return span

    def _end(self, span: trace.Span, exc: BaseException | None = None) -> None:
        if exc is not None:
            span.record_exception(exc)
            span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}".rstrip(": ")))
        with self._lock:
            self._open.pop(span.get_span_context().span_id, None)
        span.end()
        if span.attributes.get(KIND) == "stage":
            self._stage_durations[span.name] = (span.end_time - span.start_time) / 1e9

    def stage_durations(self) -> dict[str, float]:
        """Seconds each finished stage took, from its span."""
        return dict(self._stage_durations)

    @contextlib.contextmanager
    def _span(self, name: str, kind: str, attributes: dict) -> Iterator[trace.Span]:
        span = self._start(name, kind, attributes)
        token = otel_context.attach(trace.set_span_in_context(span))
        try:
            yield span
        except BaseException as exc:
            self._end(span, exc)
            raise
        else:
            self._end(span)
        finally:
            otel_context.detach(token)

    @contextlib.contextmanager
    def run(self, name: str, attributes: dict | None = None) -> Iterator[trace.Span]:
        """The root span of one benchmark run; attributes say what ran (benchmark, model...)."""
        with self._span(name, "run", dict(attributes or {})) as span:
            self._run = span
            self._stage_durations = {}
            try:
                yield span
            finally:
                self._run = None

    @contextlib.contextmanager
    def span(self, name: str, attributes: dict | None = None) -> Iterator[trace.Span]:
        """A child span for a unit of work (an epoch, a host): shown like a spinner."""
        with self._span(name, "task", dict(attributes or {})) as span:
            yield span

    def start_task(self, name: str, attributes: dict | None = None, parent: trace.Span | None = None) -> trace.Span:
        """Opens a task span that ends with end_task(): for work whose start and end are seen
        at different places (an epoch announced by one output line and ended by another)."""
        return self._start(name, "task", dict(attributes or {}), parent=parent)

    def end_task(self, span: trace.Span, attributes: dict | None = None, error: str | None = None) -> None:
        if attributes:
            span.set_attributes(attributes)
        if error is not None:
            span.set_status(Status(StatusCode.ERROR, error))
        self._end(span)

    def set_run_attributes(self, attributes: dict) -> None:
        """Adds attributes (final metrics, say) to the open run span; they travel with its
        finished event and its OTLP export."""
        if self._run is not None:
            self._run.set_attributes(attributes)

    def adopt_span(self, fields: dict) -> None:
        """Emits task.finished for a span recorded elsewhere (an MPI rank joining the run's
        trace through TRACEPARENT), so every renderer and the OTLP export see it."""
        fields = {k: v for k, v in fields.items() if k not in ("schema", "type")}
        self._logger.msg(ev.TASK_FINISHED, **fields)

    @contextlib.contextmanager
    def create_stage_progress(self, stages: Iterable[str]) -> Iterator[Callable[..., None]]:
        """Yields advance_stage(stage_name=None). The first stage starts on entry; each
        advance ends the current stage and starts the next (optionally renamed); the last
        advance ends the last stage; advancing past it is ignored."""
        names = list(stages)
        count = len(names)
        state = {"index": 0}

        def start(index: int, name: str) -> None:
            self._stage = self._start(name, "stage", {STAGE_INDEX: index + 1, STAGE_COUNT: count})
            state["index"] = index

        def finish(exc: BaseException | None = None) -> None:
            stage, self._stage = self._stage, None
            if stage is not None:
                self._end(stage, exc)

        def advance_stage(stage_name: str | None = None) -> None:
            with self._lock:
                if self._stage is None:
                    return
                finish()
                nxt = state["index"] + 1
                if nxt < count:
                    start(nxt, stage_name or names[nxt])

        if count == 0:
            yield lambda stage_name=None: None
            return
        start(0, names[0])
        try:
            yield advance_stage
        except BaseException as exc:
            finish(exc)
            raise
        finally:
            finish()

    @contextlib.contextmanager
    def progress_context(self, description: str, total: int | None = None):
        """Yields (update(advance=1, completed=None, description=None), set_description(text)).
        total=None is an indeterminate spinner, a number a determinate bar."""
        attributes = {DESCRIPTION: description, COMPLETED: 0}
        if total is not None:
            attributes[TOTAL] = total
        with self._span(description, "spinner", attributes) as span:
            state = {"completed": 0, "description": description}

            def changed() -> None:
                span.set_attribute(COMPLETED, state["completed"])
                span.set_attribute(DESCRIPTION, state["description"])
                ctx = span.get_span_context()
                self._logger.msg(
                    ev.SPINNER_UPDATED,
                    name=span.name,
                    trace_id=format(ctx.trace_id, "032x"),
                    span_id=format(ctx.span_id, "016x"),
                    description=state["description"],
                    completed=state["completed"],
                    total=total,
                    start_unix_nano=span.start_time,
                )

            def update(advance: int = 1, completed: int | None = None, description: str | None = None) -> None:
                state["completed"] = completed if completed is not None else state["completed"] + advance
                if description is not None:
                    state["description"] = description
                changed()

            def set_description(text: str) -> None:
                state["description"] = text
                changed()

            yield update, set_description

    # ----- messages --------------------------------------------------------------------
    def log(self, level: str, message: str, **fields) -> None:
        if level not in ev.LEVELS:
            raise ValueError(f"unknown level {level!r}")
        self._logger.msg(ev.LOG, level=level, message=message, **fields)

    # emitter.info("...", key=value) and so on, one per level
    debug = functools.partialmethod(log, "debug")
    info = functools.partialmethod(log, "info")
    status = functools.partialmethod(log, "status")
    warning = functools.partialmethod(log, "warning")
    error = functools.partialmethod(log, "error")
    result = functools.partialmethod(log, "result")

    def output(self, line: str, stream: str = "stdout", source: str | None = None) -> None:
        """One line of a child process's output, passed through unchanged."""
        fields = {"stream": stream, "line": line}
        if source:
            fields["source"] = source
        self._logger.msg(ev.OUTPUT, **fields)

    def sample(self, host: str, values: dict) -> None:
        """One time-series sample of a host: a `sample` event, and a "timeseries.sample" span
        event on the open stage, so the OTLP export carries the series too."""
        numbers = {k: v for k, v in values.items() if isinstance(v, (int, float)) and k != "timestamp_ns"}
        stage = self._stage
        if stage is not None:
            stage.add_event("timeseries.sample", {"host": host, **numbers}, timestamp=values.get("timestamp_ns"))
        fields = {"host": host, "values": numbers}
        if "timestamp_ns" in values:
            fields["timestamp"] = ev.iso_from_ns(values["timestamp_ns"])
        self._logger.msg(ev.SAMPLE, **fields)

    def current_span(self) -> trace.Span | None:
        """The span new work in this thread would belong to (to hand to worker threads)."""
        return self._parent_span()

    # ----- propagation -----------------------------------------------------------------
    def trace_environment(self) -> dict[str, str]:
        """TRACEPARENT (and TRACESTATE) for a child process, so its work joins this trace."""
        carrier: dict[str, str] = {}
        parent = self._parent_span()
        if parent is not None:
            inject(carrier, context=trace.set_span_in_context(parent))
        return {key.upper(): value for key, value in carrier.items()}


_current: Emitter | None = None


def current_emitter() -> Emitter:
    """The process's emitter (a silent one until the CLI or a test installs another)."""
    global _current
    if _current is None:
        _current = Emitter()
    return _current


@contextlib.contextmanager
def use_emitter(emitter: Emitter) -> Iterator[Emitter]:
    """Makes `emitter` the current one for the duration of the block."""
    global _current
    previous, _current = _current, emitter
    try:
        yield emitter
    finally:
        _current = previous
