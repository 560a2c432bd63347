"""The signed-in user's profile and credential changes."""

from __future__ import annotations

from tests.handlers.test_auth import PASSWORD
from tests.handlers.test_conventions import assert_error_shape
from tests.support.overlap import InFlight


async def test_profile_has_the_documented_shape(api):
    user = await api.register(deviceId="dev-1")
    resp = await api.get("/api/user/profile", token=user["accessToken"])
    assert resp.status == 200
    assert resp.json["userId"] == user["userId"]
    assert resp.json["points"] == {"balance": 0}
    assert resp.json["subscription"] is None
    assert resp.json["createdAt"].endswith("Z")
    assert resp.json["ownedProducts"] == []
    assert set(resp.json) == {"userId", "email", "deviceIds", "createdAt", "points", "ownedProducts", "subscription",
                              "emailVerified", "pendingEmail", "locale"}
    assert (resp.json["emailVerified"], resp.json["pendingEmail"], resp.json["locale"]) == (False, None, "en")


async def test_update_requires_the_current_password_and_changes_nothing_without_it(api):
    user = await api.register()
    resp = await api.patch("/api/user/update", {"currentPassword": "not my password", "email": "new@example.com"},
                           token=user["accessToken"])
    assert_error_shape(resp, 403, "invalid_current_password")
    profile = await api.get("/api/user/profile", token=user["accessToken"])
    assert profile.json["email"] == user["email"]


async def test_update_needs_something_to_change(api):
    user = await api.register()
    resp = await api.patch("/api/user/update", {"currentPassword": PASSWORD}, token=user["accessToken"])
    assert_error_shape(resp, 400, "validation_failed")


async def test_changing_password_ends_other_sessions_but_keeps_this_one(api):
    user = await api.register()
    other = (await api.post("/api/auth/login", {"email": user["email"], "password": PASSWORD})).json
    resp = await api.patch("/api/user/update", {"currentPassword": PASSWORD, "password": "a brand new one"},
                           token=user["accessToken"])
    assert resp.status == 200 and resp.json["email"] == user["email"]
    assert (await api.get("/api/user/profile", token=user["accessToken"])).status == 200
    assert_error_shape(await api.get("/api/user/profile", token=other["accessToken"]), 401, "session_ended")
    assert_error_shape(await api.post("/api/auth/refresh", {"refreshToken": other["refreshToken"]}),
                       401, "invalid_refresh_token")
    old = await api.post("/api/auth/login", {"email": user["email"], "password": PASSWORD})
    assert_error_shape(old, 401, "invalid_credentials")
    assert (await api.post("/api/auth/login", {"email": user["email"], "password": "a brand new one"})).status == 200


async def test_changing_email_waits_for_verification_before_moving_the_login(api):
    # The whole flow, with the verification mail, is in test_email_verification.py.
    user = await api.register()
    resp = await api.patch("/api/user/update", {"currentPassword": PASSWORD, "email": " Moved@Example.com"},
                           token=user["accessToken"])
    assert resp.status == 200 and (resp.json["email"], resp.json["pendingEmail"]) == (user["email"], "moved@example.com")
    assert (await api.post("/api/auth/login", {"email": "moved@example.com", "password": PASSWORD})).status == 401
    assert (await api.post("/api/auth/login", {"email": user["email"], "password": PASSWORD})).status == 200


async def test_changing_to_a_taken_email_is_409_and_changes_nothing(api):
    taken = await api.register()
    user = await api.register()
    resp = await api.patch("/api/user/update", {"currentPassword": PASSWORD, "email": taken["email"],
                                                "password": "another password"}, token=user["accessToken"])
    assert_error_shape(resp, 409, "email_taken")
    assert (await api.post("/api/auth/login", {"email": user["email"], "password": PASSWORD})).status == 200


async def test_guessing_the_current_password_hits_the_sign_in_failure_budget(start_server):
    _, api = await start_server(login_failures_per_pair=3)
    user = await api.register()
    for _ in range(3):
        resp = await api.patch("/api/user/update", {"currentPassword": "a wrong guess", "password": "new password 1"},
                               token=user["accessToken"])
        assert_error_shape(resp, 403, "invalid_current_password")
    blocked = await api.patch("/api/user/update", {"currentPassword": PASSWORD, "password": "new password 1"},
                              token=user["accessToken"])
    assert_error_shape(blocked, 429, "too_many_login_attempts")
    assert int(blocked.headers["Retry-After"]) > 0
    same_budget = await api.post("/api/auth/login", {"email": user["email"], "password": PASSWORD})
    assert_error_shape(same_budget, 429, "too_many_login_attempts")  # the same budget as sign-in


async def test_concurrent_current_password_guesses_get_exactly_the_failure_budget(start_server):
    _, api = await start_server(login_failures_per_pair=3, bcrypt_rounds=6)
    user = await api.register()
    answers = await (sent := InFlight()).gather(*(
        api.patch("/api/user/update", {"currentPassword": f"wrong guess {i}", "password": "new password 1"},
                  token=user["accessToken"])
        for i in range(10)))
    assert sent.peak == 10  # all ten guesses were in flight before the first answer
    assert sorted(a.status for a in answers) == [403] * 3 + [429] * 7


async def test_an_overlong_current_password_is_refused_even_with_only_a_locale_change(api):
    user = await api.register()
    resp = await api.patch("/api/user/update", {"currentPassword": "a" * 1025, "locale": "ru"}, token=user["accessToken"])
    assert_error_shape(resp, 400, "validation_failed")
    assert "currentPassword" in resp.json["details"]["fields"]
