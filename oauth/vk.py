"""VK ID: authorization code + PKCE exchanged server-side, or an SDK access token checked with VK.

Confirmed with the search tool:

- Code exchange ``POST {VK_ID_API_URL}/oauth2/auth`` with ``grant_type=authorization_code``, ``code``,
  ``code_verifier``, ``client_id``, ``device_id``, ``redirect_uri``, ``state``; user info ``POST
  /oauth2/user_info`` with ``client_id`` and ``access_token``; ``POST /oauth2/public_info`` takes an
  ``id_token`` (VK's own web SDK, VKCOM/vkid-web-sdk src/auth/auth.ts ``exchangeCode``/``userInfo``/
  ``publicInfo``; VK ID's API reference at id.vk.com/about/business/go/docs/.../api-description).
- Current domain: the SDK's 2.6 bundle builds ``id.vk.ru``/``api.vk.ru`` (2.0 used ``id.vk.com``).
- Token answer (src/auth/types.ts ``TokenResult``): ``access_token, refresh_token, id_token, token_type,
  expires_in, user_id, state, scope``; errors are ``{error, error_description, state}``. So VK *does* return
  an ``id_token`` (an RS256 JWT per third-party notes) — we do not need it: ``user_info``, asked server-side
  with the fresh access token, is authoritative. ``public_info`` returns *masked* data (``el***@gmail.com``),
  useless for identity.
- ``user_info`` answers ``{user: {user_id, first_name, last_name, phone, avatar, email}}`` with only the
  granted fields (``Partial<UserData>``): ``email`` is absent unless the ``email`` scope was granted and the
  user has one. Access tokens live one hour (VK ID docs, "Access token").
- No client secret: the official web SDK exchanges the code with ``client_id`` + ``code_verifier`` alone
  (a public PKCE client), so ``VK_CLIENT_SECRET`` is not needed.
- Legacy check of a user token: ``api.vk.com/method/secure.checkToken`` with ``token``, the app's
  *service token* as ``access_token``, and ``v`` → ``{response: {success, user_id, date, expire}}``
  (VK API schema as typed by vk-io ``SecureTokenChecked``). It is called with our app's service token, which
  is what ties the token to our app; ``user_info`` alone is not proven to check which app a token was issued
  to, so the access-token path needs ``VK_SERVICE_TOKEN`` (otherwise a token another VK app obtained for a
  user could sign in as that user here).

Not confirmed: which VK API error codes ``secure.checkToken`` uses for a bad token; we treat the transient
codes (1, 6, 9, 10, 29) and a refused service token (28) as "VK unavailable" and every other code as an
invalid token. VK ID does not say whether ``email`` is verified; we treat it as vouched for by VK.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from loguru import logger

from oauth.errors import InvalidProviderToken, ProviderUnavailable
from oauth.identity import ProviderIdentity
from oauth.transport import HttpClient, JsonResponse

DEFAULT_ID_URL = "https://id.vk.ru"
DEFAULT_API_URL = "https://api.vk.ru"
DEFAULT_API_VERSION = "5.199"
_TRANSIENT_OAUTH_ERRORS = {"server_error", "temporarily_unavailable", "slow_down"}
_SETUP_OAUTH_ERRORS = {"invalid_client", "unauthorized_client"}  # our client id is wrong, not the user's code
_TRANSIENT_API_CODES = {1, 6, 9, 10, 29}
_SETUP_API_CODES = {28}  # "application authorization failed": our service token is refused


@dataclass(frozen=True)
class VkConfig:
    """Where VK ID lives and who we are there."""

    client_id: str
    id_url: str = DEFAULT_ID_URL
    api_url: str = DEFAULT_API_URL
    api_version: str = DEFAULT_API_VERSION
    service_token: str | None = None
    redirect_uris: tuple[str, ...] = ()

    @property
    def allowed_redirect_uris(self) -> tuple[str, ...]:
        """The configured redirect URIs, else the Android SDK's default vk{client_id}://vk.com/blank.html."""
        return self.redirect_uris or (f"vk{self.client_id}://vk.com/blank.html",)


def _user_id(value: Any) -> str | None:
    text = str(value) if isinstance(value, (int, str)) and not isinstance(value, bool) else ""
    return text if text.isdigit() and len(text) <= 20 else None


def _email(value: Any) -> str | None:
    return value.strip().lower() if isinstance(value, str) and "@" in value and len(value) <= 254 else None


