"""The known-device exemption from the per-email failed-login budget rests on the server-signed deviceToken.

Attackers reach us from many addresses (X-Forwarded-For through a trusted proxy, as the limits
tests do) and may know the victim's deviceId: only the deviceToken a sign-in handed out counts.
"""

from __future__ import annotations

import asyncio
import time

import jwt

from tests.handlers.test_conventions import assert_error_shape
from tests.oauth.fake_vk import VkUser, oauth_settings
from tests.support.overlap import InFlight

PASSWORD = "correct horse 1"
PROXY = ("127.0.0.1/32",)
VK_VERIFIER = "pkce-verifier-" + "x" * 40


def via(ip: str) -> dict:
    """Headers of a request the trusted proxy forwarded from `ip`."""
    return {"X-Forwarded-For": ip}


async def guess(api, email: str, ip: str, **extra) -> int:
    resp = await api.post("/api/auth/login", {"email": email, "password": "wrong guess 1", **extra}, headers=via(ip))
    return resp.status


async def test_guessers_sending_the_victims_device_id_hit_the_budget_while_the_device_token_signs_in(start_server):
    _, api = await start_server(trusted_proxies=PROXY, login_failures_per_email=4)
    victim = await api.register(deviceId="victim-phone")
    assert victim["deviceToken"]
    statuses = [await guess(api, victim["email"], f"203.0.113.{i}", deviceId="victim-phone") for i in range(6)]
    assert statuses == [401, 401, 401, 401, 429, 429]
    # The right password with the victim's deviceId (which anyone can send) is still refused...
    by_id = await api.post("/api/auth/login", {"email": victim["email"], "password": PASSWORD, "deviceId": "victim-phone"},
                           headers=via("198.51.100.7"))
    assert_error_shape(by_id, 429, "too_many_login_attempts")
    assert int(by_id.headers["Retry-After"]) > 0
    # ...while the victim's device, holding the token we signed at sign-in, gets in (and a fresh token).
    by_token = await api.post("/api/auth/login", {"email": victim["email"], "password": PASSWORD,
                                                  "deviceId": "victim-phone", "deviceToken": victim["deviceToken"]},
                              headers=via("198.51.100.7"))
    assert by_token.status == 200, by_token.text
    assert by_token.json["deviceToken"] and by_token.json["deviceToken"] != victim["deviceToken"]
    again = await api.post("/api/auth/login", {"email": victim["email"], "password": PASSWORD,
                                               "deviceToken": by_token.json["deviceToken"]}, headers=via("198.51.100.8"))
    assert again.status == 200
    # A wrong password with a valid token still counts against the (email, address) pair.
    assert await guess(api, victim["email"], "198.51.100.9", deviceToken=victim["deviceToken"]) == 401


async def test_forged_other_users_access_and_expired_tokens_grant_nothing(start_server):
    _, api = await start_server(trusted_proxies=PROXY, login_failures_per_email=2, device_token_ttl_s=3)
    victim = await api.register()
    other = await api.register()
    fresh = (await api.post("/api/auth/login", {"email": victim["email"], "password": PASSWORD})).json["deviceToken"]
    for i in range(2):
        assert await guess(api, victim["email"], f"203.0.113.{i}") == 401
    claims = jwt.decode(fresh, options={"verify_signature": False})
    wrong_key = "not the server's secret but long enough to sign"
    forged = jwt.encode({**claims, "exp": int(time.time()) + 3600}, wrong_key, algorithm="HS256")
    unsigned = jwt.encode({**claims, "exp": int(time.time()) + 3600}, None, algorithm="none")
    for token in (forged, unsigned, other["deviceToken"], victim["accessToken"], "garbage", fresh[:-3] + "AAA"):
        resp = await api.post("/api/auth/login", {"email": victim["email"], "password": PASSWORD, "deviceToken": token},
                              headers=via("198.51.100.7"))
        assert_error_shape(resp, 429, "too_many_login_attempts")
    # The genuine token works right now; once expired, the same token grants nothing.
    ok = await api.post("/api/auth/login", {"email": victim["email"], "password": PASSWORD, "deviceToken": fresh},
                        headers=via("198.51.100.7"))
    assert ok.status == 200, ok.text
    await asyncio.sleep(max(0.0, claims["exp"] + 1.05 - time.time()))
    expired = await api.post("/api/auth/login", {"email": victim["email"], "password": PASSWORD, "deviceToken": fresh},
                             headers=via("198.51.100.7"))
    assert_error_shape(expired, 429, "too_many_login_attempts")


