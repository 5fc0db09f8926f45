"""How a workload value reaches DLIO: the hydra overrides on its command line.

mlpstorage passes each value as a hydra override (`++workload.KEY=VALUE`). Two readers see it
before DLIO does: hydra's override grammar, then omegaconf, which resolves `${...}`
interpolations when DLIO reads the key. hydra_value() writes a value so that both give back
exactly the text given (what DLIO then holds is composed by hydra itself: compose.py).

A secret's value (a key redaction.is_secret_key names) is on no command line and in no file:
its override is `${oc.env:MLPSTORAGE_SECRET_<n>}`, which omegaconf resolves in the rank when
DLIO reads the key, and secret_environment() is the environment that carries the value (mpirun
forwards it by name with -x). hydra saves the overrides and the configuration it composed in
the run folder, so it saves the reference, never the value.
"""

from __future__ import annotations

import re

from ..redaction import is_secret_key

# Passed unquoted, so hydra's grammar types it (12 -> int, 1e-3 -> float, true -> bool,
# null -> None, off -> 'off'). ASCII only: hydra's grammar refuses other letters unquoted.
_PLAIN = re.compile(r"[\w./:+@-]*", re.ASCII)
# omegaconf reads "\${" as a literal "${", and "\\" before "${" as one backslash.
_INTERPOLATION = re.compile(r"(\\*)\$\{")
# In hydra's quoted strings, backslashes are literal except a run before a quote (or the
# closing quote), which reads as half as many.
_BEFORE_QUOTE = re.compile(r"(\\*)('|\Z)")

SECRET_VARIABLE = "MLPSTORAGE_SECRET_{}"


def hydra_value(value: object) -> str:
    """A value as hydra's override grammar and omegaconf read it back unchanged: plain paths
    and numbers as they are, anything else single-quoted, with its quotes and any "${"
    escaped (DLIO gets "dlio-${oc.env:TAG}.log" as that text, not the variable's value)."""
    text = str(value)
    if _PLAIN.fullmatch(text):
        return text
    text = _INTERPOLATION.sub(lambda m: m.group(1) * 2 + "\\${", text)
    return "'" + _BEFORE_QUOTE.sub(lambda m: m.group(1) * 2 + ("\\'" if m.group(2) else ""), text) + "'"


def _secret_variables(values: dict[str, object]) -> dict[str, str]:
    """Each secret key of VALUES -> the variable that carries its value, numbered in order."""
    secret = [key for key in values if is_secret_key(key)]
    return {key: SECRET_VARIABLE.format(n) for n, key in enumerate(secret)}


def secret_environment(values: dict[str, object]) -> dict[str, str]:
    """The environment that carries the secret values of VALUES to DLIO (MLPSTORAGE_SECRET_<n>:
    value), for workload_overrides() to refer to; mpirun exports it by name (-x NAME)."""
    return {name: str(values[key]) for key, name in _secret_variables(values).items()}


def workload_overrides(workload: str, values: dict[str, object]) -> list[str]:
    """The hydra overrides that give DLIO the workload WORKLOAD with VALUES (dotted keys below
    the workload, e.g. reader.batch_size): `workload=NAME`, then `++workload.KEY=VALUE` for
    each, a secret's value as a reference to its variable in secret_environment()."""
    variables = _secret_variables(values)
    overrides = [f"workload={workload}"]
    for key, value in values.items():
        text = f"${{oc.env:{variables[key]}}}" if key in variables else hydra_value(value)
        overrides.append(f"++workload.{key}={text}")
    return overrides
