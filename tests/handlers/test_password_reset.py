"""Password reset over HTTP with a real SMTP server: forgot -> mail -> reset, single use, expiry, no enumeration."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

from documents.accounts.tokens import COLLECTION as TOKENS
from documents.accounts.tokens import token_hash
from tests.handlers.test_auth import PASSWORD
from tests.handlers.test_conventions import assert_error_shape
from tests.support.smtp import html_of, link_of, text_of, token_of

NEW = "a brand new password"


class Clock:
    """A server clock a test moves by hand."""

    def __init__(self) -> None:
        self.at = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.at


async def forgot(api, email: str, **headers):
    return await api.post("/api/auth/password/forgot", {"email": email}, headers=headers or None)


async def test_reset_end_to_end_ends_every_session_and_the_link_works_once(start_server, smtp):
    service, api = await start_server(smtp_url=smtp.url, mail_from="accounts@example.com")
    user = await api.register()
    other = (await api.post("/api/auth/login", {"email": user["email"], "password": PASSWORD})).json
    resp = await forgot(api, user["email"].upper())
    assert resp.status == 202 and resp.json == {"status": "accepted"}

    mails = await smtp.wait_for(user["email"], 2)  # the verification mail from registration, then the reset
    mail = next(m for m in mails if m["Subject"] == "Reset your password")
    assert mail["From"] == "accounts@example.com"
    link = link_of(mail)
    assert link.startswith(f"{api.base_url}/auth/reset-password?token=") and "lang=en" in link
    assert link in html_of(mail).replace("&amp;", "&")
    token = token_of(mail)
    assert len(token) >= 43  # 32 random bytes, base64url
    stored = await service.ctx.db[TOKENS].find_one({"purpose": "password_reset"})
    assert stored["_id"] == token_hash(token) and token not in str(stored)  # only the hash is kept

    done = await api.post("/api/auth/password/reset", {"token": token, "newPassword": NEW})
    assert done.status == 200 and done.json == {"status": "password_reset"}
    for session in (user, other):
        assert_error_shape(await api.get("/api/user/profile", token=session["accessToken"]), 401, "session_ended")
        assert_error_shape(await api.post("/api/auth/refresh", {"refreshToken": session["refreshToken"]}),
                           401, "invalid_refresh_token")
    assert_error_shape(await api.post("/api/auth/login", {"email": user["email"], "password": PASSWORD}),
                       401, "invalid_credentials")
    login = await api.post("/api/auth/login", {"email": user["email"], "password": NEW})
    assert login.status == 200
    profile = (await api.get("/api/user/profile", token=login.json["accessToken"])).json
    assert profile["emailVerified"] is True  # the link reached the mailbox

    again = await api.post("/api/auth/password/reset", {"token": token, "newPassword": "yet another one"})
    assert_error_shape(again, 400, "invalid_or_expired_token")
    notice = (await smtp.wait_for(user["email"], 3))[2]
    assert notice["Subject"] == "Your password was changed" and "signed out" in text_of(notice)


async def test_a_new_request_replaces_the_older_link_and_links_expire(start_server, smtp):
    clock = Clock()
    _, api = await start_server(smtp_url=smtp.url, clock=clock, password_reset_ttl_s=600)
    user = await api.register()
    await forgot(api, user["email"])
    await forgot(api, user["email"])
    first, second = [m for m in await smtp.wait_for(user["email"], 3) if m["Subject"] == "Reset your password"]
    assert "10 minutes" in text_of(first)
    assert_error_shape(await api.post("/api/auth/password/reset", {"token": token_of(first), "newPassword": NEW}),
                       400, "invalid_or_expired_token")
    clock.at += timedelta(seconds=601)
    assert_error_shape(await api.post("/api/auth/password/reset", {"token": token_of(second), "newPassword": NEW}),
                       400, "invalid_or_expired_token")
    assert (await api.post("/api/auth/login", {"email": user["email"], "password": PASSWORD})).status == 200


async def test_unknown_email_gets_the_same_answer_in_similar_time_and_no_mail(start_server, smtp):
    _, api = await start_server(smtp_url=smtp.url)
    user = await api.register()
    await smtp.wait_for(user["email"])  # the verification mail
    timings = {"known": [], "unknown": []}
    for _ in range(3):
        for kind, email in (("known", user["email"]), ("unknown", "nobody-here@example.com")):
            started = time.perf_counter()
            resp = await forgot(api, email)
            timings[kind].append(time.perf_counter() - started)
            assert (resp.status, resp.json) == (202, {"status": "accepted"})
    await smtp.wait_for(user["email"], 4)
    await asyncio.sleep(0.2)
    assert smtp.to("nobody-here@example.com") == []
    # Both answers come before any lookup: the medians differ by noise only (well under 50 ms on loopback).
    median = {k: sorted(v)[1] for k, v in timings.items()}
    assert abs(median["known"] - median["unknown"]) < 0.05, median


async def test_bad_tokens_and_weak_passwords_are_refused(start_server, smtp):
    _, api = await start_server(smtp_url=smtp.url)
    user = await api.register()
    await forgot(api, user["email"])
    mail = next(m for m in await smtp.wait_for(user["email"], 2) if m["Subject"] == "Reset your password")
    assert_error_shape(await api.post("/api/auth/password/reset", {"token": "made-up", "newPassword": NEW}),
                       400, "invalid_or_expired_token")
    short = await api.post("/api/auth/password/reset", {"token": token_of(mail), "newPassword": "short"})
    assert_error_shape(short, 400, "validation_failed")
    assert "newPassword" in short.json["details"]["fields"]
    # The refused attempt did not use the link up.
    assert (await api.post("/api/auth/password/reset", {"token": token_of(mail), "newPassword": NEW})).status == 200


async def test_forgot_is_rate_limited_per_email_and_per_address(start_server, smtp):
    _, api = await start_server(smtp_url=smtp.url, account_mail_per_email=2, account_mail_per_ip=3)
    for _ in range(2):
        assert (await forgot(api, "a@example.com")).status == 202
    limited = await forgot(api, "a@example.com")
    assert_error_shape(limited, 429, "rate_limited")
    assert int(limited.headers["Retry-After"]) > 0
    assert (await forgot(api, "b@example.com")).status == 202  # the address budget (3) is now spent too
    assert_error_shape(await forgot(api, "c@example.com"), 429, "rate_limited")


async def test_russian_account_gets_russian_mail_and_russian_errors(start_server, smtp):
    _, api = await start_server(smtp_url=smtp.url)
    email = "ivan@example.com"
    resp = await api.post("/api/auth/register", {"email": email, "password": PASSWORD},
                          headers={"Accept-Language": "ru-RU,ru;q=0.9,en;q=0.5"})
    assert resp.status == 201
    await forgot(api, email)
    mail = next(m for m in await smtp.wait_for(email, 2) if m["Subject"] == "Сброс пароля")
    assert "lang=ru" in link_of(mail) and "Откройте ссылку" in text_of(mail)
    bad = await api.post("/api/auth/password/reset", {"token": "nope", "newPassword": NEW},
                         headers={"Accept-Language": "ru"})
    assert_error_shape(bad, 400, "invalid_or_expired_token")
    assert bad.json["error"] == "Ссылка недействительна или устарела, запросите новую."
    english = await api.post("/api/auth/password/reset", {"token": "nope", "newPassword": NEW})
    assert english.json["error"] == "This link is invalid or has expired; ask for a new one."


async def test_production_without_smtp_answers_503_mail_not_configured(start_server):
    # APP_ENV=production needs HTTPS: the test pretends to sit behind a trusted TLS proxy.
    _, api = await start_server(app_env="production", trusted_proxies=("127.0.0.1/32",))
    https = {"X-Forwarded-Proto": "https"}
    resp = await api.post("/api/auth/password/forgot", {"email": "a@example.com"}, headers=https)
    assert_error_shape(resp, 503, "mail_not_configured")


async def test_links_can_open_an_apps_deep_link_or_a_configured_public_base(start_server, smtp):
    _, api = await start_server(smtp_url=smtp.url, password_reset_url="myapp://reset?from=mail",
                                public_base_url="https://accounts.example.com/")
    user = await api.register()
    verify = (await smtp.wait_for(user["email"]))[0]
    assert link_of(verify).startswith("https://accounts.example.com/auth/verify-email?token=")
    await forgot(api, user["email"])
    mail = next(m for m in await smtp.wait_for(user["email"], 2) if m["Subject"] == "Reset your password")
    assert link_of(mail).startswith("myapp://reset?from=mail&token=")
    assert (await api.post("/api/auth/password/reset", {"token": token_of(mail), "newPassword": NEW})).status == 200
