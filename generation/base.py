"""Core types shared by every generation provider: request, result, failure and the Provider protocol."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

KINDS = ("greeting", "card")
LANGUAGES = ("ru", "en")
TONES = ("warm", "formal", "funny", "romantic", "short")

FailureReason = Literal[
    "timeout",
    "network",
    "upstream_error",
    "malformed_response",
    "empty",
    "content_filter",
]

# Users and the mobile app send tone names in either language; anything unknown falls back to "warm".
_TONE_ALIASES = {
    "warm": "warm", "friendly": "warm", "kind": "warm", "тёплый": "warm", "теплый": "warm",
    "дружеский": "warm", "душевный": "warm",
    "formal": "formal", "official": "formal", "business": "formal", "официальный": "formal",
    "деловой": "formal", "формальный": "formal",
    "funny": "funny", "humorous": "funny", "fun": "funny", "смешной": "funny",
    "шуточный": "funny", "весёлый": "funny", "веселый": "funny", "юмор": "funny",
    "romantic": "romantic", "love": "romantic", "романтичный": "romantic",
    "романтический": "romantic", "нежный": "romantic",
    "short": "short", "brief": "short", "короткий": "short", "краткий": "short",
}


@dataclass(frozen=True)
class GenerationRequest:
    """What the customer asked for; fields are raw user strings and are sanitised by providers."""

    kind: str = "greeting"
    occasion: str = ""
    recipient_name: str | None = None
    tone: str | None = None
    language: str = "ru"
    details: str | None = None
    # The backend passes its request key here so a retried request reproduces the same offline text.
    seed: int | str | None = None


@dataclass(frozen=True)
class GenerationResult:
    """A finished greeting: body text, a short title for cards, and who produced it."""

    text: str
    title: str
    provider: str
    model: str


class GenerationFailed(Exception):
    """A provider could not produce text; `retryable` tells the caller whether another attempt may help."""

    def __init__(self, reason: FailureReason, retryable: bool, detail: str = "", status: int | None = None) -> None:
        self.reason = reason
        self.retryable = retryable
        self.detail = detail
        self.status = status  # upstream HTTP status for "upstream_error", else None
        message = f"generation failed: {reason}" + (f" ({detail})" if detail else "")
        super().__init__(message)


@runtime_checkable
class Provider(Protocol):
    """A source of greeting texts (remote LLM or built-in templates)."""

    name: str

    async def generate(self, request: GenerationRequest) -> GenerationResult:
        """Produce a greeting for the request or raise GenerationFailed."""
        ...

    async def close(self) -> None:
        """Release network resources owned by the provider."""
        ...


def normalize_language(language: object) -> str:
    """Map any language value to "ru" or "en" (Russian is the product default)."""
    value = str(language or "").strip().lower()
    return "en" if value.startswith("en") else "ru"


def normalize_tone(tone: object) -> str:
    """Map a tone name in Russian or English to one of TONES, defaulting to "warm"."""
    value = " ".join(str(tone or "").strip().lower().split())
    return _TONE_ALIASES.get(value, "warm")


def normalize_kind(kind: object) -> str:
    """Map a kind value to one of KINDS, defaulting to "greeting"."""
    value = str(kind or "").strip().lower()
    return value if value in KINDS else "greeting"
