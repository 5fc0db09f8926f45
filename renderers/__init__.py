"""Renderers: consumers of the emitter's event stream.

Each renderer is one module with a class that has handle(event) and close(). Adding one is a
new module plus one entry in RENDERERS. Modules are imported only when chosen, so a plain run
never pays for importing Rich's live display or the OTLP exporters.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from typing import IO

# name -> (module, class)
RENDERERS: dict[str, tuple[str, str]] = {
    "rich": ("renderers.rich", "RichRenderer"),
    "plain": ("renderers.plain", "PlainRenderer"),
    "jsonl": ("renderers.jsonl", "JsonlRenderer"),
    "otlp": ("renderers.otlp", "OtlpRenderer"),
    "none": ("renderers.none", "NoneRenderer"),
    "prometheus": ("renderers.prometheus", "PrometheusRenderer"),
    "pushgateway": ("renderers.pushgateway", "PushgatewayRenderer"),
}
# Renderers that hand events on as data (JSON lines, OTLP spans, nothing). The others write
# text for people: a replay makes the strings of their events harmless (mlpstorage/replay.py).
DATA_RENDERERS = ("jsonl", "otlp", "none")


@dataclass
class RenderOptions:
    """What the CLI decided about the terminal; each renderer takes what it needs."""

    stream: IO[str] | None = None  # None: the renderer's default (stderr, or stdout for jsonl)
    color: bool = False
    heartbeat_s: float = 30.0  # plain: interval of the "still running" line; 0 turns it off
    live: bool = True  # rich: draw the live display (off when replaying into a recording)
    min_level: str = "info"  # text renderers: the least level of message shown (--stream-log-level, --verbose)
    metrics_port: int | None = None  # prometheus: where to serve the scrape endpoint
    metrics_push: str | None = None  # pushgateway: the Pushgateway a run's final metrics go to
    resource: object | None = None  # otlp, prometheus: the process's OTel resource (the edge makes it)


def create(name: str, options: RenderOptions):
    module_name, class_name = RENDERERS[name]
    cls = getattr(importlib.import_module(module_name), class_name)
    return cls.from_options(options)


class RenderSpecError(ValueError):
    """A --render value that names no renderer or an impossible combination."""


def sdk_disabled() -> bool:
    return os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true"


def exporters(signal: str) -> set[str]:
    """OTEL_{signal}_EXPORTER (TRACES, METRICS or LOGS) as a set of lower-case names, otlp
    when unset. The one reading of these variables; what a name means is the caller's."""
    return {e.strip().lower() for e in os.environ.get(f"OTEL_{signal}_EXPORTER", "otlp").split(",") if e.strip()}


def metrics_exporters() -> set[str]:
    """OTEL_METRICS_EXPORTER as a set of names (otlp when unset; none means none)."""
    return exporters("METRICS")


def otlp_endpoint_configured() -> bool:
    return bool(os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"))


def resolve(spec: str, interactive: bool) -> list[str]:
    """Renderer names for a --render value such as "auto" or "rich,otlp".

    auto: rich on an interactive terminal, else plain; plus otlp when an OTLP endpoint is
    configured (and OTEL_SDK_DISABLED is not true)."""
    names: list[str] = []
    for part in (p.strip().lower() for p in spec.split(",")):
        if not part:
            continue
        if part == "auto":
            names.append("rich" if interactive else "plain")
            if otlp_endpoint_configured() and not sdk_disabled():
                names.append("otlp")
        elif part in RENDERERS:
            names.append(part)
        else:
            raise RenderSpecError(f"unknown renderer {part!r} (choose from auto, {', '.join(RENDERERS)})")
    names = list(dict.fromkeys(names))
    if not names:
        raise RenderSpecError("no renderer given (choose from auto, " + ", ".join(RENDERERS) + ")")
    if "rich" in names and "plain" in names:
        raise RenderSpecError("rich and plain both write to stderr: choose one")
    if len(names) > 1 and "none" in names:
        names.remove("none")
    return names
