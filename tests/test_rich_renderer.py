"""The rich renderer's live region, on a Console that writes to a string: what reaches the
terminal is replayed on a small terminal model (Screen) that knows only the sequences the
renderer may send. Timing figures live in the benchmarks; nothing here asserts a speed."""

from __future__ import annotations

import io
import json
import re
import threading
import time
from pathlib import Path

import pytest
from rich.console import Console

from mlpstorage.emitter.events import iso_from_ns, ns_from_iso
from renderers.rich import SPINNER_FRAMES, SPINNER_STEPS_PER_SECOND, RichRenderer, output_lines, visible_block

from support.waiting import wait_for

T0 = 1_790_000_000_000_000_000  # a span start, in ns
WIDTH, HEIGHT = 100, 30


class Screen:
    """A terminal of WIDTH columns with unlimited rows: printable text (wrapping at the last
    column), CR, LF (as a tty with ONLCR: also CR), CSI n A, CSI J, SGR and cursor show/hide.
    Anything else is an error: it could move the cursor where the renderer does not expect."""

    SEQUENCE = re.compile(r"\x1b\[([0-9;:?]*)([A-Za-z])")

    def __init__(self, width: int = WIDTH):
        self.width = width
        self.rows: list[str] = [""]
        self.row = self.col = 0
        self.cursor_visible = True

    def feed(self, text: str) -> "Screen":
        i = 0
        while i < len(text):
            ch = text[i]
            if ch == "\x1b":
                m = self.SEQUENCE.match(text, i)
                assert m, f"unexpected escape sequence {text[i:i + 12]!r}"
                self._csi(m.group(1), m.group(2))
                i = m.end()
                continue
            if ch == "\r":
                self.col = 0
            elif ch == "\n":
                self.row += 1
                self.col = 0
                while len(self.rows) <= self.row:
                    self.rows.append("")
            else:
                assert ch == "\t" or ch.isprintable(), f"control character {ch!r} reached the terminal"
                if self.col >= self.width:  # pending wrap
                    self.row += 1
                    self.col = 0
                    while len(self.rows) <= self.row:
                        self.rows.append("")
                line = self.rows[self.row].ljust(self.col)
                self.rows[self.row] = line[: self.col] + ch + line[self.col + 1:]
                self.col += 1
            i += 1
        return self

    def _csi(self, params: str, final: str) -> None:
        if final == "m":
            return
        if final == "A":
            self.row = max(0, self.row - int(params or 1))
        elif final == "J" and params in ("", "0"):
            self.rows[self.row] = self.rows[self.row][: self.col]
            del self.rows[self.row + 1:]
        elif params == "?25" and final in "lh":
            self.cursor_visible = final == "h"
        else:
            raise AssertionError(f"unexpected sequence ESC [{params}{final}")

    def lines(self) -> list[str]:
        rows = [r.rstrip() for r in self.rows]
        while rows and not rows[-1]:
            rows.pop()
        return rows


class FakeClock:
    def __init__(self, ns: int):
        self.ns = ns

    def __call__(self) -> int:
        return self.ns


def make(clock_ns=None, height: int = HEIGHT, stream=None, **kwargs) -> tuple[RichRenderer, io.StringIO]:
    stream = stream if stream is not None else io.StringIO()
    console = Console(file=stream, width=WIDTH, height=height, force_terminal=True, color_system="256",
                      highlight=False, get_time=lambda: 0.0)
    return RichRenderer(console, clock_ns=clock_ns or FakeClock(T0 + 1_000_000), **kwargs), stream


def span(kind: str, what: str, span_id: str, name: str, start_ns: int = T0, **fields) -> dict:
    return {"schema": 1, "type": f"{kind}.{what}", "timestamp": "2026-11-27T10:10:02.000000Z", "level": "info",
            "span_id": span_id, "name": name, "start_unix_nano": start_ns, **fields}


def open_stage(renderer: RichRenderer, spinner: bool = True) -> None:
    renderer.handle(span("run", "started", "run", "test run"))
    renderer.handle(span("stage", "started", "st3", "Running benchmark", stage_index=3, stage_count=4))
    if spinner:
        renderer.handle(span("spinner", "started", "sp", "Waiting for DLIO...", description="Waiting for DLIO..."))


