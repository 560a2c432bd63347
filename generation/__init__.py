"""Greeting and postcard generation: AI/offline text providers and PNG postcard rendering."""

from generation.base import (
    KINDS,
    LANGUAGES,
    TONES,
    GenerationFailed,
    GenerationRequest,
    GenerationResult,
    Provider,
)
from generation.factory import make_provider
from generation.occasions import OCCASIONS, resolve_occasion
from generation.offline import OfflineProvider, pick_title
from generation.openai_compat import OpenAICompatibleProvider
from generation.postcard import render_postcard

__all__ = [
    "KINDS",
    "LANGUAGES",
    "OCCASIONS",
    "TONES",
    "GenerationFailed",
    "GenerationRequest",
    "GenerationResult",
    "OfflineProvider",
    "OpenAICompatibleProvider",
    "Provider",
    "make_provider",
    "pick_title",
    "render_postcard",
    "resolve_occasion",
]
