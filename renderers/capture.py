"""Captured events for pytest: a renderer that keeps every event, and a fixture around it.

Installed as a pytest plugin (entry point group pytest11), so any project that installs
mlpstorage gets the `mlpstorage_capture` fixture:

    def test_stages(mlpstorage_capture):
        MyBenchmark(args).run()                 # uses the current emitter
        assert mlpstorage_capture.stage_names() == [...]
        assert mlpstorage_capture.spans[-1].name.startswith("mlpstorage")

Each test gets its own Emitter and TracerProvider (with an in-memory span exporter), made
current for the test only, so nothing leaks between tests.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from mlpstorage.emitter import Emitter, use_emitter


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


@pytest.fixture
def mlpstorage_capture():
    """Captures the events and finished spans of the code under test (its own emitter)."""
    capture = new_capture()
    with use_emitter(capture.emitter):
        yield capture
    capture.emitter.close()
