"""Reading DFTracer's trace files: `trace-<rank>-of-<size>.pfw`, one per DLIO rank, plain or
gzip-compressed (`.pfw.gz`).

A file is a `[` line, then one Chrome trace event per line, numbers written as strings:
  {"id":"64","name":"read","cat":"POSIX","pid":"0","tid":"31232","ts":"1796589635118306",
   "dur":"168","ph":"X","args":{"hostname":"vm","ret":"4096","count":"4096","fname":"..."}}
ts and dur are microseconds, pid is the rank (also in the file name), and args is empty unless the rank ran with
DFTRACER_INC_METADATA=1.

The file is read in blocks of lines, each block decoded in one call by msgspec into typed
structs (strings coerced to numbers; unknown keys skipped without being built), so memory
stays bounded by the block and the rate stays in the millions of events a second (see
docs/iotrace.md). A line that does not decode (a file cut short, a corrupt line) is counted
and skipped; the rest of the file is still read.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import msgspec
from isal import igzip  # gzip at 4x the standard library's speed (docs/iotrace.md)

TRACE_NAME = re.compile(r"^trace-(\d+)-of-(\d+)\.pfw(\.gz)?$")
BLOCK_BYTES = 4 << 20  # what is decoded at once: about 16,000 events


class Args(msgspec.Struct, gc=False):  # gc=False: a million of them, no cycles
    hostname: str | None = None
    fname: str | None = None
    ret: int | None = None  # the bytes a read or write moved (or -1)
    count: int | None = None  # the bytes it asked for


class Call(msgspec.Struct, gc=False):
    name: str
    cat: str = ""
    ts: int = 0
    dur: int = 0
    args: Args | None = None


_block = msgspec.json.Decoder(list[Call], strict=False)
_line = msgspec.json.Decoder(Call, strict=False)
_any = msgspec.json.Decoder(dict)


@dataclass(frozen=True)
class TraceFile:
    path: Path
    rank: int
    size: int


def trace_files(folder: Path) -> list[TraceFile]:
    """The rank trace files in a run folder, by rank (a rank with both forms: the plain one)."""
    found: dict[int, TraceFile] = {}
    try:
        entries = sorted(folder.iterdir())
    except OSError:
        return []
    for path in entries:
        match = TRACE_NAME.match(path.name)
        if match and path.is_file():
            rank = int(match.group(1))
            if rank not in found or found[rank].path.name.endswith(".gz"):
                found[rank] = TraceFile(path, rank, int(match.group(2)))
    return [found[rank] for rank in sorted(found)]


@dataclass
class ReadCount:
    """What reading one file met besides events."""

    events: int = 0
    bad_lines: int = 0
    first_bad: str = ""  # the first bad line, shortened, for the warning


def read_calls(path: Path, count: ReadCount | None = None, block_bytes: int = BLOCK_BYTES) -> Iterator[list[Call]]:
    """The file's events, a block at a time (a list of Call per block)."""
    count = count if count is not None else ReadCount()
    opener = igzip.open if path.name.endswith(".gz") else open
    rest = b""
    try:
        with opener(path, "rb") as stream:
            while True:
                try:
                    data = stream.read(block_bytes)
                except (OSError, EOFError) as exc:  # a gzip file cut short
                    _bad(count, f"{type(exc).__name__}: {exc}")
                    data = b""
                if not data:
                    break
                data = rest + data
                cut = data.rfind(b"\n")
                if cut < 0:
                    rest = data
                    continue
                rest = data[cut + 1:]
                calls = _decode_block(data[:cut + 1], count)
                if calls:
                    yield calls
    except OSError as exc:
        _bad(count, f"{type(exc).__name__}: {exc}")
    if rest.strip():
        calls = _decode([rest], count)
        if calls:
            yield calls


def _decode_block(block: bytes, count: ReadCount) -> list[Call]:
    """Whole lines (the block ends with its newline) as one JSON array in one call: each
    newline becomes a comma, the last one the closing bracket. A block with anything else
    (the opening `[`, blank lines, trailing commas, a bad line) goes line by line."""
    if not block.startswith((b"[", b"\n")):
        array = bytearray(b"[")
        array += block.translate(_NEWLINE_TO_COMMA)
        array[-1] = 0x5D  # ]
        try:
            calls = _block.decode(array)
        except msgspec.DecodeError:
            pass
        else:
            count.events += len(calls)
            return calls
    return _decode(block.split(b"\n"), count)


_NEWLINE_TO_COMMA = bytes.maketrans(b"\n", b",")


def _decode(lines: list[bytes], count: ReadCount) -> list[Call]:
    lines = [s for s in (line.strip().rstrip(b",") for line in lines) if s and s not in (b"[", b"]")]
    if not lines:
        return []
    try:
        calls = _block.decode(b"[" + b",".join(lines) + b"]")
    except msgspec.DecodeError:  # at least one bad line in the block: line by line
        calls = []
        for line in lines:
            try:
                calls.append(_line.decode(line))
            except msgspec.DecodeError:
                call = _lenient(line)
                if call is None:
                    _bad(count, line[:120].decode("utf-8", "replace"))
                else:
                    calls.append(call)
    count.events += len(calls)
    return calls


def _bad(count: ReadCount, what: str) -> None:
    if not count.bad_lines:
        count.first_bad = what
    count.bad_lines += 1


def _lenient(line: bytes) -> Call | None:
    """An event whose values are not the types expected (a return value that is not a number):
    kept with what can be read of it."""
    try:
        raw = _any.decode(line)
        args = raw.get("args") if isinstance(raw.get("args"), dict) else {}
        return Call(str(raw["name"]), str(raw.get("cat", "")), _int(raw.get("ts")) or 0,
                    _int(raw.get("dur")) or 0,
                    Args(_str(args.get("hostname")), _str(args.get("fname")), _int(args.get("ret")), _int(args.get("count"))))
    except (msgspec.DecodeError, KeyError, TypeError, AttributeError):
        return None


def _int(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _str(value) -> str | None:
    return None if value is None else str(value)
