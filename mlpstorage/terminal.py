"""What the terminal can do, decided once at the CLI edge.

Animation (a live display) and colour are separate questions: FORCE_COLOR in a CI log asks
for colour, never for live frames.
"""

from __future__ import annotations

import os
from typing import IO, Mapping


def _flag(value: str | None) -> bool | None:
    if value is None or value.strip() == "":
        return None
    return value.strip().lower() not in ("0", "false", "no", "off")


def is_interactive(stream: IO, environ: Mapping[str, str] = os.environ) -> bool:
    """May we animate on `stream`? TTY_INTERACTIVE=1/0 overrides; TERM=dumb means no."""
    forced = _flag(environ.get("TTY_INTERACTIVE"))
    if forced is not None:
        return forced
    if environ.get("TERM") == "dumb":
        return False
    return hasattr(stream, "isatty") and stream.isatty()


def wants_color(stream: IO, environ: Mapping[str, str] = os.environ) -> bool:
    """NO_COLOR (any value) wins, then FORCE_COLOR, then: a terminal that is not dumb."""
    if environ.get("NO_COLOR"):
        return False
    if _flag(environ.get("FORCE_COLOR")):
        return True
    if environ.get("TERM") == "dumb":
        return False
    return hasattr(stream, "isatty") and stream.isatty()
