"""The emitter: the one place benchmark code reports what it does.

Benchmark code opens spans (a run, its stages, spinners, tasks) on the emitter's own
TracerProvider and logs messages through structlog. A SpanProcessor turns each span's start
and end into an event, structlog turns each message into one, and a Fanout hands every event
to the attached renderers and to the run's recording. The emitter never knows which renderers
run: the CLI chooses them at the edge. Renderers that export spans (OTLP) hang a
SpanProcessor of their own on the provider.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import platform
import socket
from pathlib import Path
from typing import Callable, Iterable, Iterator, NamedTuple

import structlog
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.propagate import inject
from opentelemetry.sdk.resources import OTELResourceDetector, Resource
from opentelemetry.sdk.trace import SpanLimits, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_ON
from opentelemetry.semconv._incubating.attributes.host_attributes import HOST_ARCH, HOST_NAME, HostArchValues
from opentelemetry.semconv.attributes.service_attributes import SERVICE_NAME, SERVICE_VERSION
from opentelemetry.trace import Status, StatusCode

from .. import __version__
from ..errors import MlpStorageError
from . import events as ev
from . import logs
from .fanout import Fanout, Renderer
from .rebuild import span_from_event
from .recording import RunRecording
from .handles import SpinnerHandle, StageProgress
from .spans import SpanEvents

MAX_SPAN_EVENTS = ev.MAX_SPAN_EVENTS


def error_text(exc: BaseException) -> str:
    """What a span that exc ended says: an error users can cause (MlpStorageError) by its
    message alone, anything else with its type ("RuntimeError: ...")."""
    if isinstance(exc, MlpStorageError) and str(exc):
        return str(exc)
    return f"{type(exc).__name__}: {exc}".rstrip(": ")


class Scope(NamedTuple):
    """What work in one context belongs to: the run, its open stage, and the innermost spinner
    or task opened with a `with` block; with the fields events made here carry (precomputed,
    since every event needs them)."""

    run: trace.Span | None = None
    stage: trace.Span | None = None
    span: trace.Span | None = None
    fields: dict = {}  # trace_id, span_id, stage_index, stage_count
    stage_fields: dict = {}  # stage_index, stage_count


class _RecordingTracerProvider(TracerProvider):
    """A provider that records every span whatever OTEL_SDK_DISABLED or OTEL_TRACES_SAMPLER
    say: these spans are the event stream itself. Those variables govern export only (the
    otlp renderer attaches no exporter when the SDK is disabled). The SDK reads
    OTEL_SDK_DISABLED when a provider is made and then hands out no-op tracers; this one never
    does (the environment itself is left alone: other threads read it)."""

    def __init__(self, resource: Resource):
        super().__init__(resource=resource, sampler=ALWAYS_ON, shutdown_on_exit=False,
                         span_limits=SpanLimits(max_events=MAX_SPAN_EVENTS))
        self._disabled = False  # read by TracerProvider.get_tracer (tests/test_emitter.py checks it)


def default_resource(attributes: dict | None = None) -> Resource:
    """service.name=mlpstorage and the version, the host this launcher runs on (host.name,
    host.arch), plus what the edge knows of where this process runs (the Slurm job: the CLI
    hands it in); OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win (so
    deployment.environment.name=... is set there). What a run did (benchmark, model, run
    id...) is on its run span, not here: one process may run several benchmarks (--loops),
    each with its own run id. The SDK's service.instance.id is one per process, so the trace
    and the metrics, each made from this, have the same resource."""
    merged = {SERVICE_NAME: "mlpstorage", SERVICE_VERSION: __version__, HOST_NAME: socket.gethostname(),
              HOST_ARCH: host_arch(), **(attributes or {})}
    merged.update(OTELResourceDetector().detect().attributes)
    return Resource.create(merged)


# platform.machine() -> the semantic conventions' well-known host.arch values
_ARCH = {"x86_64": HostArchValues.AMD64, "aarch64": HostArchValues.ARM64, "armv7l": HostArchValues.ARM32,
         "i686": HostArchValues.X86, "ppc64le": HostArchValues.PPC64, "s390x": HostArchValues.S390X}


def host_arch() -> str:
    """This host's architecture as the conventions name it (amd64, arm64...), else as the kernel does."""
    known = _ARCH.get(platform.machine())
    return known.value if known is not None else platform.machine()


