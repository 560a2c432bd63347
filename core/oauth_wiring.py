"""Builds the sign-in providers (Google, VK ID) from settings; one shared HTTP session for both."""

from __future__ import annotations

from core.settings import Settings
from oauth import OAuthProviders, VkConfig


def create_oauth_providers(settings: Settings) -> OAuthProviders:
    """The process's providers; each is None (404 provider_not_configured) until its client id is set."""
    vk = None
    if settings.vk_client_id:
        vk = VkConfig(
            client_id=settings.vk_client_id.strip(),
            id_url=settings.vk_id_api_url,
            api_url=settings.vk_api_url,
            api_version=settings.vk_api_version,
            service_token=settings.vk_service_token,
            redirect_uris=settings.vk_redirect_uris,
        )
    return OAuthProviders(google_client_ids=settings.google_client_ids, google_jwks_url=settings.google_jwks_url,
                          vk=vk, timeout_s=settings.oauth_timeout_s)