def finish(renderer: RichRenderer) -> None:
    done = {"status": "ok", "duration_s": 2.0}
    renderer.handle(span("spinner", "finished", "sp", "Waiting for DLIO...", **done))
    renderer.handle(span("stage", "finished", "st3", "Running benchmark", stage_index=3, stage_count=4, **done))
    renderer.handle(span("run", "finished", "run", "test run", **done))
    renderer.close()


def output(lines: list[str]) -> dict:
    return {"schema": 2, "type": "output", "stream": "stdout", "source": "dlio", "lines": lines}


def screen_of(stream: io.StringIO) -> list[str]:
    return Screen().feed(stream.getvalue()).lines()


STAGE_ROW = re.compile(r"^Stage 3/4  Running benchmark\s+.*\s(\d+:\d\d:\d\d)$")
SPINNER_ROW = re.compile(rf"^  [{SPINNER_FRAMES}] Waiting for DLIO\.\.\.\s+(\d+:\d\d:\d\d)$")


# ----- the schema ----------------------------------------------------------------------------
def test_output_lines_reads_both_schemas():
    assert output_lines({"type": "output", "line": "one"}) == ["one"]
    assert output_lines({"type": "output", "lines": ["one", "two"]}) == ["one", "two"]
    assert output_lines({"type": "output", "lines": []}) == []


# ----- what a child may send to the terminal -------------------------------------------------
@pytest.mark.parametrize("line, shown", [
    ("plain text", "plain text"),
    ("tab\tkept", "tab\tkept"),
    ("10%\r55%\r100%", "100%"),
    ("[INFO] \r[INFO] Generating NPZ Data: [====>---] 50%", "[INFO] Generating NPZ Data: [====>---] 50%"),
    ("left on screen\r", "left on screen"),  # CRLF endings: what precedes the \r stays
    ("\x1b[31mred\x1b[0m and \x1b[1;38;5;208mbold orange\x1b[m", "\x1b[31mred\x1b[0m and \x1b[1;38;5;208mbold orange\x1b[m"),
    ("\x1b[2J\x1b[Hcleared", "cleared"),
    ("\x1b[5Aup \x1b[3Bdown \x1b[10;20Hmoved \x1b[Kerased", "up down moved erased"),
    ("\x1b[?1049halt screen\x1b[?25l", "alt screen"),
    ("\x1b]0;a title\x07text", "text"),
    ("\x1b]8;;https://example.org\x1b\\link\x1b]8;;\x1b\\", "link"),
    ("save\x1b7 restore\x1b8 index\x1bM reset\x1bc charset\x1b(0", "save restore index reset charset"),
    ("bell\x07 back\x08space \x0eshifted\x0f \x0bvt\x0cff\x7f", "bell backspace shifted vtff"),
    ("c1 \x9b2J csi", "c1 2J csi"),
    ("trailing escape \x1b", "trailing escape "),
    ("unterminated title \x1b]0;abc", "unterminated title "),
    ("ünïcödé ━━╸ stays", "ünïcödé ━━╸ stays"),
])
def test_visible_block_keeps_text_and_colours_and_drops_other_sequences(line, shown):
    assert visible_block([line]) == shown


def test_visible_block_drops_colours_when_colour_is_off():
    assert visible_block(["\x1b[31mred\x1b[0m \x1b[2Jtext"], colour=False) == "red text"


def test_visible_block_cleans_each_line_of_a_batch_on_its_own():
    lines = ["clean", "a\rb", "\x1b[1mbold\x1b[0m\x1b[2K", "\x1b]0;t", "after"]
    assert visible_block(lines).split("\n") == ["clean", "b", "\x1b[1mbold\x1b[0m", "", "after"]
    clean = [f"line {i}" for i in range(1000)]
    assert visible_block(clean) == "\n".join(clean)


