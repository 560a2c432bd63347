"""Sign in with Google and VK ID over HTTP, against fake providers: answers like login, 201/200, every refusal."""

from __future__ import annotations

import time

import pytest

from tests.handlers.test_conventions import assert_error_shape
from tests.oauth.fake_vk import VkUser, oauth_settings
from tests.oauth.fakes import rsa_key

VERIFIER = "pkce-verifier-" + "x" * 40
TOKEN_KEYS = {"userId", "accessToken", "refreshToken", "tokenType", "expiresIn", "deviceToken"}


@pytest.fixture
async def api(start_server, google, vk):
    _, client = await start_server(**oauth_settings(google, vk))
    return client


def vk_body(vk, user: VkUser, **extra) -> dict:
    code = vk.issue_code(user, VERIFIER)
    return {"code": code, "codeVerifier": VERIFIER, "vkDeviceId": "vk-device-1", "state": "s" * 32, **extra}


async def test_unconfigured_or_unknown_providers_answer_404(start_server):
    _, api = await start_server()
    for provider in ("google", "vk"):
        resp = await api.post(f"/api/auth/oauth/{provider}", {"idToken": "x"})
        assert_error_shape(resp, 404, "provider_not_configured")
        assert resp.json["details"] == {"provider": provider}
    assert_error_shape(await api.post("/api/auth/oauth/github", {}), 404, "unknown_provider")
    user = await api.register()
    resp = await api.post("/api/auth/oauth/google/link", {"idToken": "x"}, token=user["accessToken"])
    assert_error_shape(resp, 404, "provider_not_configured")


async def test_google_new_account_is_201_then_200_like_login(api, google):
    first = await api.post("/api/auth/oauth/google", {"idToken": google.id_token(), "deviceId": "pixel-7"})
    assert first.status == 201, first.text
    assert set(first.json) == TOKEN_KEYS and first.json["tokenType"] == "Bearer"
    profile = await api.get("/api/user/profile", token=first.json["accessToken"])
    assert profile.json["email"] == "ann@gmail.com" and profile.json["deviceIds"] == ["pixel-7"]
    again = await api.post("/api/auth/oauth/google", {"idToken": google.id_token(), "deviceId": "tab-2"})
    assert again.status == 200 and again.json["userId"] == first.json["userId"]
    refreshed = await api.post("/api/auth/refresh", {"refreshToken": again.json["refreshToken"]})
    assert refreshed.status == 200
    profile = await api.get("/api/user/profile", token=again.json["accessToken"])
    assert profile.json["deviceIds"] == ["pixel-7", "tab-2"]


async def test_provider_accounts_have_no_password(api, google):
    await api.post("/api/auth/oauth/google", {"idToken": google.id_token()})
    resp = await api.post("/api/auth/login", {"email": "ann@gmail.com", "password": "anything at all"})
    assert_error_shape(resp, 401, "invalid_credentials")


async def test_unverified_google_email_is_not_used(api, google):
    resp = await api.post("/api/auth/oauth/google", {"idToken": google.id_token(email_verified=False)})
    assert resp.status == 201
    assert (await api.get("/api/user/profile", token=resp.json["accessToken"])).json["email"] is None


async def test_vk_code_sign_in_with_and_without_email(api, vk):
    with_email = await api.post("/api/auth/oauth/vk", vk_body(vk, VkUser(501, "ivan@mail.ru")))
    assert with_email.status == 201, with_email.text
    assert (await api.get("/api/user/profile", token=with_email.json["accessToken"])).json["email"] == "ivan@mail.ru"
    without = await api.post("/api/auth/oauth/vk", vk_body(vk, VkUser(502)))
    assert without.status == 201
    assert (await api.get("/api/user/profile", token=without.json["accessToken"])).json["email"] is None
    returning = await api.post("/api/auth/oauth/vk", vk_body(vk, VkUser(502)))
    assert returning.status == 200 and returning.json["userId"] == without.json["userId"]


async def test_vk_access_token_sign_in(api, vk):
    resp = await api.post("/api/auth/oauth/vk", {"accessToken": vk.issue_token(VkUser(601, "p@vk.com"))})
    assert resp.status == 201, resp.text
    assert_error_shape(await api.post("/api/auth/oauth/vk", {"accessToken": "vk1.a.forged"}), 401, "invalid_provider_token")


async def test_vk_access_tokens_need_the_service_token(start_server, vk):
    _, api = await start_server(**oauth_settings(vk=vk, service_token=False))
    resp = await api.post("/api/auth/oauth/vk", {"accessToken": vk.issue_token(VkUser(602))})
    assert_error_shape(resp, 400, "vk_access_token_not_accepted")
    assert vk.requests == []


@pytest.mark.parametrize("body", [
    {"code": "c", "codeVerifier": VERIFIER},  # no vkDeviceId
    {"code": "c", "codeVerifier": VERIFIER, "vkDeviceId": "d", "accessToken": "t"},  # both flows
    {"code": "c", "codeVerifier": "short", "vkDeviceId": "d"},  # not an RFC 7636 verifier
    {"code": "c", "codeVerifier": VERIFIER, "vkDeviceId": "d", "redirectUri": "https://evil.example/cb"},
    {"code": {"$ne": None}, "codeVerifier": VERIFIER, "vkDeviceId": "d"},
])
async def test_vk_body_is_validated_before_asking_vk(api, vk, body):
    assert_error_shape(await api.post("/api/auth/oauth/vk", body), 400, "validation_failed")
    assert vk.requests == []


async def test_vk_refusing_the_code_is_401(api, vk):
    resp = await api.post("/api/auth/oauth/vk", vk_body(vk, VkUser(503), codeVerifier="w" * 43))
    assert_error_shape(resp, 401, "invalid_provider_token")
    assert resp.json["details"] == {"provider": "vk"}


@pytest.mark.parametrize("claims", [
    {"exp": int(time.time()) - 600}, {"aud": "another-app"}, {"iss": "https://evil.example"},
])
async def test_invalid_google_tokens_are_401(api, google, claims):
    resp = await api.post("/api/auth/oauth/google", {"idToken": google.id_token(**claims)})
    assert_error_shape(resp, 401, "invalid_provider_token")


async def test_forged_and_unsigned_google_tokens_are_401(api, google):
    for token in (google.id_token(key=rsa_key("attacker")), google.id_token(alg="none")):
        assert_error_shape(await api.post("/api/auth/oauth/google", {"idToken": token}), 401, "invalid_provider_token")


async def test_provider_down_is_503_with_retry_after(api, google, vk):
    google.mode = "500"
    resp = await api.post("/api/auth/oauth/google", {"idToken": google.id_token()})
    assert_error_shape(resp, 503, "provider_unavailable")
    assert resp.json["details"] == {"provider": "google", "retryable": True} and resp.headers["Retry-After"]
    body = vk_body(vk, VkUser(504))
    vk.mode = "500"
    assert_error_shape(await api.post("/api/auth/oauth/vk", body), 503, "provider_unavailable")


async def test_existing_email_is_not_merged_and_leaks_nothing(api, google):
    await api.register("ann@gmail.com")
    resp = await api.post("/api/auth/oauth/google", {"idToken": google.id_token()})
    assert_error_shape(resp, 409, "account_exists_link_required")
    assert resp.json["details"] == {"provider": "google"}


async def test_oauth_endpoints_use_the_stricter_auth_budget(start_server, google):
    _, api = await start_server(auth_rate_limit_per_minute=2, **oauth_settings(google))
    statuses = [(await api.post("/api/auth/oauth/google", {"idToken": google.id_token()})).status for _ in range(3)]
    assert statuses == [201, 200, 429]
