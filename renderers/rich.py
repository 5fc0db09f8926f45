"""The rich renderer: a live display on stderr for interactive terminals. One job: drawing that
display, and everything printed while it is up, without ever garbling the terminal.

The display shows the current stage ("Stage i/N  name  bar  elapsed"), a highlighted row per
stall not yet resumed (with how long its rank, host or job has been idle), a row per open
spinner or task with its own elapsed time (an epoch with its steps), then the time series: a row per host with its
latest sample, under a row of their sums when there are several; with more hosts than fit
(FEW_HOSTS, or the terminal's height), the sums and the hosts that stand out: the slowest and
the silent. When the run ends the display is removed and a summary (each stage, its duration
and status) stays on screen.

The live region is drawn by this module, not by rich.live: Rich renders the frame into an ANSI
string, and one printer thread owns the terminal while the display is up. Each of its writes
is one string: cursor back to the top of the previous frame, clear to the end of the screen,
the lines queued since the last write (a child's output raw, apart from the escapes that could
move the cursor), then the new frame. So text is never drawn over, never glued onto a frame,
and no stale frame rows stay behind. The printer sleeps until lines are queued (then it writes
at most every BATCH_S) or until what the frame shows changes: a clock's next whole second, or
the next step of a spinner. Time-series samples wait for the clock's next second: a thousand
hosts' samples cost a redraw a second, not one per sample.
"""

from __future__ import annotations

import datetime as dt
import io
import os
import sys
import threading
import time
from typing import NamedTuple

from rich.console import Console, ConsoleDimensions, Group
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from mlpstorage.emitter.events import LEVEL_RANK, ns_from_iso, output_lines, stall_text
from mlpstorage.terminal import visible_block

from .board import (FEW_HOSTS, Aggregate, Board, HostState, SpanRow, clock, describe_aggregate, describe_host,
                    format_seconds, stall_idle_s, without_trailing_dots)

# Rich's "dots" spinner. It moves SPINNER_STEPS_PER_SECOND times a second by default: each
# step is a redraw, and an idle display must cost next to nothing.
SPINNER_FRAMES = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
SPINNER_STEPS_PER_SECOND = 4.0
# Stalls shown as rows of their own; any more are counted in one row (each has its warning line).
MAX_STALL_ROWS = 4

_LEVEL_STYLES = {
    "debug": "dim",
    "info": "",
    "status": "cyan",
    "warning": "yellow",
    "error": "bold red",
    "result": "bold green",
}


# What an interrupted run's spans end with (Ctrl-C, SIGTERM; or the emitter closing spans a
# signal left open): shown as interrupted, not failed.
_INTERRUPTS = ("KeyboardInterrupt", "Terminated", "interrupted", "terminated")


_VERDICT_STYLES = {"CLOSED": "green", "OPEN": "yellow", "INVALID": "bold red"}


def _interrupted(row: SpanRow) -> bool:
    return row.status == "error" and (row.error or "").startswith(_INTERRUPTS)


def _status_text(row: SpanRow) -> Text:
    if row.status == "ok":
        return Text("ok", "green")
    if row.status is None or _interrupted(row):
        return Text("interrupted", "yellow")
    return Text("failed", "bold red")


# ----- a child's output --------------------------------------------------------------------

def visible_text(line: str) -> Text:
    """A child's line (see visible_block) as a Rich Text, for printing through a Console."""
    return Text.from_ansi(visible_block([line]))


# ----- the time series ----------------------------------------------------------------------
def host_rows(aggregate: Aggregate, room: int) -> list[tuple[str, Text]]:
    """(name, text) rows of the time series in at most `room` rows where it can: one host alone;
    the sums, then every host, when up to FEW_HOSTS hosts fit; else the sums, then the slowest and
    the silent hosts, the silent first to get a row (the slowest keep one)."""
    if len(aggregate.hosts) == 1:
        return [(host.name, _host_text(host)) for host in aggregate.hosts]
    rows = [("all hosts", Text(describe_aggregate(aggregate)))]
    if len(aggregate.hosts) <= FEW_HOSTS and len(aggregate.hosts) < room:
        return rows + [(host.name, _host_text(host)) for host in aggregate.hosts]
    budget = max(0, min(room - 1, FEW_HOSTS))
    silent = aggregate.silent
    shown = min(len(silent), max(0, budget - min(1, len(aggregate.slowest))))
    slowest = aggregate.slowest[: budget - shown]
    rows += [(host.name, _host_text(host, f"slowest {aggregate.direction}: ")) for host in slowest]
    if shown == len(silent):
        rows += [(host.name, _host_text(host)) for host in silent]
    elif shown:  # the last row counts the rest
        named = silent[: shown - 1]
        rows += [(host.name, _host_text(host)) for host in named]
        count = f"{len(silent) - len(named)} more" if named else f"{len(silent)} hosts"
        rows.append((count, Text("silent", style="red")))
    return rows


