"""Real-terminal tests: the CLI runs inside tmux (a real pty) and the screen is read the way a
person at the terminal would read it.

Each test starts its own tmux server on a private socket (`tmux -S <unique>`, no config file)
with a cleaned environment, runs a small shell script in a 120x40 pane, polls
`tmux capture-pane -p` with timeouts (never fixed long sleeps) and checks what is on screen:
where the live display sits, that passed-through output scrolls above it (also a flood of
batched output with escape sequences that must not reach the terminal), that no spinner frame
glues onto text, the summary at the end, that the cursor is shown again, Ctrl-C, and plain
output under NO_COLOR/TTY_INTERACTIVE=0.

Every screen a test captures is also written to <tmp_path>/screens.txt, and every failed
assertion carries the screen it was about.
"""

from __future__ import annotations

import os
import random
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from renderers.plain import LINE_PATTERN

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed"),
]

ROOT = Path(__file__).resolve().parents[1]
WIDTH, HEIGHT = 120, 40
SPINNER_FRAMES = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
STAGES = ("Validating environment", "Collecting cluster info", "Running benchmark", "Processing results")

# Variables that change how the CLI or Rich treat the terminal; none may leak in from the
# environment pytest runs in (a CI runner, a developer's shell, an outer tmux).
_SCRUBBED = (
    "NO_COLOR", "FORCE_COLOR", "TTY_INTERACTIVE", "TTY_COMPATIBLE", "CI", "GITHUB_ACTIONS",
    "MLPSTORAGE_RENDER", "COLUMNS", "LINES", "JUPYTER_COLUMNS", "JUPYTER_LINES", "COLORTERM",
    "TMUX", "TMUX_PANE", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_SDK_DISABLED", "TERM",
)

# The live display's stage row: "Stage 3/4  Running benchmark   ━━━━╺━━━   0:00:02"
LIVE_STAGE_ROW = re.compile(r"^Stage (\d+)/(\d+)  (\S.*?)\s{2,}.*?(\d+:\d\d:\d\d)$")
SPINNER_ROW = re.compile(rf"^  ([{SPINNER_FRAMES}]) (\S.*?)\s{{2,}}(\d+:\d\d:\d\d)$")


def _cli() -> list[str]:
    """The installed `mlpstorage` entry point next to this interpreter, else `python -m`."""
    script = Path(sys.executable).with_name("mlpstorage")
    return [str(script)] if script.exists() else [sys.executable, "-m", "mlpstorage"]


def _seconds(clock: str) -> int:
    h, m, s = (int(x) for x in clock.split(":"))
    return h * 3600 + m * 60 + s


def _show(rows: list[str]) -> str:
    """A screen for a failure message, with row numbers and its blank tail cut off."""
    last = max((i for i, r in enumerate(rows) if r.strip()), default=-1)
    return "\n".join(f"{i:2d}|{r}" for i, r in enumerate(rows[: last + 1])) or "(blank screen)"


def _nonblank(rows: list[str]) -> list[tuple[int, str]]:
    return [(i, r) for i, r in enumerate(rows) if r.strip()]