class Emitter:
    """Spans and events for one process (or one test): see the module docstring."""

    def __init__(self, renderers: Iterable[Renderer] = (), span_processors: Iterable[SpanProcessor] = (),
                 resource: Resource | None = None, min_level: str = "debug"):
        renderers = list(renderers)
        self.recording = RunRecording()
        self._fanout = Fanout([*renderers, self.recording])
        self._scope: contextvars.ContextVar[Scope | None] = contextvars.ContextVar(f"mlpstorage-scope-{id(self)}",
                                                                                  default=None)
        self._latest = Scope()  # for threads started without this context (they land on the open stage)
        self._open: dict[int, tuple[trace.Span, dict]] = {}  # span id -> (span, its id fields)
        self._stage_durations: dict[str, float] = {}
        self._provider = _RecordingTracerProvider(resource or default_resource())
        self._provider.add_span_processor(SpanEvents(self._publish_span_event))
        # Processors that see spans built from events (adopted rank spans) as well.
        self._exporting: list[SpanProcessor] = []
        for renderer in renderers:
            processor = renderer.span_processor() if hasattr(renderer, "span_processor") else None
            if processor is not None:
                self._exporting.append(processor)
        self._own_processors = list(span_processors)  # renderers shut down their own
        self._exporting.extend(self._own_processors)
        for processor in self._exporting:
            self._provider.add_span_processor(processor)
        self._tracer = self._provider.get_tracer("mlpstorage", __version__)
        self.min_level = min_level
        self._logger = structlog.wrap_logger(
            logs.EmitterSink(self), processors=logs.processors(current_emitter),
            wrapper_class=structlog.make_filtering_bound_logger(logs.LEVEL_NUMBERS[min_level]), context_class=dict,
        ).bind()  # bound once: wrap_logger's lazy proxy would build a logger per call

    @property
    def resource(self) -> Resource:
        return self._provider.resource

    # ----- renderers -------------------------------------------------------------------
    def add_renderer(self, renderer: Renderer) -> None:
        self._fanout.add(renderer)

    def publish(self, event: dict) -> None:
        """Hands a finished event to every renderer (the emitter's methods build them)."""
        self._fanout.publish(event)

    def _publish_span_event(self, event: dict) -> None:
        """A span's started/finished event, with the stage the span belongs to."""
        if "stage_index" not in event and event["type"] not in (ev.RUN_STARTED, ev.RUN_FINISHED):
            entry = self._open.get(int(event["span_id"], 16))
            stage = entry[1].get("stage") if entry else self._stage_fields()
            if stage:
                event.update(stage)
        self._fanout.publish(event)

    def _stage_fields(self) -> dict:
        return self.scope().stage_fields

    def attach_recording(self, run_dir: Path) -> Path:
        """Starts the open run's events.jsonl in run_dir, with every event of the run so far;
        renderers that wait for the run's directory before writing a file (on_run_directory)
        start too."""
        path = self.recording.attach(run_dir)
        for renderer in self._fanout.renderers:
            if hasattr(renderer, "on_run_directory"):
                renderer.on_run_directory(run_dir)
        return path

    def close(self, reason: str = "interrupted") -> None:
        """Ends any span still open (with error status `reason`), then closes every renderer."""
        for span, _ in sorted(self._open.values(), key=lambda item: -item[0].start_time):
            self._end(span, error=reason)
        self._fanout.close()
        for processor in self._own_processors:
            processor.shutdown()

    # ----- where work belongs ----------------------------------------------------------
    def scope(self) -> Scope:
        return self._scope.get() or self._latest

    def _ids(self, span: trace.Span | None) -> dict | None:
        entry = self._open.get(span.get_span_context().span_id) if span is not None else None
        return entry[1] if entry else None

    def _scoped(self, run: trace.Span | None, stage: trace.Span | None, span: trace.Span | None) -> Scope:
        """A scope with its fields; spans that have ended meanwhile are left out."""
        run, stage, span = (s if self._ids(s) else None for s in (run, stage, span))
        stage_fields = {}
        if stage is not None:
            ids = self._ids(stage)
            stage_fields = {"stage_index": ids["stage_index"], "stage_count": ids["stage_count"]}
        ids = self._ids(span or stage or run)
        fields = {"trace_id": ids["trace_id"], "span_id": ids["span_id"], **stage_fields} if ids else {}
        return Scope(run, stage, span, fields, stage_fields)

    def _set_scope(self, run: trace.Span | None, stage: trace.Span | None) -> contextvars.Token:
        """A new run or stage for this context (an open spinner of the same run stays the
        innermost span); threads started without this context see it too."""
        self._latest = self._scoped(run, stage, None)
        scope = self.scope()
        span = scope.span if scope.run is run else None
        return self._scope.set(self._latest if span is None else self._scoped(run, stage, span))

    def current_span(self) -> trace.Span | None:
        """The span new work in this context belongs to: the innermost spinner or task open in
        a `with` block, else the open stage, else the run."""
        scope = self.scope()
        return scope.span or scope.stage or scope.run

    def context_fields(self) -> dict:
        """trace_id, span_id, stage_index and stage_count for an event made now (do not modify)."""
        return self.scope().fields

    # ----- spans -----------------------------------------------------------------------
    def _start(self, name: str, kind: str, attributes: dict, parent: trace.Span | None = None) -> trace.Span:
        parent = parent or self.current_span()
        parent_ctx = trace.set_span_in_context(parent) if parent is not None else otel_context.Context()
        span = self._tracer.start_span(name, context=parent_ctx, attributes={ev.KIND: kind, **attributes})
        ctx = span.get_span_context()
        fields = {"trace_id": ev.trace_id_hex(ctx.trace_id), "span_id": ev.span_id_hex(ctx.span_id)}
        if kind == "stage":
            fields.update(stage_index=attributes[ev.STAGE_INDEX], stage_count=attributes[ev.STAGE_COUNT])
        elif kind != "run":
            fields["stage"] = self._stage_fields() or None
        self._open[ctx.span_id] = (span, fields)
        return span

    def _end(self, span: trace.Span, exc: BaseException | None = None, error: str | None = None) -> None:
        span_id = span.get_span_context().span_id
        if span_id not in self._open:
            return  # ended already
        if exc is not None:
            span.record_exception(exc)
            error = error_text(exc)
            if isinstance(exc, MlpStorageError):
                span.set_attribute(ev.ERROR_REPORTED, True)
        if error is not None:
            span.set_status(Status(StatusCode.ERROR, error))
        elif span.status.status_code is StatusCode.UNSET:
            span.set_status(Status(StatusCode.OK))  # as its finished event says: ok
        span.end()  # its finished event still finds the span's stage in _open
        self._open.pop(span_id, None)
        if span.attributes.get(ev.KIND) == "stage":
            self._stage_durations[span.name] = (span.end_time - span.start_time) / 1e9

    def start_stage(self, name: str, index: int, count: int) -> tuple[trace.Span, contextvars.Token]:
        """Opens stage `index` (1-based) of `count` under the run and makes it the context's
        stage; returns the span and the token that restores the scope before it."""
        run = self.scope().run
        stage = self._start(name, "stage", {ev.STAGE_INDEX: index, ev.STAGE_COUNT: count}, parent=run)
        return stage, self._set_scope(run, stage)

    def end_stage(self, stage: trace.Span, exc: BaseException | None = None) -> None:
        self._set_scope(self.scope().run, None)
        self._end(stage, exc)

    def restore_scope(self, token: contextvars.Token) -> None:
        self._scope.reset(token)
        scope = self.scope()
        self._latest = self._scoped(scope.run, scope.stage, None)

    def fail_stage(self, exc: BaseException) -> None:
        """Marks the open stage as failed by exc; it still ends when the stages advance."""
        stage = self.scope().stage
        if stage is not None:
            stage.record_exception(exc)
            stage.set_status(Status(StatusCode.ERROR, error_text(exc)))

    def stage_durations(self) -> dict[str, float]:
        """Seconds each finished stage of the current run took, from its span."""
        return dict(self._stage_durations)

    @contextlib.contextmanager
    def _span(self, name: str, kind: str, attributes: dict) -> Iterator[trace.Span]:
        """A span that is current for the block, in our scope and in OpenTelemetry's context
        (so other OpenTelemetry instrumentation in the block nests under it)."""
        span = self._start(name, kind, attributes)
        scope = self.scope()
        if kind == "run":
            token = self._set_scope(span, None)
        else:
            token = self._scope.set(self._scoped(scope.run, scope.stage, span))
        otel_token = otel_context.attach(trace.set_span_in_context(span))
        try:
            yield span
        except BaseException as exc:
            self._end(span, exc)
            raise
        else:
            self._end(span)
        finally:
            otel_context.detach(otel_token)
            self.restore_scope(token)

    @contextlib.contextmanager
    def run(self, name: str, attributes: dict | None = None) -> Iterator[trace.Span]:
        """The root span of one benchmark run; its attributes say what ran (benchmark, model...)."""
        self._stage_durations = {}
        with self._span(name, "run", dict(attributes or {})) as span:
            yield span

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
        self._end(span, error=error)

    def update_task(self, span: trace.Span, completed: int, total: int | None = None, description: str | None = None,
                    at_ns: int | None = None) -> None:
        """A task's new count (the steps of an epoch so far): a task.updated event, stamped
        at_ns if given (the caller's clock when it learned the count), else now."""
        if span.get_span_context().span_id not in self._open:
            return  # ended meanwhile
        self.publish_update(span, "task", description or span.name, completed, total, at_ns)

    def publish_update(self, span: trace.Span, kind: str, description: str, completed: int, total: int | None,
                       at_ns: int | None = None) -> None:
        """`<kind>.updated` for an open spinner or task: its attributes and an event."""
        span.set_attribute(ev.COMPLETED, completed)
        span.set_attribute(ev.DESCRIPTION, description)
        if total is not None:
            span.set_attribute(ev.TOTAL, total)
        ctx = span.get_span_context()
        event = ev.spinner_updated(name=span.name, trace_id=ev.trace_id_hex(ctx.trace_id),
                                   span_id=ev.span_id_hex(ctx.span_id), description=description, completed=completed,
                                   total=total, start_unix_nano=span.start_time, kind=kind,
                                   timestamp=ev.iso_from_ns(at_ns) if at_ns else None)
        entry = self._open.get(ctx.span_id)
        stage = (entry[1].get("stage") if entry else None) or self._stage_fields()
        if stage:
            event.update(stage)
        self.publish(event)

    def stall(self, condition: str, state: str, key: str, subject: str, message: str, **fields) -> None:
        """A stall flagged or ended (mlpstorage/stalls/): a `stall` event, and a
        "mlpstorage.stall" span event on the open stage, so the exported trace says it too."""
        event = ev.stall(condition, state, key, subject, message, **fields)
        stage = self.scope().stage
        if stage is not None:
            stage.add_event(ev.STALL_SPAN_EVENT, ev.stall_attributes(event))
        event.update(self.context_fields())
        self._fanout.publish(event)

    def set_run_attributes(self, attributes: dict) -> None:
        """Adds attributes (final metrics, the run id) to the open run span; they travel with
        its finished event and its export."""
        run = self.scope().run
        if run is not None:
            run.set_attributes(attributes)

    def adopt_span(self, event: dict) -> None:
        """A span recorded elsewhere (an MPI rank joining the run's trace through TRACEPARENT),
        given as its task.finished event: published, and handed to the exporting processors."""
        problem = ev.validate(event)
        if problem is not None or event["type"] != ev.TASK_FINISHED:
            raise ValueError(problem or f"a {event['type']} event is not a finished task")
        self.publish(event)
        span = span_from_event(event, self.resource)
        for processor in self._exporting:
            processor.on_end(span)

    def stages(self, names: Iterable[str]) -> "StageProgress":
        """The run's stages, as a context manager: see StageProgress."""
        return StageProgress(self, list(names))

    @contextlib.contextmanager
    def spinner(self, description: str, total: int | None = None) -> Iterator["SpinnerHandle"]:
        """A spinner (total None) or a bar (total a number) as a span; yields its handle."""
        attributes = {ev.DESCRIPTION: description, ev.COMPLETED: 0}
        if total is not None:
            attributes[ev.TOTAL] = total
        with self._span(description, "spinner", attributes) as span:
            yield SpinnerHandle(self, span, description, total)

    # ----- messages --------------------------------------------------------------------
    def log(self, level: str, message: str, **fields) -> None:
        if level not in ev.LEVELS:
            raise ValueError(f"unknown level {level!r}")
        getattr(self._logger, _METHOD_OF_LEVEL[level])(message, level=level, **fields)

    # emitter.info("...", key=value) and so on, one per level (made by _at_level, below)

    def publish_log(self, fields: dict) -> None:
        """The last step of the structlog pipeline: a `log` event with the current context."""
        level = fields.pop("level", "info")
        event = ev.log(level if level in ev.LEVELS else "info", fields.pop("message"),
                       timestamp=fields.pop("timestamp", None))
        event.update(self.scope().fields)
        event.update(fields)
        self._fanout.publish(event)

    def output(self, lines: list[str] | str, stream: str = "stdout", source: str | None = None) -> None:
        """A batch of a child process's output lines (or one line), passed through unchanged."""
        event = ev.output([lines] if isinstance(lines, str) else lines, stream, source)
        event.update(self.context_fields())
        self._fanout.publish(event)

    def sample(self, host: str, values: dict) -> None:
        """One time-series sample of a host: a `sample` event, and a "timeseries.sample" span
        event on the open stage, so the exported trace carries the series too."""
        numbers = {k: v for k, v in values.items() if isinstance(v, (int, float)) and k != "timestamp_ns"}
        stage = self.scope().stage
        if stage is not None:
            stage.add_event("timeseries.sample", {"host": host, **numbers}, timestamp=values.get("timestamp_ns"))
        stamp = ev.iso_from_ns(values["timestamp_ns"]) if "timestamp_ns" in values else None
        event = ev.sample(host, numbers, stamp)
        event.update(self.context_fields())
        self._fanout.publish(event)

    def io_summary(self, io: dict) -> None:
        """A traced run's I/O (mlpstorage/iotrace/): an `io.summary` event in the open stage."""
        event = ev.io_summary(io)
        event.update(self.context_fields())
        self._fanout.publish(event)

    # ----- propagation -----------------------------------------------------------------
    def trace_environment(self) -> dict[str, str]:
        """TRACEPARENT (and TRACESTATE) for a child process, so its work joins this trace."""
        carrier: dict[str, str] = {}
        parent = self.current_span()
        if parent is not None:
            inject(carrier, context=trace.set_span_in_context(parent))
        return {key.upper(): value for key, value in carrier.items()}


