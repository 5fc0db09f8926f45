"""Each epoch's I/O read from the traces while the run goes on (--io-trace): DFTracer 1.0.2
writes a call's line when the call returns, so when DLIO says an epoch ended its ranks' files
already hold the epoch (docs/iotrace.md, "When DFTracer writes").

Each look reads only what a file grew by since the last one, a block at a time, into running
totals: memory stays one block and a few numbers per rank, however long the epoch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .aggregate import COMPUTE, EPOCH, READS, SYSTEM, WAIT, WRITES, operation_name, returned
from .reader import Call, read_new_calls, trace_files


@dataclass
class EpochTotals:
    calls: int = 0
    io_us: int = 0
    read: int = 0
    written: int = 0
    compute_us: int = 0
    wait_us: int = 0

    def add(self, call: Call) -> None:
        if call.cat in SYSTEM:
            self.calls += 1
            self.io_us += call.dur
            name = operation_name(call)
            moved = returned(call)
            if moved > 0 and name in READS:
                self.read += moved
            elif moved > 0 and name in WRITES:
                self.written += moved
        elif call.name.endswith(COMPUTE):
            self.compute_us += call.dur
        elif call.name == WAIT:
            self.wait_us += call.dur

    def merge(self, other: "EpochTotals") -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass
class _Rank:
    offset: int = 0
    counted_us: int | None = None  # the end of the rank's last epoch span
    carried: EpochTotals = field(default_factory=EpochTotals)  # calls after that end: the next epoch's
    early: list[Call] = field(default_factory=list)  # calls before the launcher saw the epoch start


class EpochIo:
    """Called as an epoch ends (with the launcher's start and end of it, in ns): the epoch's
    span attributes, summed over ranks, for the calls in it: time in system I/O calls, bytes
    read and written, computing and waiting for data (all of a rank's threads and loader
    processes).

    A rank's epoch is its own `DLIOBenchmark._train` span, written as its epoch ends; calls
    that started after it count for the next epoch. A rank still in its epoch when rank 0 says
    the epoch ended (its span not written yet) has every call written so far counted, and its
    next epoch starts with its next span."""

    def __init__(self, folder: Path):
        self.folder = folder
        self._ranks: dict[Path, _Rank] = {}

    def __call__(self, start_ns: int, end_ns: int) -> dict:
        io_by_rank: dict[int, float] = {}
        total = EpochTotals()
        for trace in trace_files(self.folder):
            if trace.path.name.endswith(".gz"):
                continue  # compressed once the run is over, never during it
            epoch = self._epoch(trace.path, start_ns // 1000)
            io_by_rank[trace.rank] = epoch.io_us / 1e6
            total.merge(epoch)
        if not io_by_rank:
            return {}
        return {"mlpstorage.io.ranks": len(io_by_rank), "mlpstorage.io.calls": total.calls,
                "mlpstorage.io.time_s": total.io_us / 1e6,
                "mlpstorage.io.time_s_by_rank": [round(io_by_rank[r], 6) for r in sorted(io_by_rank)],
                "mlpstorage.io.read_bytes": total.read, "mlpstorage.io.written_bytes": total.written,
                "mlpstorage.compute.time_s": total.compute_us / 1e6, "mlpstorage.io.wait_s": total.wait_us / 1e6}

    def _epoch(self, path: Path, launcher_start_us: int) -> EpochTotals:
        """The rank's totals for the epoch that just ended (as far as its tracer has written)."""
        rank = self._ranks.setdefault(path, _Rank())
        current, rank.carried = rank.carried, EpochTotals()
        following = EpochTotals()  # calls after the epoch's span, once it is seen
        span_end = None
        try:
            for calls, rank.offset in read_new_calls(path, rank.offset):
                for call in calls:
                    if call.name == EPOCH:
                        # a span that started before the last count closed an epoch already (a lagging rank's)
                        if rank.counted_us is None or call.ts >= rank.counted_us:
                            span_end = call.ts + call.dur
                            self._settle_early(rank, call.ts, current)
                    elif span_end is not None and call.ts >= span_end:
                        following.add(call)
                    elif call.ts < launcher_start_us:
                        rank.early.append(call)  # between epochs (setup, a checkpoint), or the epoch's first moments
                    else:
                        current.add(call)
        except OSError:  # a rank whose file went away: what was read counts
            pass
        if span_end is not None:
            rank.counted_us = span_end
            rank.carried = following
        else:  # the rank's epoch has not ended: everything so far is its
            rank.counted_us = rank.counted_us if rank.counted_us is not None else launcher_start_us
        rank.early.clear()
        return current

    @staticmethod
    def _settle_early(rank: _Rank, span_start_us: int, current: EpochTotals) -> None:
        """The epoch's span is known: the calls read from before the launcher saw the epoch
        start count when they are inside the span; what came between epochs does not."""
        for call in rank.early:
            if call.ts >= span_start_us:
                current.add(call)
        rank.early.clear()