class Pane:
    """One tmux server (private socket) with one session running one script."""

    def __init__(self, workdir: Path, log: Path):
        self.name = f"mlps-test-{os.getpid()}-{uuid.uuid4().hex[:10]}"
        # A socket of our own, at a short path (sun_path is ~108 bytes), removed at teardown:
        # tmux leaves its socket file behind when the server exits.
        self.socket = Path(tempfile.gettempdir()) / f"{self.name}.sock"
        self.session = "T"
        self.workdir = workdir
        self.log = log
        self.started = False

    def tmux(self, *args: str, check: bool = True) -> str:
        proc = subprocess.run(
            ["tmux", "-S", str(self.socket), "-f", "/dev/null", *args],
            capture_output=True, text=True, env=self._env(), timeout=10,
        )
        if check and proc.returncode != 0:
            raise RuntimeError(f"tmux {' '.join(args)}: {proc.stderr.strip()}")
        return proc.stdout

    @staticmethod
    def _env() -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED}
        env["TERM"] = "xterm-256color"  # the terminal tmux itself is started from
        return env

    def start(self, body: str, env: dict[str, str] | None = None) -> None:
        """Runs `body` (shell lines) in bash in a fresh WIDTHxHEIGHT session. bash, not dash:
        a non-interactive bash goes on after a child that handled Ctrl-C and exited 130, as
        an interactive shell would, so EXIT=$? is still printed."""
        exports = {"TERM": "xterm-256color", "PYTHONIOENCODING": "utf-8", "PYTHONPATH": str(ROOT), **(env or {})}
        lines = ["unset " + " ".join(v for v in _SCRUBBED if v != "TERM")]
        lines += [f"export {k}={shlex.quote(v)}" for k, v in exports.items()]
        lines += [f"cd {shlex.quote(str(self.workdir))}", body]
        script = self.workdir / f"{self.name}.sh"
        script.write_text("\n".join(lines) + "\n")
        self.tmux("new-session", "-d", "-s", self.session, "-x", str(WIDTH), "-y", str(HEIGHT),
                  f"bash {shlex.quote(str(script))}")
        self.started = True

    def capture(self, escapes: bool = False, join: bool = False, label: str = "") -> list[str]:
        args = ["capture-pane", "-p", "-t", self.session]
        if escapes:
            args.append("-e")
        if join:
            args.append("-J")
        rows = [r.rstrip() for r in self.tmux(*args).split("\n")]
        if rows and rows[-1] == "":
            rows = rows[:-1]
        with self.log.open("a") as f:
            f.write(f"===== {label or 'capture'} ({'escapes ' if escapes else ''}{'joined ' if join else ''}"
                    f"t={time.monotonic():.2f}) =====\n{_show(rows)}\n")
        return rows

    def cursor_visible(self) -> bool:
        return self.tmux("display", "-p", "-t", self.session, "#{cursor_flag}").strip() == "1"

    def send_keys(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", self.session, *keys)

    def wait_for(self, predicate, what: str, timeout: float = 20.0, **capture) -> list[str]:
        """Polls the screen until predicate(rows) is true; returns those rows."""
        deadline = time.monotonic() + timeout
        rows: list[str] = []
        while time.monotonic() < deadline:
            rows = self.capture(label=f"waiting for {what}", **capture)
            if predicate(rows):
                return rows
            time.sleep(0.05)
        pytest.fail(f"timed out after {timeout}s waiting for {what}; the screen:\n{_show(rows)}")

    def kill(self) -> None:
        if self.started:
            self.tmux("kill-server", check=False)
        self.socket.unlink(missing_ok=True)


@pytest.fixture
def pane(tmp_path):
    """A factory of panes; every tmux server it started is killed at teardown."""
    panes: list[Pane] = []

    def make() -> Pane:
        p = Pane(tmp_path, tmp_path / "screens.txt")
        panes.append(p)
        return p

    try:
        yield make
    finally:
        for p in panes:
            p.kill()


# Prints e.g. "TTY0=echo echoctl": the echo modes of the terminal before the command runs and
# (as TTY1=) after it; a renderer that changes terminal modes must put them back.
TTY_MODES = "$(stty -a | tr ' ;' '\\n\\n' | grep -E '^-?(echo(ctl)?|noflsh)$' | tr '\\n' ' ' | sed 's/ $//')"


def _around(command: str) -> str:
    """command, then its exit code and the terminal modes, then a pause to read the screen."""
    return f'echo "TTY0={TTY_MODES}"\n{command}\necho EXIT=$?\necho "TTY1={TTY_MODES}"\nsleep 30'


def _finished(rows: list[str]) -> bool:
    return any(r.startswith("EXIT=") for r in rows) and any(r.startswith("TTY1=") for r in rows)


def _assert_tty_modes_restored(rows: list[str]) -> None:
    screen = _show(rows)
    before = next((r for r in rows if r.startswith("TTY0=")), None)
    after = next((r for r in rows if r.startswith("TTY1=")), None)
    assert before and after, f"terminal modes not printed:\n{screen}"
    assert after[5:] == before[5:], f"terminal modes changed by the run: {before!r} -> {after!r}\n{screen}"


def _exec_line(tmp_path: Path, program: list[str], extra: list[str] = ()) -> str:
    argv = [*_cli(), "exec", "--results-dir", str(tmp_path / "results"), "--skip-timeseries", *extra, "--", *program]
    return shlex.join(argv)


def _counting_program(count: int, pause: float = 0.3) -> list[str]:
    script = (
        "import time\n"
        f"for i in range(1, {count + 1}):\n"
        "    print(f'line {i}', flush=True)\n"
        f"    time.sleep({pause})\n"
    )
    return [sys.executable, "-c", script]


def _has(rows: list[str], text: str) -> bool:
    return any(text in r for r in rows)


def _row_of(rows: list[str], text: str) -> int | None:
    return next((i for i, r in enumerate(rows) if r == text), None)


def _check_live_frame(rows: list[str], stage_index: int, stage_name: str, stage_count: int = 4) -> int:
    """The invariants of any frame of the live display; returns the stage row's index."""
    screen = _show(rows)
    stage_rows = [i for i, r in enumerate(rows) if f"Stage {stage_index}/{stage_count}" in r]
    assert len(stage_rows) == 1, f"'Stage {stage_index}/{stage_count}' should be on screen exactly once:\n{screen}"
    at = stage_rows[0]
    m = LIVE_STAGE_ROW.match(rows[at])
    assert m and m.group(3) == stage_name, f"row {at} is not the live stage row for {stage_name!r}:\n{screen}"
    assert re.search(r"\s0:00:0\d$", rows[at]), f"the stage row should end in an elapsed clock 0:00:0X:\n{screen}"
    # The display is the bottom of what is on screen: below it only its own spinner rows.
    below = [r for i, r in _nonblank(rows) if i > at]
    assert all(SPINNER_ROW.match(r) for r in below), f"text below the live display (stale or misplaced):\n{screen}"
    # No spinner frame glued onto text: braille frames appear only at a spinner row's start.
    for i, r in enumerate(rows):
        if any(ch in r for ch in SPINNER_FRAMES):
            assert SPINNER_ROW.match(r), f"row {i} has a spinner frame outside a spinner row:\n{screen}"
    return at


# ----- 1. a running exec: output above, one live stage row at the bottom ----------------------
def test_running_frame_shows_stage_clock_and_output_above(pane, tmp_path):
    p = pane()
    p.start(_around(_exec_line(tmp_path, _counting_program(13))))

    rows = p.wait_for(lambda rows: "line 3" in rows, "'line 3' on screen")
    screen = _show(rows)
    at = _check_live_frame(rows, 3, "Running benchmark")
    assert "Running benchmark" in rows[at]
    for n in (1, 2, 3):
        row = _row_of(rows, f"line {n}")
        assert row is not None, f"'line {n}' should be a row of its own:\n{screen}"
        assert row < at, f"'line {n}' (row {row}) should be above the stage row (row {at}):\n{screen}"
    # Nothing of the finished stages is drawn as a live row any more.
    for done in (1, 2):
        assert not any(LIVE_STAGE_ROW.match(r) and r.startswith(f"Stage {done}/4") for r in rows), screen
        assert any(r.startswith(f"✔ Stage {done}/4 {STAGES[done - 1]} done in ") for r in rows), screen
    # Colour: the stage label is drawn bold cyan on a 256-colour terminal.
    coloured = p.capture(escapes=True, label="running frame with escapes")
    stage_row = next(r for r in coloured if "Stage 3/4" in r)
    assert "\x1b[" in stage_row and "36m" in stage_row, f"the stage row should be coloured:\n{stage_row!r}"
    assert not p.cursor_visible(), f"the cursor is hidden while the display is live:\n{screen}"

    # Every later frame keeps the same shape: lines in order, each once, display at the bottom.
    seen_lines = 3
    while seen_lines < 10:
        rows = p.wait_for(lambda rows, n=seen_lines + 1: f"line {n}" in rows, f"'line {seen_lines + 1}'")
        at = _check_live_frame(rows, 3, "Running benchmark")
        printed = [r for r in rows if r.startswith("line ")]
        expected = [f"line {n}" for n in range(1, len(printed) + 1)]
        assert printed == expected, f"passed-through lines out of order or repeated:\n{_show(rows)}"
        assert max(i for i, r in enumerate(rows) if r.startswith("line ")) < at, _show(rows)
        seen_lines = len(printed)
    print("\n--- a running frame ---\n" + screen)


# ----- 2. a spinner row with its own clock, gone once it finishes ---------------------------
SPINNER_HELPER = '''\
import sys, time
from pathlib import Path

from mlpstorage.emitter import Emitter
from renderers import RenderOptions, create

gates = Path(sys.argv[1])


def wait_gate(name, timeout=30.0):
    """Blocks until the test creates gates/<name>: the test decides when the run moves on."""
    deadline = time.monotonic() + timeout
    while not (gates / name).exists():
        if time.monotonic() > deadline:
            raise SystemExit(f"gate {name} never opened")
        time.sleep(0.02)


emitter = Emitter([create("rich", RenderOptions(color=True))])
try:
    with emitter.run("spinner demo"):
        with emitter.stages(["Validating environment", "Collecting cluster info", "Running benchmark"]) as advance:
            advance()
            emitter.output("before spinner")
            wait_gate("open-spinner")
            with emitter.spinner("Collecting via SSH...", total=None):
                wait_gate("close-spinner")
            emitter.output("after spinner 1")
            emitter.output("after spinner 2")
            wait_gate("finish-stage")
            advance()
            emitter.output("in stage 3")
            advance()
finally:
    emitter.close()
'''


def _start_helper(pane, tmp_path: Path, name: str, source: str):
    """A pane running a helper script that waits at gates (files the test creates)."""
    gates = tmp_path / "gates"
    gates.mkdir()
    helper = tmp_path / name
    helper.write_text(source)
    p = pane()
    p.start(_around(f"{shlex.quote(sys.executable)} {shlex.quote(str(helper))} {shlex.quote(str(gates))}"))
    return p, gates


def test_spinner_row_has_its_own_clock_and_leaves_no_stale_row(pane, tmp_path):
    p, gates = _start_helper(pane, tmp_path, "spinner_helper.py", SPINNER_HELPER)

    # The stage runs for 2 s before the spinner opens, so the two clocks differ.
    def stage_at_two_seconds(rows):
        m = next((LIVE_STAGE_ROW.match(r) for r in rows if r.startswith("Stage 2/3")), None)
        return m is not None and _seconds(m.group(4)) >= 2

    p.wait_for(stage_at_two_seconds, "stage 2/3 open for 2 s")
    (gates / "open-spinner").touch()

    rows = p.wait_for(lambda rows: any(SPINNER_ROW.match(r) for r in rows), "the spinner row")
    screen = _show(rows)
    at = _check_live_frame(rows, 2, "Collecting cluster info", stage_count=3)
    spin = [(i, SPINNER_ROW.match(r)) for i, r in enumerate(rows) if SPINNER_ROW.match(r)]
    assert len(spin) == 1, f"one spinner row expected:\n{screen}"
    spin_at, m = spin[0]
    assert spin_at == at + 1, f"the spinner row should be right below the stage row:\n{screen}"
    assert m.group(2) == "Collecting via SSH...", f"spinner description:\n{screen}"
    stage_clock = LIVE_STAGE_ROW.match(rows[at]).group(4)
    assert _seconds(m.group(3)) < _seconds(stage_clock), (
        f"the spinner shows its own elapsed time ({m.group(3)}), not the stage's ({stage_clock}):\n{screen}")
    assert len(rows[spin_at]) == len(rows[at]) <= WIDTH, f"the two clocks should end in one column:\n{screen}"
    assert _row_of(rows, "before spinner") < at, screen

    # It animates and its clock runs.
    frames = {m.group(1)}

    def spinner_one_second_and_animated(rows):
        m = next((SPINNER_ROW.match(r) for r in rows if SPINNER_ROW.match(r)), None)
        if m is None:
            return False
        frames.add(m.group(1))
        return _seconds(m.group(3)) >= 1 and len(frames) >= 2

    rows = p.wait_for(spinner_one_second_and_animated, "spinner clock at 0:00:01 and a new spinner frame")
    _check_live_frame(rows, 2, "Collecting cluster info", stage_count=3)
    running_screen = _show(rows)

    (gates / "close-spinner").touch()
    rows = p.wait_for(lambda rows: "after spinner 2" in rows, "'after spinner 2'")
    screen = _show(rows)
    at = _check_live_frame(rows, 2, "Collecting cluster info", stage_count=3)
    assert not _has(rows, "Collecting via SSH"), f"stale spinner row after the spinner finished:\n{screen}"
    assert not any(SPINNER_ROW.match(r) for r in rows), screen
    assert at == _nonblank(rows)[-1][0], f"the stage row alone should be the display now:\n{screen}"
    assert _row_of(rows, "before spinner") < _row_of(rows, "after spinner 1") < _row_of(rows, "after spinner 2") < at

    (gates / "finish-stage").touch()
    rows = p.wait_for(_finished, "EXIT= and TTY1=")
    screen = _show(rows)
    assert "EXIT=0" in rows, screen
    assert not any(LIVE_STAGE_ROW.match(r) or SPINNER_ROW.match(r) for r in rows), f"live rows left over:\n{screen}"
    assert p.cursor_visible(), f"cursor still hidden after the run:\n{screen}"
    _assert_tty_modes_restored(rows)
    print("\n--- spinner frame ---\n" + running_screen + "\n--- after ---\n" + screen)


# ----- 2b. a flood of batched output scrolls above the display, hostile lines defused --------
FLOOD_HELPER = """\
import sys, time
from pathlib import Path

from renderers import RenderOptions, create

gates = Path(sys.argv[1])
renderer = create("rich", RenderOptions(color=True))
now = time.time_ns()


def span(kind, what, span_id, name, **fields):
    return {"schema": 1, "type": f"{kind}.{what}", "timestamp": "2026-11-27T10:10:02.000000Z", "level": "info",
            "span_id": span_id, "name": name, "start_unix_nano": now, **fields}


HOSTILE = ["\\x1b[2J\\x1b[Hwiped", "\\x1b[5Aup", "\\x1b]2;pwned\\x07titled", "\\x1b[?1049halt", "\\x1b[1;3rregion",
           "10%\\r\\x1b[32mgreen 100%\\x1b[0m"]
renderer.handle(span("run", "started", "r", "flood"))
renderer.handle(span("stage", "started", "s", "Running benchmark", stage_index=3, stage_count=4))
renderer.handle(span("spinner", "started", "p", "Waiting for DLIO...", description="Waiting for DLIO..."))
n = 0
for batch in range(300):  # about 4 s of 75 lines every 10 ms
    lines = []
    for _ in range(75):
        n += 1
        lines.append(f"out {n:06d} " + "x" * (n % 97))
    if batch % 40 == 20 or batch == 299:  # the last ones stay on screen
        lines[60:60] = HOSTILE
    renderer.handle({"schema": 2, "type": "output", "stream": "stdout", "source": "dlio", "lines": lines})
    time.sleep(0.01)
(gates / "flooded").touch()
while not (gates / "finish").exists():
    time.sleep(0.02)
done = {"status": "ok", "duration_s": 4.0}
renderer.handle(span("spinner", "finished", "p", "Waiting for DLIO...", **done))
renderer.handle(span("stage", "finished", "s", "Running benchmark", stage_index=3, stage_count=4, **done))
renderer.handle(span("run", "finished", "r", "flood", **done))
renderer.close()
"""
FLOOD_ROW = re.compile(r"^out (\d{6}) ?(x*)$")  # rows are read right-stripped
DEFUSED = ("wiped", "up", "titled", "alt", "region", "green 100%")


def _check_flood_rows(rows: list[str], framed: bool) -> None:
    """Rows above the display: whole lines, numbered in order, and the defused hostile lines.
    While a write is still being read by tmux the frame may be missing and the last row cut."""
    screen = _show(rows)
    body = [r for _, r in _nonblank(rows)]
    if framed:
        body = body[:-2]
    else:
        body = body[:-1]  # maybe a line tmux has read only part of
        if body and LIVE_STAGE_ROW.match(body[-1]):
            body = body[:-1]  # the frame itself, its spinner row still being read
    numbers = []
    for r in body:
        m = FLOOD_ROW.match(r)
        if m:
            assert len(m.group(2)) == int(m.group(1)) % 97, f"a garbled row {r!r}:\n{screen}"
            numbers.append(int(m.group(1)))
        else:
            assert r in DEFUSED, f"a row that is neither output nor a defused line: {r!r}\n{screen}"
    assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers), f"lines out of order:\n{screen}"


