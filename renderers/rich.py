"""The rich renderer: a live display on stderr for interactive terminals.

The display shows the current stage ("Stage i/N  name  bar  elapsed") and a row per open
spinner or task with its own elapsed time. Log messages and child output are printed through
the same Console as the display, so Rich moves the display down instead of drawing over it,
and no text ever glues onto a frame. When the run ends the display is removed and a summary
(each stage, its duration and status) stays on screen.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
import threading
import time

from rich.console import Console, Group
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text

from mlpstorage.emitter.events import ns_from_iso, output_lines

from .board import Board, SpanRow, clock, describe_sample, format_seconds, without_trailing_dots

# Time-series rows under the stage: one per host, up to this many.
MAX_HOST_ROWS = 8

_LEVEL_STYLES = {
    "debug": "dim",
    "info": "",
    "status": "cyan",
    "warning": "yellow",
    "error": "bold red",
    "result": "bold green",
}


# What an interrupted run's spans end with (Ctrl-C, SIGTERM): shown as interrupted, not failed.
_INTERRUPTS = ("KeyboardInterrupt", "Terminated")


def _interrupted(row: SpanRow) -> bool:
    return row.status == "error" and (row.error or "").startswith(_INTERRUPTS)


def _status_text(row: SpanRow) -> Text:
    if row.status == "ok":
        return Text("ok", "green")
    if row.status is None or _interrupted(row):
        return Text("interrupted", "yellow")
    return Text("failed", "bold red")


def visible_text(line: str) -> Text:
    """A child's line as a terminal would leave it: only what follows the last carriage
    return (progress bars redraw with \\r), with its colours kept and other escapes dropped."""
    return Text.from_ansi(line.rsplit("\r", 1)[-1])


class RichRenderer:
    def __init__(self, console: Console, live: bool = True, refresh_per_second: float = 4, clock_ns=time.time_ns,
                 show_debug: bool = True):
        self._console = console
        self._board = Board()
        self._lock = threading.Lock()
        self._clock = clock_ns
        self._show_debug = show_debug
        self._spinners: dict[str, Spinner] = {}
        self._live = (
            Live(
                self,
                console=console,
                refresh_per_second=refresh_per_second,
                transient=True,
                redirect_stdout=False,
                redirect_stderr=False,
            )
            if live
            else None
        )
        self._live_started = False
        self._summarised = False
        self._saved_tty = None  # (fd, termios attributes) while echo is off
        self._queue: list[Text] = []
        self._queue_lock = threading.Lock()
        self._printer_stop = threading.Event()
        self._printer: threading.Thread | None = None

    @classmethod
    def from_options(cls, options) -> "RichRenderer":
        console = Console(
            file=options.stream or sys.stderr,
            no_color=not options.color,
            highlight=False,
        )
        return cls(console, live=options.live, show_debug=options.show_debug)

    # ----- events ----------------------------------------------------------------------
    def handle(self, event: dict) -> None:
        kind = event["type"]
        with self._lock:
            row = self._board.apply(event)
        if kind == "output":
            for line in output_lines(event):
                self._print(visible_text(line))
        elif kind == "log":
            if event["level"] != "debug" or self._show_debug:
                self._print(self._log_text(event))
        elif kind == "run.started":
            self._start_live()
        elif kind == "stage.started" and not self._live_started:
            self._start_live()
        elif kind == "stage.finished" and row is not None:
            self._print(self._stage_text(row))
        elif kind in ("spinner.finished", "task.finished") and row is not None and row.status == "error":
            self._print(Text(f"  ✖ {without_trailing_dots(row.description)} failed after "
                             f"{format_seconds(row.duration_s or 0)}: {row.error}", style="red"))
        elif kind == "run.finished":
            self._finish()

    def close(self) -> None:
        self._finish()

    # Each print above a live display makes Rich redraw the display, so while it is up,
    # lines are queued and printed in one batch per PRINT_INTERVAL_S (in order).
    PRINT_INTERVAL_S = 0.05

    def _print(self, text: Text) -> None:
        if self._live_started:
            with self._queue_lock:
                self._queue.append(text)
        else:
            self._console.print(text, soft_wrap=True)

    def _flush_queue(self) -> None:
        with self._queue_lock:
            batch, self._queue = self._queue, []
        if batch:
            self._console.print(*batch, sep="\n", soft_wrap=True)

    def _print_loop(self) -> None:
        while not self._printer_stop.wait(self.PRINT_INTERVAL_S):
            self._flush_queue()

    def _start_live(self) -> None:
        if self._live is not None and not self._live_started:
            self._live_started = True
            self._echo_off()
            self._live.start()
            self._printer_stop.clear()
            self._printer = threading.Thread(target=self._print_loop, name="rich-printer", daemon=True)
            self._printer.start()

    def _finish(self) -> None:
        if self._live is not None and self._live_started:
            self._printer_stop.set()
            self._printer.join()
            self._flush_queue()
            self._live_started = False
            self._live.stop()  # transient: the display is erased and the cursor shown again
            self._echo_restore()
        if not self._summarised and self._board.stages:
            self._summarised = True
            self._console.print(self.summary())

    def _echo_off(self) -> None:
        """While the display is live the terminal must not echo keys: an echoed Enter, or the
        '^C' of Ctrl-C at the end of a full-width row, moves the cursor down a row; Rich then
        redraws one row too low and a frozen copy of the display stays on screen. Only in the
        foreground: tcsetattr from a background process group stops it with SIGTTOU."""
        try:
            import termios

            fd = self._console.file.fileno()
            if not os.isatty(fd) or os.tcgetpgrp(fd) != os.getpgrp():
                return
            saved = termios.tcgetattr(fd)
            quiet = termios.tcgetattr(fd)
            quiet[3] &= ~(termios.ECHO | termios.ECHOCTL)
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

    def frame(self, now_ns: int):
        """The live display as of now_ns."""
        with self._lock:
            stage = self._board.current_stage
            rows = list(self._board.open_rows.values())
            samples = list(self._board.samples.items()) if stage is not None else []
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
        for row in rows:
            bar = [self._row_bar(row)] if bar_width else []
            grid.add_row(self._row_label(row), *bar, Text(clock(row.elapsed_s(now_ns)), style="yellow"))
        if not samples:
            return grid
        hosts = Table.grid(padding=(0, 2))
        hosts.add_column(no_wrap=True, style="bold")
        hosts.add_column(no_wrap=True, overflow="ellipsis", style="dim")
        for host, values in samples[:MAX_HOST_ROWS]:
            hosts.add_row(f"  {host}", describe_sample(values))
        if len(samples) > MAX_HOST_ROWS:
            hosts.add_row("", f"... and {len(samples) - MAX_HOST_ROWS} more hosts")
        return Group(grid, hosts)

    def _row_label(self, row: SpanRow):
        spinner = self._spinners.get(row.span_id)
        if spinner is None:
            spinner = self._spinners[row.span_id] = Spinner("dots", style="cyan")
        text = Text(row.description)
        if row.total is not None:
            text.append(f" {row.completed}/{row.total}", style="dim")
        return Text.assemble("  ", spinner.render(self._console.get_time()), " ", text)

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
            return Text(f"✖ {label} failed after {format_seconds(row.duration_s or 0)}: {row.error}", style="bold red")
        return Text.assemble(("✔ ", "green"), label, (f" done in {format_seconds(row.duration_s or 0)}", "dim"))

    def summary(self) -> Table:
        """Each stage with its duration and status, and the run's total."""
        table = Table(box=None, show_header=True, header_style="bold", padding=(0, 2, 0, 0))
        table.add_column("Stage")
        table.add_column("Status")
        table.add_column("Duration", justify="right")
        for stage in self._board.stages:
            status = _status_text(stage)
            table.add_row(f"{stage.stage_index}/{stage.stage_count} {stage.name}", status,
                          format_seconds(stage.elapsed_s(self._clock())))
        run = self._board.run
        if run is not None and run.status is not None:
            verdict = _status_text(run)
            table.add_row(Text(f"run {run.name}", "bold"), verdict, format_seconds(run.duration_s or 0))
        return table

