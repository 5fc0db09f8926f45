"""How a workload value reaches DLIO, and what DLIO then holds.

mlpstorage passes each value as a hydra override (`++workload.KEY=VALUE`). Two readers see it
before DLIO does: hydra's override grammar, then omegaconf, which resolves `${...}`
interpolations when DLIO reads the key. hydra_value() writes a value so that both give back
exactly the text given; as_dlio_reads() is the value DLIO then holds (a number, a boolean,
None or that text), which is what the resolved configuration and the metadata record.
"""

from __future__ import annotations

import functools
import re

from ..errors import ValidationError

# Passed unquoted, so hydra's grammar types it (12 -> int, 1e-3 -> float, true -> bool,
# null -> None, off -> 'off'). ASCII only: hydra's grammar refuses other letters unquoted.
_PLAIN = re.compile(r"[\w./:+@-]*", re.ASCII)
# omegaconf reads "\${" as a literal "${", and "\\" before "${" as one backslash.
_INTERPOLATION = re.compile(r"(\\*)\$\{")
# In hydra's quoted strings, backslashes are literal except a run before a quote (or the
# closing quote), which reads as half as many.
_BEFORE_QUOTE = re.compile(r"(\\*)('|\Z)")


def hydra_value(value: object) -> str:
    """A value as hydra's override grammar and omegaconf read it back unchanged: plain paths
    and numbers as they are, anything else single-quoted, with its quotes and any "${"
    escaped (DLIO gets "dlio-${oc.env:TAG}.log" as that text, not the variable's value)."""
    text = str(value)
    if _PLAIN.fullmatch(text):
        return text
    text = _INTERPOLATION.sub(lambda m: m.group(1) * 2 + "\\${", text)
    return "'" + _BEFORE_QUOTE.sub(lambda m: m.group(1) * 2 + ("\\'" if m.group(2) else ""), text) + "'"


@functools.cache
def _parser():
    try:
        from hydra.core.override_parser.overrides_parser import OverridesParser
    except ImportError:
        raise ValidationError("hydra-core, DLIO's configuration library, is not installed: "
                              "run scripts/setup.sh (pip install hydra-core)") from None
    return OverridesParser.create()


def as_dlio_reads(value: object) -> object:
    """The value DLIO's configuration holds for a --params value: a plain one typed by hydra's
    grammar, any other the text itself (hydra_value quotes it)."""
    if not isinstance(value, str) or not _PLAIN.fullmatch(value):
        return value
    return _parser().parse_override(f"key={value}").value()