def test_flood_of_batched_output_scrolls_above_the_display(pane, tmp_path):
    p, gates = _start_helper(pane, tmp_path, "flood_helper.py", FLOOD_HELPER)
    title = p.tmux("display", "-p", "-t", p.session, "#{pane_title}").strip()

    def framed(rows):
        nonblank = _nonblank(rows)
        return (len(nonblank) >= 3 and LIVE_STAGE_ROW.match(nonblank[-2][1]) is not None
                and SPINNER_ROW.match(nonblank[-1][1]) is not None)

    framed_screens = 0
    deadline = time.monotonic() + 30
    while not (gates / "flooded").exists() and time.monotonic() < deadline:
        rows = p.capture(label="flooding")
        if any(FLOOD_ROW.match(r) for r in rows):
            is_framed = framed(rows)
            framed_screens += is_framed
            _check_flood_rows(rows, is_framed)
            # Only the display's own two rows, once each: no stale frame left in the scrolled text.
            assert sum(bool(LIVE_STAGE_ROW.match(r)) for r in rows) <= 1, _show(rows)
            assert sum(bool(SPINNER_ROW.match(r)) for r in rows) <= 1, _show(rows)
        time.sleep(0.05)
    assert (gates / "flooded").exists(), "the helper never finished its output"
    assert framed_screens >= 3, f"only {framed_screens} screens showed the display under the scrolling output"

    rows = p.wait_for(lambda rows: framed(rows) and _nonblank(rows)[-3][1].startswith("out 022500"),
                      "the display under the last line, 'out 022500'")
    _check_flood_rows(rows, True)
    assert [r for r in rows if r in DEFUSED] == list(DEFUSED), f"the defused lines, each on its own row:\n{_show(rows)}"
    coloured = p.capture(escapes=True, label="the flood's last screen with escapes")
    assert any("\x1b[32mgreen 100%" in r for r in coloured), "a line's own colour is kept"
    assert p.tmux("display", "-p", "-t", p.session, "#{pane_title}").strip() == title, "a child line retitled the pane"
    assert not p.cursor_visible()
    (gates / "finish").touch()
    rows = p.wait_for(_finished, "EXIT= and TTY1=")
    screen = _show(rows)
    assert "EXIT=0" in rows, screen
    assert not any(LIVE_STAGE_ROW.match(r) or SPINNER_ROW.match(r) for r in rows), f"live rows left over:\n{screen}"
    assert p.cursor_visible(), screen
    print("\n--- after the flood ---\n" + screen)


