"""The emitter: spans and structured events for everything a run does.

`mlpstorage.emitter.events` (the schema) is standard library only; the rest (structlog,
OpenTelemetry) is imported when first used, so an MPI rank that needs only the schema starts fast.
"""

__all__ = ["Emitter", "Renderer", "SpinnerHandle", "StageProgress", "current_emitter", "use_emitter"]


def __getattr__(name: str):
    if name == "Renderer":
        from .fanout import Renderer

        return Renderer
    if name in ("SpinnerHandle", "StageProgress"):
        from . import handles

        return getattr(handles, name)
    if name in __all__:
        from . import core

        return getattr(core, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
