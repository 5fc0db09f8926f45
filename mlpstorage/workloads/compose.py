"""The workload as DLIO reads it, composed by hydra itself.

DLIO 2.0.0 is a hydra app (`@hydra.main(config_name="config")`) that mlpstorage points at
configs/ with --config-path and gives overrides.py's workload_overrides() on its command line.
workload_config() hands the same folder and the same override strings to hydra's compose API,
so configview, --what-if and the metadata show what DLIO gets by construction, not an
imitation of hydra's merge. What hydra accepts but would change the kind of a workload key
(text where the workload has a number, a value in place of a section or a section in place of
a value) is refused here with one line naming the key.
"""

from __future__ import annotations

import copy
import functools
import math
import threading
from pathlib import Path

from ..errors import UsageError, ValidationError
from ..redaction import REDACTED, is_secret_key
from .overrides import workload_overrides

CONFIG_PATH = Path(__file__).parent / "configs"

# Keys whose value must be a positive number.
POSITIVE = ("dataset.num_files_train", "dataset.num_samples_per_file", "dataset.record_length",
            "reader.batch_size", "train.epochs")

# hydra keeps the configuration folder in a process-wide singleton (GlobalHydra): the context
# manager restores it on leaving, and the lock keeps two threads from swapping it under each other.
_HYDRA = threading.Lock()


@functools.lru_cache(maxsize=32)
def _composed(overrides: tuple[str, ...]) -> dict:
    """DLIO's whole configuration (its hydra node removed) from OVERRIDES, unresolved."""
    try:
        from hydra import compose, initialize_config_dir
        from hydra.errors import HydraException
        from omegaconf import OmegaConf
    except ImportError:
        raise ValidationError("hydra-core, DLIO's configuration library, is not installed: "
                              "run scripts/setup.sh (pip install hydra-core)") from None
    try:
        with _HYDRA, initialize_config_dir(config_dir=str(CONFIG_PATH), version_base=None):
            config = compose(config_name="config", overrides=list(overrides))
    except HydraException as exc:
        raise UsageError(f"--params: hydra refused the overrides: {str(exc).strip().splitlines()[0]}") from None
    return OmegaConf.to_container(config, resolve=False)


def _resolved(overrides: list[str], secrets: list[str]) -> dict:
    """The workload section, interpolations resolved as DLIO's reads resolve them (from the
    configuration's root); the SECRETS keys are REDACTED, never resolved: the launcher does
    not hold the variables that carry them."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    config = copy.deepcopy(_composed(tuple(overrides)))
    for key in secrets:
        *path, last = key.split(".")
        _node(config["workload"], path)[last] = REDACTED
    try:
        return OmegaConf.to_container(OmegaConf.create(config), resolve=True)["workload"]
    except OmegaConfBaseException as exc:
        raise UsageError(f"--params: DLIO could not read the workload: {str(exc).splitlines()[0]}") from None


def _node(config: dict, path: list[str]):
    for part in path:
        config = config[part]
    return config


def workload_config(workload: str, params: dict[str, object]) -> dict:
    """The workload WORKLOAD with PARAMS (dotted keys, e.g. reader.batch_size) as DLIO reads
    it: hydra's composition of the overrides DLIO gets, interpolations resolved; a secret's
    value is REDACTED (DLIO reads it from the environment: overrides.secret_environment).
    A value must keep the kind the workload gives the key (a number stays a number, a
    boolean a boolean, a section a section)."""
    if not (CONFIG_PATH / "workload" / f"{workload}.yaml").exists():
        raise UsageError(f"no workload configuration {workload!r}")
    base = _resolved(workload_overrides(workload, {}), [])
    secrets = [key for key in params if is_secret_key(key)]
    try:
        config, refused = _resolved(workload_overrides(workload, params), secrets), None
    except UsageError as exc:  # said after a key's own problem, which names the key
        config, refused = None, exc
    for key, value in params.items():  # the first key in the order given names the problem
        old = _given(base, key)
        if config is not None:  # (a key below one another key replaced is that key's problem)
            new = str(value) if key in secrets else _given(config, key, lenient=True)  # oc.env gives text
            if new is not _REPLACED:
                _check_kind(key, value, old, new)
    if refused is not None:
        raise refused
    return config


_REPLACED = object()  # a key below a value another key set


def _given(config: dict, key: str, lenient: bool = False):
    """The value CONFIG gives KEY (None when it has none); a key below a value is refused
    unless LENIENT: hydra would replace the value with a section, which DLIO does not read."""
    node = config
    *path, last = key.split(".")
    for part in path:
        node = node.get(part, {})
        if not isinstance(node, dict):
            if lenient:
                return _REPLACED
            raise UsageError(f"--params {key}: {part} is not a section")
    return node.get(last)


def _check_kind(key: str, value: object, old: object, new: object) -> None:
    if isinstance(old, dict):
        raise UsageError(f"--params {key}: {key.rsplit('.', 1)[-1]} is a section; "
                         f"set one of its keys (e.g. {key}.{next(iter(old), 'x')}=...)")
    numeric = isinstance(old, (int, float)) and not isinstance(old, bool)
    if numeric and (isinstance(new, bool) or not isinstance(new, (int, float)) or not math.isfinite(new)):
        raise UsageError(f"--params {key}={value}: expected a number")
    if isinstance(old, bool) and not isinstance(new, bool):
        raise UsageError(f"--params {key}={value}: expected true or false")
    if key in POSITIVE and (isinstance(new, bool) or not isinstance(new, (int, float)) or not 0 < new < math.inf):
        raise UsageError(f"--params {key}={value}: expected a number greater than 0")
