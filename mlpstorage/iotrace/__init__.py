"""DLIO's I/O trace (DFTracer): every rank's system and DLIO calls read back into latency
distributions, I/O against compute per epoch, the slowest calls and per-file totals
(`--io-trace`; docs/iotrace.md).

The file name is here; the reading and summing (numpy, msgspec) load when first used, so a
module that only asks whether a run was traced pays nothing for them."""

IO_TRACE_FILE = "io_trace.json"  # in the run folder (summary.py writes it)

_FROM_SUMMARY = ("NotAnIoTrace", "event_payload", "load_summary", "summarise", "write_summary")
__all__ = ["IO_TRACE_FILE", *_FROM_SUMMARY]


def __getattr__(name: str):
    if name in _FROM_SUMMARY:
        from . import summary

        return getattr(summary, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
