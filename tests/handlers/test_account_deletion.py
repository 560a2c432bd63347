"""Account deletion over HTTP against the RuStore emulator: renewals cancelled, sessions dead, data erased, ledger intact."""

from __future__ import annotations

from datetime import timedelta

from core.admin import AdminRefused, delete_user
from documents import wallet
from documents.generations import COLLECTION as GENERATIONS
from documents.generations import IMAGES
from server import build_parser
from tests.handlers.test_auth import PASSWORD
from tests.handlers.test_conventions import assert_error_shape
from tests.handlers.test_subscriptions import MONTH, status_of, subscribe, verify, with_grace_and_hold
from tests.oauth.fake_vk import oauth_settings


async def generate_card(api, user) -> dict:
    resp = await api.post("/api/generation/request", {"kind": "card", "occasion": "день учителя", "language": "ru"},
                          token=user["accessToken"], headers={"Idempotency-Key": "card-1"})
    assert resp.status == 200, resp.text
    return resp.json


async def test_deletion_cancels_renewal_ends_sessions_erases_data_and_frees_the_email(emulated):
    env = await emulated(webhooks=False)
    api, db = env.api, env.service.ctx.db
    user = await api.register(deviceId="pixel-7")
    other = (await api.post("/api/auth/login", {"email": user["email"], "password": PASSWORD, "deviceId": "tab"})).json
    sdk = await subscribe(env, user)
    assert (await verify(env, user, sdk)).status == 200
    record = env.emulator.store.subscription(sdk["purchaseId"])
    assert record.auto_renewing is True
    card = await generate_card(api, user)

    wrong = await api.delete("/api/user", json_body={"password": "not my password"}, token=user["accessToken"])
    assert_error_shape(wrong, 403, "invalid_current_password")
    assert_error_shape(await api.delete("/api/user", json_body={}, token=user["accessToken"]), 403, "current_password_required")
    done = await api.delete("/api/user", json_body={"password": PASSWORD}, token=user["accessToken"])
    assert done.status == 204, done.text

    assert record.auto_renewing is False and record.cancel_reason == 3  # RuStore saw the developer cancel (S8)
    for session in (user, other):
        assert_error_shape(await api.get("/api/user/profile", token=session["accessToken"]), 401, "session_ended")
        assert_error_shape(await api.post("/api/auth/refresh", {"refreshToken": session["refreshToken"]}),
                           401, "invalid_refresh_token")
    assert_error_shape(await api.post("/api/auth/login", {"email": user["email"], "password": PASSWORD}),
                       401, "invalid_credentials")

    tombstone = await db["users"].find_one({"_id": ledger_user_id(user)})
    assert user["email"] not in str(tombstone) and "pixel-7" not in str(tombstone)
    assert tombstone["password_hash"] is None and tombstone["device_ids"] == [] and tombstone["deleted_at"]
    assert tombstone["points"]["balance"] == 300 - card["cost"]  # the wallet stays for accounting
    gen = await db[GENERATIONS].find_one({"user_id": tombstone["_id"]})
    assert gen["request"] == {} and "text" not in gen["result"] and gen["spend"]  # the charge record stays
    assert await db[IMAGES].count_documents({"user_id": tombstone["_id"]}) == 0
    assert await db["sessions"].count_documents({"user_id": tombstone["_id"], "device_id": {"$ne": None}}) == 0
    assert await db["subscriptions"].count_documents({"user_id": tombstone["_id"]}) == 1
    audit = await wallet.verify_ledger(db)
    assert audit.ok, audit.drift

    again = await api.register(email=user["email"])  # the address can make a new account
    assert again["userId"] != user["userId"]
    assert (await api.get("/api/user/profile", token=again["accessToken"])).json["points"] == {"balance": 0}


def ledger_user_id(user: dict):
    from bson import ObjectId

    return ObjectId(user["userId"])


async def test_an_account_without_password_needs_a_recent_sign_in(emulated, google, vk):
    env = await emulated(**oauth_settings(google, vk))
    api = env.api
    signed_in = await api.post("/api/auth/oauth/google", {"idToken": google.id_token()})
    assert signed_in.status == 201
    token = signed_in.json["accessToken"]
    env.clock.advance(timedelta(minutes=11))
    refreshed = await api.post("/api/auth/refresh", {"refreshToken": signed_in.json["refreshToken"]})
    stale = refreshed.json["accessToken"]  # a refresh is not a sign-in
    assert_error_shape(await api.delete("/api/user", json_body={}, token=stale), 403, "reauthentication_required")
    fresh = await api.post("/api/auth/oauth/google", {"idToken": google.id_token()})
    assert fresh.status == 200
    assert (await api.delete("/api/user", json_body={}, token=fresh.json["accessToken"])).status == 204
    assert_error_shape(await api.get("/api/user/profile", token=token), 401, "session_ended")
    again = await api.post("/api/auth/oauth/google", {"idToken": google.id_token()})
    assert again.status == 201  # the identity was erased: the same Google account starts afresh


async def test_admin_command_deletes_with_the_same_effects(emulated, capsys):
    env = await emulated(webhooks=False)
    user = await env.api.register()
    sdk = await subscribe(env, user)
    assert (await verify(env, user, sdk)).status == 200
    ctx = env.service.ctx
    args = build_parser().parse_args(["delete-user", user["email"]])
    from core.admin import run_admin

    assert await run_admin(ctx, args) == 0
    assert f"deleted account {user['userId']}" in capsys.readouterr().out
    assert env.emulator.store.subscription(sdk["purchaseId"]).auto_renewing is False
    assert_error_shape(await env.api.get("/api/user/profile", token=user["accessToken"]), 401, "session_ended")
    try:
        await delete_user(ctx, user["userId"])
        raise AssertionError("a deleted account was deleted twice")
    except AdminRefused as exc:
        assert "already deleted" in str(exc)


async def test_deletion_cancels_a_subscription_on_hold_so_a_later_retry_never_charges_the_deleted_account(emulated):
    env = await emulated(webhooks=False)
    with_grace_and_hold(env)
    user = await env.api.register(password=PASSWORD)
    sdk = await subscribe(env, user, renewal="fail")
    assert (await verify(env, user, sdk)).status == 200
    await env.advance(MONTH + timedelta(hours=1))
    await status_of(env, user)
    await env.advance(timedelta(days=3))
    assert (await status_of(env, user))["status"] == "paused"  # RuStore keeps retrying the charge while on hold
    done = await env.api.delete("/api/user", json_body={"password": PASSWORD}, token=user["accessToken"])
    assert done.status == 204, done.text
    assert env.emulator.store.subscription(sdk["purchaseId"]).auto_renewing is False
