"""An in-process OTLP receiver for tests: oteltest's HTTP and gRPC sinks, and the spans they
received as plain Python values. Everything is sent to 127.0.0.1 only."""

from __future__ import annotations

import contextlib
import http.server
import logging
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from oteltest.sink import GrpcSink, HttpSink
from oteltest.sink.handler import AccumulatingHandler

from .ports import free_port

_log = logging.getLogger("oteltest-sink")


def quiet_http_log() -> None:
    """oteltest's HTTP handler logs every request to stderr; scripts that print figures turn it off."""
    http.server.BaseHTTPRequestHandler.log_message = lambda self, *args: None


@contextlib.contextmanager
def silent_endpoint():
    """An OTLP endpoint (http://127.0.0.1:PORT) that takes connections into its listen backlog
    and never answers, like a hung collector; closing it resets what is still connected."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(64)
        yield f"http://127.0.0.1:{silent.getsockname()[1]}"


def base_env(**extra: str) -> dict[str, str]:
    """The test process's environment without any OTEL_* or display settings, plus `extra`."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("OTEL_")
        and k not in ("MLPSTORAGE_RENDER", "MLPSTORAGE_METRICS_PUSH", "TTY_INTERACTIVE", "FORCE_COLOR")
    }
    env.update(extra)
    return env


def exporter_env(endpoint: str, protocol: str = "http", **extra: str) -> dict[str, str]:
    """base_env() with the OTLP exporter sending to endpoint over protocol ("http" or "grpc"), plus `extra`."""
    env = base_env(OTEL_EXPORTER_OTLP_ENDPOINT=endpoint)
    if protocol == "grpc":
        env["OTEL_EXPORTER_OTLP_PROTOCOL"] = "grpc"
    env.update(extra)
    return env


def any_value(value):
    """An OTLP AnyValue as a Python value."""
    which = value.WhichOneof("value")
    if which == "array_value":
        return [any_value(v) for v in value.array_value.values]
    if which == "kvlist_value":
        return {kv.key: any_value(kv.value) for kv in value.kvlist_value.values}
    if which is None:
        return None
    return getattr(value, which)


def attributes(kvs) -> dict:
    return {kv.key: any_value(kv.value) for kv in kvs}


@dataclass
class Exported:
    name: str
    trace_id: str
    span_id: str
    parent_span_id: str
    start: int
    end: int
    status_code: int
    status_message: str
    attributes: dict
    resource: dict
    events: list[str] = field(default_factory=list)


@dataclass
class Sink:
    protocol: str  # "http" or "grpc"
    port: int
    handler: AccumulatingHandler

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self, **extra: str) -> dict[str, str]:
        return exporter_env(self.endpoint, self.protocol, **extra)

    @property
    def requests(self):
        return list(self.handler.telemetry.trace_requests)

    def spans(self) -> list[Exported]:
        found = []
        for request in self.requests:
            for resource_spans in request.pbreq.resource_spans:
                resource = attributes(resource_spans.resource.attributes)
                for scope_spans in resource_spans.scope_spans:
                    for span in scope_spans.spans:
                        found.append(Exported(
                            name=span.name,
                            trace_id=span.trace_id.hex(),
                            span_id=span.span_id.hex(),
                            parent_span_id=span.parent_span_id.hex(),
                            start=span.start_time_unix_nano,
                            end=span.end_time_unix_nano,
                            status_code=span.status.code,
                            status_message=span.status.message,
                            attributes=attributes(span.attributes),
                            resource=resource,
                            events=[e.name for e in span.events],
                        ))
        return found


def _start_http(port: int, handler: AccumulatingHandler) -> HttpSink | None:
    sink = HttpSink(handler, _log, port=port)
    sink.start()
    deadline = time.monotonic() + 5
    while sink.httpd is None and sink.svr_thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.01)
    if sink.httpd is None:  # the port was taken between free_port() and bind: try another
        return None
    return sink


def _start_grpc(port: int, handler: AccumulatingHandler) -> GrpcSink | None:
    try:
        sink = GrpcSink(handler, _log, port=port)
    except RuntimeError:  # grpc refuses a port it cannot bind
        return None
    sink.start()
    return sink


def start_sink(protocol: str):
    for _ in range(5):
        port = free_port()
        handler = AccumulatingHandler()
        server = (_start_http if protocol == "http" else _start_grpc)(port, handler)
        if server is not None:
            return server, Sink(protocol, port, handler)
    raise RuntimeError(f"could not start an OTLP {protocol} sink")


def replay_into(recording: Path, protocol: str = "http") -> tuple[subprocess.CompletedProcess, Sink]:
    """`mlpstorage events replay <recording> --render otlp` into a sink started for it (and
    stopped once the replay has exited): the finished process and what the sink received."""
    server, sink = start_sink(protocol)
    try:
        proc = subprocess.run([sys.executable, "-m", "mlpstorage", "events", "replay", str(recording), "--render", "otlp"],
                              env=sink.env(), capture_output=True, text=True, timeout=60)
    finally:
        server.stop()
    return proc, sink

def by_name(spans: list[Exported]) -> dict[str, list[Exported]]:
    names: dict[str, list[Exported]] = {}
    for span in spans:
        names.setdefault(span.name, []).append(span)
    return names


def only(spans: list[Exported], name: str) -> Exported:
    matches = [s for s in spans if s.name == name]
    assert len(matches) == 1, f"{name!r}: {[s.name for s in spans]}"
    return matches[0]


@pytest.fixture(params=["http", "grpc"])
def sink(request):
    """A real OTLP receiver, once over HTTP and once over gRPC."""
    server, info = start_sink(request.param)
    try:
        yield info
    finally:
        server.stop()
