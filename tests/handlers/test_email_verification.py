"""E-mail verification, resend, the e-mail change flow and delivery through an SMTP outage, over HTTP."""

from __future__ import annotations

from documents.accounts.mail import COLLECTION as OUTBOX
from jobs import find_job
from jobs.runner import run_job
from tests.handlers.test_auth import PASSWORD
from tests.handlers.test_conventions import assert_error_shape
from tests.handlers.test_password_reset import Clock
from tests.oauth.fake_vk import oauth_settings
from tests.support.smtp import link_of, text_of, token_of


async def profile_of(api, user) -> dict:
    resp = await api.get("/api/user/profile", token=user["accessToken"])
    assert resp.status == 200, resp.text
    return resp.json


async def test_registration_mails_a_link_that_verifies_the_address_once(start_server, smtp):
    _, api = await start_server(smtp_url=smtp.url)
    user = await api.register()
    assert (await profile_of(api, user))["emailVerified"] is False
    mail = (await smtp.wait_for(user["email"]))[0]
    assert mail["Subject"] == "Confirm your e-mail address"
    assert link_of(mail).startswith(f"{api.base_url}/auth/verify-email?token=")
    done = await api.post("/api/auth/email/verify", {"token": token_of(mail)})
    assert (done.status, done.json) == (200, {"email": user["email"], "emailVerified": True})
    assert (await profile_of(api, user))["emailVerified"] is True
    assert_error_shape(await api.post("/api/auth/email/verify", {"token": token_of(mail)}), 400, "invalid_or_expired_token")
    assert_error_shape(await api.post("/api/auth/email/verify/resend", token=user["accessToken"]),
                       409, "email_already_verified")


async def test_resend_replaces_the_link_and_is_rate_limited(start_server, smtp):
    _, api = await start_server(smtp_url=smtp.url, account_mail_per_email=2)
    user = await api.register()
    assert_error_shape(await api.post("/api/auth/email/verify/resend"), 401, "missing_token")
    resent = await api.post("/api/auth/email/verify/resend", token=user["accessToken"])
    assert (resent.status, resent.json) == (202, {"status": "accepted"})
    first, second = await smtp.wait_for(user["email"], 2)
    assert_error_shape(await api.post("/api/auth/email/verify", {"token": token_of(first)}), 400, "invalid_or_expired_token")
    assert (await api.post("/api/auth/email/verify/resend", token=user["accessToken"])).status == 202
    assert_error_shape(await api.post("/api/auth/email/verify/resend", token=user["accessToken"]), 429, "rate_limited")
    third = (await smtp.wait_for(user["email"], 3))[2]
    assert (await api.post("/api/auth/email/verify", {"token": token_of(third)})).status == 200
    assert token_of(second) != token_of(third)


async def test_changing_email_keeps_the_old_one_until_the_new_is_verified_and_tells_the_old(start_server, smtp):
    _, api = await start_server(smtp_url=smtp.url)
    user = await api.register()
    await smtp.wait_for(user["email"])
    resp = await api.patch("/api/user/update", {"currentPassword": PASSWORD, "email": " Moved@Example.com"},
                           token=user["accessToken"])
    assert resp.status == 200, resp.text
    assert (resp.json["email"], resp.json["pendingEmail"]) == (user["email"], "moved@example.com")
    notice = (await smtp.wait_for(user["email"], 2))[1]
    assert notice["Subject"] == "Your e-mail address is being changed" and "moved@example.com" in text_of(notice)
    # Until the new address is proven the old one signs in and the new one does not.
    assert (await api.post("/api/auth/login", {"email": user["email"], "password": PASSWORD})).status == 200
    assert (await api.post("/api/auth/login", {"email": "moved@example.com", "password": PASSWORD})).status == 401

    link_mail = (await smtp.wait_for("moved@example.com"))[0]
    done = await api.post("/api/auth/email/verify", {"token": token_of(link_mail)})
    assert (done.status, done.json) == (200, {"email": "moved@example.com", "emailVerified": True})
    profile = await profile_of(api, user)
    assert (profile["email"], profile["pendingEmail"], profile["emailVerified"]) == ("moved@example.com", None, True)
    assert (await api.post("/api/auth/login", {"email": "moved@example.com", "password": PASSWORD})).status == 200
    assert (await api.post("/api/auth/login", {"email": user["email"], "password": PASSWORD})).status == 401
    # The old address is free for a new account.
    assert (await api.post("/api/auth/register", {"email": user["email"], "password": PASSWORD})).status == 201


