"""The process edge: parse, run the command's handler, and turn every way out into one line
and an exit code (errors users can cause, a broken pipe, Ctrl-C, SIGTERM). No child process
outlives the launcher, whatever way it leaves."""

from __future__ import annotations

import os
import signal
import sys

from ..errors import MlpStorageError, Terminated
from .parser import build_parser, read_config_file


def _raise_terminated(signum, frame):
    raise Terminated()


def _stop_children() -> None:
    """No child outlives the launcher, whatever way it leaves (see engines/process.py)."""
    process = sys.modules.get("mlpstorage.engines.process")
    if process is None:  # a command that started no child never imported it
        return
    # Already on the way out: a second Ctrl-C or SIGTERM must not cut the stopping short.
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        process.CHILDREN.stop_all()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser(read_config_file(argv)).parse_args(argv)
        from . import commands  # after parsing: `--help` imports no handler

        previous = signal.signal(signal.SIGTERM, _raise_terminated)
        try:
            return getattr(commands, args.handler)(args)
        finally:
            _stop_children()
            signal.signal(signal.SIGTERM, previous)
    except MlpStorageError as exc:
        print(f"mlpstorage: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:
        # the reader went away (`--what-if | head`): stop quietly, as other Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except KeyboardInterrupt:
        print("mlpstorage: interrupted", file=sys.stderr)
        return 130
    except Terminated:
        print("mlpstorage: terminated", file=sys.stderr)
        return 143
