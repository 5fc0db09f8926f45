"""Captured events for pytest: a renderer that keeps every event, and a fixture around it.

Installed as a pytest plugin (entry point group pytest11), so any project that installs
mlpstorage gets the `mlpstorage_capture` fixture:

    def test_stages(mlpstorage_capture):
        MyBenchmark(args).run()                 # uses the current emitter
        assert mlpstorage_capture.stage_names() == [...]
        assert mlpstorage_capture.spans[-1].name.startswith("mlpstorage")

Each test gets its own Emitter and TracerProvider (with an in-memory span exporter), made
current for the test only, so nothing leaks between tests.

pytest loads this module in every session of every project installed beside mlpstorage, so it
imports nothing of its own until a test asks for the fixture (renderers/captured.py holds the
machinery): a session that does not use it pays about a millisecond.
"""

from __future__ import annotations

import pytest


@pytest.fixture
def mlpstorage_capture():
    """Captures the events and finished spans of the code under test (its own emitter)."""
    from mlpstorage.emitter import use_emitter

    from .captured import new_capture

    capture = new_capture()
    with use_emitter(capture.emitter):
        yield capture
    capture.emitter.close()


def __getattr__(name: str):
    """CaptureRenderer, TelemetryCapture and new_capture, from where they live, when asked for."""
    if name in ("CaptureRenderer", "TelemetryCapture", "new_capture"):
        from . import captured

        return getattr(captured, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
