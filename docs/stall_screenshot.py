"""Makes docs/stall.svg: the live display of a real tiny DLIO run (2 ranks under mpirun) in a
real terminal (tmux), captured while rank 1 is frozen with SIGSTOP; and prints the plain
lines of the same scenario for the README.

    .venv/bin/python docs/stall_screenshot.py     (needs tmux; takes about a minute)
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.text import Text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # `support`: tests/support

from support.waiting import wait_for  # noqa: E402

CLI = str(Path(sys.executable).with_name("mlpstorage"))
TINY = ["dataset.num_files_train=32", "dataset.record_length=65536", "dataset.record_length_stdev=0",
        "dataset.record_length_resize=65536", "checkpoint.model_size=65536"]
RUN = ["reader.batch_size=2", "reader.read_threads=1", "train.epochs=12", "train.computation_time=0.25"]
WIDTH, HEIGHT = 118, 16


def run_args(data: Path, results: Path, render: str) -> list[str]:
    return [CLI, "training", "run", "--model", "unet3d", "--data-dir", str(data), "-na", "2", "--results-dir",
            str(results), "--render", render, "--timeseries-interval", "1", "--stall-timeout", "3", "--params",
            *TINY, *RUN]


def freeze_rank_1(results: Path, seconds_after_epoch_2: float = 0.0) -> int:
    run_dir = wait_for(lambda: next(iter(results.glob("training/unet3d/run/*")), None), "the run folder", 60, 0.1)
    wait_for(lambda: (run_dir / "events.jsonl").exists() and '"epoch 2/12"' in (run_dir / "events.jsonl").read_text(),
             "epoch 2", 60, 0.1)
    time.sleep(seconds_after_epoch_2)
    pid = json.loads((run_dir / "ranks" / "process-1.json").read_text())["pid"]
    os.kill(pid, signal.SIGSTOP)
    return pid


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="mlps-stall-"))
    data = work / "data"
    subprocess.run([CLI, "training", "datagen", "--model", "unet3d", "--data-dir", str(data), "-np", "2",
                    "--results-dir", str(work / "gen"), "--render", "none", "--params", *TINY], check=True)
    # 1. the live display, in tmux
    socket = work / "tmux.sock"
    tmux = ["tmux", "-S", str(socket), "-f", "/dev/null"]
    script = work / "run.sh"
    script.write_text(f"export TERM=xterm-256color\n{shlex.join(run_args(data, work / 'live', 'rich'))}\nsleep 60\n")
    subprocess.run([*tmux, "new-session", "-d", "-s", "T", "-x", str(WIDTH), "-y", str(HEIGHT), f"bash {script}"],
                   check=True)
    pid = freeze_rank_1(work / "live", 1.1)
    capture = [*tmux, "capture-pane", "-p", "-e", "-t", "T"]
    wait_for(lambda: "⚠" in subprocess.run(capture, capture_output=True, text=True).stdout, "the stall row", 60, 0.1)
    time.sleep(2.2)  # the row's clock counts on
    screen = subprocess.run(capture, capture_output=True, text=True).stdout.rstrip("\n").split("\n")
    os.kill(pid, signal.SIGCONT)
    console = Console(record=True, width=WIDTH, force_terminal=True, color_system="truecolor", file=open(os.devnull, "w"))
    for row in screen:
        console.print(Text.from_ansi(row), no_wrap=True, crop=True)
    console.save_svg(str(ROOT / "docs" / "stall.svg"), title="mlpstorage training run: rank 1 frozen with SIGSTOP")
    time.sleep(15)
    subprocess.run([*tmux, "kill-server"], check=False)
    # 2. the plain lines of the same scenario
    proc = subprocess.Popen([*run_args(data, work / "plain", "plain"), "--heartbeat", "4"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    pid = freeze_rank_1(work / "plain", 1.1)
    time.sleep(9)
    os.kill(pid, signal.SIGCONT)
    lines = [line for line in proc.communicate()[1].splitlines() if not line.startswith("[")]
    print("\n".join(line for line in lines if "stall" in line.lower() or "resumed:" in line or "still running" in line))


if __name__ == "__main__":
    main()