# ----- the live region -----------------------------------------------------------------------
def test_batched_output_is_printed_in_order_above_the_frame():
    renderer, stream = make()
    open_stage(renderer)
    expected = []
    for batch in range(5):
        lines = [f"out {batch * 100 + i}" for i in range(100)]
        expected += lines
        renderer.handle(output(lines))
        renderer.handle({"schema": 1, "type": "output", "stream": "stderr", "line": f"single {batch}"})
        expected.append(f"single {batch}")
    rows = wait_for(lambda: (r := screen_of(stream)) and "single 4" in r and r, "the last line")
    assert rows[: len(expected)] == expected
    assert len(rows) == len(expected) + 2, rows[len(expected):]
    assert STAGE_ROW.match(rows[-2]) and SPINNER_ROW.match(rows[-1]), rows[-2:]
    finish(renderer)
    rows = screen_of(stream)
    assert rows[: len(expected)] == expected
    assert not any(STAGE_ROW.match(r) or SPINNER_ROW.match(r) for r in rows), "frame rows left behind"
    assert re.fullmatch(r"Stage\s+Status\s+Duration", rows[len(expected) + 1]), rows[len(expected):]


def test_messages_and_output_keep_their_order():
    renderer, stream = make()
    open_stage(renderer, spinner=False)
    renderer.handle(output(["first"]))
    renderer.handle({"schema": 1, "type": "log", "level": "warning", "message": "in between",
                     "timestamp": "2026-11-27T10:10:02.000000Z"})
    renderer.handle(output(["second", "third"]))
    rows = wait_for(lambda: (r := screen_of(stream)) and "third" in r and r, "'third'")
    assert rows[0] == "first" and rows[1].endswith("WARNING in between") and rows[2:4] == ["second", "third"]
    assert STAGE_ROW.match(rows[4]) and len(rows) == 5, rows
    finish(renderer)


def test_hostile_output_cannot_move_the_cursor_or_clear_the_screen():
    renderer, stream = make()
    open_stage(renderer)
    hostile = ["\x1b[2J\x1b[Hwiped?", "\x1b[3Aup?", "\x1b]0;pwned\x07titled?", "\x1b[?1049halt?", "50%\r100%",
               "\x1b[32mgreen\x1b[0m", "\x1b[1;24r\x1b[Sscrolled?"]
    renderer.handle(output(["before"] + hostile + ["after"]))
    rows = wait_for(lambda: (r := screen_of(stream)) and "after" in r and r, "'after'")  # Screen rejects the rest
    assert rows[:9] == ["before", "wiped?", "up?", "titled?", "alt?", "100%", "green", "scrolled?", "after"]
    assert "pwned" not in stream.getvalue()
    assert "\x1b[32mgreen\x1b[0m" in stream.getvalue()
    finish(renderer)


def test_cursor_hidden_while_live_and_shown_after():
    renderer, stream = make()
    open_stage(renderer)
    wait_for(lambda: any(STAGE_ROW.match(r) for r in screen_of(stream)), "the frame")
    assert not Screen().feed(stream.getvalue()).cursor_visible
    finish(renderer)
    assert Screen().feed(stream.getvalue()).cursor_visible


def test_frame_taller_than_the_terminal_is_clipped():
    renderer, stream = make(height=6)
    open_stage(renderer)
    for n in range(8):
        renderer.handle(span("task", "started", f"rank{n}", f"dlio rank {n}"))
    rows = wait_for(lambda: (r := screen_of(stream)) and any("rank 2" in x for x in r) and r, "task rows")
    # a frame of 10 rows (stage, spinner, 8 tasks), clipped to the terminal's height minus one
    assert len(rows) == 5 and not any("rank 3" in r for r in rows), rows
    assert STAGE_ROW.match(rows[0]) and SPINNER_ROW.match(rows[1])
    renderer.handle(output(["a line"]))
    rows = wait_for(lambda: (r := screen_of(stream)) and "a line" in r and r, "'a line'")
    assert rows[0] == "a line" and len(rows) == 6 and STAGE_ROW.match(rows[1]), rows
    finish(renderer)
    assert not any("rank" in r for r in screen_of(stream)), "clipped frame rows left behind"