# ----- 3. the end: display gone, summary, EXIT=0 below it, cursor back ------------------------
def test_end_of_run_leaves_summary_and_restores_cursor(pane, tmp_path):
    p = pane()
    p.start(_around(_exec_line(tmp_path, _counting_program(13))))

    p.wait_for(lambda rows: any(LIVE_STAGE_ROW.match(r) for r in rows), "the live display")
    hidden_while_live = not p.cursor_visible()
    rows = p.wait_for(_finished, "EXIT= and TTY1=", timeout=30)
    screen = _show(rows)
    assert hidden_while_live, f"the cursor was not hidden while the display was live:\n{screen}"

    assert not any(LIVE_STAGE_ROW.match(r) for r in rows), f"the live display is still on screen:\n{screen}"
    assert not any(ch in r for r in rows for ch in SPINNER_FRAMES), f"spinner frame left on screen:\n{screen}"
    printed = [r for r in rows if r.startswith("line ")]
    assert printed == [f"line {n}" for n in range(1, 14)], f"all output lines, once each, in order:\n{screen}"

    header = next((i for i, r in enumerate(rows) if re.fullmatch(r"Stage\s+Status\s+Duration", r)), None)
    assert header is not None, f"no summary table header:\n{screen}"
    assert header > max(i for i, r in enumerate(rows) if r.startswith("line ")), screen
    for k, name in enumerate(STAGES, start=1):
        row = rows[header + k]
        assert re.fullmatch(rf"{k}/4 {name}\s+ok\s+\d+\.\ds", row), f"summary row {k}: {row!r}\n{screen}"
    run_row = rows[header + 5]
    assert re.fullmatch(r"run mlpstorage exec run\s+ok\s+\d+\.\ds", run_row), f"run row: {run_row!r}\n{screen}"
    # Durations are right-aligned in one column; 3/4 ran the 13 lines (about 3.9 s).
    widths = {len(rows[header + k]) for k in range(0, 6)}
    assert len(widths) == 1, f"summary columns are not aligned:\n{screen}"
    ran = float(re.search(r"(\d+\.\d)s$", rows[header + 3]).group(1))
    assert 3.0 <= ran < 30, f"stage 3 duration {ran}s:\n{screen}"
    assert rows[header + 6] == "EXIT=0", f"EXIT=0 should be on its own row right after the summary:\n{screen}"
    assert p.cursor_visible(), f"the cursor is still hidden after the run:\n{screen}"
    _assert_tty_modes_restored(rows)
    print("\n--- end of run ---\n" + screen)


