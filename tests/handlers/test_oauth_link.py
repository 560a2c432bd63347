"""Linking, unlinking and listing provider accounts, and a provider-only account's first password, over HTTP."""

from __future__ import annotations

import pytest

from tests.handlers.test_auth import PASSWORD
from tests.handlers.test_conventions import assert_error_shape
from tests.oauth.fake_vk import VkUser, oauth_settings

VERIFIER = "pkce-verifier-" + "y" * 40


@pytest.fixture
async def api(start_server, google, vk):
    _, client = await start_server(**oauth_settings(google, vk))
    return client


def vk_body(vk, user: VkUser) -> dict:
    return {"code": vk.issue_code(user, VERIFIER), "codeVerifier": VERIFIER, "vkDeviceId": "vk-device-1"}


async def vk_only_account(api, vk, user_id: int = 900) -> dict:
    resp = await api.post("/api/auth/oauth/vk", vk_body(vk, VkUser(user_id)))
    assert resp.status == 201, resp.text
    return resp.json


async def test_link_then_sign_in_with_the_provider_reaches_the_same_account(api, google):
    user = await api.register("ann@gmail.com")
    linked = await api.post("/api/auth/oauth/google/link", {"idToken": google.id_token()}, token=user["accessToken"])
    assert linked.status == 200, linked.text
    [identity] = linked.json["identities"]
    assert identity["provider"] == "google" and identity["email"] == "ann@gmail.com" and identity["linkedAt"].endswith("Z")
    assert linked.json["passwordSignIn"] is True
    signed_in = await api.post("/api/auth/oauth/google", {"idToken": google.id_token()})
    assert signed_in.status == 200 and signed_in.json["userId"] == user["userId"]
    listed = await api.get("/api/auth/oauth", token=signed_in.json["accessToken"])
    assert listed.json == linked.json
    again = await api.post("/api/auth/oauth/google/link", {"idToken": google.id_token()}, token=user["accessToken"])
    assert again.status == 200 and len(again.json["identities"]) == 1


async def test_an_identity_linked_elsewhere_cannot_be_linked_again(api, google):
    await api.post("/api/auth/oauth/google", {"idToken": google.id_token(email=None)})
    other = await api.register()
    resp = await api.post("/api/auth/oauth/google/link", {"idToken": google.id_token()}, token=other["accessToken"])
    assert_error_shape(resp, 409, "identity_linked_elsewhere")


async def test_one_account_per_provider(api, vk):
    user = await api.register()
    assert (await api.post("/api/auth/oauth/vk/link", vk_body(vk, VkUser(1)), token=user["accessToken"])).status == 200
    resp = await api.post("/api/auth/oauth/vk/link", vk_body(vk, VkUser(2)), token=user["accessToken"])
    assert_error_shape(resp, 409, "provider_already_linked")


async def test_link_with_a_bad_provider_token_is_401(api, google):
    user = await api.register()
    resp = await api.post("/api/auth/oauth/google/link", {"idToken": google.id_token(aud="x")}, token=user["accessToken"])
    assert_error_shape(resp, 401, "invalid_provider_token")


async def test_unlink_then_the_provider_signs_up_anew(api, google):
    user = await api.register("ann@gmail.com")
    await api.post("/api/auth/oauth/google/link", {"idToken": google.id_token()}, token=user["accessToken"])
    assert (await api.delete("/api/auth/oauth/google", token=user["accessToken"])).status == 204
    assert_error_shape(await api.delete("/api/auth/oauth/google", token=user["accessToken"]), 404, "identity_not_found")
    assert (await api.get("/api/auth/oauth", token=user["accessToken"])).json["identities"] == []
    resp = await api.post("/api/auth/oauth/google", {"idToken": google.id_token()})
    assert_error_shape(resp, 409, "account_exists_link_required")  # same email: link again, never merged


async def test_the_last_way_to_sign_in_cannot_be_unlinked(api, vk, google):
    tokens = await vk_only_account(api, vk)
    assert_error_shape(await api.delete("/api/auth/oauth/vk", token=tokens["accessToken"]), 409, "last_sign_in_method")
    await api.post("/api/auth/oauth/google/link", {"idToken": google.id_token()}, token=tokens["accessToken"])
    assert (await api.delete("/api/auth/oauth/vk", token=tokens["accessToken"])).status == 204
    assert_error_shape(await api.delete("/api/auth/oauth/google", token=tokens["accessToken"]), 409, "last_sign_in_method")
    assert_error_shape(await api.delete("/api/auth/oauth/github", token=tokens["accessToken"]), 404, "unknown_provider")


async def test_provider_only_account_sets_a_first_password_then_logs_in(api, vk):
    tokens = await vk_only_account(api, vk)
    other = (await api.post("/api/auth/oauth/vk", vk_body(vk, VkUser(900)))).json
    token = tokens["accessToken"]
    assert_error_shape(await api.patch("/api/user/update", {"email": "v@example.com"}, token=token), 400, "password_required")
    assert_error_shape(await api.patch("/api/user/update", {"password": PASSWORD}, token=token), 400, "email_required")
    resp = await api.patch("/api/user/update", {"password": PASSWORD, "email": "V@Example.com"}, token=token)
    assert resp.status == 200, resp.text
    assert resp.json["email"] == "v@example.com"
    assert_error_shape(await api.get("/api/user/profile", token=other["accessToken"]), 401, "session_ended")
    login = await api.post("/api/auth/login", {"email": "v@example.com", "password": PASSWORD})
    assert login.status == 200 and login.json["userId"] == tokens["userId"]
    assert (await api.get("/api/auth/oauth", token=token)).json["passwordSignIn"] is True
    # From now on the password is needed to change credentials, as for any account.
    resp = await api.patch("/api/user/update", {"password": "another password"}, token=token)
    assert_error_shape(resp, 403, "current_password_required")
    assert "currentPassword" in resp.json["details"]["fields"]
    resp = await api.patch("/api/user/update", {"currentPassword": "wrong one!", "password": "another password"}, token=token)
    assert_error_shape(resp, 403, "invalid_current_password")
    assert (await api.delete("/api/auth/oauth/vk", token=token)).status == 204


async def test_google_account_keeps_its_email_when_setting_a_password(api, google):
    tokens = (await api.post("/api/auth/oauth/google", {"idToken": google.id_token()})).json
    resp = await api.patch("/api/user/update", {"password": PASSWORD}, token=tokens["accessToken"])
    assert resp.status == 200 and resp.json["email"] == "ann@gmail.com"
    assert (await api.post("/api/auth/login", {"email": "ann@gmail.com", "password": PASSWORD})).status == 200


async def test_first_password_with_a_taken_email_is_409(api, vk):
    taken = await api.register()
    tokens = await vk_only_account(api, vk)
    resp = await api.patch("/api/user/update", {"password": PASSWORD, "email": taken["email"]}, token=tokens["accessToken"])
    assert_error_shape(resp, 409, "email_taken")
    assert (await api.get("/api/auth/oauth", token=tokens["accessToken"])).json["passwordSignIn"] is False