class VkIdClient:
    """Turns what the app got from VK ID (a code with its PKCE verifier, or an access token) into an identity."""

    name = "vk"

    def __init__(self, config: VkConfig, http: HttpClient) -> None:
        self.config = config
        self._http = http

    @property
    def accepts_access_tokens(self) -> bool:
        """True when VK_SERVICE_TOKEN is set, so SDK access tokens can be checked against our app."""
        return bool(self.config.service_token)

    async def sign_in_with_code(
        self, *, code: str, code_verifier: str, device_id: str, redirect_uri: str, state: str | None
    ) -> ProviderIdentity:
        """Exchange the code (PKCE) for an access token, then read the user id and email from user_info."""
        form = {"grant_type": "authorization_code", "code": code, "code_verifier": code_verifier,
                "client_id": self.config.client_id, "device_id": device_id, "redirect_uri": redirect_uri}
        if state:
            form["state"] = state
        body = self._oauth_body(await self._http.request("POST", self._id_endpoint("oauth2/auth"), form=form))
        token, user_id = body.get("access_token"), _user_id(body.get("user_id"))
        if not isinstance(token, str) or not token or user_id is None:
            raise ProviderUnavailable("VK ID token answer lacks access_token or user_id")
        if state and body.get("state") not in (None, state):
            raise InvalidProviderToken("VK ID answered for another state")
        user = await self._user_info(token)
        if _user_id(user.get("user_id")) not in (None, user_id):
            raise InvalidProviderToken("VK ID user_info names another user")
        return ProviderIdentity(self.name, user_id, _email(user.get("email")))

    async def sign_in_with_access_token(self, access_token: str) -> ProviderIdentity:
        """Check an SDK access token with secure.checkToken (bound to our app), then read its email."""
        if not self.config.service_token:
            raise ProviderUnavailable("VK access-token sign-in needs VK_SERVICE_TOKEN")
        form = {"token": access_token, "access_token": self.config.service_token, "v": self.config.api_version}
        resp = await self._http.request("POST", f"{self.config.api_url.rstrip('/')}/method/secure.checkToken", form=form)
        checked = self._api_body(resp)
        user_id = _user_id(checked.get("user_id"))
        if checked.get("success") != 1 or user_id is None:
            raise InvalidProviderToken("VK secure.checkToken did not confirm the token")
        try:
            user = await self._user_info(access_token)
        except InvalidProviderToken:
            user = {}  # a token from the older VK SDK is valid for the API but unknown to VK ID: no email then
        if _user_id(user.get("user_id")) not in (None, user_id):
            raise InvalidProviderToken("VK ID user_info names another user")
        return ProviderIdentity(self.name, user_id, _email(user.get("email")))

    async def _user_info(self, access_token: str) -> dict:
        form = {"client_id": self.config.client_id, "access_token": access_token}
        body = self._oauth_body(await self._http.request("POST", self._id_endpoint("oauth2/user_info"), form=form))
        user = body.get("user")
        return user if isinstance(user, dict) else {}

    def _id_endpoint(self, path: str) -> str:
        return f"{self.config.id_url.rstrip('/')}/{path}"

    @staticmethod
    def _oauth_body(resp: JsonResponse) -> dict:
        """A VK ID OAuth answer, or the error it names mapped to invalid-token / unavailable."""
        body = resp.body
        if resp.status >= 500 or not isinstance(body, dict):
            raise ProviderUnavailable(f"VK ID answered HTTP {resp.status} without a JSON object")
        error = body.get("error")
        if error is None and resp.status == 200:
            return body
        error = str(error)[:64]
        if error in _TRANSIENT_OAUTH_ERRORS or resp.status == 429:
            raise ProviderUnavailable(f"VK ID is busy: {error}")
        if error in _SETUP_OAUTH_ERRORS:
            logger.error("VK ID refused our client (check VK_CLIENT_ID): {}", error)
            raise ProviderUnavailable(f"VK ID refused our client: {error}")
        raise InvalidProviderToken(f"VK ID: {error}: {str(body.get('error_description'))[:200]}")

    @staticmethod
    def _api_body(resp: JsonResponse) -> dict:
        """The `response` of a VK API method call, or its error mapped like the OAuth errors."""
        body = resp.body
        if resp.status != 200 or not isinstance(body, dict):
            raise ProviderUnavailable(f"VK API answered HTTP {resp.status}")
        if isinstance(body.get("error"), dict):
            code = body["error"].get("error_code")
            if code in _TRANSIENT_API_CODES:
                raise ProviderUnavailable(f"VK API is busy: error {code}")
            if code in _SETUP_API_CODES:
                logger.error("VK API refused our service token (check VK_SERVICE_TOKEN): error {}", code)
                raise ProviderUnavailable(f"VK API refused our service token: error {code}")
            raise InvalidProviderToken(f"VK API error {code}")
        response = body.get("response")
        if not isinstance(response, dict):
            raise ProviderUnavailable("VK API answer has no response object")
        return response
