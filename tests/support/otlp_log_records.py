"""The log records an OTLP sink (support/otlp_sink.py) received, as plain values; and a real
traces-only backend: an HTTP receiver that takes /v1/traces and answers 405 on the other
signals' paths, as Arize Phoenix does on /v1/metrics, and its gRPC twin."""

from __future__ import annotations

import contextlib
import http.server
import threading
from dataclasses import dataclass

from .otlp_sink import attributes as plain_attributes


@dataclass(frozen=True)
class ReceivedLog:
    """One log record as it arrived."""

    body: str
    severity_number: int
    severity_text: str
    time_ns: int
    observed_ns: int
    trace_id: str  # 32 hex, "" when the record has none
    span_id: str
    attributes: dict
    resource: dict
    scope: str


def received_logs(sink) -> list[ReceivedLog]:
    """Every log record of every ExportLogsServiceRequest the sink got, in order."""
    found = []
    for request in sink.handler.telemetry.log_requests:
        for resource_logs in request.pbreq.resource_logs:
            resource = plain_attributes(resource_logs.resource.attributes)
            for scope_logs in resource_logs.scope_logs:
                for record in scope_logs.log_records:
                    found.append(ReceivedLog(
                        body=record.body.string_value,
                        severity_number=record.severity_number,
                        severity_text=record.severity_text,
                        time_ns=record.time_unix_nano,
                        observed_ns=record.observed_time_unix_nano,
                        trace_id=record.trace_id.hex(),
                        span_id=record.span_id.hex(),
                        attributes=plain_attributes(record.attributes),
                        resource=resource,
                        scope=scope_logs.scope.name,
                    ))
    return found


class _TracesOnly(http.server.BaseHTTPRequestHandler):
    """200 with an empty ExportTraceServiceResponse on /v1/traces, 405 elsewhere; counts each path."""

    def do_POST(self):  # noqa: N802 (http.server's name)
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        with self.server.lock:
            self.server.posts[self.path] = self.server.posts.get(self.path, 0) + 1
        self.send_response(200 if self.path == "/v1/traces" else 405)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def traces_only_backend():
    """A real HTTP server on 127.0.0.1 taking OTLP traces only; yields (endpoint, posts), posts
    counting the requests per path."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _TracesOnly)
    server.lock = threading.Lock()
    server.posts = {}
    thread = threading.Thread(target=server.serve_forever, name="traces-only-backend", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", server.posts
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def traces_only_grpc_backend():
    """A real gRPC server on 127.0.0.1 implementing the OTLP trace service only: the metrics
    and logs services answer UNIMPLEMENTED, as gRPC does for a service nobody registered.
    Yields (endpoint, calls), calls counting the trace exports."""
    from concurrent import futures

    import grpc
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

    calls = {"traces": 0}

    class Traces(trace_service_pb2_grpc.TraceServiceServicer):
        def Export(self, request, context):  # noqa: N802 (the service's name)
            calls["traces"] += 1
            return trace_service_pb2.ExportTraceServiceResponse()

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Traces(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"http://127.0.0.1:{port}", calls
    finally:
        server.stop(None)
