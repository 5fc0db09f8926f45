"""`mlpstorage events replay`: a recorded events.jsonl fed back through renderers.

A recording may come from anywhere (a batch job, a colleague, a download), so replay treats it
as untrusted input:

- It must be a recording: read through mlpstorage/emitter/reading.py, which refuses a file
  that is none with one error before any renderer starts and skips a bad line after the
  first with a warning.
- It must not drive the terminal: renderers that write text for people (plain, rich: all but
  the data renderers, renderers.DATA_RENDERERS) get every event with each of its strings made
  harmless() first; control characters are shown escaped and only colour (SGR) sequences stay.
  The data renderers (jsonl, otlp, none) get each event exactly as recorded.
- A recording cut short (the launcher killed: spans started and never finished) ends as a
  live run ends on an interrupt: every span still open is finished, innermost first, at the
  recording's last timestamp with error UNFINISHED, its open stage keeping the recorded
  time-series samples as "timeseries.sample" span events. So an OTLP export keeps its root.
"""

from __future__ import annotations


from renderers import DATA_RENDERERS, RENDERERS

from .emitter.fanout import Fanout
from .emitter.reading import MAX_WARNINGS, UNFINISHED, NotARecording, OpenSpans, Recording
from .terminal import harmless

__all__ = ["MAX_WARNINGS", "UNFINISHED", "NotARecording", "OpenSpans", "Recording", "harmless", "harmless_event",
           "replay", "takes_data"]

def harmless_event(value):
    """A copy of an event (or any JSON value) with every string, keys included, harmless()."""
    if isinstance(value, str):
        return harmless(value)
    if isinstance(value, dict):
        return {harmless(key): harmless_event(item) for key, item in value.items()}
    if isinstance(value, list):
        return [harmless_event(item) for item in value]
    return value


def takes_data(renderer) -> bool:
    """Whether renderer is one of renderers.DATA_RENDERERS (a --events-file writer included)."""
    cls = type(renderer)
    return any(RENDERERS[name] == (cls.__module__, cls.__name__) for name in DATA_RENDERERS)


# ----- replay ------------------------------------------------------------------------------
def replay(recording: Recording, renderers: list) -> list[str]:
    """Feeds every event of the recording to every renderer (strings made harmless for those
    that write text), then a finished event for each span left open, then closes them;
    returns the problems found. A renderer that fails is dropped with one problem."""
    problems = recording.problems
    data = Fanout([r for r in renderers if takes_data(r)], warn=problems.append)
    text = Fanout([r for r in renderers if not takes_data(r)], warn=problems.append)
    has_text = bool(text.renderers)
    spans = OpenSpans()

    def publish(event: dict) -> None:
        data.publish(event)
        if has_text:
            text.publish(harmless_event(event))

    try:
        for event in recording:
            spans.note(event)
            publish(event)
        for event in spans.finished_events():
            publish(event)
    finally:
        data.close()
        text.close()
    return problems

