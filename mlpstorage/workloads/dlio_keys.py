"""The workload keys DLIO 2.0.0 reads: what its LoadConfig (dlio_benchmark/utils/config.py)
looks up in the hydra configuration. A key it does not look up is ignored without a word,
so a --params key outside this table would be recorded as applied while nothing changed.

The table is derived from DLIO's source by derive() and checked in; tests/test_params.py
derives it again from the installed DLIO, so the two cannot drift apart. After a DLIO
upgrade, print the new table with `python -m mlpstorage.workloads.dlio_keys`.

DLIO 2.0.0 reads every key as one value: none is a free-form mapping whose sub-keys it
passes on (storage has only storage_type and storage_root), so nothing below a key is read.
"""

from __future__ import annotations

import ast
from pathlib import Path

DLIO_VERSION = "2.0.0"

# Top-level keys that hold a value rather than a section.
VALUES = ("framework", "model")

SECTIONS = {
    "checkpoint": ("checkpoint_after_epoch", "checkpoint_folder", "checkpoint_mechanism_classname",
                   "epochs_between_checkpoints", "layer_parameters", "model_size", "num_layers",
                   "optimization_groups", "pipeline_parallelism", "steps_between_checkpoints",
                   "tensor_parallelism", "type"),
    "data_reader": ("batch_size", "batch_size_eval", "computation_threads", "data_loader", "data_loader_classname",
                    "data_loader_sampler", "dont_use_mmap", "file_access", "file_shuffle", "multiprocessing_context",
                    "prefetch_size", "preprocess_time", "preprocess_time_stdev", "read_threads", "read_type",
                    "reader_classname", "sample_shuffle", "shuffle_size", "transfer_size"),
    "dataset": ("chunk_size", "compression", "compression_level", "data_folder", "enable_chunking", "file_prefix",
                "format", "generation_buffer_size", "keep_files", "num_files_eval", "num_files_train",
                "num_samples_per_file", "num_subfolders_eval", "num_subfolders_train", "record_length",
                "record_length_resize", "record_length_stdev"),
    "evaluation": ("epochs_between_evals", "eval_after_epoch", "eval_time", "eval_time_stdev"),
    "metric": ("au",),
    "output": ("folder", "log_file"),
    "profiling": ("iostat_devices", "profiler"),
    "reader": ("batch_size", "batch_size_eval", "computation_threads", "data_loader", "data_loader_classname",
               "data_loader_sampler", "dont_use_mmap", "file_access", "file_shuffle", "multiprocessing_context",
               "prefetch_size", "preprocess_time", "preprocess_time_stdev", "read_threads", "read_type",
               "reader_classname", "sample_shuffle", "shuffle_size", "transfer_size"),
    "storage": ("storage_root", "storage_type"),
    "train": ("computation_time", "computation_time_stdev", "epochs", "seed", "seed_change_epoch",
              "total_training_steps"),
    "workflow": ("checkpoint", "debug", "evaluation", "generate_data", "profiling", "train"),
}

# DLIO reads data_reader *instead of* reader when it is present, so one data_reader key would
# silently drop every reader setting of the workload.
REPLACES = {"data_reader": "reader"}


def _literal(node: ast.AST) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def derive(source: str) -> tuple[tuple[str, ...], dict[str, tuple[str, ...]]]:
    """(VALUES, SECTIONS) from the source of DLIO's utils/config.py: every config['key'],
    config['section']['key'] and 'key' in config['section'] in LoadConfig, including those
    read through a variable bound to a section (reader = config['reader'])."""
    [load] = [node for node in ast.walk(ast.parse(source))
              if isinstance(node, ast.FunctionDef) and node.name == "LoadConfig"]
    config = load.args.args[1].arg

    def section_of(node: ast.AST) -> str | None:  # config['section']
        if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) and node.value.id == config:
            return _literal(node.slice)
        return None

    aliases: dict[str, set[str]] = {}  # variable -> the sections bound to it
    for node in ast.walk(load):
        if isinstance(node, ast.Assign) and (section := section_of(node.value)):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    aliases.setdefault(target.id, set()).add(section)

    def sections_of(node: ast.AST) -> set[str]:  # config['section'] or a variable bound to it
        if section := section_of(node):
            return {section}
        return aliases.get(node.id, set()) if isinstance(node, ast.Name) else set()

    top: set[str] = set()
    keys: dict[str, set[str]] = {}
    for node in ast.walk(load):
        if isinstance(node, ast.Subscript):  # config['key'], config['section']['key'], reader['key']
            pair = (node.value, _literal(node.slice))
        elif isinstance(node, ast.Compare) and isinstance(node.ops[0], ast.In):  # 'key' in ...
            pair = (node.comparators[0], _literal(node.left))
        else:
            continue
        container, key = pair
        if key is None:
            continue
        if isinstance(container, ast.Name) and container.id == config:
            top.add(key)
        for section in sections_of(container):
            keys.setdefault(section, set()).add(key)
    values = tuple(sorted(top - set(keys)))
    return values, {section: tuple(sorted(names)) for section, names in sorted(keys.items())}


def installed_source() -> Path:
    """utils/config.py of the DLIO this Python would run (found without importing DLIO)."""
    import importlib.util

    spec = importlib.util.find_spec("dlio_benchmark")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("dlio_benchmark is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "utils" / "config.py"


if __name__ == "__main__":
    import pprint

    found_values, found_sections = derive(installed_source().read_text())
    print(f"VALUES = {found_values!r}\n")
    print("SECTIONS = " + pprint.pformat(found_sections, width=120, sort_dicts=True))