# ----- 4. Ctrl-C -------------------------------------------------------------------------
def _pids_of(argv: list[str]) -> list[int]:
    """Processes whose whole command line is exactly argv (never the launcher, whose
    command line only contains it)."""
    pattern = "^" + re.escape(shlex.join(argv)) + "$"
    proc = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True)
    return [int(x) for x in proc.stdout.split()]


@pytest.fixture
def interrupted_run(pane, tmp_path):
    """`exec -- sleep 31.4159...` interrupted with Ctrl-C once 'Running benchmark' is on
    screen. Returns (screen rows after EXIT=, cursor visible, pids of the child left)."""
    child = ["sleep", f"31.4159{random.randrange(10**6):06d}"]  # unique to this test run
    p = pane()
    p.start(_around(_exec_line(tmp_path, child)))
    try:
        p.wait_for(lambda rows: any(LIVE_STAGE_ROW.match(r) and "Running benchmark" in r for r in rows),
                   "'Running benchmark'")
        deadline = time.monotonic() + 10
        while not _pids_of(child) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _pids_of(child), f"the child {shlex.join(child)} never started"
        p.send_keys("C-c")
        rows = p.wait_for(_finished, "EXIT= and TTY1= after Ctrl-C", timeout=30)
        yield rows, p.cursor_visible(), _pids_of(child)
    finally:
        for pid in _pids_of(child):  # only our uniquely-named child, by pid
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass


