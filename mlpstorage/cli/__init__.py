"""The command line: parser.py (the command tree and its help), commands.py (one handler per
command), wiring.py (renderers, the emitter and options objects from the arguments) and
main.py (the process edge: exit codes and signals)."""

from .main import main

__all__ = ["main"]
