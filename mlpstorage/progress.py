"""The progress API users of the existing launcher know, routed through the current emitter.

    from mlpstorage.progress import create_stage_progress, progress_context

    with create_stage_progress(["Validating environment", ...]) as advance_stage:
        ...
        advance_stage()                      # or advance_stage("a new name for the next stage")

    with progress_context("Collecting cluster info...", total=None) as (update, set_description):
        set_description("Collecting via SSH...")
        update(completed=3)

Every stage and spinner is a span of the current emitter, shown by whatever renderers run
(a live display on a terminal, plain lines in a log, a trace...). `logger` (a stdlib or
structlog logger) additionally receives the stage status lines when the terminal is not
interactive, as in the existing launcher; `transient` is accepted for compatibility: the live
display always removes finished rows and leaves a summary.
"""

from __future__ import annotations

import contextlib
import sys
from typing import Callable, Iterator, Sequence

from .terminal import is_interactive

__all__ = ["create_stage_progress", "is_interactive_terminal", "progress_context"]


def is_interactive_terminal() -> bool:
    """Whether stderr is a terminal a live display can draw on (TTY_INTERACTIVE and
    TERM=dumb are honoured)."""
    return is_interactive(sys.stderr)


def _status_line(logger, text: str) -> None:
    if logger is None or is_interactive_terminal():
        return
    tell = getattr(logger, "status", None) or logger.info
    tell(text)


def _plain_on_stderr():
    from renderers.plain import PlainRenderer

    return PlainRenderer(sys.stderr, heartbeat_s=0)


def _emitter():
    """The current emitter; this module is an edge (library code that runs no CLI), so it hands
    the emitter the fallback its users expect: plain lines on stderr."""
    from .emitter import current_emitter
    from .emitter.core import set_fallback_renderer

    set_fallback_renderer(_plain_on_stderr)
    return current_emitter()


@contextlib.contextmanager
def progress_context(description: str, total: int | None = None, logger=None,
                     transient: bool = True) -> Iterator[tuple[Callable[..., None], Callable[[str], None]]]:
    """Yields (update(advance=1, completed=None), set_description(text)); total=None is an
    indeterminate spinner, a number a determinate bar."""
    with _emitter().spinner(description, total) as spinner:
        _status_line(logger, description)
        yield spinner.update, spinner.set_description


@contextlib.contextmanager
def create_stage_progress(stages: Sequence[str], logger=None, transient: bool = True) -> Iterator[Callable[..., None]]:
    """Yields advance_stage(stage_name=None): the first stage starts on entry, each advance
    ends the current stage and starts the next (optionally renamed), the last advance ends
    the last stage. Leaving the block by an exception ends the open stage with that error."""
    with _emitter().stages(stages) as progress:
        def announce() -> None:
            if progress.stage is not None:
                _status_line(logger, f"Stage {progress.index + 1}/{len(progress.names)}: {progress.stage.name}")

        def advance_stage(stage_name: str | None = None) -> None:
            progress.advance(stage_name)
            announce()

        announce()
        yield advance_stage
