"""--io-trace in a DLIO run: DFTracer switched on in every rank, each epoch's I/O and compute
read from the traces as the epoch ends, and at the end io_trace.json, the io.summary event,
RESULT lines, the slowest calls as spans and the metadata's "io_trace" (docs/iotrace.md).

DFTracer 1.0.2 writes each call's line when the call returns (its file is line-buffered), so
the traces are current during the run: an epoch's span gets its figures before it ends.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from ..emitter import Emitter
from ..emitter import events
from ..emitter.rank_process import read_rank_processes
from ..engines.process import CHILDREN
from ..hosts import is_local_host
from ..iotrace import IO_TRACE_FILE
from ..iotrace.reader import trace_files

if TYPE_CHECKING:
    from ..iotrace.live import EpochIo

TRACER_ON = {"DFTRACER_ENABLE": "1", "DFTRACER_INC_METADATA": "1"}  # without the second: no file names, no bytes
TRACER_OFF = {"DFTRACER_ENABLE": "0", "DFTRACER_INC_METADATA": "0"}
SLOWEST_SPANS = 10  # the slowest system calls exported as spans
# The RESULT lines' operations, in this order: reads first in a run that mostly reads (training),
# writes first in one that mostly writes (checkpointing, datagen); see main_operation()
MAIN_OPERATIONS = {"read": ("read", "open", "write", "fsync"), "write": ("write", "fsync", "open", "read")}
RANK_ROWS = 8  # more ranks than this: RESULT lines per host, plus the slowest rank
FETCH_TIMEOUT_S = 600.0  # a trace brought back over ssh
TRACE_NAME = "trace-{rank}-of-{size}.pfw"


def environment_requested() -> bool:
    """DFTRACER_ENABLE=1 in the launcher's environment traces the ranks as --io-trace does."""
    return os.environ.get("DFTRACER_ENABLE") == "1"


def tracer_environment(on: bool) -> dict[str, str]:
    """What the ranks get (forwarded with -x): DFTracer on, with file names and byte counts;
    or off (DLIO 2.0.0 turns it on by default: it prints, and installs signal handlers), with
    DFTRACER_INC_METADATA said too: unset, the tracer prints 'Warning: could not find
    environment variable "DFTRACER_INC_METADATA"' at the top of every untraced run's output."""
    if on:
        return {**TRACER_ON, **({"DFTRACER_INC_METADATA": v} if (v := os.environ.get("DFTRACER_INC_METADATA")) else {})}
    return TRACER_OFF


# ----- at the end: io_trace.json, the event, the spans, the RESULT lines -----------------
class RunIoTrace:
    """The I/O trace of one run, from "Running benchmark" to its metadata."""

    def __init__(self, emitter: Emitter, run_dir: Path, requested: bool, ranks: int, hosts: list[str]):
        self.emitter = emitter
        self.run_dir = run_dir
        self.requested = requested
        self.ranks = ranks
        self.hosts = hosts
        self.document: dict | None = None
        self.missing: list[dict] = []

    def status(self) -> str:
        """What the run's status line adds when the tracer is on."""
        return ", DFTracer I/O trace on in every rank (--io-trace)" if self.requested else ""

    def epoch_reader(self) -> EpochIo | None:
        if not self.requested:
            return None
        from ..iotrace.live import EpochIo  # numpy: only in a traced run (not in every DLIO command)

        return EpochIo(self.run_dir)

    def process(self, rank_spans: dict[int, str], fetch=None) -> None:
        """Reads every rank's trace (fetch(missing) may bring absent ones back first), writes
        io_trace.json, publishes io.summary and exports the slowest calls as spans under
        their rank's span."""
        if not self.requested and not trace_files(self.run_dir):
            return
        from ..iotrace import event_payload, write_summary  # numpy: only for a run with traces

        if fetch is not None:
            fetch(self._absent())
        self.missing = self._where_absent()
        count = len(trace_files(self.run_dir))
        if count:
            with self.emitter.spinner(f"Reading the I/O trace of {count} rank{'s' if count != 1 else ''}"):
                self.document = write_summary(self.run_dir, warn=self.emitter.warning)
        if self.missing:
            self.emitter.warning(missing_text(self.missing, self.run_dir))
        if self.document is None:
            if self.requested:
                self.emitter.warning(f"--io-trace: no rank trace in {self.run_dir} (DFTracer wrote none)")
            return
        self.emitter.io_summary(event_payload(self.document))
        adopt_slowest_calls(self.emitter, self.document, rank_spans)

    def report(self) -> None:
        """RESULT lines: per operation the count and latency percentiles per host and rank."""
        if self.document is not None:
            for line in result_lines(self.document):
                self.emitter.result(line)

    def metadata(self) -> dict:
        document = self.document or {}
        sources = document.get("sources", [])
        slowest = slowest_rank(document) if document else None
        return {"requested": self.requested, "file": IO_TRACE_FILE if self.document is not None else None,
                "events": document.get("events", 0), "bad_lines": document.get("bad_lines", 0),
                "ranks_traced": len(sources), "ranks_expected": self.ranks, "missing": self.missing,
                "slowest_rank": slowest}

    def _absent(self) -> list[int]:
        return sorted(set(range(self.ranks)) - {t.rank for t in trace_files(self.run_dir)})

    def _where_absent(self) -> list[dict]:
        """Each rank without a trace here, and where its trace stayed: its host (from the
        rank's own process file, else one of the hosts that are not this one) and the run
        folder's path there (DLIO writes it into the same path on every host)."""
        absent = self._absent()
        if not absent:
            return []
        processes = read_rank_processes(self.run_dir / "ranks")
        remote = [h for h in dict.fromkeys(self.hosts) if not is_local_host(h)]
        rows = []
        for rank in absent:
            host = processes.get(rank, {}).get("host")
            rows.append({"rank": rank, "hosts": [host] if host else remote or list(dict.fromkeys(self.hosts)),
                         "file": str(self.run_dir / TRACE_NAME.format(rank=rank, size=self.ranks))})
        return rows