async def test_asking_for_the_current_address_again_drops_the_pending_change(start_server, smtp):
    _, api = await start_server(smtp_url=smtp.url)
    user = await api.register()
    await api.patch("/api/user/update", {"currentPassword": PASSWORD, "email": "second@example.com"},
                    token=user["accessToken"])
    link_mail = (await smtp.wait_for("second@example.com"))[0]
    back = await api.patch("/api/user/update", {"currentPassword": PASSWORD, "email": user["email"]},
                           token=user["accessToken"])
    assert (back.json["email"], back.json["pendingEmail"]) == (user["email"], None)
    assert_error_shape(await api.post("/api/auth/email/verify", {"token": token_of(link_mail)}),
                       400, "invalid_or_expired_token")
    assert (await profile_of(api, user))["email"] == user["email"]


async def test_a_pending_address_taken_meanwhile_is_409_at_verification(start_server, smtp):
    _, api = await start_server(smtp_url=smtp.url)
    user = await api.register()
    await api.patch("/api/user/update", {"currentPassword": PASSWORD, "email": "race@example.com"},
                    token=user["accessToken"])
    link_mail = (await smtp.wait_for("race@example.com"))[0]
    assert (await api.post("/api/auth/register", {"email": "race@example.com", "password": PASSWORD})).status == 201
    assert_error_shape(await api.post("/api/auth/email/verify", {"token": token_of(link_mail)}), 409, "email_taken")
    assert (await profile_of(api, user))["email"] == user["email"]


async def test_locale_is_taken_from_the_body_and_changeable(start_server, smtp):
    _, api = await start_server(smtp_url=smtp.url)
    user = await api.register(locale="ru")
    mail = (await smtp.wait_for(user["email"]))[0]
    assert mail["Subject"] == "Подтвердите адрес почты" and "lang=ru" in link_of(mail)
    assert (await profile_of(api, user))["locale"] == "ru"
    changed = await api.patch("/api/user/update", {"locale": "en"}, token=user["accessToken"])
    assert changed.status == 200 and changed.json["locale"] == "en"
    await api.post("/api/auth/email/verify/resend", token=user["accessToken"])
    assert (await smtp.wait_for(user["email"], 2))[1]["Subject"] == "Confirm your e-mail address"
    assert_error_shape(await api.patch("/api/user/update", {"locale": "de"}, token=user["accessToken"]),
                       400, "validation_failed")


async def test_provider_accounts_take_the_providers_verified_flag(start_server, google, vk):
    _, api = await start_server(**oauth_settings(google, vk))
    first = await api.post("/api/auth/oauth/google", {"idToken": google.id_token()})
    assert first.status == 201, first.text
    profile = await profile_of(api, first.json)
    assert (profile["email"], profile["emailVerified"]) == ("ann@gmail.com", True)
    unverified = await api.post("/api/auth/oauth/google", {"idToken": google.id_token(sub="2", email="bob@gmail.com",
                                                                                         email_verified=False)})
    profile = await profile_of(api, unverified.json)
    assert (profile["email"], profile["emailVerified"]) == (None, False)


async def test_mail_queued_while_smtp_is_down_is_delivered_by_the_job_after_it_returns(start_server, smtp):
    clock = Clock()
    service, api = await start_server(smtp_url=smtp.url, clock=clock, smtp_timeout_s=2.0)
    smtp.stop()
    user = await api.register()  # the request does not wait for SMTP
    ctx = service.ctx
    for _ in range(200):
        doc = await ctx.db[OUTBOX].find_one({"to": user["email"]})
        if doc and doc["attempts"] == 1 and doc["last_error"]:
            break
        await api.get("/api/health")
    assert doc["status"] == "pending" and doc["last_error"] and doc["sealed"]
    assert user["email"] not in str(doc["last_error"])
    job = find_job("mail-delivery")
    assert (await run_job(ctx, job)).summary == {"sent": 0, "pending": 0, "dead": 0}  # still backing off
    clock.at = doc["next_attempt_at"]
    failed_again = await run_job(ctx, job)
    assert failed_again.summary == {"sent": 0, "pending": 1, "dead": 0}
    smtp.start()
    clock.at = (await ctx.db[OUTBOX].find_one({"_id": doc["_id"]}))["next_attempt_at"]
    delivered = await run_job(ctx, job)
    assert delivered.summary == {"sent": 1, "pending": 0, "dead": 0}
    mail = (await smtp.wait_for(user["email"]))[0]
    assert (await api.post("/api/auth/email/verify", {"token": token_of(mail)})).status == 200
    sent = await ctx.db[OUTBOX].find_one({"_id": doc["_id"]})
    assert (sent["status"], sent["sealed"], sent["attempts"]) == ("sent", None, 3)
