"""The handles benchmark code holds while a stage sequence or a spinner is open (from
Emitter.stages() and Emitter.spinner()): each change goes back to the emitter as an event."""

from __future__ import annotations

import contextvars
from opentelemetry import trace


class StageProgress:
    """The run's stages in order, each a span. Entering starts the first; advance() ends the
    current stage and starts the next (optionally renamed); the last advance ends the last
    stage, and advancing past it does nothing. Leaving ends an open stage, with the error
    that ended the block if there was one."""

    def __init__(self, emitter, names: list[str]):
        self._emitter = emitter
        self.names = names
        self.index = -1
        self.stage: trace.Span | None = None
        self._token: contextvars.Token | None = None

    def __enter__(self) -> "StageProgress":
        if self.names:
            self._start(0, self.names[0])
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self._finish(exc)
        if self._token is not None:
            self._emitter.restore_scope(self._token)

    def advance(self, stage_name: str | None = None) -> None:
        if self.stage is None:
            return
        self._finish()
        if self.index + 1 < len(self.names):
            self._start(self.index + 1, stage_name or self.names[self.index + 1])

    __call__ = advance  # the stage progress is itself the advance_stage callable

    def _start(self, index: int, name: str) -> None:
        self.index = index
        self.stage, token = self._emitter.start_stage(name, index + 1, len(self.names))
        self._token = self._token or token  # the first one restores the scope from before the stages

    def _finish(self, exc: BaseException | None = None) -> None:
        stage, self.stage = self.stage, None
        if stage is not None:
            self._emitter.end_stage(stage, exc)


class SpinnerHandle:
    """An open spinner or bar: update() counts, set_description() retitles; each change is a
    spinner.updated event."""

    def __init__(self, emitter, span: trace.Span, description: str, total: int | None):
        self._emitter = emitter
        self.span = span
        self.description = description
        self.total = total
        self.completed = 0

    def update(self, advance: int = 1, completed: int | None = None, description: str | None = None) -> None:
        self.completed = completed if completed is not None else self.completed + advance
        if description is not None:
            self.description = description
        self._changed()

    def set_description(self, text: str) -> None:
        self.description = text
        self._changed()

    def _changed(self) -> None:
        self._emitter.publish_update(self.span, "spinner", self.description, self.completed, self.total)
