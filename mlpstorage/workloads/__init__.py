"""The workloads mlpstorage ships: DLIO 2.0.0 configurations written from the MLPerf Storage
v2.0 parameters (configs/workload/*.yaml), and the rules computed from them.

DLIO is pointed at configs/ with --config-path (not --config-dir: with --config-dir, DLIO's
own bundled unet3d/resnet50/cosmoflow files would win over ours).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from ..errors import UsageError
from . import dlio_keys
from .compose import CONFIG_PATH, workload_config

__all__ = ["CONFIG_PATH", "DataSize", "check_params", "key_problem", "load_workload", "parse_params",
           "required_data_size", "workload_config", "workload_name"]


def workload_name(model: str, command: str, accelerator: str = "h100") -> str:
    """{model}_{accelerator} for run, {model}_datagen for datagen (MLPerf Storage naming)."""
    return f"{model}_datagen" if command == "datagen" else f"{model}_{accelerator}"


def load_workload(name: str) -> dict:
    """The workload as DLIO reads it without --params (composed by hydra: compose.py)."""
    return workload_config(name, {})


def _closest(key: str) -> str | None:
    """The key DLIO reads that KEY most likely meant. In a known section, by the name alone,
    anywhere (reader.epochs -> train.epochs), the same section first and a name contained in
    a key counting as close (checkpoint.folder -> checkpoint.checkpoint_folder); otherwise
    the closest whole key (trian.epochs -> train.epochs)."""
    section, _, name = key.partition(".")
    usable = {s: keys for s, keys in dlio_keys.SECTIONS.items() if s not in dlio_keys.REPLACES}
    if section not in usable or not name:
        every = [*dlio_keys.VALUES, *(f"{s}.{k}" for s, keys in usable.items() for k in keys)]
        close = difflib.get_close_matches(key, every, n=1)
        return close[0] if close else None

    def score(candidate: tuple[str, str]) -> float:
        where, known = candidate
        ratio = difflib.SequenceMatcher(None, name, known).ratio()
        if where == section:
            ratio = max(ratio, 1.0 if name in known else 0) + 0.05
        return ratio

    where, known = max(((s, k) for s, keys in usable.items() for k in keys), key=score)
    return f"{where}.{known}" if score((where, known)) >= 0.6 else None


def key_problem(key: str) -> str | None:
    """Why DLIO 2.0.0 would not read the --params KEY as given, or None when it does."""
    section, _, rest = key.partition(".")
    name, _, below = rest.partition(".")
    dlio = f"DLIO {dlio_keys.DLIO_VERSION}"
    if section in dlio_keys.REPLACES:
        instead = dlio_keys.REPLACES[section]
        return (f"{dlio} reads {section} in place of the workload's whole {instead} section, "
                f"dropping its settings; use {instead}.{rest or '...'}")
    if section in dlio_keys.VALUES:
        return f"{dlio} reads {section} as one value, nothing below it" if rest else None
    keys = dlio_keys.SECTIONS.get(section, ())
    if keys and not rest:
        return f"{section} is a section; set one of its keys (e.g. {section}.{keys[0]}=...)"
    if name in keys:
        return f"{dlio} reads {section}.{name} as one value, nothing below it" if below else None
    if close := _closest(key):
        hint = f"did you mean {close}?"
    elif keys:
        hint = f"{section} has: {', '.join(keys)}"
    else:
        hint = f"sections: {', '.join(dlio_keys.SECTIONS)}; values: {', '.join(dlio_keys.VALUES)}"
    return f"{dlio} reads no such key ({hint})"


def check_params(params: dict[str, object], allow_invalid: bool = False) -> list[str]:
    """Refuses a key DLIO would not read (one line naming it, with the likeliest key meant);
    with allow_invalid, returns those lines as warnings instead (the key is passed on)."""
    problems = [f"--params {key}: {problem}" for key in params if (problem := key_problem(key))]
    if problems and not allow_invalid:
        raise UsageError(problems[0])
    return [f"{problem}; passed to DLIO anyway (--allow-invalid-params)" for problem in problems]


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
