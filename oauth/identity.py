"""What a provider vouches for after verification: who the user is there, and an email it confirmed."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ProviderIdentity:
    """A verified provider account; `email` is set only when the provider vouches for it."""

    provider: str  # "google" | "vk"
    subject: str  # Google's `sub`, VK's user id: stable, never reassigned
    email: str | None = None  # lowercased; None when absent or unverified