def test_ctrl_c_interrupts_run_stops_child_and_restores_terminal(interrupted_run):
    rows, cursor_visible, child_left = interrupted_run
    screen = _show(rows)
    print("\n--- after Ctrl-C ---\n" + screen)
    assert "EXIT=130" in rows, f"exit code 130 after Ctrl-C:\n{screen}"
    assert "mlpstorage: interrupted" in rows, screen
    assert any(re.fullmatch(r"3/4 Running benchmark\s+(failed|interrupted)\s+\d+\.\ds", r) for r in rows), (
        f"the summary should show stage 3 failed or interrupted:\n{screen}")
    assert any(re.fullmatch(r"run mlpstorage exec run\s+(failed|interrupted)\s+\d+\.\ds", r) for r in rows), screen
    # "Processing results" still runs (keeping what the run left), without the end-of-run collection
    assert any(r.startswith("4/4 Processing results") for r in rows), f"stage 4 should run:\n{screen}"
    assert "End-of-run cluster information skipped" in screen, screen
    assert cursor_visible, f"the cursor is still hidden after Ctrl-C:\n{screen}"
    _assert_tty_modes_restored(rows)
    assert child_left == [], f"the child outlived the launcher (pids {child_left}):\n{screen}"


def test_ctrl_c_leaves_no_stale_live_frame(interrupted_run):
    """The terminal echoes '^C' where the cursor is: at the end of a full-width live row that
    wraps onto a new line, the next redraw then erases the wrong row and the frozen frame stays."""
    rows, _, _ = interrupted_run
    screen = _show(rows)
    assert not any(LIVE_STAGE_ROW.match(r) for r in rows), f"a live frame is left on screen after Ctrl-C:\n{screen}"
    assert sum("Stage 3/4" in r for r in rows) == 1, f"only the '✖ Stage 3/4 ...' line should remain:\n{screen}"