def _host_text(host: HostState, tag: str = "") -> Text:
    if host.silent_s is not None:
        return Text.assemble(("silent: ", "red"), describe_host(host))
    return Text.assemble((tag, "yellow"), describe_host(host))


class _FrameState(NamedTuple):
    key: tuple  # what the frame's layout depends on: the board's version, the terminal's size, each clock's seconds
    step: int  # the spinners' glyph, an index into SPINNER_FRAMES
    shown_ns: int  # the time the clocks show
    wait_s: float | None  # seconds until key or step next change (None: not before an event)
    size: ConsoleDimensions


# ----- the live region ----------------------------------------------------------------------
class LiveRegion:
    """The rows at the bottom of the terminal that the renderer redraws. Holds what was drawn
    last; every method returns the string to write, the caller writes it."""

    def __init__(self) -> None:
        self.is_started = False
        self.rows = 0  # terminal rows of the frame on screen, the cursor at the end of its last row

    def start(self) -> str:
        self.is_started = True
        self.rows = 0
        return "\x1b[?25l"  # hide the cursor

    def redraw(self, above: str, frame: str) -> str:
        """Erase the frame on screen, print `above` (lines, no trailing newline; "" for none)
        where it was, then draw `frame` under it."""
        parts = [self._erase()]
        if above:
            parts.append(above + "\n")
        parts.append(frame)
        self.rows = frame.count("\n") + 1 if frame else 0
        return "".join(parts)

    def stop(self, above: str) -> str:
        """Erase the frame, print `above`, show the cursor again."""
        text = self.redraw(above, "")
        self.is_started = False
        return text + "\x1b[?25h"

    def _erase(self) -> str:
        if self.rows == 0:
            return ""
        up = f"\x1b[{self.rows - 1}A" if self.rows > 1 else ""
        return "\r" + up + "\x1b[J"


