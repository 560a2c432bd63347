"""Sign in with Google and VK ID: token verification against the providers (imports nothing from the project)."""

from __future__ import annotations

from collections.abc import Iterable

from oauth.errors import InvalidProviderToken, ProviderError, ProviderUnavailable
from oauth.google import DEFAULT_JWKS_URL, GoogleKeys, GoogleVerifier
from oauth.identity import ProviderIdentity
from oauth.transport import HttpClient
from oauth.vk import VkConfig, VkIdClient

PROVIDERS = ("google", "vk")


class OAuthProviders:
    """The process's sign-in providers over one shared HTTP session; a provider is None when not configured."""

    def __init__(self, *, google_client_ids: Iterable[str] = (), google_jwks_url: str = DEFAULT_JWKS_URL,
                 vk: VkConfig | None = None, timeout_s: float = 10.0) -> None:
        self.http = HttpClient(timeout_s)
        client_ids = tuple(c for c in google_client_ids if c)
        self.google = GoogleVerifier(client_ids, GoogleKeys(self.http, google_jwks_url)) if client_ids else None
        self.vk = VkIdClient(vk, self.http) if vk is not None and vk.client_id else None

    def configured(self, provider: str) -> bool:
        """True when this provider has its client id(s) set."""
        return getattr(self, provider, None) is not None if provider in PROVIDERS else False

    async def close(self) -> None:
        """Close the shared HTTP session."""
        await self.http.close()


__all__ = [
    "PROVIDERS",
    "GoogleKeys",
    "GoogleVerifier",
    "HttpClient",
    "InvalidProviderToken",
    "OAuthProviders",
    "ProviderError",
    "ProviderIdentity",
    "ProviderUnavailable",
    "VkConfig",
    "VkIdClient",
]