# ----- a person pressing Enter while it runs -----------------------------------------------
def test_enter_pressed_during_run_leaves_no_stale_frames(pane, tmp_path):
    """People press Enter to see whether a run is alive; the echoed newline must not leave a
    copy of the display behind (while running or at the end)."""
    p = pane()
    p.start(_around(_exec_line(tmp_path, _counting_program(13))))
    p.wait_for(lambda rows: "line 3" in rows, "'line 3'")
    p.send_keys("Enter")
    rows = p.wait_for(lambda rows: "line 6" in rows, "'line 6'")
    _check_live_frame(rows, 3, "Running benchmark")
    rows = p.wait_for(_finished, "EXIT= and TTY1=", timeout=30)
    screen = _show(rows)
    assert not any(LIVE_STAGE_ROW.match(r) for r in rows), f"live frames left on screen:\n{screen}"
    assert p.cursor_visible(), screen
    _assert_tty_modes_restored(rows)


# ----- 5. NO_COLOR=1 TTY_INTERACTIVE=0: plain lines, no escapes ------------------------------
def test_no_color_non_interactive_in_a_terminal_is_plain(pane, tmp_path):
    p = pane()
    p.start(_around(_exec_line(tmp_path, _counting_program(5, pause=0.05))),
            env={"NO_COLOR": "1", "TTY_INTERACTIVE": "0"})
    rows = p.wait_for(_finished, "EXIT= and TTY1=", join=True)
    screen = _show(rows)
    assert "EXIT=0" in rows, screen
    lines = [r for _, r in _nonblank(rows)]
    child = [f"line {n}" for n in range(1, 6)]
    body = lines[lines.index(next(r for r in lines if r.startswith("TTY0="))) + 1: lines.index("EXIT=0")]
    assert [r for r in body if r.startswith("line ")] == child, f"child output, unchanged and in order:\n{screen}"
    others = [r for r in body if r not in child]
    bad = [r for r in others if not LINE_PATTERN.match(r)]
    assert not bad, f"lines that are not plain-format lines: {bad}\n{screen}"
    for k, name in enumerate(STAGES, start=1):
        assert any(re.search(rf" \[{k}/4 {name}\] started$", r) for r in others), f"stage {k} started:\n{screen}"
        assert any(re.search(rf" \[{k}/4 {name}\] done in \d+\.\ds$", r) for r in others), f"stage {k} done:\n{screen}"
    assert not any(ch in r for r in rows for ch in SPINNER_FRAMES + "━╺"), f"live-display glyphs:\n{screen}"

    raw = p.capture(escapes=True, join=True, label="plain with escapes")
    escaped = [r for r in raw if "\x1b" in r]
    assert not escaped, "escape sequences in NO_COLOR output:\n" + "\n".join(repr(r) for r in escaped)
    assert p.cursor_visible(), f"plain mode must never hide the cursor:\n{screen}"
    _assert_tty_modes_restored(rows)
    print("\n--- plain ---\n" + screen)