class PrinterWaits(threading.Condition):
    """The renderer's condition with its printer's timed waits in the test's hands: such a wait
    ends when the condition is notified (an event, close) or the test calls tick(), never by
    itself, so what the printer does between two points of a test does not depend on how busy
    the machine is. Every wait of the printer is recorded with its timeout (None: untimed)."""

    def __init__(self):
        super().__init__()
        self.waits: list[float | None] = []
        self.printer_waiting = False

    def wait(self, timeout=None):
        if threading.current_thread().name != "rich-printer":
            return super().wait(timeout)
        self.waits.append(timeout)
        self.printer_waiting = True
        self.notify_all()  # a test in until_waiting()
        try:
            return super().wait()
        finally:
            self.printer_waiting = False

    def until_waiting(self) -> None:  # under the condition
        if not super().wait_for(lambda: self.printer_waiting, timeout=10):
            pytest.fail("the printer never waited")

    def tick(self) -> None:
        """Ends the printer's wait as its timeout would; returns when it waits again."""
        with self:
            self.until_waiting()
            waits = len(self.waits)
            self.notify_all()
            if not super().wait_for(lambda: len(self.waits) > waits and self.printer_waiting, timeout=10):
                pytest.fail("the printer did not wait again")


def with_printer_waits(renderer: RichRenderer) -> PrinterWaits:
    """Installs PrinterWaits as the renderer's condition (before its printer starts)."""
    renderer._cond = waits = PrinterWaits()
    return waits


def settle(renderer: RichRenderer, stream: io.StringIO, waits: PrinterWaits) -> tuple[int, int, int]:
    """Lets the printer draw what the events asked for until it waits with nothing left to draw;
    returns (bytes written, wake-ups, frames rendered)."""
    for _ in range(100):
        with waits:
            waits.until_waiting()
            state = renderer._frame_state()
            if not renderer._queue and (state.key, state.step) == (renderer._frame_key, renderer._frame_step):
                return len(stream.getvalue()), renderer.printer_wakeups, renderer.frames_rendered
            # something to draw: it waits out the least time between two writes, on the real clock
            gap = renderer.BATCH_S if renderer._queue else renderer.FRAME_INTERVAL_S
            left = renderer._last_write + gap - time.monotonic()
        time.sleep(max(0.0, left))
        waits.tick()
    pytest.fail("the printer never had everything drawn")


def test_idle_stage_neither_wakes_nor_redraws_before_its_clock_moves():
    """A clock frozen 1 ms into the stage: the printer's next wake-up is the stage clock's next
    second (0.999 s after its last redraw), so until then nothing runs and nothing is written;
    woken early (a spurious wake-up) it draws nothing; the clock's next second is drawn."""
    clock = FakeClock(T0 + 1_000_000)
    renderer, stream = make(clock_ns=clock)
    waits = with_printer_waits(renderer)
    open_stage(renderer, spinner=False)
    written, wakeups, frames = settle(renderer, stream, waits)
    assert waits.waits[-1] == pytest.approx(0.999)
    waits.tick()
    assert (len(stream.getvalue()), renderer.printer_wakeups, renderer.frames_rendered) == (written, wakeups + 1, frames)
    assert waits.waits[-1] == pytest.approx(0.999)
    clock.ns = T0 + 1_000_000_000
    waits.tick()
    assert settle(renderer, stream, waits)[2] == frames + 1
    assert STAGE_ROW.match(screen_of(stream)[0]).group(1) == "0:00:01"
    finish(renderer)


def test_idle_spinner_is_not_redrawn_while_nothing_changes():
    renderer, stream = make(clock_ns=FakeClock(T0 + 1_000_000))
    waits = with_printer_waits(renderer)
    open_stage(renderer)
    written, wakeups, frames = settle(renderer, stream, waits)
    for _ in range(6):  # the printer wakes for the spinner's steps, but the clock stands still
        assert waits.waits[-1] == pytest.approx(1 / SPINNER_STEPS_PER_SECOND - 0.001)
        waits.tick()
    assert len(stream.getvalue()) == written, "the display was redrawn though nothing changed"
    assert (renderer.printer_wakeups, renderer.frames_rendered) == (wakeups + 6, frames)
    finish(renderer)