def missing_text(missing: list[dict], run_dir: Path) -> str:
    """One line: which ranks' traces are not in the run folder, and where they stayed."""
    ranks = ", ".join(str(m["rank"]) for m in missing)
    hosts = sorted({h for m in missing for h in m["hosts"]})
    where = hosts[0] if len(hosts) == 1 else "one of " + ", ".join(hosts)
    return (f"I/O trace of rank{'s' if len(missing) != 1 else ''} {ranks} not in the run folder: it stayed on {where} "
            f"in {run_dir} (the results folder is not shared with that host); io_trace.json covers the other ranks")


def main_operation(document: dict) -> str:
    """'read' or 'write', whichever took the run longer: reads in training, writes in
    checkpointing and datagen (reads when even)."""
    totals = {name: sum(r.get("total_s") or 0 for r in document.get("operations", []) if r["operation"] == name)
              for name in ("read", "write")}
    return max(totals, key=totals.get)


def slowest_rank(document: dict) -> dict | None:
    """When there are several ranks: the one whose main operation (main_operation) has the
    highest p99, with the median p99 of the others."""
    name = main_operation(document)
    rows = [r for r in document.get("operations", []) if r["operation"] == name and r.get("count")]
    if len(rows) < 2:
        return None
    worst = max(rows, key=lambda r: r["p99_us"])
    others = sorted(r["p99_us"] for r in rows if r is not worst)
    return {"rank": worst["rank"], "host": worst["host"], "operation": name, "p99_us": worst["p99_us"],
            "others_p99_us": others[len(others) // 2]}


def result_lines(document: dict) -> list[str]:
    """Short, aligned lines: per main operation and rank (per host beyond RANK_ROWS ranks)
    the count and p50, p99 and max latency, then the slowest rank."""
    per_rank = len(document.get("sources", [])) <= RANK_ROWS
    rows = document["operations"] if per_rank else document["by_host"]
    picked = [r for name in MAIN_OPERATIONS[main_operation(document)] for r in rows
              if r["operation"] == name and r["layer"] in ("posix", "stdio")]
    lines = [f"I/O trace: {document['events']:,} events from {len(document['sources'])} "
             f"rank{'s' if len(document['sources']) != 1 else ''}, in {IO_TRACE_FILE}"]
    if not picked:
        return lines + ["  no read, open, write or fsync call was traced"]
    who = [f"{r['host']} rank {r['rank']}" if per_rank else str(r["host"]) for r in picked]
    width, count_width = max(map(len, who)), max(len(f"{r['count']:,}") for r in picked)
    for row, name in zip(picked, who):
        lines.append(f"  {row['operation']:<5} {name:<{width}}  {row['count']:>{count_width},} calls  "
                     f"p50 {_latency(row['p50_us'])}  p99 {_latency(row['p99_us'])}  max {_latency(row['max_us'])}")
    slow = slowest_rank(document)
    if slow is not None:
        lines.append(f"  slowest rank: rank {slow['rank']} on {slow['host']}, {slow['operation']} p99 "
                     f"{_latency(slow['p99_us']).strip()} (the other ranks: {_latency(slow['others_p99_us']).strip()})")
    return lines


def _latency(us: float) -> str:
    """A latency as every report shows it (850 µs, 1.25 ms), right-aligned for the columns."""
    from ..reports.io_trace import format_latency  # numpy, loaded already in a traced run

    return f"{format_latency(us):>8}"


def adopt_slowest_calls(emitter: Emitter, document: dict, rank_spans: dict[int, str], count: int = SLOWEST_SPANS) -> int:
    """The `count` slowest system calls as spans under their rank's span (under the run's
    span when the rank's span is not known: a rank on a host without the shared results
    folder), so a tracing backend shows them where they happened."""
    run = emitter.scope().run
    if run is None:
        return 0
    context = run.get_span_context()
    trace_id, run_span = events.trace_id_hex(context.trace_id), events.span_id_hex(context.span_id)
    adopted = 0
    for order, call in enumerate(document.get("slowest", [])[:count], start=1):
        start = int(call["start_unix_us"]) * 1000
        attributes = {events.KIND: "task", "mlpstorage.io.rank": call["rank"], "host.name": str(call["host"]),
                      "mlpstorage.io.operation": call["operation"], "mlpstorage.io.layer": call["layer"],
                      "mlpstorage.io.slowest": order, "mlpstorage.io.duration_us": call["duration_us"],
                      **({"file.path": call["file"]} if call.get("file") else {}),
                      **({"mlpstorage.io.bytes": call["bytes"]} if call.get("bytes") is not None else {})}
        event = events.span_finished(name=f"{call['operation']} (slowest {order})", trace_id=trace_id,
                                     span_id=events.span_id_hex(int.from_bytes(os.urandom(8), "big") or 1),
                                     parent_span_id=rank_spans.get(call["rank"], run_span), attributes=attributes,
                                     start_unix_nano=start, end_unix_nano=start + int(call["duration_us"]) * 1000)
        emitter.adopt_span(event)
        adopted += 1
    return adopted


# ----- multi-host: traces brought back over SSH -------------------------------------------
def fetch_over_ssh(connections, hosts: list[str], run_dir: Path, size: int, say,
                   remote_dir: Path | None = None) -> Callable[[list[int]], None]:
    """fetch(ranks) for RunIoTrace.process: each absent rank's trace, looked for on every
    remote host in the run folder's path there (remote_dir: the same as run_dir, where DLIO
    wrote it), one ssh session per file on the run's connection. The remote command is the
    collection's own (`python3 -`, a script on its stdin, the path in it as a Python literal):
    no shell string is made of the path. say(message) tells what came back."""

    def fetch(ranks: list[int]) -> None:
        remote = [h for h in dict.fromkeys(hosts) if not is_local_host(h)]
        brought = []
        for rank in ranks:
            target = run_dir / TRACE_NAME.format(rank=rank, size=size)
            script = _COPY_SCRIPT.format(path=str((remote_dir or run_dir) / target.name))
            for host in remote:
                if connections.ready(host) is None and _fetch_one(connections.argv(host), script, target):
                    brought.append(f"{rank} from {host}")
                    break
        if brought:
            say(f"I/O trace of rank {', rank '.join(brought)} brought back over ssh into {run_dir}")
    return fetch


_COPY_SCRIPT = "import shutil, sys\nwith open({path!r}, 'rb') as f:\n    shutil.copyfileobj(f, sys.stdout.buffer)\n"


def _fetch_one(ssh_argv: list[str], script: str, target: Path) -> bool:
    """Streams what the remote script prints into target (written whole or not at all);
    whether it came."""
    partial = target.with_name(target.name + ".partial")
    with open(partial, "wb") as out:
        proc = CHILDREN.spawn(ssh_argv, stdin=subprocess.PIPE, stdout=out, stderr=subprocess.DEVNULL)
        try:
            try:
                proc.stdin.write(script.encode())
                proc.stdin.close()
            except BrokenPipeError:  # ssh gave up at once: its exit code says so
                pass
            code = proc.wait(timeout=FETCH_TIMEOUT_S)
        except BaseException as exc:
            CHILDREN.stop(proc, grace_s=2.0)
            partial.unlink(missing_ok=True)
            if isinstance(exc, subprocess.TimeoutExpired):
                return False
            raise
        CHILDREN.forget(proc)
    if code != 0 or partial.stat().st_size == 0:
        partial.unlink(missing_ok=True)
        return False
    partial.replace(target)
    return True