def test_ctrl_c_at_random_moments_of_a_chatty_run_never_leaves_a_stale_frame(pane, tmp_path):
    """Ctrl-C while output scrolls and the frame redraws, at random moments, ten times: the
    terminal discards what it had queued for output when it sends SIGINT (unless NOFLSH),
    so a redraw cut short there would leave a frozen frame row above the summary."""
    rng = random.Random()
    for attempt in range(10):
        p = pane()
        p.start(_around(_exec_line(tmp_path / str(attempt), _counting_program(100000, pause=0.002))))
        p.wait_for(lambda rows: any(LIVE_STAGE_ROW.match(r) and "Running benchmark" in r for r in rows),
                   "'Running benchmark'")
        time.sleep(rng.uniform(0.0, 0.6))
        p.send_keys("C-c")
        rows = p.wait_for(_finished, "EXIT= and TTY1= after Ctrl-C", timeout=30)
        screen = _show(rows)
        assert "EXIT=130" in rows, f"try {attempt}:\n{screen}"
        assert not any(LIVE_STAGE_ROW.match(r) for r in rows), f"try {attempt}: a live frame is left:\n{screen}"
        assert sum(r.startswith("■ Stage 3/4") for r in rows) == 1, f"try {attempt}:\n{screen}"
        p.kill()


# ----- a stalled rank: a highlighted row right under the stage ------------------------------
def test_a_stalled_rank_is_a_highlighted_row_under_the_stage_with_its_idle_clock(pane, tmp_path):
    shaped = str(ROOT / "tests" / "data" / "dlio_shaped.py")
    program = [sys.executable, shaped, "4", "20", "0.25", "--rank-quits-at", "2:5"]
    p = pane()
    p.start(_around(_exec_line(tmp_path, program, ["--stall-timeout", "2"])))
    rows = p.wait_for(lambda rows: any(r.startswith(" ⚠ rank 1") for r in rows), "the stall row", timeout=40)
    screen = _show(rows)
    at = next(i for i, r in enumerate(rows) if LIVE_STAGE_ROW.match(r))
    stall = rows[at + 1]
    # what, without the idle time it had when flagged: the clock column counts that on
    assert stall.startswith(" ⚠ rank 1: no step; last step 5/20 of epoch 2; rank 0 is at step"), screen
    assert re.search(r"\s0:00:0\d$", stall), f"the stall row should end in its idle clock:\n{screen}"
    assert any("WARNING stalled: rank 1: no step for 2 s" in r for r in rows[:at]), screen  # the line above too
    highlighted = next(r for r in p.capture(escapes=True, label="stall row with escapes") if "⚠ rank 1" in r)
    assert "43m" in highlighted, f"the stall row should be on a yellow background:\n{highlighted!r}"
    rows = p.wait_for(_finished, "the end of the run", timeout=60)
    assert "EXIT=0" in rows, _show(rows)
    assert not any(r.startswith(" ⚠") for r in rows), f"the stall row must go with the display:\n{_show(rows)}"
