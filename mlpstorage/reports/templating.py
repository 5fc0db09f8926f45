"""HTML pages from Jinja2 templates (templates/), with autoescape: every value a template
shows is first made harmless (record.shown: control characters shown escaped, colour
sequences dropped), then HTML-escaped. Only Markup goes in as it is: the Bokeh parts, which
are ours (their data travel as JSON inside them). And the one way a page is written: whole
or not at all."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from ..errors import UsageError
from .record import shown

__all__ = ["Markup", "render_page", "write_html"]


def _finalize(value):
    if isinstance(value, Markup):
        return value
    return "" if value is None else shown(value)


_ENV = Environment(loader=PackageLoader("mlpstorage.reports", "templates"), autoescape=select_autoescape(["html"]),
                   finalize=_finalize, undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                   keep_trailing_newline=True)


def render_page(template: str, **context) -> str:
    """The page templates/<template> makes of context."""
    return _ENV.get_template(template).render(**context)


def write_html(text: str, path: Path) -> Path:
    """Writes through a temporary file in the same folder and a rename, so a reader never sees
    half a page; a folder that cannot be written is one clear error."""
    path = Path(path)
    try:
        handle = tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=path.parent or ".", prefix=f".{path.name}.",
                                             suffix=".tmp", delete=False)
    except OSError as exc:
        raise UsageError(f"{path}: cannot write ({exc.strerror or exc})") from None
    try:
        with handle:
            handle.write(text)
        os.chmod(handle.name, 0o644)
        os.replace(handle.name, path)
    except BaseException as exc:
        Path(handle.name).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise UsageError(f"{path}: cannot write ({exc.strerror or exc})") from None
        raise
    return path
