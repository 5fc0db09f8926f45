"""Records tests/golden/{ok,failed}.events.jsonl: a run through the real emitter (with real timing).

    python tests/golden/record.py

Run it only when the event schema changes, then `pytest --update-goldens` and review the diff.
The recordings it writes (ok, failed) are schema 1 (before batched output): they also prove that
recordings of that version still replay.
"""

import time
from pathlib import Path

from mlpstorage.emitter import Emitter
from renderers.jsonl import JsonlRenderer

HERE = Path(__file__).parent


def scripted_run(emitter: Emitter, fail: bool) -> None:
    stages = ["Validating environment", "Collecting cluster info", "Running benchmark", "Processing results"]
    with emitter.run("mlpstorage training run", {"mlpstorage.benchmark": "training", "mlpstorage.model": "unet3d",
                                                  "mlpstorage.command": "run", "mlpstorage.hosts": ["node1", "node2"],
                                                  "mlpstorage.run_id": "golden"}):
        with emitter.stages(stages) as advance_stage:
            emitter.info("Environment validation passed")
            advance_stage()
            with emitter.spinner("Collecting cluster info (2 hosts)...") as spinner:
                spinner.set_description("Collecting via SSH...")
                time.sleep(0.12)
                spinner.update(completed=2)
            emitter.warning("node2 differs from node1: 64 GiB memory instead of 128 GiB")
            advance_stage()
            emitter.status("Running dlio_benchmark on 2 hosts (8 processes)")
            emitter.output("[INFO] Starting epoch 1 ...", stream="stderr", source="dlio")
            with emitter.span("epoch 1/2"):
                time.sleep(0.05)
            emitter.output("[INFO] Ending epoch 1 ...", stream="stderr", source="dlio")
            with emitter.spinner("Checkpointing", total=4) as spinner:
                for _ in range(4):
                    spinner.update()
            if fail:
                raise RuntimeError("mpirun exited with code 1")
            advance_stage()
            emitter.result("train_au_percentage: 98.12")
            emitter.result("train_throughput_samples_per_second: 1234.5")
            advance_stage()


for name, fail in (("ok", False), ("failed", True)):
    path = HERE / f"{name}.events.jsonl"
    emitter = Emitter([JsonlRenderer.to_file(path)])
    try:
        scripted_run(emitter, fail)
    except RuntimeError:
        pass
    emitter.close()
    print("wrote", path)