async def test_device_token_is_handed_out_by_register_login_but_not_refresh(api):
    user = await api.register()
    assert isinstance(user["deviceToken"], str) and user["deviceToken"].count(".") == 2
    login = await api.post("/api/auth/login", {"email": user["email"], "password": PASSWORD})
    assert login.json["deviceToken"]
    refreshed = await api.post("/api/auth/refresh", {"refreshToken": user["refreshToken"]})
    assert refreshed.status == 200 and "deviceToken" not in refreshed.json
    # A device token is not an access token.
    assert_error_shape(await api.get("/api/user/profile", token=user["deviceToken"]), 401, "invalid_token")


async def test_concurrent_failed_logins_never_get_more_guesses_than_the_budget(start_server):
    service, api = await start_server(trusted_proxies=PROXY, login_failures_per_email=3, login_failures_per_pair=4,
                                      bcrypt_rounds=6)
    victim = await api.register()
    before = service.ctx.cpu.completed
    spread = await (sent := InFlight()).gather(*(guess(api, victim["email"], f"203.0.113.{i}") for i in range(12)))
    assert sent.peak == 12  # all twelve guesses were in flight before the first answer
    assert sorted(spread) == [401] * 3 + [429] * 9
    assert service.ctx.cpu.completed - before == 3  # exactly three passwords were checked
    # One address against its (email, address) pair, for an account whose per-email budget is not the limit.
    other = await api.register()
    burst = await (sent := InFlight()).gather(*(guess(api, other["email"], "198.51.100.1",
                                                      deviceToken=other["deviceToken"]) for _ in range(10)))
    assert sent.peak == 10
    assert sorted(burst) == [401] * 4 + [429] * 6


async def test_a_right_password_gives_its_reserved_failure_back(start_server):
    _, api = await start_server(trusted_proxies=PROXY, login_failures_per_email=2)
    user = await api.register()
    for i in range(5):  # many successful sign-ins from new devices do not use up the failure budget
        resp = await api.post("/api/auth/login", {"email": user["email"], "password": PASSWORD}, headers=via(f"192.0.2.{i}"))
        assert resp.status == 200
    assert [await guess(api, user["email"], f"203.0.113.{i}") for i in range(3)] == [401, 401, 429]


async def test_google_and_vk_sign_ins_hand_out_device_tokens_that_spare_later_password_logins(start_server, google, vk):
    _, api = await start_server(**oauth_settings(google, vk), trusted_proxies=PROXY, login_failures_per_email=2)
    signed_in = (await api.post("/api/auth/oauth/google", {"idToken": google.id_token(), "deviceId": "pixel-7"})).json
    code = vk.issue_code(VkUser(4242, "vk@example.com"), VK_VERIFIER)
    vk_answer = await api.post("/api/auth/oauth/vk", {"code": code, "codeVerifier": VK_VERIFIER, "vkDeviceId": "vk-device-1",
                                                      "state": "s" * 32})
    assert vk_answer.status == 201 and vk_answer.json["deviceToken"]
    first_password = await api.patch("/api/user/update", {"password": PASSWORD}, token=signed_in["accessToken"])
    assert first_password.status == 200, first_password.text
    assert [await guess(api, "ann@gmail.com", f"203.0.113.{i}", deviceId="pixel-7") for i in range(3)] == [401, 401, 429]
    without = await api.post("/api/auth/login", {"email": "ann@gmail.com", "password": PASSWORD}, headers=via("198.51.100.7"))
    assert_error_shape(without, 429, "too_many_login_attempts")
    for token, expected in ((vk_answer.json["deviceToken"], 429), (signed_in["deviceToken"], 200)):
        resp = await api.post("/api/auth/login", {"email": "ann@gmail.com", "password": PASSWORD, "deviceToken": token},
                              headers=via("198.51.100.7"))
        assert resp.status == expected, resp.text