def test_display_without_a_clock_sleeps_until_an_event():
    renderer, stream = make()
    waits = with_printer_waits(renderer)
    renderer.handle(span("run", "started", "run", "test run"))  # live, nothing to show yet
    before = settle(renderer, stream, waits)
    assert waits.waits[-1] is None  # no timeout: only an event wakes it
    assert (len(stream.getvalue()), renderer.printer_wakeups, renderer.frames_rendered) == before
    renderer.handle(output(["hello"]))
    settle(renderer, stream, waits)
    assert screen_of(stream) == ["hello"]
    renderer.handle(span("run", "finished", "run", "test run", status="ok", duration_s=1.0))
    renderer.close()


def test_clocks_tick_together_on_the_stage_seconds():
    clock = FakeClock(T0 + 2_500_000_000)
    renderer, _ = make(clock_ns=clock, refresh_per_second=4)
    renderer.handle(span("run", "started", "run", "test run"))
    renderer.handle(span("stage", "started", "st3", "Running benchmark", stage_index=3, stage_count=4))
    renderer.handle(span("spinner", "started", "sp", "w", start_ns=T0 + 300_000_000))
    state = renderer._frame_state()
    assert state.shown_ns == T0 + 2_000_000_000
    assert state.key[2] == (2, 1)  # stage 2 s, spinner 1.7 s as of the stage's last whole second
    assert state.step == 10 % len(SPINNER_FRAMES) and state.wait_s == pytest.approx(0.25)
    clock.ns = T0 + 2_900_000_000
    assert renderer._frame_state().wait_s == pytest.approx(0.1)  # the next second, also a spinner step
    finish(renderer)


def test_spinner_steps_swap_the_glyph_without_rendering_again():
    clock = FakeClock(T0 + 100_000_000)
    renderer, stream = make(clock_ns=clock, refresh_per_second=4)
    waits = with_printer_waits(renderer)
    open_stage(renderer)
    _, _, frames = settle(renderer, stream, waits)
    clock.ns = T0 + 600_000_000  # two steps on, same second
    renderer.handle({"schema": 1, "type": "output", "line": "nudge"})
    settle(renderer, stream, waits)
    rows = screen_of(stream)
    assert rows[-1].startswith(f"  {SPINNER_FRAMES[2]} Waiting"), rows[-1]
    assert renderer.frames_rendered == frames
    finish(renderer)


def test_a_full_queue_makes_handle_wait_for_the_terminal():
    release = threading.Event()

    class SlowTerminal(io.StringIO):
        def write(self, text):
            if "line" in text:
                release.wait(10)
            return super().write(text)

    renderer, stream = make(stream=SlowTerminal())
    renderer.MAX_QUEUED_LINES = renderer.FLUSH_LINES = 10
    open_stage(renderer)
    producer = threading.Thread(target=lambda: [renderer.handle(output([f"line {i}-{j}" for j in range(10)]))
                                                for i in range(5)])
    producer.start()
    producer.join(0.5)
    assert producer.is_alive(), "handle() queued past MAX_QUEUED_LINES while the terminal was stuck"
    release.set()
    producer.join(10)
    assert not producer.is_alive()
    finish(renderer)
    rows = screen_of(stream)
    assert [r for r in rows if r.startswith("line")] == [f"line {i}-{j}" for i in range(5) for j in range(10)]


def test_a_terminal_that_fails_does_not_hang_the_run():
    class BrokenTerminal(io.StringIO):
        broken = False

        def write(self, text):
            if self.broken:
                raise OSError(5, "Input/output error")
            return super().write(text)

    stream = BrokenTerminal()
    renderer, _ = make(stream=stream)
    open_stage(renderer)
    wait_for(lambda: renderer.frames_rendered, "the first frame")
    stream.broken = True
    renderer.handle(output(["lost"]))
    wait_for(lambda: not renderer._live_on, "the printer to give up")
    with pytest.raises(OSError):  # lines now go straight to the terminal, as with the plain renderer
        renderer.handle(output(["direct"]))
    stream.broken = False
    finish(renderer)
    assert "Stage" in stream.getvalue().rsplit("\x1b[?25h", 1)[-1]  # summary after the cursor came back