class RichRenderer:
    # While the display is up, queued lines are written at most once per BATCH_S (each write
    # redraws the frame) ...
    BATCH_S = 0.05
    # ... or as soon as this many are queued; past MAX_QUEUED_LINES, handle() waits for the
    # terminal (as the plain renderer's writes do) instead of queueing without end.
    FLUSH_LINES = 4096
    MAX_QUEUED_LINES = 16384

    def __init__(self, console: Console, live: bool = True, refresh_per_second: float = SPINNER_STEPS_PER_SECOND,
                 clock_ns=time.time_ns, min_level: str = "debug"):
        """refresh_per_second: steps per second of a spinner. Apart from them the display is
        redrawn only when what it shows changes (a clock's second, an event, queued lines)."""
        self._console = console
        self._board = Board()
        self._lock = threading.Lock()  # the board
        self._clock = clock_ns
        self._min_rank = LEVEL_RANK[min_level]
        self._spinner_hz = refresh_per_second
        self._live = LiveRegion() if live else None
        self._summarised = False
        self._saved_tty = None  # (fd, termios attributes) while echo is off
        # The printer's state, all under _cond.
        self._cond = threading.Condition()
        self._live_on = False  # lines go to the printer's queue
        self._stopping = False
        self._queue: list = []  # list[str] (lines of one output event) or Text
        self._queued_lines = 0
        self._version = 0  # bumped by every event that changes the frame
        self._last_write = 0.0
        self._printer: threading.Thread | None = None
        self._write_lock = threading.Lock()  # one writer of the terminal at a time
        self._frame_key = None  # what the frame drawn last was rendered from (see _frame_state)
        self._frame_step = 0
        self._frame_text = ""
        # For tests and benchmarks: how often the printer woke up, and rendered a frame.
        self.printer_wakeups = 0
        self.frames_rendered = 0

    @property
    def is_live(self) -> bool:
        """Whether the live display is on screen."""
        return self._live is not None and self._live.is_started

    @classmethod
    def from_options(cls, options) -> "RichRenderer":
        console = Console(
            file=options.stream or sys.stderr,
            no_color=not options.color,
            highlight=False,
        )
        return cls(console, live=options.live, min_level=options.min_level)

    # ----- events ----------------------------------------------------------------------
    def handle(self, event: dict) -> None:
        kind = event["type"]
        if kind == "output":
            self._print_output(output_lines(event))
            return
        if kind == "log":
            if LEVEL_RANK.get(event["level"], 0) >= self._min_rank:
                self._print(self._log_text(event))
            return
        with self._lock:
            row = self._board.apply(event)
        if kind == "sample":
            # Shown at the clocks' next second, not redrawn for each: a thousand hosts send one
            # every interval, and the stage's clock ticks every second while they come.
            return
        if kind == "run.started":
            self._start_live()
        elif kind == "stage.started" and not self._live_on:
            self._start_live()
        elif kind == "stage.finished" and row is not None:
            self._print(self._stage_text(row))
        elif kind in ("spinner.finished", "task.finished") and row is not None and row.status == "error":
            self._print(Text(f"  ✖ {without_trailing_dots(row.description)} failed after "
                             f"{format_seconds(row.duration_s or 0)}: {row.error}", style="red"))
        elif kind == "task.finished" and row is not None and row.io:  # a traced epoch: where its time went
            self._print(Text.assemble(("  ✔ ", "green"), without_trailing_dots(row.name),
                                      (f" done in {format_seconds(row.duration_s or 0)}: {row.io}", "dim")))
        elif kind == "stall" and LEVEL_RANK.get(event["level"], 0) >= self._min_rank:
            self._print(self._log_text({**event, "message": stall_text(event)}))
        elif kind == "run.finished":
            self._finish()
            return
        with self._cond:
            self._version += 1
            self._cond.notify_all()

    def close(self) -> None:
        self._finish()

    # ----- printing above the display --------------------------------------------------
    def _print_output(self, lines: list[str]) -> None:
        with self._cond:
            if self._live_on:
                while self._live_on and self._queued_lines >= self.MAX_QUEUED_LINES and not self._stopping:
                    self._cond.wait()
                if self._live_on:
                    self._enqueue(lines, len(lines))
                    return
        self._print_now(lines)

    def _print(self, text: Text) -> None:
        with self._cond:
            if self._live_on:
                self._enqueue(text, 1)
                return
        self._print_now(text)

    def _enqueue(self, item, lines: int) -> None:  # under _cond
        self._queue.append(item)
        self._queued_lines += lines
        self._cond.notify_all()

    def _print_now(self, item) -> None:
        """Prints through the Console while no display is up (checked again under the write
        lock, which the display needs to start)."""
        with self._write_lock:
            with self._cond:
                if self._live_on:
                    self._enqueue(item, len(item) if isinstance(item, list) else 1)
                    return
            if isinstance(item, list):
                for line in item:
                    self._console.print(visible_text(line), soft_wrap=True)
            else:
                self._console.print(item, soft_wrap=True)

    def _start_live(self) -> None:
        with self._write_lock, self._cond:
            if self._live is None or self._live_on or self._live.is_started:
                return  # (started and not on: the printer gave up on a broken terminal)
            if not (self._console.is_terminal and not self._console.is_dumb_terminal):
                return  # a file or a dumb terminal: lines only, as with live=False
            self._echo_off()
            self._write(self._live.start())
            self._live_on = True
            self._stopping = False
            self._frame_key = None
            self._printer = threading.Thread(target=self._print_loop, name="rich-printer", daemon=True)
            self._printer.start()

    def _finish(self) -> None:
        with self._cond:
            printer = self._printer
            self._stopping = True
            self._cond.notify_all()
        if printer is not None and printer is not threading.current_thread():
            printer.join()
        with self._write_lock:
            with self._cond:
                batch, self._queue, self._queued_lines = self._queue, [], 0
                self._live_on = False
                self._printer = None
                self._cond.notify_all()
            if self._live is not None and self._live.is_started:
                try:
                    # transient: the display goes, the cursor comes back
                    self._write(self._live.stop(self._above(batch, self._console.size)))
                except (OSError, ValueError):  # the terminal is gone (hang-up, closed stream)
                    pass
                self._echo_restore()
        if not self._summarised and self._board.stages:
            self._summarised = True
            with self._write_lock:
                self._console.print(self.summary())

    def _write(self, text: str) -> None:
        if text:
            self._console.file.write(text)
            self._console.file.flush()

    # ----- the printer thread ----------------------------------------------------------
    # A redraw for the frame alone (an event, a bar's progress) comes at most this often.
    FRAME_INTERVAL_S = 0.1

    def _print_loop(self) -> None:
        try:
            while self._print_once():
                pass
        except Exception:  # the terminal is gone: from now on lines go straight to the Console
            with self._cond:
                self._live_on = False
                self._cond.notify_all()

    def _print_once(self) -> bool:
        """Waits until there is something to draw, draws it; False once stopping."""
        with self._cond:
            while not self._stopping and not self._queue:
                state = self._frame_state()
                if (state.key, state.step) != (self._frame_key, self._frame_step):
                    break
                self._cond.wait(state.wait_s)
                self.printer_wakeups += 1
            # One write per BATCH_S at most (FRAME_INTERVAL_S when only the frame changed):
            # lines queued meanwhile go in the same write.
            while not self._stopping and self._queued_lines < self.FLUSH_LINES:
                gap = self.BATCH_S if self._queue else self.FRAME_INTERVAL_S
                left = self._last_write + gap - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
                self.printer_wakeups += 1
            if self._stopping:
                return False  # _finish writes what is queued
            batch, self._queue, self._queued_lines = self._queue, [], 0
            self._cond.notify_all()  # handle() calls waiting for room
        with self._write_lock:
            state = self._frame_state()
            above = self._above(batch, state.size)
            self._write(self._live.redraw(above, self._frame_string(state)))
            self._last_write = time.monotonic()
        return True

    def _render(self, renderable, size: ConsoleDimensions, **print_options) -> str:
        """renderable as Rich would print it on the terminal, without the last newline: printed
        by a Console of the terminal's size and colours that writes into a string."""
        real = self._console
        console = Console(file=io.StringIO(), width=size.width, height=size.height, force_terminal=True,
                          color_system=real.color_system, no_color=real.no_color, highlight=False, emoji=False,
                          legacy_windows=False)
        console.print(renderable, **print_options)
        return console.file.getvalue().rstrip("\n")

    def _above(self, batch: list, size: ConsoleDimensions) -> str:
        """The queued lines and messages as one string to write, in the order they came."""
        parts: list[str] = []
        lines: list[str] = []
        colour = self._console.color_system is not None and not self._console.no_color
        for item in batch:
            if isinstance(item, list):
                lines.extend(item)
                continue
            if lines:
                parts.append(visible_block(lines, colour))
                lines = []
            parts.append(self._render(item, size, soft_wrap=True))
        if lines:
            parts.append(visible_block(lines, colour))
        return "\n".join(parts)

    def _frame_state(self) -> "_FrameState":
        """What the frame would show now; see _FrameState.

        The clocks tick together, on the whole seconds of the first one (the stage's): all of
        them move in one redraw a second, each at most a second late, and a spinner's steps
        fall on the same ticks. A step in between only swaps the spinner's glyph."""
        now_ns = self._clock()
        with self._lock:
            stage = self._board.current_stage
            rows = list(self._board.open_rows.values())
        size = self._console.size
        clocks = ([stage] if stage is not None else []) + rows
        if not clocks:
            return _FrameState((self._version, size, ()), 0, now_ns, None, size)
        first = clocks[0].start_ns
        since = max(0, now_ns - first)
        shown_ns = first + since // 1_000_000_000 * 1_000_000_000
        seconds = tuple(int(row.elapsed_s(shown_ns)) for row in clocks)
        key = (self._version, size, seconds)
        if rows and self._spinner_hz > 0:
            step_ns = 1e9 / self._spinner_hz
            steps = int(since // step_ns)
            wait_ns = min((steps + 1) * step_ns - since, shown_ns + 1_000_000_000 - now_ns)
            return _FrameState(key, steps % len(SPINNER_FRAMES), shown_ns, max(0.001, wait_ns / 1e9), size)
        return _FrameState(key, 0, shown_ns, max(0.001, (shown_ns + 1_000_000_000 - now_ns) / 1e9), size)

    def _frame_string(self, state: "_FrameState") -> str:
        """The frame for state, at most one row less than the terminal is high (a taller frame
        would scroll out of reach of the cursor). Rendered by Rich only when state.key changed;
        a spinner step alone swaps the glyph (one cell for another)."""
        if state.key == self._frame_key:
            if state.step != self._frame_step:
                self._frame_text = self._frame_text.replace(SPINNER_FRAMES[self._frame_step],
                                                            SPINNER_FRAMES[state.step])
                self._frame_step = state.step
            return self._frame_text
        rows = self._render(self.frame(state.shown_ns, spinner_step=state.step), state.size)
        if rows:
            rows = "\n".join(rows.split("\n")[: max(1, state.size.height - 1)])
        self._frame_key, self._frame_step, self._frame_text = state.key, state.step, rows
        self.frames_rendered += 1
        return rows

    # ----- terminal modes --------------------------------------------------------------
    def _echo_off(self) -> None:
        """While the display is live the terminal must not echo keys: an echoed Enter, or the
        '^C' of Ctrl-C at the end of a full-width row, moves the cursor down a row; the next
        redraw then starts one row too low and a frozen copy of the display stays on screen.
        NOFLSH too: on Ctrl-C the terminal driver otherwise discards the output it still holds,
        and a redraw cut in half leaves the cursor where the next one does not expect it.
        Only in the foreground: tcsetattr from a background process group stops it with SIGTTOU."""
        try:
            import termios

            fd = self._console.file.fileno()
            if not os.isatty(fd) or os.tcgetpgrp(fd) != os.getpgrp():
                return
            saved = termios.tcgetattr(fd)
            quiet = termios.tcgetattr(fd)
            quiet[3] &= ~(termios.ECHO | termios.ECHOCTL)
            quiet[3] |= termios.NOFLSH
            termios.tcsetattr(fd, termios.TCSANOW, quiet)
            self._saved_tty = (fd, saved)
        except Exception:  # no termios (Windows), no fileno (StringIO), not a terminal
            self._saved_tty = None

    def _echo_restore(self) -> None:
        saved, self._saved_tty = self._saved_tty, None
        if saved is None:
            return
        try:
            import termios

            fd, attrs = saved
            if os.tcgetpgrp(fd) == os.getpgrp():
                termios.tcsetattr(fd, termios.TCSANOW, attrs)
        except Exception:
            pass

    # ----- what is drawn ---------------------------------------------------------------
    def __rich__(self):
        return self.frame(self._clock())

    def frame(self, now_ns: int, spinner_step: int | None = None):
        """The live display as of now_ns; spinners show SPINNER_FRAMES[spinner_step] (by
        default the step of the Console's clock)."""
        with self._lock:
            stage = self._board.current_stage
            rows = list(self._board.open_rows.values())
            stalls = list(self._board.stalls.values())
            aggregate = self._board.aggregate() if stage is not None else None
        # Below 80 columns the bars go: the stage name matters more.
        bar_width = 30 if self._console.width >= 80 else 0
        grid = Table.grid(padding=(0, 1), expand=True)
        grid.add_column(ratio=1, no_wrap=True, overflow="ellipsis")
        if bar_width:
            grid.add_column(width=bar_width)
        grid.add_column(justify="right", width=8)
        if stage is not None:
            title = Text.assemble(
                (f"Stage {stage.stage_index}/{stage.stage_count}", "bold cyan"), "  ", (stage.name, "bold")
            )
            bar = ProgressBar(total=stage.stage_count, completed=stage.stage_index - 1, width=30)
            grid.add_row(title, *([bar] if bar_width else []), Text(clock(stage.elapsed_s(now_ns)), style="yellow"))
        for stall in stalls[:MAX_STALL_ROWS]:  # right under the stage, highlighted, with how long it has been idle
            idle = stall_idle_s(stall, now_ns)
            # what, without the idle time it had when flagged: the clock column counts that on
            text = f"{stall['subject']}: {stall['detail']}" if stall.get("detail") else stall["message"]
            grid.add_row(Text(f" ⚠ {text}", style="bold black on yellow"), *([Text("")] if bar_width else []),
                         Text(clock(idle) if idle is not None else "", style="bold yellow"))
        if len(stalls) > MAX_STALL_ROWS:
            grid.add_row(Text(f" ⚠ and {len(stalls) - MAX_STALL_ROWS} more stalls (see the warnings above)",
                              style="bold black on yellow"), *([Text("")] if bar_width else []), Text(""))
        if spinner_step is None:
            spinner_step = int(self._console.get_time() * self._spinner_hz)
        spinner = SPINNER_FRAMES[spinner_step % len(SPINNER_FRAMES)]
        # rows past the terminal's height are cut from the frame anyway (see _frame_string): a
        # collection of many hosts opens a row per host
        for row in rows[: max(0, self._console.height - 1 - grid.row_count)]:
            bar = [self._row_bar(row)] if bar_width else []
            grid.add_row(self._row_label(row, spinner), *bar, Text(clock(row.elapsed_s(now_ns)), style="yellow"))
        if aggregate is None:
            return grid
        hosts = Table.grid(padding=(0, 2))
        hosts.add_column(no_wrap=True, style="bold")
        hosts.add_column(no_wrap=True, overflow="ellipsis", style="dim")
        # the frame shows at most a row less than the terminal is high (see _frame_string)
        for name, text in host_rows(aggregate, self._console.height - 1 - grid.row_count):
            hosts.add_row(Text(f"  {name}"), text)  # Text: a host name is never parsed as markup
        return Group(grid, hosts)

    @staticmethod
    def _row_label(row: SpanRow, spinner: str):
        text = Text(row.description)
        if row.total is not None:
            text.append(f" {row.completed}/{row.total}", style="dim")
        return Text.assemble("  ", (spinner, "cyan"), " ", text)

    @staticmethod
    def _row_bar(row: SpanRow):
        if row.total:
            return ProgressBar(total=row.total, completed=row.completed, width=30)
        return Text("")

    def _log_text(self, event: dict) -> Text:
        level = event["level"]
        # Local wall-clock time for a person at the terminal; the event keeps UTC.
        stamp = dt.datetime.fromtimestamp(ns_from_iso(event["timestamp"]) / 1e9).strftime("%H:%M:%S")
        style = _LEVEL_STYLES.get(level, "")
        return Text.assemble((stamp, "dim"), " ", (f"{level.upper():<7}", style), " ", (event["message"], style))

    @staticmethod
    def _stage_text(row: SpanRow) -> Text:
        label = f"Stage {row.stage_index}/{row.stage_count} {row.name}"
        if _interrupted(row):
            return Text(f"■ {label} interrupted after {format_seconds(row.duration_s or 0)}", style="bold yellow")
        if row.status == "error":
            # the launcher's own "mlpstorage: error:" line says what, when error_reported
            why = "" if row.error_reported else f": {row.error}"
            return Text(f"✖ {label} failed after {format_seconds(row.duration_s or 0)}{why}", style="bold red")
        return Text.assemble(("✔ ", "green"), label, (f" done in {format_seconds(row.duration_s or 0)}", "dim"))

    def summary(self):
        """Each stage with its duration and status, the run's total and its verdict; the
        verdict's reasons and notes below the table (long lines must not widen its columns)."""
        table = Table(box=None, show_header=True, header_style="bold", padding=(0, 2, 0, 0))
        table.add_column("Stage")
        table.add_column("Status")
        table.add_column("Duration", justify="right")
        for stage in self._board.stages:
            status = _status_text(stage)
            table.add_row(Text(f"{stage.stage_index}/{stage.stage_count} {stage.name}"), status,
                          format_seconds(stage.elapsed_s(self._clock())))
        run = self._board.run
        if run is not None and run.status is not None:
            verdict = _status_text(run)
            table.add_row(Text(f"run {run.name}", "bold"), verdict, format_seconds(run.duration_s or 0))
            if run.verdict:
                table.add_row(Text("verdict", "bold"), Text(run.verdict, _VERDICT_STYLES.get(run.verdict, "")), "")
                below = [f"  {reason}" for reason in run.verdict_reasons] + [f"  note: {n}" for n in run.verdict_notes]
                if below:
                    return Group(table, Text("\n".join(below), style="dim"))
        return table
