"""The terminal: what it can do (decided once at the CLI edge), and the one policy for text
that must not act on it.

Animation (a live display) and colour are separate questions: FORCE_COLOR in a CI log asks
for colour, never for live frames.

Text from elsewhere (a child's output, a recording, a run folder) must not drive the terminal:
control characters (escape, carriage return, bell, C1...) and the bidirectional overrides
that reorder what is shown. Only colour (SGR) sequences may stay. Two views of that one
policy: visible_block() leaves a child's live output as a terminal would show it (what follows
its last carriage return, the rest dropped), harmless() shows every such character escaped
('\\x1b', '\\u202e'), for recorded strings a reader must be able to see as they are.
"""

from __future__ import annotations

import os
import re
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


# ----- text that must not act on the terminal ----------------------------------------------
_BIDI = "\u202a-\u202e\u2066-\u2069"  # LRE..RLO and LRI..PDI: they reorder what is shown
# Control characters other than tab and newline (C0, DEL, C1; ESC and CR among them), and the
# bidirectional overrides.
_CONTROLS = re.compile(f"[\\x00-\\x08\\x0b-\\x1f\\x7f-\\x9f{_BIDI}]")
_C0_CONTROLS = tuple(chr(c) for c in (*range(0x00, 0x09), *range(0x0B, 0x20), 0x7F))
# What a line may not send to the terminal. Nothing here matches across a newline, so a batch
# of lines joined with "\n" is cleaned in one pass.
_ESCAPES = re.compile(
    rf"""
      (?P<sgr>\x1b\[[0-9;:]*m)                    # SGR: colours and attributes (kept with colour on)
    | \x1b\[[0-?]*[\x20-/]*[@-~]?                 # any other CSI: cursor moves, erases, modes, scrolling
    | \x1b[\]PX^_][^\x07\x1b\n]*(?:\x07|\x1b\\)?  # OSC (window title, hyperlinks), DCS, SOS, PM, APC
    | \x1b[\x20-/]*[0-~]?                         # two-character escapes (ESC 7/8, ESC M, ESC c, charsets), a lone ESC
    | [\x00-\x08\x0b-\x1f\x7f-\x9f{_BIDI}]               # other control characters (BEL, BS, VT, FF, SO/SI, C1), bidi
    """,
    re.VERBOSE,
)


def _needs_cleaning(text: str) -> bool:
    """Whether text holds anything _ESCAPES removes: C-level scans only (memchr-fast for ESC and
    CR, which is what a child's output holds when it holds anything)."""
    if "\x1b" in text or "\r" in text:
        return True
    if text.isascii():
        return any(c in text for c in _C0_CONTROLS)
    return _CONTROLS.search(text) is not None


def _after_carriage_return(line: str) -> str:
    line = line.rstrip("\r")  # "50%\r" leaves "50%" on a terminal
    return line[line.rfind("\r") + 1:]


def visible_block(lines: list[str], colour: bool = True) -> str:
    """A child's lines joined with newlines, each as a terminal would leave it: only what follows
    its last carriage return (progress bars redraw with \\r), SGR colours kept when colour is on,
    every other escape sequence and control character dropped (they could move the cursor into
    the live display, clear the screen or retitle the window). A clean batch costs one scan."""
    text = "\n".join(lines)
    if not _needs_cleaning(text):
        return text
    if "\r" in text:
        text = "\n".join([_after_carriage_return(line) if "\r" in line else line for line in lines])
        if not _needs_cleaning(text):  # progress lines: nothing but the carriage returns
            return text
    return _ESCAPES.sub(r"\g<sgr>" if colour else "", text)


# An SGR (colour) sequence, kept; or a character that would act on the terminal rather than
# be shown: C0 controls but tab (escape, carriage return, newline, bell...), DEL, C1 controls,
# and the bidirectional overrides that reorder what is shown.
_SGR = r"\x1b\[[0-9;:]*m"
_UNSAFE = re.compile(f"({_SGR})|[\\x00-\\x08\\x0a-\\x1f\\x7f-\\x9f{_BIDI}]")
_RESET = "\x1b[0m"
_SHORT = {"\n": "\\n", "\r": "\\r"}


def _escaped(match: re.Match) -> str:
    if match.group(1):
        return match.group(1)
    char = match.group(0)
    code = ord(char)
    return _SHORT.get(char) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")


def harmless(text: str) -> str:
    """text as it may be written to a terminal: every control character shown escaped
    ('\\x1b', '\\r', '\\n', '\\u202e'), colour sequences kept, and a text that sets a colour ends
    with a reset, so the colour never leaks past it."""
    if _UNSAFE.search(text) is None:
        return text
    shown = _UNSAFE.sub(_escaped, text)
    if "\x1b[" in shown and not shown.endswith((_RESET, "\x1b[m")):
        shown += _RESET
    return shown