def test_names_are_never_parsed_as_rich_markup():
    """A stage name from a recording is text: '[/oops]' neither breaks the summary nor does
    '[link=...]' make Rich write a hyperlink."""
    out = io.StringIO()
    renderer = RichRenderer(Console(file=out, width=100, color_system=None), live=False)
    name = "[/oops] [link=http://x]y[/link]"
    common = {"schema": 2, "timestamp": "2026-11-27T10:56:18.000000Z", "level": "info", "span_id": "s",
              "name": name, "stage_index": 1, "stage_count": 1, "start_unix_nano": 0}
    renderer.handle({**common, "type": "stage.started"})
    renderer.handle({**common, "type": "stage.finished", "status": "ok", "duration_s": 1.0})
    renderer.close()
    assert f"1/1 {name}" in out.getvalue()
    assert "\x1b]8;" not in out.getvalue()


# ----- many hosts ----------------------------------------------------------------------------
MANY_HOSTS = Path(__file__).parent / "golden" / "many_hosts.events.jsonl"  # 64 hosts, see its record script


def frame_rows(renderer: RichRenderer, now_ns: int, height: int = HEIGHT) -> list[str]:
    console = Console(file=io.StringIO(), width=WIDTH, height=height, color_system=None, get_time=lambda: 0.0)
    renderer._console = console  # the frame fits the terminal the renderer draws on
    console.print(renderer.frame(now_ns))
    return [row.rstrip() for row in console.file.getvalue().splitlines()]


def sample(host: str, at_s: float, **rates) -> dict:
    values = {"read_Bps": 0.0, "write_Bps": 0.0, "rx_Bps": 0.0, "tx_Bps": 0.0, "load1": 1.0, **rates}
    return {"schema": 2, "type": "sample", "timestamp": iso_from_ns(T0 + int(at_s * 1e9)), "level": "info",
            "host": host, "values": values}


def run_on(hosts: list[str]) -> RichRenderer:
    renderer = RichRenderer(Console(file=io.StringIO(), width=WIDTH, color_system=None), live=False)
    renderer.handle(span("run", "started", "run", "test run", attributes={"mlpstorage.hosts": hosts}))
    renderer.handle(span("stage", "started", "st3", "Running benchmark", stage_index=3, stage_count=4))
    return renderer


def test_few_hosts_get_a_row_each_under_their_sums():
    """Up to FEW_HOSTS hosts: the sums, then every host. One that stops sending samples keeps
    its last values for 2.5 intervals, then is silent and no longer in the sums."""
    renderer = run_on(["a:4", "b:4", "c"])
    frames = {}
    for second in (0, 10, 20, 30, 40):
        for host in ("a", "b", "c") if second <= 10 else ("a", "b"):
            renderer.handle(sample(host, second, read_Bps=100e6 * second / 10))
        frames[second] = frame_rows(renderer, T0 + second * 10**9)[1:]
    assert frames[30] == [
        "  all hosts  3/3 reporting, read 700.0 MB/s, write 0.0 MB/s, net 0.0/0.0 MB/s in/out",
        "  a          read 300.0 MB/s, write 0.0 MB/s, net 0.0/0.0 MB/s in/out, load 1.00",
        "  b          read 300.0 MB/s, write 0.0 MB/s, net 0.0/0.0 MB/s in/out, load 1.00",
        "  c          read 100.0 MB/s, write 0.0 MB/s, net 0.0/0.0 MB/s in/out, load 1.00",
    ]
    assert frames[40] == [
        "  all hosts  2/3 reporting, read 800.0 MB/s, write 0.0 MB/s, net 0.0/0.0 MB/s in/out",
        "  a          read 400.0 MB/s, write 0.0 MB/s, net 0.0/0.0 MB/s in/out, load 1.00",
        "  b          read 400.0 MB/s, write 0.0 MB/s, net 0.0/0.0 MB/s in/out, load 1.00",
        "  c          silent: no sample for 30.0s",
    ]