# structlog has no status or result method: those go through info (and pass an info filter).
_METHOD_OF_LEVEL = {level: "info" if level in ("status", "result") else level for level in ev.LEVELS}


def _at_level(level: str):
    method = _METHOD_OF_LEVEL[level]

    def log_at(self: Emitter, message: str, **fields) -> None:
        getattr(self._logger, method)(message, level=level, **fields)

    log_at.__name__ = log_at.__qualname__ = level
    log_at.__doc__ = f"Logs message at level {level!r}, with any extra fields."
    return log_at


for _level in ev.LEVELS:  # bound methods, not partialmethods: each call is one hop shorter on the hot path
    setattr(Emitter, _level, _at_level(_level))


# ----- the current emitter -----------------------------------------------------------------
_current: contextvars.ContextVar[Emitter | None] = contextvars.ContextVar("mlpstorage-emitter", default=None)
_installed: list[Emitter] = []  # use_emitter() blocks open in any context, innermost last
_fallback: list[Emitter] = []
_fallback_renderer: list[Callable[[], Renderer]] = []


def set_fallback_renderer(make: Callable[[], Renderer]) -> None:
    """What the emitter of code that never installs one shows its events with (the CLI and
    the pytest plugin hand in plain lines on stderr); without one, log lines on stderr."""
    _fallback_renderer[:] = [make]


def current_emitter() -> Emitter:
    """The emitter installed with use_emitter() in this context; in a thread started without
    that context, the one installed last in the process. Code that never installs one gets,
    once per process, an emitter with the fallback renderer: never silence."""
    emitter = _current.get()
    if emitter is not None:
        return emitter
    if _installed:
        return _installed[-1]
    if not _fallback:
        _fallback.append(Emitter([_fallback_renderer[0]() if _fallback_renderer else logs.StderrLines()]))
    return _fallback[0]


@contextlib.contextmanager
def use_emitter(emitter: Emitter) -> Iterator[Emitter]:
    """Makes `emitter` the current one for the block, and routes structlog
    (structlog.get_logger()) and the stdlib logging root logger into it."""
    token = _current.set(emitter)
    _installed.append(emitter)
    previous = logs.configure(current_emitter, emitter.min_level)
    bridge = logs.StdlibBridge(current_emitter)
    logging.getLogger().addHandler(bridge)
    try:
        yield emitter
    finally:
        logging.getLogger().removeHandler(bridge)
        structlog.configure(**previous)
        _installed.remove(emitter)
        _current.reset(token)
