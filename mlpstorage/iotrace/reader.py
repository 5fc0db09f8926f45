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
    # no hostname: the same in every event of a rank's file, read once (trace_host); building
    # a million copies of it cost a sixth of the decoding
    fname: str | None = None
    ret: int | None = None  # the bytes a read or write moved (or -1)
    # not `count` (the bytes asked for): decoding it cost a fifth of the time, and a read or
    # write traced with its metadata always has its `ret`


class Call(msgspec.Struct, gc=False):
    name: str
    cat: str = ""
    ts: int = 0
    dur: int = 0
    args: Args | None = None


_line = msgspec.json.Decoder(Call, strict=False)  # a line, or a block of lines (decode_lines)
_lines = msgspec.json.Decoder(list[Call], strict=False)  # lines joined into an array
_any = msgspec.json.Decoder(dict)


class _HostArgs(msgspec.Struct):
    hostname: str | None = None


class _HostCall(msgspec.Struct):
    args: _HostArgs | None = None


_host_line = msgspec.json.Decoder(_HostCall, strict=False)
HOST_LINES = 200  # how far into a file its host name is looked for


def trace_host(path: Path) -> str | None:
    """The host a rank's trace was written on (`args.hostname` of its first events)."""
    opener = igzip.open if path.name.endswith(".gz") else open
    try:
        with opener(path, "rb") as stream:
            for _, line in zip(range(HOST_LINES), stream):
                line = line.strip().rstrip(b",")
                if not line.startswith(b"{"):
                    continue
                try:
                    found = _host_line.decode(line)
                except msgspec.DecodeError:
                    continue
                if found.args is not None and found.args.hostname:
                    return found.args.hostname
    except (OSError, EOFError):
        pass
    return None


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
    lines = _WholeLines(block_bytes, count)
    try:
        with opener(path, "rb") as stream:
            for calls, _ in lines.blocks(stream):
                if calls:
                    yield calls
    except OSError as exc:
        _bad(count, f"{type(exc).__name__}: {exc}")
    calls = lines.rest()  # a last line without its newline
    if calls:
        yield calls


def read_new_calls(path: Path, offset: int, count: ReadCount | None = None,
                   block_bytes: int = BLOCK_BYTES) -> Iterator[tuple[list[Call], int]]:
    """What a trace file still being written holds after offset, a block at a time: (calls,
    the offset after the block's last whole line). A line still being written waits for the
    next call; memory stays one block whatever the file has grown by."""
    lines = _WholeLines(block_bytes, count if count is not None else ReadCount())
    with open(path, "rb") as stream:
        stream.seek(offset)
        for calls, length in lines.blocks(stream):
            offset += length
            yield calls, offset


class _WholeLines:
    """A stream read into one reused buffer (no copy of a block) and decoded a block of whole
    lines at a time; a line cut by the block's end waits at the buffer's start for the next."""

    def __init__(self, block_bytes: int, count: ReadCount):
        self.buf = bytearray(block_bytes)
        self.held = 0
        self.count = count

    def blocks(self, stream) -> Iterator[tuple[list[Call], int]]:
        """(calls, the length of the whole lines they came from) per block."""
        buf, count = self.buf, self.count
        while True:
            if self.held == len(buf):  # a line longer than the buffer
                buf.extend(bytes(len(buf)))
            end = self.held + _fill(stream, buf, self.held, count)
            if end == self.held:
                return
            cut = buf.rfind(b"\n", 0, end) + 1
            if not cut:
                self.held = end
                continue
            calls = _decode_block(buf, _opening(buf, cut), cut, count)
            buf[:end - cut] = buf[cut:end]
            self.held = end - cut
            yield calls, cut

    def rest(self) -> list[Call]:
        rest = bytes(self.buf[_opening(self.buf, self.held):self.held])
        return _decode([rest], self.count) if rest.strip() else []


def _fill(stream, buf: bytearray, start: int, count: ReadCount) -> int:
    """Reads into buf from start until it is full or the file ends; the bytes read."""
    got = 0
    with memoryview(buf) as view:
        while start + got < len(buf):
            try:
                n = stream.readinto(view[start + got:])
            except (OSError, EOFError) as exc:  # a gzip file cut short
                _bad(count, f"{type(exc).__name__}: {exc}")
                break
            if not n:
                break
            got += n
    return got


def _opening(buf: bytearray, end: int) -> int:
    """Where the events start: after the file's opening `[`, if it has one."""
    start = 0
    while start < end and buf[start] in b" \t\r\n":
        start += 1
    return start + 1 if start < end and buf[start] == 0x5B else 0  # [


def _decode_block(buf: bytearray, start: int, end: int, count: ReadCount) -> list[Call]:
    """Whole lines (buf[start:end], ending with a newline) decoded in one call. A block with
    anything else (a trailing `]` or commas, a bad line) goes line by line."""
    with memoryview(buf) as view:
        try:
            calls = _line.decode_lines(view[start:end])
        except msgspec.DecodeError:
            return _decode(bytes(view[start:end]).split(b"\n"), count)
    count.events += len(calls)
    return calls


def _decode(lines: list[bytes], count: ReadCount) -> list[Call]:
    lines = [s for s in (line.strip().rstrip(b",") for line in lines) if s and s not in (b"[", b"]")]
    if not lines:
        return []
    try:
        calls = _lines.decode(b"[" + b",".join(lines) + b"]")
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
                    Args(_str(args.get("fname")), _int(args.get("ret"))))
    except (msgspec.DecodeError, KeyError, TypeError, AttributeError):
        return None


def _int(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _str(value) -> str | None:
    return None if value is None else str(value)


def last_calls(path: Path, count: int = 20) -> list[Call]:
    """The last `count` events of a trace file, oldest first: what a rank did last (the stall
    evidence). A plain file is read backwards from its end, 64 KiB at a time, so a long trace
    costs no more than its tail; a line still being written (no newline yet) is left out. A
    gzip file is read whole."""
    if path.name.endswith(".gz"):
        kept: list[Call] = []
        for calls in read_calls(path):
            kept = (kept + calls)[-count:]
        return kept
    with open(path, "rb") as stream:
        position = stream.seek(0, 2)
        tail = b""
        while position > 0 and tail.count(b"\n") <= count + 1:
            step = min(position, 1 << 16)
            position -= step
            stream.seek(position)
            tail = stream.read(step) + tail
    lines = tail[: tail.rfind(b"\n") + 1].split(b"\n")
    if position > 0:
        lines = lines[1:]  # read from the middle of a line
    return _decode(lines, ReadCount())[-count:]