def test_a_host_alone_is_one_row():
    renderer = run_on(["localhost"])
    renderer.handle(sample("localhost", 0, read_Bps=12.3e6))
    assert frame_rows(renderer, T0)[1:] == [
        "  localhost  read 12.3 MB/s, write 0.0 MB/s, net 0.0/0.0 MB/s in/out, load 1.00"]


def test_a_host_that_never_reports_counts_and_turns_silent():
    renderer = run_on(["a", "b", "c"])
    renderer.handle(sample("a", 0))
    renderer.handle(sample("b", 0))
    assert frame_rows(renderer, T0)[1].startswith("  all hosts  2/3 reporting, read 0.0 MB/s")
    assert frame_rows(renderer, T0)[-1] == "  c          no sample yet"
    for second in (10, 20, 30):
        renderer.handle(sample("a", second))
        renderer.handle(sample("b", second))
    assert frame_rows(renderer, T0)[-1] == "  c          silent: no sample for 30.0s"


def test_a_host_whose_clock_is_ahead_makes_no_other_silent():
    """Silence is measured on the samples' own clock, as each sample arrives: a host 60 s ahead
    moves that clock, but the others, arriving with it, are not behind it."""
    renderer = run_on(["a", "b"])
    for second in (0, 10, 20, 30):
        renderer.handle(sample("a", second, read_Bps=1e6))
        renderer.handle(sample("b", second + 60, read_Bps=1e6))
    rows = frame_rows(renderer, T0)
    assert rows[1].startswith("  all hosts  2/2 reporting, read 2.0 MB/s") and "silent" not in "".join(rows), rows


def test_many_hosts_show_their_sums_and_the_hosts_that_stand_out_within_the_terminal():
    """64 hosts (the golden recording, as its last round of samples came): the sums, the slowest
    by read, the silent host; in a shorter terminal fewer of them, the silent one first, and the
    frame never taller than the terminal less a row."""
    events = [json.loads(line) for line in MANY_HOSTS.read_text().splitlines()]
    last = max(i for i, e in enumerate(events) if e["type"] == "sample")
    renderer = RichRenderer(Console(file=io.StringIO(), width=WIDTH, color_system=None), live=False)
    for event in events[: last + 1]:
        renderer.handle(event)
    now = ns_from_iso(events[last]["timestamp"])
    names = {height: [row.split()[0] for row in frame_rows(renderer, now, height)[2:]] for height in (25, 7, 6, 5, 4)}
    assert names[25] == ["all", "node17", "node01", "node46", "node42"]
    assert names[7] == ["all", "node17", "node01", "node42"]
    assert names[6] == ["all", "node17", "node42"]
    assert names[5] == ["all", "node17"]
    assert names[4] == ["all"]
    for height in (25, 7, 6, 5, 4):
        assert len(frame_rows(renderer, now, height)) <= height - 1
    rows = frame_rows(renderer, now)
    assert rows[2].startswith("  all hosts  63/64 reporting, read 12123.5 MB/s")
    assert rows[3].startswith("  node17     slowest read: read 43.2 MB/s")
    assert rows[-1] == "  node42     silent: no sample for 40.0s"


def test_many_silent_hosts_end_in_a_count():
    hosts = [f"n{i}" for i in range(20)]
    renderer = run_on(hosts)
    for second in (0, 10, 20, 30):
        for i, host in enumerate(hosts):
            if second == 0 or i >= 12:  # 12 of them stop after their first sample
                renderer.handle(sample(host, second, read_Bps=(i + 1) * 1e6))
    rows = frame_rows(renderer, T0, height=10)[1:]
    # 8 rows left under the stage: the sums, the slowest (one row kept), five silent, a count
    assert [row.split()[0] for row in rows] == ["all", "n12", "n0", "n1", "n2", "n3", "n4", "7"]
    assert rows[-1] == "  7 more     silent"
    # a row under the sums: the slowest keeps it; the count of reporting hosts tells the rest
    assert [row.split()[0] for row in frame_rows(renderer, T0, height=4)[1:]] == ["all", "n12"]
    assert frame_rows(renderer, T0, height=5)[-1] == "  12 hosts   silent"


