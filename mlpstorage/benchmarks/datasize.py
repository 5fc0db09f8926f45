"""`training datasize` and `checkpointing datasize`: commands that only compute. Each is kept as
a run of its own (a run span, its events.jsonl and its record in
<results-dir>/<benchmark>/<model>/datasize/<YYYYMMDD_HHMMSS>/) and says what it found as
result lines, ending with the command to run next."""

from __future__ import annotations

import contextlib
import datetime
from pathlib import Path
from typing import Iterator

from ..emitter import Emitter
from ..models import LLAMA3
from ..redaction import redact
from ..reports.record import write_run_record
from ..results import check_writable, claim_run_dir, run_dir_base
from .checkpointing import checkpoint_size, run_hint
from .training import datagen_hint

GIB = 2**30


@contextlib.contextmanager
def computed_run(emitter: Emitter, results_dir: Path, benchmark: str, model: str, arguments: dict) -> Iterator[dict]:
    """The run of a command that only computes; yields the results dict the caller fills in,
    kept in the run's record with the arguments (secrets redacted)."""
    check_writable(results_dir, "results directory")
    stamp = datetime.datetime.now().strftime("%Y%m%d_%H%M%S")
    run_dir = claim_run_dir(run_dir_base(results_dir, benchmark, model, "datasize"), stamp)
    run_id = f"{benchmark}-{model}-datasize-{run_dir.name}"
    attributes = {"mlpstorage.benchmark": benchmark, "mlpstorage.model": model, "mlpstorage.command": "datasize",
                  "mlpstorage.run_id": run_id, "mlpstorage.results_dir": str(run_dir)}
    results: dict = {}
    with emitter.run(f"mlpstorage {benchmark} datasize", attributes):
        emitter.attach_recording(run_dir)
        yield results
        write_run_record(run_dir, benchmark, {"benchmark": benchmark, "model": model, "command": "datasize",
                                              "run_id": run_id, "arguments": arguments, "results": results})


def training_datasize(emitter: Emitter, results_dir: Path, model: str, size, arguments: dict, data_dir: Path,
                      max_accelerators: int, params: dict) -> None:
    """size: workloads.required_data_size() of the run workload with the user's --params."""
    with computed_run(emitter, results_dir, "training", model, arguments) as results:
        results.update(files=size.files, bytes=size.total_bytes, files_for_memory=size.files_for_memory,
                       files_for_steps=size.files_for_steps)
        emitter.info(f"{model}: {size.files_for_memory} files for 5x client memory, "
                     f"{size.files_for_steps} files for 500 steps of {max_accelerators} accelerators")
        emitter.result(f"Files needed: {size.files}", files=size.files)
        emitter.result(f"Disk space needed: {size.total_gib:.2f} GiB", bytes=size.total_bytes)
        others = [f"{k}={v}" for k, v in redact(params).items() if k != "dataset.num_files_train"]
        emitter.result(f"Next: {datagen_hint(model, data_dir, max_accelerators, size.files, others)}")


def checkpointing_datasize(emitter: Emitter, results_dir: Path, model: str, processes: int, num_checkpoints: int,
                           memory_gib: float, hosts: int, checkpoint_folder: Path) -> None:
    arch = LLAMA3[model]
    size = checkpoint_size(arch, processes, num_checkpoints, memory_gib, hosts)
    arguments = {"processes": processes, "num_checkpoints": num_checkpoints, "client_host_memory_in_gb": memory_gib,
                 "num_client_hosts": hosts}
    with computed_run(emitter, results_dir, "checkpointing", model, arguments) as results:
        results.update(checkpoint_bytes=size.checkpoint_bytes, bytes_per_rank=size.shard_bytes,
                       disk_bytes=size.disk_bytes, bytes_per_host=size.per_host_bytes,
                       memory_rule_met=size.exceeds_memory)
        emitter.info(f"{model}: {arch.parameters():,} parameters x 14 bytes (fp16 weights, fp32 master "
                     f"weights and two Adam moments), split across {processes} ranks")
        emitter.result(f"Checkpoint size: {size.shard_bytes / GIB:.2f} GiB per rank, "
                       f"{size.checkpoint_bytes / GIB:.2f} GiB for {processes} ranks",
                       bytes=size.checkpoint_bytes, bytes_per_rank=size.shard_bytes, processes=processes)
        emitter.result(f"Disk space needed: {size.disk_bytes / GIB:.2f} GiB for {num_checkpoints} checkpoints",
                       bytes=size.disk_bytes)
        least = " at least" if processes % hosts else ""
        writes = f"each client host writes{least} {size.per_host_bytes / GIB:.2f} GiB of every checkpoint"
        memory = f"{memory_gib:g} GiB of memory"
        emitter.result(f"Client memory rule holds: {writes}, more than its {memory}" if size.exceeds_memory else
                       f"Client memory rule does not hold: {writes}, not more than its {memory} "
                       "(its page cache can keep what it writes)",
                       bytes_per_host=size.per_host_bytes, memory_rule_met=size.exceeds_memory)
        emitter.result(f"Next: {run_hint(model, checkpoint_folder, processes, num_checkpoints)}")
