"""Accounts and sessions over HTTP: register, login, refresh rotation, logout, session listing."""

from __future__ import annotations

import asyncio
import base64
from datetime import UTC, datetime, timedelta

from tests.handlers.test_conventions import assert_error_shape
from tests.support.barrier import Barrier, HookedClient
from tests.support.ttl import ttl_pass

PASSWORD = "correct horse 1"


class ShiftedClock:
    """The server's clock: real time plus an offset a test moves forward."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


async def test_register_returns_token_pair_and_normalises_email(api):
    resp = await api.post("/api/auth/register", {"email": "  Ann@Example.COM ", "password": PASSWORD, "deviceId": "pixel-7"})
    assert resp.status == 201, resp.text
    body = resp.json
    assert set(body) == {"userId", "accessToken", "refreshToken", "tokenType", "expiresIn", "deviceToken"}
    assert body["tokenType"] == "Bearer" and body["expiresIn"] == 900
    profile = await api.get("/api/user/profile", token=body["accessToken"])
    assert profile.json["email"] == "ann@example.com"
    assert profile.json["deviceIds"] == ["pixel-7"]
    assert "no-store" in resp.headers["Cache-Control"]


async def test_duplicate_email_is_409_email_taken(api):
    await api.register("dup@example.com")
    resp = await api.post("/api/auth/register", {"email": "DUP@example.com", "password": PASSWORD})
    assert_error_shape(resp, 409, "email_taken")


async def test_racing_registrations_create_one_account(start_server):
    mongo = HookedClient()
    service, api = await start_server(mongo=mongo)
    mongo.hook = barrier = Barrier(8, "users", "insert_one")  # all eight past validation, inserting at once
    results = await asyncio.gather(*(
        api.post("/api/auth/register", {"email": "race@example.com", "password": PASSWORD}) for _ in range(8)
    ))
    assert barrier.met
    assert sorted(r.status for r in results) == [201] + [409] * 7
    assert await service.ctx.db.users.count_documents({"email": "race@example.com"}) == 1


async def test_password_bounds_are_in_characters_as_documented_and_never_truncated(api):
    doc = (await api.get("/api/openapi.json")).json
    documented = doc["components"]["schemas"]["Register"]["properties"]["password"]
    assert (documented["minLength"], documented["maxLength"]) == (8, 72)
    for refused in ("seven77", "ж" * 7, "x" * 73):
        short = await api.post("/api/auth/register", {"email": "s@example.com", "password": refused})
        assert_error_shape(short, 400, "validation_failed")
    # 72 characters of 4-byte UTF-8 are 288 bytes, past bcrypt's 72: accepted, and the last character still matters.
    longest = "😀" * 72
    assert (await api.post("/api/auth/register", {"email": "e@example.com", "password": longest})).status == 201
    resp = await api.post("/api/auth/login", {"email": "e@example.com", "password": "😀" * 71 + "😁"})
    assert_error_shape(resp, 401, "invalid_credentials")
    assert (await api.post("/api/auth/login", {"email": "e@example.com", "password": longest})).status == 200
    exact = "ж" * 36  # 72 bytes: hashed as typed, and the 72nd byte matters
    assert (await api.post("/api/auth/register", {"email": "b@example.com", "password": exact})).status == 201
    resp = await api.post("/api/auth/login", {"email": "b@example.com", "password": "ж" * 35 + "з"})
    assert_error_shape(resp, 401, "invalid_credentials")


async def test_an_account_with_a_short_multibyte_password_from_before_still_signs_in(api, service):
    # Until issue 12 the rule was 8 bytes: "пароль1" (7 characters, 13 bytes) was a valid password then.
    user = await api.register()
    old_hash = await service.ctx.passwords.hash("пароль1")
    await service.ctx.db.users.update_one({"email": user["email"]}, {"$set": {"password_hash": old_hash}})
    assert (await api.post("/api/auth/login", {"email": user["email"], "password": "пароль1"})).status == 200
    assert_error_shape(await api.post("/api/auth/login", {"email": user["email"], "password": "x"}), 401,
                       "invalid_credentials")


async def test_login_succeeds_with_right_password_and_records_device(api):
    user = await api.register()
    resp = await api.post("/api/auth/login", {"email": user["email"].upper(), "password": PASSWORD, "deviceId": "tab-1"})
    assert resp.status == 200
    assert resp.json["userId"] == user["userId"]
    profile = await api.get("/api/user/profile", token=resp.json["accessToken"])
    assert profile.json["deviceIds"] == ["tab-1"]


async def test_unknown_email_and_wrong_password_look_identical(api, service):
    user = await api.register()
    before = service.ctx.cpu.completed
    wrong = await api.post("/api/auth/login", {"email": user["email"], "password": "wrong password"})
    after_wrong = service.ctx.cpu.completed
    unknown = await api.post("/api/auth/login", {"email": "nobody@example.com", "password": "wrong password"})
    after_unknown = service.ctx.cpu.completed
    assert wrong.status == unknown.status == 401
    assert wrong.json == unknown.json == {"error": "Email or password is incorrect.", "code": 401,
                                         "reason": "invalid_credentials"}
    # Both paths run exactly one bcrypt check, so their timing does not tell them apart.
    assert after_wrong - before == 1 and after_unknown - after_wrong == 1


async def test_refresh_rotates_the_refresh_token(api):
    user = await api.register()
    first = await api.post("/api/auth/refresh", {"refreshToken": user["refreshToken"]})
    assert first.status == 200
    assert first.json["refreshToken"] != user["refreshToken"]
    assert first.json["accessToken"] != user["accessToken"]
    second = await api.post("/api/auth/refresh", {"refreshToken": first.json["refreshToken"]})
    assert second.status == 200 and second.json["refreshToken"] not in (first.json["refreshToken"], user["refreshToken"])
    profile = await api.get("/api/user/profile", token=second.json["accessToken"])
    assert profile.status == 200 and profile.json["email"] == user["email"]
    assert first.json["userId"] == second.json["userId"] == user["userId"]
    # The fate of a rotated token: presented again once its successor was itself rotated,
    # it is reuse, never a fresh pair.
    assert_error_shape(await api.post("/api/auth/refresh", {"refreshToken": user["refreshToken"]}),
                       401, "refresh_token_reused")


async def test_reusing_a_rotated_refresh_token_revokes_the_session(start_server):
    _, api = await start_server(refresh_reuse_grace_s=0)
    user = await api.register()
    rotated = await api.post("/api/auth/refresh", {"refreshToken": user["refreshToken"]})
    assert rotated.status == 200
    reuse = await api.post("/api/auth/refresh", {"refreshToken": user["refreshToken"]})
    assert_error_shape(reuse, 401, "refresh_token_reused")
    # The whole family is dead: the newest refresh token and the access tokens stop working.
    assert_error_shape(await api.post("/api/auth/refresh", {"refreshToken": rotated.json["refreshToken"]}),
                       401, "invalid_refresh_token")
    assert_error_shape(await api.get("/api/user/profile", token=rotated.json["accessToken"]), 401, "session_ended")


async def test_retried_refresh_within_grace_window_is_not_reuse(start_server):
    _, api = await start_server(refresh_reuse_grace_s=30)
    user = await api.register()
    lost = await api.post("/api/auth/refresh", {"refreshToken": user["refreshToken"]})
    retry = await api.post("/api/auth/refresh", {"refreshToken": user["refreshToken"]})
    assert lost.status == retry.status == 200
    assert (await api.get("/api/user/profile", token=retry.json["accessToken"])).status == 200
    assert (await api.post("/api/auth/refresh", {"refreshToken": retry.json["refreshToken"]})).status == 200


async def test_a_token_superseded_by_a_grace_retry_ends_the_session_even_after_the_window(start_server):
    # R1 -> R2 (the app), R1 again within grace -> R3 (a thief holding a copy of R1): the app's R2
    # is now a superseded token, and presenting it ends the whole session, cutting the thief off.
    clock = ShiftedClock()
    _, api = await start_server(refresh_reuse_grace_s=30, clock=clock)
    user = await api.register()
    app = (await api.post("/api/auth/refresh", {"refreshToken": user["refreshToken"]})).json
    thief = (await api.post("/api/auth/refresh", {"refreshToken": user["refreshToken"]})).json
    assert app["refreshToken"] != thief["refreshToken"]
    for pair in (app, thief):  # both access tokens work and are cached as active
        assert (await api.get("/api/user/profile", token=pair["accessToken"])).status == 200
    clock.offset = timedelta(seconds=60)  # well past the grace window
    reuse = await api.post("/api/auth/refresh", {"refreshToken": app["refreshToken"]})
    assert_error_shape(reuse, 401, "refresh_token_reused")
    assert_error_shape(await api.post("/api/auth/refresh", {"refreshToken": thief["refreshToken"]}),
                       401, "invalid_refresh_token")
    for pair in (user, app, thief):
        assert_error_shape(await api.get("/api/user/profile", token=pair["accessToken"]), 401, "session_ended")


async def test_repeated_grace_retries_cannot_stretch_the_window(start_server):
    clock = ShiftedClock()
    _, api = await start_server(refresh_reuse_grace_s=10, clock=clock)
    user = await api.register()
    assert (await api.post("/api/auth/refresh", {"refreshToken": user["refreshToken"]})).status == 200
    clock.offset = timedelta(seconds=8)
    assert (await api.post("/api/auth/refresh", {"refreshToken": user["refreshToken"]})).status == 200
    clock.offset = timedelta(seconds=16)  # within 10 s of the retry, not of the first rotation
    late = await api.post("/api/auth/refresh", {"refreshToken": user["refreshToken"]})
    assert_error_shape(late, 401, "refresh_token_reused")


async def test_reuse_detection_remembers_the_last_twenty_rotated_tokens(start_server):
    # Each session stores the hashes of its last 20 rotated tokens, not every token it ever had.
    _, api = await start_server(refresh_reuse_grace_s=0)
    user = await api.register()
    tokens, access = [user["refreshToken"]], user["accessToken"]
    for _ in range(21):
        resp = await api.post("/api/auth/refresh", {"refreshToken": tokens[-1]})
        assert resp.status == 200, resp.text
        tokens.append(resp.json["refreshToken"])
        access = resp.json["accessToken"]
    # The first of 21 rotated tokens is forgotten: merely invalid, and the session goes on.
    assert_error_shape(await api.post("/api/auth/refresh", {"refreshToken": tokens[0]}), 401, "invalid_refresh_token")
    assert (await api.get("/api/user/profile", token=access)).status == 200
    # The second is among the last 20: presenting it is reuse and ends the session.
    assert_error_shape(await api.post("/api/auth/refresh", {"refreshToken": tokens[1]}), 401, "refresh_token_reused")
    assert_error_shape(await api.post("/api/auth/refresh", {"refreshToken": tokens[-1]}), 401, "invalid_refresh_token")
    assert_error_shape(await api.get("/api/user/profile", token=access), 401, "session_ended")


async def test_grace_retries_keep_only_the_last_twenty_superseded_tokens_too(start_server):
    clock = ShiftedClock()
    _, api = await start_server(refresh_reuse_grace_s=30, clock=clock)
    user = await api.register()
    first = (await api.post("/api/auth/refresh", {"refreshToken": user["refreshToken"]})).json
    handed_out, access = [first["refreshToken"]], first["accessToken"]
    for _ in range(21):  # the same old token retried 21 times within the window: each retry supersedes the last pair
        retry = await api.post("/api/auth/refresh", {"refreshToken": user["refreshToken"]})
        assert retry.status == 200, retry.text
        handed_out.append(retry.json["refreshToken"])
        access = retry.json["accessToken"]
    clock.offset = timedelta(seconds=60)  # past the window
    # 22 rotated-away hashes (the old token and 21 superseded ones): the two oldest are forgotten.
    assert_error_shape(await api.post("/api/auth/refresh", {"refreshToken": handed_out[0]}), 401,
                       "invalid_refresh_token")
    assert (await api.get("/api/user/profile", token=access)).status == 200
    assert_error_shape(await api.post("/api/auth/refresh", {"refreshToken": handed_out[1]}), 401,
                       "refresh_token_reused")
    assert_error_shape(await api.get("/api/user/profile", token=access), 401, "session_ended")


async def test_refresh_tokens_carry_256_random_bits(api):
    user = await api.register()
    rotated = (await api.post("/api/auth/refresh", {"refreshToken": user["refreshToken"]})).json
    for token in (user["refreshToken"], rotated["refreshToken"]):
        assert token.startswith("rt_")
        body = token[3:]
        assert set(body) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
        assert len(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))) == 32


async def test_ended_sessions_are_kept_thirty_days_then_purged_and_live_ones_never(start_server):
    # purge_at is what MongoDB's TTL index deletes by (tests/support/ttl.py runs its pass): an ended
    # session stays 30 days, so a copied refresh token presented meanwhile is still caught as reuse.
    clock = ShiftedClock()
    service, api = await start_server(clock=clock, refresh_absolute_ttl_s=86400, refresh_reuse_grace_s=0)

    async def rotated(user: dict) -> dict:
        resp = await api.post("/api/auth/refresh", {"refreshToken": user["refreshToken"]})
        assert resp.status == 200, resp.text
        return resp.json

    live = await api.register()  # never logged out: its lifetime ends in one day
    logged_out = await api.register()
    assert (await api.post("/api/auth/logout", {}, token=(await rotated(logged_out))["accessToken"])).status == 204
    logged_out_all = await api.register()
    assert (await api.post("/api/auth/logout", {"all": True},
                           token=(await rotated(logged_out_all))["accessToken"])).status == 204

    async def stored_after(offset: timedelta) -> set[str]:
        clock.offset = offset
        await ttl_pass(service.ctx.db, clock())
        return {str(doc["user_id"]) async for doc in service.ctx.db.sessions.find({})}

    everyone = {live["userId"], logged_out["userId"], logged_out_all["userId"]}
    assert await stored_after(timedelta(hours=1)) == everyone
    assert (await api.post("/api/auth/refresh", {"refreshToken": live["refreshToken"]})).status == 200
    for user in (logged_out, logged_out_all):  # their first token was rotated away before the logout
        assert_error_shape(await api.post("/api/auth/refresh", {"refreshToken": user["refreshToken"]}),
                           401, "refresh_token_reused")
    assert await stored_after(timedelta(days=29, hours=23)) == everyone
    assert await stored_after(timedelta(days=30, minutes=1)) == {live["userId"]}  # 30 days after they ended
    assert_error_shape(await api.post("/api/auth/refresh", {"refreshToken": logged_out["refreshToken"]}),
                       401, "invalid_refresh_token")  # forgotten now
    assert await stored_after(timedelta(days=30, hours=23)) == {live["userId"]}
    assert await stored_after(timedelta(days=31, minutes=1)) == set()  # 30 days after its lifetime ended


async def test_unknown_refresh_token_is_401(api):
    resp = await api.post("/api/auth/refresh", {"refreshToken": "rt_not-a-real-token"})
    assert_error_shape(resp, 401, "invalid_refresh_token")


async def test_logout_ends_the_current_session_at_once(api):
    user = await api.register()
    assert (await api.get("/api/user/profile", token=user["accessToken"])).status == 200  # warms the cache
    resp = await api.post("/api/auth/logout", {}, token=user["accessToken"])
    assert resp.status == 204 and resp.text == ""
    assert_error_shape(await api.get("/api/user/profile", token=user["accessToken"]), 401, "session_ended")
    assert_error_shape(await api.post("/api/auth/refresh", {"refreshToken": user["refreshToken"]}),
                       401, "invalid_refresh_token")


async def test_logout_all_ends_every_session_of_the_user(api):
    user = await api.register()
    other = (await api.post("/api/auth/login", {"email": user["email"], "password": PASSWORD})).json
    stranger = await api.register()
    assert (await api.post("/api/auth/logout", {"all": True}, token=user["accessToken"])).status == 204
    for token in (user["accessToken"], other["accessToken"]):
        assert_error_shape(await api.get("/api/user/profile", token=token), 401, "session_ended")
    for token in (user["refreshToken"], other["refreshToken"]):  # ended in MongoDB too, not only in the cache
        assert_error_shape(await api.post("/api/auth/refresh", {"refreshToken": token}), 401, "invalid_refresh_token")
    assert (await api.get("/api/user/profile", token=stranger["accessToken"])).status == 200
    assert (await api.post("/api/auth/refresh", {"refreshToken": stranger["refreshToken"]})).status == 200


async def test_logout_with_refresh_token_ends_that_session_only(api):
    user = await api.register()
    phone = (await api.post("/api/auth/login", {"email": user["email"], "password": PASSWORD})).json
    resp = await api.post("/api/auth/logout", {"refreshToken": phone["refreshToken"]}, token=user["accessToken"])
    assert resp.status == 204
    assert_error_shape(await api.get("/api/user/profile", token=phone["accessToken"]), 401, "session_ended")
    assert (await api.get("/api/user/profile", token=user["accessToken"])).status == 200
    stranger = await api.register()
    resp = await api.post("/api/auth/logout", {"refreshToken": stranger["refreshToken"]}, token=user["accessToken"])
    assert_error_shape(resp, 400, "invalid_refresh_token")
    assert (await api.get("/api/user/profile", token=stranger["accessToken"])).status == 200


async def test_sessions_are_listed_and_can_be_ended_one_by_one(api):
    user = await api.register(deviceId="phone-1")
    tablet = (await api.post("/api/auth/login", {"email": user["email"], "password": PASSWORD, "deviceId": "tab-2"})).json
    listed = await api.get("/api/auth/sessions", token=user["accessToken"])
    assert listed.status == 200
    sessions = listed.json["sessions"]
    assert {s["deviceId"] for s in sessions} == {"phone-1", "tab-2"}
    assert [s["current"] for s in sessions].count(True) == 1
    assert set(sessions[0]) == {"id", "deviceId", "createdAt", "lastUsedAt", "current"}
    tablet_id = next(s["id"] for s in sessions if s["deviceId"] == "tab-2")
    assert (await api.delete(f"/api/auth/sessions/{tablet_id}", token=user["accessToken"])).status == 204
    assert_error_shape(await api.get("/api/user/profile", token=tablet["accessToken"]), 401, "session_ended")
    remaining = (await api.get("/api/auth/sessions", token=user["accessToken"])).json["sessions"]
    assert [s["deviceId"] for s in remaining] == ["phone-1"]


async def test_a_user_cannot_end_or_see_another_users_session(api):
    owner = await api.register()
    intruder = await api.register()
    owner_session = (await api.get("/api/auth/sessions", token=owner["accessToken"])).json["sessions"][0]["id"]
    resp = await api.delete(f"/api/auth/sessions/{owner_session}", token=intruder["accessToken"])
    assert_error_shape(resp, 404, "session_not_found")
    assert (await api.get("/api/user/profile", token=owner["accessToken"])).status == 200
    listed = (await api.get("/api/auth/sessions", token=intruder["accessToken"])).json["sessions"]
    assert owner_session not in {s["id"] for s in listed}


async def test_tampered_or_missing_access_token_is_401(api):
    user = await api.register()
    head, payload, sig = user["accessToken"].split(".")
    forged = f"{head}.{payload}.{sig[:-4]}AAAA"
    assert_error_shape(await api.get("/api/user/profile", token=forged), 401, "invalid_token")
    assert_error_shape(await api.get("/api/user/profile"), 401, "missing_token")
    resp = await api.get("/api/user/profile", headers={"Authorization": f"Basic {user['accessToken']}"})
    assert_error_shape(resp, 401, "invalid_token")
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")


async def test_a_malformed_authorization_header_is_invalid_token_and_only_a_missing_one_is_missing_token(api):
    user = await api.register()
    for header in ("garbage", "Bearer", "Bearer    ", "Token abc", user["accessToken"], "Bearerabc"):
        resp = await api.get("/api/user/profile", headers={"Authorization": header})
        assert_error_shape(resp, 401, "invalid_token")
        assert resp.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"', header
    for headers in ({}, {"Authorization": ""}, {"Authorization": "   "}):
        assert_error_shape(await api.get("/api/user/profile", headers=headers), 401, "missing_token")
    ok = await api.get("/api/user/profile", headers={"Authorization": f"bearer {user['accessToken']}"})
    assert ok.status == 200


async def test_auth_endpoints_have_a_stricter_per_ip_budget(start_server):
    _, api = await start_server(auth_rate_limit_per_minute=3)
    statuses = [(await api.post("/api/auth/login", {"email": "x@example.com", "password": "whatever1"})).status
                for _ in range(4)]
    assert statuses == [401, 401, 401, 429]
    assert (await api.get("/api/health")).status == 200  # the general budget is separate


async def test_failed_logins_lock_the_attacker_pair_not_the_victim(start_server):
    _, api = await start_server(trusted_proxies=("127.0.0.1/32",), login_failures_per_pair=3)
    victim = await api.register()
    attacker = {"X-Forwarded-For": "203.0.113.9"}
    for _ in range(3):
        resp = await api.post("/api/auth/login", {"email": victim["email"], "password": "guess-guess"}, headers=attacker)
        assert resp.status == 401
    blocked = await api.post("/api/auth/login", {"email": victim["email"], "password": PASSWORD}, headers=attacker)
    assert_error_shape(blocked, 429, "too_many_login_attempts")
    assert int(blocked.headers["Retry-After"]) > 0
    ok = await api.post("/api/auth/login", {"email": victim["email"], "password": PASSWORD},
                        headers={"X-Forwarded-For": "198.51.100.7"})
    assert ok.status == 200


async def test_login_storm_beyond_the_cpu_queue_gets_503_not_a_hang(start_server):
    _, api = await start_server(cpu_queue_max=1, bcrypt_rounds=10)
    user = await api.register()
    results = await asyncio.gather(*(
        api.post("/api/auth/login", {"email": user["email"], "password": PASSWORD}) for _ in range(6)
    ))
    statuses = sorted(r.status for r in results)
    assert 200 in statuses and 503 in statuses
    busy = next(r for r in results if r.status == 503)
    assert_error_shape(busy, 503, "server_busy")
    assert busy.headers["Retry-After"] == "1"
