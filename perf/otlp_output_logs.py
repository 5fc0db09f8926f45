"""What exporting a child's output lines as OTLP log records would cost the launcher, per line:
the figures behind MLPSTORAGE_OTLP_OUTPUT_LOGS (off by default; docs/rendering.md).

    .venv/bin/python perf/otlp_output_logs.py [--lines 200000] [--batch 64]

`output` events of `--batch` DLIO-like lines each go through renderers/otlp_logs.py's OtlpLogs
(the real batch processor and OTLP/HTTP exporter) to a real receiver (oteltest's HTTP sink, in
its own process so that its CPU is not counted), as fast as the events can be made, as a
chatty child's output arrives. Printed per case: the launcher's CPU per line (all its threads,
time.process_time) and wall time per line, and how many records reached the receiver: the
batch processor's queue (OTEL_BLRP_MAX_QUEUE_SIZE, 2048 by default) drops what the export
thread cannot keep up with. For scale, the same events written as JSON lines (what the run's
events.jsonl costs) are the first case.
"""

from __future__ import annotations

import argparse
import io
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # renderers, mlpstorage from this checkout

from mlpstorage.emitter import events as ev  # noqa: E402
from mlpstorage.emitter.core import default_resource  # noqa: E402
from renderers.jsonl import JsonlRenderer  # noqa: E402
from renderers.otlp_delivery import Delivery  # noqa: E402

LINE = "[INFO] 2026-11-27T10:56:18.767420 Rank 0 step {i} processed 2 samples in 0.3249 s [.../statscounter.py:325]"
RECEIVER = """
import sys, time, http.server
sys.path.insert(0, sys.argv[1])
http.server.BaseHTTPRequestHandler.log_message = lambda self, *a: None
from support.otlp_sink import start_sink
server, sink = start_sink("http")
print(sink.port, flush=True)
for line in sys.stdin:  # "count": records received so far
    print(sum(len(sl.log_records) for r in sink.handler.telemetry.log_requests
              for rl in r.pbreq.resource_logs for sl in rl.scope_logs), flush=True)
"""


def output_events(lines: int, batch: int) -> list[dict]:
    ids = {"trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", "span_id": "00f067aa0ba902b7", "stage_index": 3,
           "stage_count": 4}
    made = []
    for start in range(0, lines, batch):
        event = ev.output([LINE.format(i=i) for i in range(start, min(start + batch, lines))], source="dlio")
        made.append({**event, **ids})
    return made


def measure(renderer, events: list[dict], lines: int) -> tuple[float, float]:
    """(CPU µs per line, wall µs per line) of handing every event to renderer and closing it."""
    cpu, wall = time.process_time(), time.perf_counter()
    for event in events:
        renderer.handle(event)
    renderer.close()
    return (time.process_time() - cpu) / lines * 1e6, (time.perf_counter() - wall) / lines * 1e6


class _LogsOnly:
    """OtlpLogs as a renderer whose close() waits for its last export, as the otlp renderer's does."""

    def __init__(self, logs):
        self.logs = logs

    def handle(self, event):
        self.logs.handle(event)

    def close(self):
        self.logs.closing().work()


def otlp_case(endpoint: str, queue: int | None) -> _LogsOnly:
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter

    from renderers.otlp_logs import OtlpLogs

    if queue is not None:
        os.environ["OTEL_BLRP_MAX_QUEUE_SIZE"] = str(queue)
    delivery = Delivery("LOGS", "log records", endpoint)
    exporter = OTLPLogExporter(endpoint=f"{endpoint}/v1/logs", timeout=30)
    logs = OtlpLogs(exporter, delivery, 30.0, default_resource(), output_lines=True)
    os.environ.pop("OTEL_BLRP_MAX_QUEUE_SIZE", None)
    return _LogsOnly(logs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=64, help="lines per output event (default 64)")
    args = parser.parse_args()
    logging.getLogger("opentelemetry").setLevel(logging.CRITICAL)  # "Queue full": the counts say it
    events = output_events(args.lines, args.batch)
    receiver = subprocess.Popen([sys.executable, "-c", RECEIVER, str(Path(__file__).resolve().parents[1] / "tests")],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        endpoint = f"http://127.0.0.1:{receiver.stdout.readline().strip()}"
        print(f"{args.lines} lines in output events of {args.batch}; µs per line       CPU     wall   received")
        cpu, wall = measure(JsonlRenderer(io.StringIO()), events, args.lines)
        print(f"    as JSON lines (events.jsonl, for scale)           {cpu:7.2f}  {wall:7.2f}          -")
        for queue in (None, args.lines):
            before = _received(receiver)
            renderer = otlp_case(endpoint, queue)
            cpu, wall = measure(renderer, events, args.lines)
            got = _received(receiver) - before
            name = f"queue {queue}" if queue else "default queue (2048)"
            print(f"    log records over OTLP/HTTP, {name:<22} {cpu:7.2f}  {wall:7.2f}  {got:>9}")
    finally:
        receiver.stdin.close()
        receiver.wait(10)


def _received(receiver: subprocess.Popen) -> int:
    time.sleep(0.5)  # the sink handles a request after answering it
    receiver.stdin.write("count\n")
    receiver.stdin.flush()
    return int(receiver.stdout.readline())


if __name__ == "__main__":
    main()
