"""Fake VK ID (oauth2/auth with PKCE, oauth2/user_info) and VK API (secure.checkToken) over real HTTP."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import tornado.web

from tests.oauth.fakes import GOOGLE_CLIENT, FakeGoogle, Served, serve

VK_CLIENT = "51234567"
VK_SERVICE_TOKEN = "vk-service-token-0123456789"
VK_REDIRECT = f"vk{VK_CLIENT}://vk.com/blank.html"


def pkce_challenge(verifier: str) -> str:
    """RFC 7636 S256: base64url(sha256(verifier)) without padding."""
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


@dataclass
class VkUser:
    """A VK account of the fake."""

    user_id: int
    email: str | None = None


@dataclass
class FakeVk(Served):
    """VK ID's oauth2/auth (PKCE checked, codes single-use), oauth2/user_info and the API's secure.checkToken."""

    mode: str = "ok"  # ok | 500 | busy | slow
    codes: dict[str, dict] = field(default_factory=dict)
    tokens: dict[str, VkUser] = field(default_factory=dict)  # VK ID access tokens
    legacy_tokens: dict[str, VkUser] = field(default_factory=dict)  # old SDK tokens: API only, unknown to VK ID
    answer_state: str | None = None  # set to answer the exchange with another state than the one sent
    requests: list[tuple[str, dict]] = field(default_factory=list)

    def __post_init__(self) -> None:
        Served.__init__(self)

    def issue_code(self, user: VkUser, verifier: str, *, device_id: str = "vk-device-1",
                   redirect_uri: str = VK_REDIRECT) -> str:
        """What VK ID hands the app after the user approves: a code bound to the PKCE challenge."""
        code = "code_" + secrets.token_urlsafe(12)
        self.codes[code] = {"user": user, "challenge": pkce_challenge(verifier), "device_id": device_id,
                            "redirect_uri": redirect_uri}
        return code

    def issue_token(self, user: VkUser, *, legacy: bool = False) -> str:
        """An access token as the VK SDK gives it to the app."""
        token = "vk1.a." + secrets.token_urlsafe(16)
        (self.legacy_tokens if legacy else self.tokens)[token] = user
        return token


class _VkHandler(tornado.web.RequestHandler):
    def initialize(self, fake: FakeVk, action: str) -> None:
        self.fake, self.action = fake, action

    async def post(self) -> None:
        fake = self.fake
        form = {k: self.get_body_argument(k) for k in self.request.body_arguments}
        fake.requests.append((self.action, form))
        if fake.mode == "slow":
            fake.inflight += 1
            try:
                await fake.release.wait()
            finally:
                fake.inflight -= 1
            return
        if fake.mode == "500":
            self.set_status(502)
            self.finish("<html>bad gateway</html>")
            return
        if fake.mode == "busy":
            self.finish({"error": "temporarily_unavailable", "error_description": "try later"})
            return
        status, body = getattr(self, self.action)(form)
        self.set_status(status)
        self.finish(json.dumps(body))

    def exchange(self, form: dict) -> tuple[int, dict]:
        fake, state = self.fake, form.get("state")
        if form.get("client_id") != VK_CLIENT:
            return 401, {"error": "invalid_client", "error_description": "unknown client", "state": state}
        grant = fake.codes.pop(form.get("code", ""), None)  # single use, like a real authorization server
        if form.get("grant_type") != "authorization_code" or grant is None:
            return 400, {"error": "invalid_grant", "error_description": "code is invalid or expired", "state": state}
        if pkce_challenge(form.get("code_verifier", "")) != grant["challenge"]:
            return 400, {"error": "invalid_grant", "error_description": "code_verifier is invalid", "state": state}
        if form.get("device_id") != grant["device_id"]:
            return 400, {"error": "invalid_request", "error_description": "device_id is invalid", "state": state}
        if form.get("redirect_uri") != grant["redirect_uri"]:
            return 400, {"error": "invalid_request", "error_description": "redirect_uri is invalid", "state": state}
        token = fake.issue_token(grant["user"])
        return 200, {"access_token": token, "refresh_token": "rt", "id_token": "a.b.c", "token_type": "Bearer",
                     "expires_in": 3600, "user_id": grant["user"].user_id, "state": fake.answer_state or state,
                     "scope": "vkid.personal_info email"}

    def user_info(self, form: dict) -> tuple[int, dict]:
        user = self.fake.tokens.get(form.get("access_token", ""))
        if user is None or form.get("client_id") != VK_CLIENT:
            return 401, {"error": "invalid_token", "error_description": "access_token is missing or invalid"}
        info = {"user_id": str(user.user_id), "first_name": "Анна", "last_name": "С."}
        if user.email:
            info["email"] = user.email
        return 200, {"user": info}

    def check_token(self, form: dict) -> tuple[int, dict]:
        if form.get("access_token") != VK_SERVICE_TOKEN:
            return 200, {"error": {"error_code": 28, "error_msg": "Application authorization failed"}}
        token = form.get("token", "")
        user = self.fake.tokens.get(token) or self.fake.legacy_tokens.get(token)
        if user is None:
            return 200, {"error": {"error_code": 15, "error_msg": "Access denied: invalid token"}}
        now = int(time.time())
        return 200, {"response": {"success": 1, "user_id": user.user_id, "date": now, "expire": now + 3600}}


@asynccontextmanager
async def running_vk() -> AsyncIterator[FakeVk]:
    """A fake VK ID + VK API for the duration of the block (VK_ID_API_URL = VK_API_URL = base_url)."""
    fake = FakeVk()
    routes = [(r"/oauth2/auth", _VkHandler, {"fake": fake, "action": "exchange"}),
              (r"/oauth2/user_info", _VkHandler, {"fake": fake, "action": "user_info"}),
              (r"/method/secure.checkToken", _VkHandler, {"fake": fake, "action": "check_token"})]
    async with serve(fake, routes) as served:
        yield served


def oauth_settings(google: FakeGoogle | None = None, vk: FakeVk | None = None, *, service_token: bool = True) -> dict:
    """start_server overrides pointing the app at the fakes (a provider is configured only when given)."""
    settings: dict[str, Any] = {"oauth_timeout_s": 2.0}
    if google is not None:
        settings.update(google_client_ids=(GOOGLE_CLIENT,), google_jwks_url=google.jwks_url)
    if vk is not None:
        settings.update(vk_client_id=VK_CLIENT, vk_id_api_url=vk.base_url, vk_api_url=vk.base_url,
                        vk_service_token=VK_SERVICE_TOKEN if service_token else None)
    return settings
