"""DLIO's I/O trace (DFTracer): every rank's system and DLIO calls read back into latency
distributions, I/O against compute per epoch, the slowest calls and per-file totals
(`--io-trace`; docs/iotrace.md)."""

from .summary import IO_TRACE_FILE, NotAnIoTrace, event_payload, load_summary, summarise, write_summary

__all__ = ["IO_TRACE_FILE", "NotAnIoTrace", "event_payload", "load_summary", "summarise", "write_summary"]
