"""Facts from what DLIO writes, as both run layouts hold them: summary.json's numbers and the
workload configuration (dotted keys, ++workload overrides, the model's name)."""

from __future__ import annotations

import math

WORKLOAD_OVERRIDE = "++workload."


def get(config: dict, dotted: str):
    node = config
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def as_int(value) -> int | None:
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return int(value) if is_number(value) else None


def files_read(summary: dict | None, config: dict) -> int | None:
    """The files the run read: the count DLIO reports using, else the configured one."""
    return as_int((summary or {}).get("num_files_train")) or as_int(get(config, "dataset.num_files_train"))


def summary_memory(summary: dict | None) -> float | None:
    """DLIO's host_memory_GB (GiB per host, a list) in bytes, as the existing launcher reads it."""
    values = (summary or {}).get("host_memory_GB")
    if isinstance(values, list) and values and all(is_number(v) for v in values):
        return sum(values) * 2**30
    return float(values) * 2**30 if is_number(values) else None


def summary_cores(summary: dict | None) -> int | None:
    values = (summary or {}).get("host_cpu_count")
    if isinstance(values, list) and values and all(is_number(v) for v in values):
        return int(sum(values))
    return as_int(values)


def training_series(metrics: dict) -> tuple[float, ...]:
    values = metrics.get("train_throughput_samples_per_second")
    return tuple(float(v) for v in values if is_number(v)) if isinstance(values, list) else ()


def overrides_of(argv: list) -> dict[str, str]:
    """The ++workload.KEY=VALUE items of a command line (ours: the executed command)."""
    overrides = {}
    for item in argv:
        if isinstance(item, str) and item.startswith(WORKLOAD_OVERRIDE) and "=" in item:
            key, value = item[len(WORKLOAD_OVERRIDE):].split("=", 1)
            overrides[key] = _unquoted(value)
    return overrides


def _unquoted(value: str) -> str:
    # hydra_value() quotes anything but plain words; show what the user typed
    if len(value) >= 2 and value[0] == value[-1] == "'":
        return value[1:-1].replace("\\'", "'")
    return value


def accelerator_of(items: list[str]) -> str | None:
    """h100 from the 'workload=unet3d_h100' hydra was given."""
    for item in items:
        if item.startswith("workload="):
            _, _, accelerator = item.partition("=")[2].partition("_")
            return accelerator or None
    return None


def model_name(name) -> str | None:
    """DLIO's model names as the launchers know them: llama3_8b, llama_8b -> llama3-8b."""
    if not name:
        return None
    name = str(name)
    if name.startswith("llama_"):
        name = "llama3_" + name[len("llama_"):]
    return name.replace("_", "-")
