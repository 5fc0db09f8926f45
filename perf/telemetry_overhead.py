"""What the telemetry costs, measured side by side in one run (ratios matter; absolute
figures move with the machine).

    .venv/bin/python perf/telemetry_overhead.py [--events 20000] [--idle-seconds 5]

(a) cost per event of the emitter with each renderer attached, next to a bare Rich Progress
    update and a bare structlog JSON log call;
(b) CPU the live display uses per second while a long stage idles;
(c) `mlpstorage --help` start-up time next to `python -c pass`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

import structlog
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from rich.console import Console
from rich.progress import Progress

from mlpstorage.emitter import Emitter
from renderers.jsonl import JsonlRenderer
from renderers.none import NoneRenderer
from renderers.otlp import OtlpRenderer
from renderers.plain import PlainRenderer
from renderers.rich import RichRenderer

DEVNULL = open(os.devnull, "w")


def per_call_us(fn, n: int) -> float:
    fn(0)  # warm up
    start = time.perf_counter()
    for i in range(n):
        fn(i)
    return (time.perf_counter() - start) / n * 1e6


def terminal_console() -> Console:
    return Console(file=DEVNULL, force_terminal=True, force_interactive=True, width=120)


def emitter_with(name: str):
    if name == "none":
        renderer = NoneRenderer()
    elif name == "plain":
        renderer = PlainRenderer(DEVNULL, heartbeat_s=0)
    elif name == "jsonl":
        renderer = JsonlRenderer(DEVNULL)
    elif name == "rich":
        renderer = RichRenderer(terminal_console())
    else:  # spans rebuilt, batched and exported on a background thread (to memory)
        renderer = OtlpRenderer(exporter=InMemorySpanExporter(), description="memory")
    return Emitter([renderer])


def open_and_close(emitter: Emitter) -> None:
    with emitter.span("task"):
        pass


def emitter_costs(n: int) -> list[tuple[str, float, float]]:
    rows = []
    for name in ("none", "plain", "jsonl", "rich", "otlp"):
        emitter = emitter_with(name)
        with emitter.run("bench"):
            with emitter.stages(["stage"]):
                log_us = per_call_us(lambda i: emitter.info("message", i=i), n)
                with emitter.spinner("spinner", total=n) as spinner:
                    update_us = per_call_us(lambda i: spinner.update(), n)
                span_us = per_call_us(lambda i: open_and_close(emitter), n // 10)
        emitter.close()
        rows.append((name, log_us, update_us, span_us))
    return rows


def baselines(n: int) -> dict[str, float]:
    progress = Progress(console=terminal_console(), auto_refresh=False)
    task = progress.add_task("bare", total=n)
    rich_us = per_call_us(lambda i: progress.update(task, advance=1), n)
    logger = structlog.wrap_logger(
        structlog.PrintLogger(DEVNULL),
        processors=[structlog.processors.TimeStamper(fmt="iso", utc=True), structlog.processors.JSONRenderer()],
    )
    structlog_us = per_call_us(lambda i: logger.info("message", i=i), n)
    return {"bare Rich Progress.update": rich_us, "bare structlog JSON log call": structlog_us}


def idle_live_cpu(seconds: float) -> float:
    """CPU seconds per wall second spent by this process while the live display redraws an
    open stage with one spinner and nothing else happens."""
    emitter = Emitter([RichRenderer(terminal_console())])
    with emitter.run("idle"):
        with emitter.stages(["Running benchmark"]):
            with emitter.spinner("waiting..."):
                time.sleep(0.5)
                cpu0, wall0 = time.process_time(), time.perf_counter()
                time.sleep(seconds)
                cpu1, wall1 = time.process_time(), time.perf_counter()
    emitter.close()
    return (cpu1 - cpu0) / (wall1 - wall0)


def startup_ms(argv: list[str], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--idle-seconds", type=float, default=5.0)
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()

    print(f"(a) cost per event, {args.events} events each (microseconds)")
    base = baselines(args.events)
    print(f"    {'renderer':<8} {'log event':>10} {'bar update':>11} {'span open+close':>16}")
    for name, log_us, update_us, span_us in emitter_costs(args.events):
        print(f"    {name:<8} {log_us:>10.1f} {update_us:>11.1f} {span_us:>16.1f}")
    for label, us in base.items():
        print(f"    {label}: {us:.1f}")

    cpu = idle_live_cpu(args.idle_seconds)
    print(f"(b) live display, idle stage with a spinner: {cpu * 100:.2f}% of one core ({cpu * 1000:.1f} ms CPU per second)")

    mlp = startup_ms([sys.executable, "-m", "mlpstorage", "--help"], args.repeat)
    bare = startup_ms([sys.executable, "-c", "pass"], args.repeat)
    print(f"(c) start-up, median of {args.repeat}: mlpstorage --help {mlp:.0f} ms, python -c pass {bare:.0f} ms "
          f"(ratio {mlp / bare:.1f}x)")


if __name__ == "__main__":
    main()
