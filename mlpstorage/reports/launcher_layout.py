"""A run of the existing launcher (its v2.0 layout: `dlio_config/config.yaml`,
`dlio_config/overrides.yaml`, `summary.json` and a `*_metadata.json`) as RunRecord's fields,
read as its reportgen reads a run: the benchmark and command from DLIO's workflow flags, the
model from model.name, the overrides from overrides.yaml, the numbers from summary.json.
Beyond it: when summary.json lacks the hosts' memory, its metadata's total_mem_kB."""

from __future__ import annotations

from ..redaction import redact
from . import dlio_facts as dlio


def launcher_fields(metadata: dict, summary: dict, composed, items) -> dict:
    """RunRecord's fields but its folder, id and layout, from the parsed files: composed
    (dlio_config/config.yaml) and items (dlio_config/overrides.yaml)."""
    config = redact(composed.get("workload", composed) if isinstance(composed, dict) else {})
    if not isinstance(config, dict):
        config = {}
    items = [str(i) for i in items] if isinstance(items, list) else []
    workflow = config.get("workflow") or {}
    generate, train, checkpoint = (bool(workflow.get(k)) for k in ("generate_data", "train", "checkpoint"))
    if train or generate:
        benchmark, command = "training", "run" if train else "datagen"
    elif checkpoint:
        benchmark, command = "checkpointing", "checkpointing"
    else:
        benchmark, command = metadata.get("benchmark_type"), None
    args = metadata.get("args") or {}
    model = dlio.get(config, "model.name") if isinstance(config.get("model"), dict) else config.get("model")
    hosts = args.get("hosts") or ()
    if isinstance(hosts, str):
        hosts = hosts.split(",")
    hosts = tuple(str(h) for h in hosts if h)
    memory_kb = metadata.get("total_mem_kB")
    checkpoints = config.get("checkpoint") or {}
    is_checkpointing = benchmark == "checkpointing"
    return dict(
        benchmark=benchmark,
        model=dlio.model_name(model),
        command=command,
        accelerator=dlio.accelerator_of(items) or args.get("accelerator_type") if command == "run" else None,
        processes=dlio.as_int(summary.get("num_accelerators")) or dlio.as_int(args.get("num_processes")),
        hosts=hosts,
        num_hosts=dlio.as_int(summary.get("num_hosts")) or len(hosts) or None,
        overrides=redact(dlio.overrides_of(items)),
        config=config,
        num_files=dlio.files_read(summary, config),
        client_memory_bytes=dlio.summary_memory(summary) or (float(memory_kb) * 1024 if dlio.is_number(memory_kb)
                                                             else None),
        total_cores=dlio.summary_cores(summary),
        metrics=dict(summary.get("metric") or {}),
        start=summary.get("start") or metadata.get("run_datetime"),
        status="ok",
        division=metadata.get("verification"),
        checkpoints_written=dlio.as_int(checkpoints.get("num_checkpoints_write")) if is_checkpointing else None,
        checkpoints_read=dlio.as_int(checkpoints.get("num_checkpoints_read")) if is_checkpointing else None,
        throughput_series=dlio.training_series(summary.get("metric") or {}),
        throughput_unit="samples/s",
    )
