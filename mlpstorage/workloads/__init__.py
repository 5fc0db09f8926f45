"""The workloads mlpstorage ships: DLIO 2.0.0 configurations written from the MLPerf Storage
v2.0 parameters (configs/workload/*.yaml), and the rules computed from them.

DLIO is pointed at configs/ with --config-path (not --config-dir: with --config-dir, DLIO's
own bundled unet3d/resnet50/cosmoflow files would win over ours).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import yaml

from ..errors import UsageError

CONFIG_PATH = Path(__file__).parent / "configs"



def workload_name(model: str, command: str, accelerator: str = "h100") -> str:
    """{model}_{accelerator} for run, {model}_datagen for datagen (MLPerf Storage naming)."""
    return f"{model}_datagen" if command == "datagen" else f"{model}_{accelerator}"


def load_workload(name: str) -> dict:
    path = CONFIG_PATH / "workload" / f"{name}.yaml"
    if not path.exists():
        raise UsageError(f"no workload configuration {name!r}")
    return yaml.safe_load(path.read_text())


def _coerce(text):
    """A --params value as YAML reads it (16 -> int, 0.5 -> float, True -> bool, else str)."""
    if not isinstance(text, str):
        return text
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    return value if isinstance(value, (int, float, bool, str)) or value is None else text


# DLIO 2.0.0's top-level configuration sections (a --params key must start with one).
SECTIONS = ("model", "framework", "workflow", "dataset", "reader", "train", "evaluation", "checkpoint", "output",
            "profiling", "metric")
# Keys whose value must be a positive number.
POSITIVE = ("dataset.num_files_train", "dataset.num_samples_per_file", "dataset.record_length",
            "reader.batch_size", "train.epochs")


def apply_params(config: dict, params: dict[str, object]) -> dict:
    """The workload with dotted overrides applied, as DLIO will see it. A value must keep the
    kind the workload gives the key (a number stays a number, a section stays a section)."""
    resolved = copy.deepcopy(config)
    for key, value in params.items():
        node = resolved
        *path, last = key.split(".")
        if path and path[0] not in SECTIONS or not path and last not in SECTIONS:
            raise UsageError(f"--params {key}: unknown section {key.split('.')[0]!r} (one of {', '.join(SECTIONS)})")
        for part in path:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise UsageError(f"--params {key}: {part} is not a section")
        new, old = _coerce(value), node.get(last)
        if isinstance(old, dict):
            raise UsageError(f"--params {key}: {last} is a section; set one of its keys (e.g. {key}.{next(iter(old), 'x')}=...)")
        numeric = isinstance(old, (int, float)) and not isinstance(old, bool)
        if numeric and (isinstance(new, bool) or not isinstance(new, (int, float))):
            raise UsageError(f"--params {key}={value}: expected a number")
        if key in POSITIVE and (not isinstance(new, (int, float)) or new <= 0):
            raise UsageError(f"--params {key}={value}: expected a number greater than 0")
        node[last] = new
    return resolved


def parse_params(items: list[str]) -> dict[str, str]:
    """key=value pairs (DLIO keys relative to the workload, e.g. reader.batch_size=2)."""
    params = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key or not all(part.replace("_", "a").isalnum() for part in key.split(".")):
            raise UsageError(f"--params {item!r}: expected key=value with a dotted key such as reader.batch_size=2")
        if not value.strip():
            raise UsageError(f"--params {item!r}: no value after '='")
        params[key] = value
    return params


@dataclass(frozen=True)
class DataSize:
    files: int
    files_for_memory: int
    files_for_steps: int
    file_size_bytes: float
    total_bytes: float

    @property
    def total_gib(self) -> float:
        return self.total_bytes / 2**30


def required_data_size(config: dict, memory_per_host_gib: float, client_hosts: int, max_accelerators: int) -> DataSize:
    """MLPerf Storage's rule: enough files that the data set is 5x the clients' memory and
    that 500 steps of every accelerator find fresh samples, whichever is larger (each
    quotient rounded down)."""
    dataset, reader = config["dataset"], config["reader"]
    samples_per_file = dataset["num_samples_per_file"]
    file_size = samples_per_file * dataset["record_length"]
    total_memory = memory_per_host_gib * 2**30 * client_hosts
    for_memory = int(5 * total_memory // file_size)
    for_steps = int(500 * max_accelerators * reader["batch_size"] // samples_per_file)
    files = max(for_memory, for_steps)
    return DataSize(files, for_memory, for_steps, file_size, files * file_size)
