"""The emitter: spans and structured events for everything a run does."""

from .stream import Emitter, Renderer, current_emitter, use_emitter

__all__ = ["Emitter", "Renderer", "current_emitter", "use_emitter"]
