"""What the pytest plugin (renderers/capture.py) captures with: a renderer that keeps every
event, the emitter it hangs on and an in-memory span exporter. Imported only when a test asks
for the fixture, so a pytest session that does not use it never loads OpenTelemetry."""

from __future__ import annotations

from dataclasses import dataclass, field

from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from mlpstorage.emitter import Emitter


@dataclass
class CaptureRenderer:
    events: list[dict] = field(default_factory=list)

    @classmethod
    def from_options(cls, options) -> "CaptureRenderer":
        return cls()

    def handle(self, event: dict) -> None:
        self.events.append(event)

    def close(self) -> None:
        pass


@dataclass
class TelemetryCapture:
    emitter: Emitter
    renderer: CaptureRenderer
    exporter: InMemorySpanExporter

    @property
    def events(self) -> list[dict]:
        return self.renderer.events

    @property
    def spans(self):
        """Finished spans (opentelemetry ReadableSpan), in the order they ended."""
        return list(self.exporter.get_finished_spans())

    def of_type(self, *types: str) -> list[dict]:
        return [e for e in self.events if e["type"] in types]

    def stage_names(self) -> list[str]:
        return [e["name"] for e in self.of_type("stage.started")]

    def messages(self, level: str | None = None) -> list[str]:
        return [e["message"] for e in self.of_type("log") if level is None or e["level"] == level]


def new_capture() -> TelemetryCapture:
    exporter = InMemorySpanExporter()
    renderer = CaptureRenderer()
    emitter = Emitter([renderer], span_processors=[SimpleSpanProcessor(exporter)])
    return TelemetryCapture(emitter, renderer, exporter)
