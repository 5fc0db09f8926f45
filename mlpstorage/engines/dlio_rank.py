"""What each MPI rank runs: `python -m mlpstorage.engines.dlio_rank <DLIO arguments>`.

Two jobs, both impossible from outside the rank:

1. DLIO 2.0.0 imports tensorflow unconditionally (its profiler factory imports the
   tensorboard profiler at module level), so a pytorch workload dies without tensorflow.
   If no real tensorflow can be imported, an empty module stands in for it; DLIO only
   touches tensorflow's attributes for tensorflow workloads or the tensorboard profiler.
   Doing this in-process (rather than an empty package on PYTHONPATH) never shadows a real
   tensorflow and needs no directory on every host.
2. The rank says who and where it is as it starts (ranks/process-<rank>.json: host and pid),
   so the launcher's stall watch can name it and record its stack (mlpstorage/stalls/).
3. The rank's own work joins the launcher's trace: a span parented to TRACEPARENT is written
   as a task.finished event to $MLPSTORAGE_RANK_EVENTS/rank-<N>.json, which the launcher
   adopts into its event stream (and so into events.jsonl and the OTLP export). Ranks on
   other hosts reach that folder only if the results directory is on a shared file system.

Kept to the standard library (plus DLIO and the schema module, itself standard library only) so that a rank starts as fast as DLIO alone.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import os
import random
import socket
import sys
import time
import types

from mlpstorage.emitter import events
from mlpstorage.engines.parent_death import allow_tracing_by, die_with_parent
from mlpstorage.emitter.rank_process import write_rank_process


def install_tensorflow_stub() -> bool:
    if "tensorflow" in sys.modules or importlib.util.find_spec("tensorflow") is not None:
        return False
    stub = types.ModuleType("tensorflow")
    stub.__spec__ = importlib.machinery.ModuleSpec("tensorflow", loader=None)
    stub.__doc__ = "empty stand-in inserted by mlpstorage (tensorflow is not installed)"
    sys.modules["tensorflow"] = stub
    return True


def _rank() -> int:
    for name in ("OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK"):
        if os.environ.get(name, "").isdigit():
            return int(os.environ[name])
    return 0


def rank_span_event(traceparent: str, rank: int, start_ns: int, end_ns: int, error: str | None) -> dict | None:
    """The task.finished event for this rank's span, or None without a valid parent."""
    parent = events.parse_traceparent(traceparent)
    if parent is None:
        return None
    trace_id, parent_span_id = parent
    attributes = {events.KIND: "task", "mlpstorage.rank": rank, "host.name": socket.gethostname(),
                  "process.pid": os.getpid()}
    return events.span_finished(name=f"dlio rank {rank}", trace_id=trace_id,
                                span_id=events.span_id_hex(random.getrandbits(64) or 1), parent_span_id=parent_span_id,
                                attributes=attributes, start_unix_nano=start_ns, end_unix_nano=end_ns, error=error)


def main() -> int:
    start_ns = time.time_ns()
    die_with_parent()  # if mpirun goes (the launcher was killed), this rank goes too
    if os.environ.get("MLPSTORAGE_RANK_EVENTS"):  # who and where this rank is, for the stall watch
        write_rank_process(os.environ["MLPSTORAGE_RANK_EVENTS"], _rank())
    if os.environ.get("MLPSTORAGE_LAUNCHER_PID", "").isdigit():  # its py-spy may read this rank's stacks
        allow_tracing_by(int(os.environ["MLPSTORAGE_LAUNCHER_PID"]))
    install_tensorflow_stub()
    error = None
    code = 0
    try:
        from dlio_benchmark.main import main as dlio_main

        sys.argv[0] = "dlio_benchmark"
        dlio_main()
    except SystemExit as exc:  # hydra exits with a code on bad configuration
        code = exc.code if isinstance(exc.code, int) else 1
        error = f"exit code {code}" if code else None
    except BaseException as exc:
        error = f"{type(exc).__name__}: {exc}"
        raise
    finally:
        write_rank_span(start_ns, error)
    return code


def write_rank_span(start_ns: int, error: str | None) -> None:
    """Best effort: the folder is on the launcher's disk, which a rank on another host sees
    only through a shared file system. A rank span that cannot be written is lost, never the
    rank's exit code."""
    folder, parent = os.environ.get("MLPSTORAGE_RANK_EVENTS"), os.environ.get("TRACEPARENT", "")
    event = rank_span_event(parent, _rank(), start_ns, time.time_ns(), error) if folder else None
    if event is None:
        return
    try:
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, f"rank-{_rank()}.json"), "w") as handle:
            json.dump(event, handle)
    except OSError:
        pass


if __name__ == "__main__":
    raise SystemExit(main())