def test_a_write_heavy_run_ranks_the_slowest_by_write():
    hosts = [f"n{i}" for i in range(10)]
    renderer = run_on(hosts)
    for second in (0, 10):
        for i, host in enumerate(hosts):
            renderer.handle(sample(host, second, read_Bps=1e6, write_Bps=(100 - i) * 1e6))
    assert frame_rows(renderer, T0)[2].startswith("  n9         slowest write: read 1.0 MB/s, write 91.0 MB/s")


def test_host_names_are_text_in_the_host_rows():
    hosts = ["[b]x[/b]", "[/oops]", *[f"n{i}" for i in range(9)]]
    for shown in (hosts[:2], hosts):  # a row per host; the slowest of many
        renderer = run_on(shown)
        for second in (0, 10):
            for i, host in enumerate(shown):
                renderer.handle(sample(host, second, read_Bps=(i + 1) * 1e6))
        rows = frame_rows(renderer, T0)
        assert [row.split()[0] for row in rows[2:4]] == ["[b]x[/b]", "[/oops]"], rows


def test_the_live_display_of_many_hosts_fits_the_terminal():
    clock = FakeClock(T0 + 1_000_000)
    renderer, stream = make(height=8, clock_ns=clock)
    open_stage(renderer)
    for second in (0, 10):
        for i in range(40):
            renderer.handle(sample(f"node{i:02d}", second, read_Bps=(100 + i) * 1e6))
    clock.ns = T0 + 1_000_000_000  # samples are drawn at the clock's next second
    rows = wait_for(lambda: (r := screen_of(stream)) and any("slowest" in x for x in r) and r, "the slowest hosts")
    # stage, spinner, the sums, the three slowest: within the 7 rows a frame may take here
    assert STAGE_ROW.match(rows[0]) and SPINNER_ROW.match(rows[1]), rows
    assert rows[2].startswith("  all hosts  40/40 reporting, read 4780.0 MB/s"), rows
    assert [row.split()[0] for row in rows[3:]] == ["node00", "node01", "node02"], rows
    finish(renderer)
    assert not any("node" in r for r in screen_of(stream))


def test_a_thousand_hosts_samples_are_drawn_at_the_clocks_next_second():
    """Samples do not redraw the display each: the host rows follow at the clock's next second,
    one frame for the whole interval's samples, with the sums and the slowest hosts."""
    clock = FakeClock(T0 + 1_000_000)
    renderer, stream = make(clock_ns=clock, height=12)
    waits = with_printer_waits(renderer)
    hosts = [f"node{i:04d}" for i in range(1, 1025)]
    renderer.handle(span("run", "started", "run", "test run", attributes={"mlpstorage.hosts": hosts}))
    renderer.handle(span("stage", "started", "st3", "Running benchmark", stage_index=3, stage_count=4))
    written, _, frames = settle(renderer, stream, waits)
    for second in (0, 10):
        for i, host in enumerate(hosts):
            renderer.handle(sample(host, second + i / 1000, read_Bps=(1000 + i) * 1e6))
    assert settle(renderer, stream, waits)[0::2] == (written, frames), "a sample redrew the display"
    clock.ns = T0 + 1_000_000_000
    assert settle(renderer, stream, waits)[2] == frames + 1
    rows = screen_of(stream)
    assert STAGE_ROW.match(rows[0]).group(1) == "0:00:01", rows
    assert rows[1].startswith("  all hosts  1024/1024 reporting, read 1547776.0 MB/s"), rows
    assert [row.split()[0] for row in rows[2:5]] == ["node0001", "node0002", "node0003"], rows
    assert all("slowest read" in row for row in rows[2:5]), rows
    renderer.handle(span("stage", "finished", "st3", "Running benchmark", stage_index=3, stage_count=4,
                         status="ok", duration_s=2.0))
    renderer.handle(span("run", "finished", "run", "test run", status="ok", duration_s=2.0))
    renderer.close()
