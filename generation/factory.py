"""Choice of provider from settings: the remote model when an API key is set, offline templates otherwise."""

from __future__ import annotations

import math

import aiohttp

from generation.base import Provider
from generation.offline import OfflineProvider
from generation.openai_compat import DEFAULT_API_URL, DEFAULT_MODEL, OpenAICompatibleProvider


def make_provider(
    api_url: str | None,
    api_key: str | None,
    model: str | None,
    timeout_s: float,
    session: aiohttp.ClientSession | None = None,
) -> Provider:
    """Build the provider for AI_API_URL / AI_API_KEY / AI_MODEL; a blank key selects offline templates.

    Local LLM servers that need no key still need some non-blank AI_API_KEY to be selected.
    """
    key = (api_key or "").strip()
    if not key:
        return OfflineProvider()
    if not (isinstance(timeout_s, (int, float)) and math.isfinite(timeout_s) and timeout_s > 0):
        raise ValueError("timeout_s must be a positive number of seconds")
    return OpenAICompatibleProvider(
        api_url=(api_url or "").strip() or DEFAULT_API_URL,
        api_key=key,
        model=(model or "").strip() or DEFAULT_MODEL,
        timeout_s=float(timeout_s),
        session=session,
    )
