"""VK ID client against a fake VK ID server: PKCE code exchange, user info, SDK access tokens, failures."""

from __future__ import annotations

import pytest

from oauth import HttpClient, InvalidProviderToken, ProviderUnavailable, VkConfig, VkIdClient
from tests.oauth.fake_vk import VK_CLIENT, VK_REDIRECT, VK_SERVICE_TOKEN, VkUser, running_vk
from tests.oauth.fakes import closed_port_url

VERIFIER = "v" * 20 + "-_.~" + "A1" * 10  # 44 characters of the RFC 7636 alphabet


@pytest.fixture
async def vk():
    async with running_vk() as fake:
        yield fake


@pytest.fixture
async def client(vk):
    http = HttpClient(timeout_s=2.0)
    config = VkConfig(client_id=VK_CLIENT, id_url=vk.base_url, api_url=vk.base_url, service_token=VK_SERVICE_TOKEN)
    yield VkIdClient(config, http)
    await http.close()


async def sign_in(client, vk, user, **overrides):
    code = vk.issue_code(user, VERIFIER)
    args = {"code": code, "code_verifier": VERIFIER, "device_id": "vk-device-1", "redirect_uri": VK_REDIRECT,
            "state": "s" * 32, **overrides}
    return await client.sign_in_with_code(**args)


async def test_code_exchange_sends_the_documented_fields_and_reads_user_info(client, vk):
    identity = await sign_in(client, vk, VkUser(1001, "Ann@Mail.ru"))
    assert (identity.provider, identity.subject, identity.email) == ("vk", "1001", "ann@mail.ru")
    (_, exchange), (_, info) = vk.requests
    assert exchange == {"grant_type": "authorization_code", "code": exchange["code"], "code_verifier": VERIFIER,
                        "client_id": VK_CLIENT, "device_id": "vk-device-1", "redirect_uri": VK_REDIRECT, "state": "s" * 32}
    assert info == {"client_id": VK_CLIENT, "access_token": info["access_token"]}


async def test_user_without_email_has_no_email(client, vk):
    identity = await sign_in(client, vk, VkUser(1002))
    assert identity.subject == "1002" and identity.email is None


async def test_state_is_optional(client, vk):
    identity = await sign_in(client, vk, VkUser(1003), state=None)
    assert identity.subject == "1003"
    assert "state" not in vk.requests[0][1]


@pytest.mark.parametrize("overrides", [
    {"code_verifier": "w" * 43},  # PKCE: not the verifier the challenge was made from
    {"device_id": "another-device"},
    {"redirect_uri": "https://elsewhere.example/cb"},
    {"code": "code_unknown"},
])
async def test_a_code_vk_refuses_is_an_invalid_token(client, vk, overrides):
    with pytest.raises(InvalidProviderToken):
        await sign_in(client, vk, VkUser(1004), **overrides)


async def test_a_code_works_once(client, vk):
    code = vk.issue_code(VkUser(1005), VERIFIER)
    args = {"code": code, "code_verifier": VERIFIER, "device_id": "vk-device-1", "redirect_uri": VK_REDIRECT, "state": None}
    await client.sign_in_with_code(**args)
    with pytest.raises(InvalidProviderToken):
        await client.sign_in_with_code(**args)


async def test_an_answer_for_another_state_is_refused(client, vk):
    vk.answer_state = "someone-elses-state-000000000000"
    with pytest.raises(InvalidProviderToken, match="state"):
        await sign_in(client, vk, VkUser(1006))


@pytest.mark.parametrize("mode", ["500", "busy"])
async def test_vk_failing_is_unavailable(client, vk, mode):
    code = vk.issue_code(VkUser(1007), VERIFIER)
    vk.mode = mode
    with pytest.raises(ProviderUnavailable):
        await client.sign_in_with_code(code=code, code_verifier=VERIFIER, device_id="vk-device-1",
                                       redirect_uri=VK_REDIRECT, state=None)


async def test_vk_unreachable_or_slow_is_unavailable(vk):
    http = HttpClient(timeout_s=0.2)
    try:
        down = VkIdClient(VkConfig(client_id=VK_CLIENT, id_url=closed_port_url()), http)
        with pytest.raises(ProviderUnavailable):
            await down.sign_in_with_code(code="c", code_verifier=VERIFIER, device_id="d", redirect_uri=VK_REDIRECT, state=None)
        vk.mode = "slow"
        slow = VkIdClient(VkConfig(client_id=VK_CLIENT, id_url=vk.base_url), http)
        with pytest.raises(ProviderUnavailable):
            await slow.sign_in_with_code(code="c", code_verifier=VERIFIER, device_id="d", redirect_uri=VK_REDIRECT, state=None)
    finally:
        await http.close()


async def test_a_wrong_client_id_is_our_problem_not_the_users(vk):
    http = HttpClient(timeout_s=2.0)
    try:
        wrong = VkIdClient(VkConfig(client_id="999", id_url=vk.base_url), http)
        code = vk.issue_code(VkUser(1008), VERIFIER)
        with pytest.raises(ProviderUnavailable, match="refused our client"):
            await wrong.sign_in_with_code(code=code, code_verifier=VERIFIER, device_id="vk-device-1",
                                          redirect_uri=VK_REDIRECT, state=None)
    finally:
        await http.close()


async def test_sdk_access_token_is_checked_against_our_app_and_reads_email(client, vk):
    identity = await client.sign_in_with_access_token(vk.issue_token(VkUser(2001, "b@vk.com")))
    assert (identity.subject, identity.email) == ("2001", "b@vk.com")
    (action, checked), _ = vk.requests
    assert action == "check_token" and checked["access_token"] == VK_SERVICE_TOKEN and checked["v"]


async def test_legacy_sdk_token_unknown_to_vk_id_signs_in_without_email(client, vk):
    identity = await client.sign_in_with_access_token(vk.issue_token(VkUser(2002, "c@vk.com"), legacy=True))
    assert (identity.subject, identity.email) == ("2002", None)


async def test_unknown_access_token_is_invalid(client, vk):
    with pytest.raises(InvalidProviderToken):
        await client.sign_in_with_access_token("vk1.a.forged")


async def test_refused_service_token_is_unavailable_not_the_users_fault(vk):
    http = HttpClient(timeout_s=2.0)
    try:
        config = VkConfig(client_id=VK_CLIENT, id_url=vk.base_url, api_url=vk.base_url, service_token="revoked")
        with pytest.raises(ProviderUnavailable, match="service token"):
            await VkIdClient(config, http).sign_in_with_access_token(vk.issue_token(VkUser(2003)))
    finally:
        await http.close()


def test_redirect_uri_defaults_to_the_android_sdk_scheme():
    assert VkConfig(client_id="42").allowed_redirect_uris == ("vk42://vk.com/blank.html",)
    assert VkConfig(client_id="42", redirect_uris=("https://app.example/vk",)).allowed_redirect_uris == ("https://app.example/vk",)
