"""GET /api/customer and the server API over HTTP against the RuStore emulator: entitlements read from RuStore's state."""

from __future__ import annotations

from datetime import timedelta

from core.settings import load_settings
from tests.handlers.test_conventions import assert_error_shape
from tests.handlers.test_payments import NO_ADS
from tests.handlers.test_payments import verify_body as payment_body
from tests.handlers.test_subscriptions import MONTH, subscribe, verify, with_grace_and_hold

KEY = "sk_test_" + "k" * 32
INACTIVE = {"active": False, "productId": None, "expiresAt": None, "willRenew": False, "period": None, "sandbox": False}


async def customer(env, user, **headers):
    return await env.api.get("/api/customer", token=user["accessToken"], headers=headers or None)


async def premium(env, user) -> dict:
    resp = await customer(env, user)
    assert resp.status == 200, resp.text
    return resp.json["entitlements"]["premium"]


async def test_a_new_user_has_every_declared_entitlement_inactive(emulated):
    products = [*load_settings().extra["products"], NO_ADS]
    env = await emulated(extra={"products": products},
                         entitlements_override="premium=premium_monthly|premium_yearly;no_ads=no_ads")
    user = await env.api.register()
    resp = await customer(env, user)
    assert resp.status == 200
    assert resp.json == {"userId": user["userId"], "balance": 0, "entitlements": {"premium": INACTIVE, "no_ads": INACTIVE},
                         "subscriptions": [], "nonConsumables": [], "requestDate": resp.json["requestDate"]}
    assert resp.json["requestDate"].endswith("Z")


async def test_premium_monthly_is_active_until_the_emulators_expiry_and_a_cancel_keeps_it_until_the_end(emulated):
    env = await emulated(webhooks=False)
    user = await env.api.register()
    sdk = await subscribe(env, user)
    assert (await verify(env, user, sdk)).status == 200
    record = env.emulator.store.subscription(sdk["purchaseId"])
    snapshot = (await customer(env, user)).json
    expires = snapshot["subscriptions"][0]["expiresAt"]
    assert expires == record.expiry_time.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    assert snapshot["entitlements"]["premium"] == {"active": True, "productId": "premium_monthly", "expiresAt": expires,
                                                   "willRenew": True, "period": "normal", "sandbox": False}
    assert snapshot["subscriptions"] == [{"productId": "premium_monthly", "purchaseId": sdk["purchaseId"],
                                          "status": "active", "startedAt": snapshot["subscriptions"][0]["startedAt"],
                                          "expiresAt": expires, "willRenew": True}]
    assert snapshot["balance"] == 300

    assert (await env.api.post("/api/subscriptions/cancel", {}, token=user["accessToken"])).status == 200
    assert await premium(env, user) == {"active": True, "productId": "premium_monthly", "expiresAt": expires,
                                        "willRenew": False, "period": "normal", "sandbox": False}
    await env.advance(MONTH - timedelta(hours=1))
    assert (await premium(env, user))["active"] is True
    await env.advance(timedelta(hours=2))  # past the end, with no event at all: read-time computation
    assert await premium(env, user) == INACTIVE
    assert (await customer(env, user)).json["subscriptions"][0]["status"] == "expired"


async def test_hold_removes_the_entitlement_and_a_successful_retry_restores_it(emulated):
    env = await emulated(webhooks=False)
    with_grace_and_hold(env)
    user = await env.api.register()
    sdk = await subscribe(env, user, renewal="fail")
    await verify(env, user, sdk)
    await env.advance(MONTH + timedelta(hours=1))
    await verify(env, user, sdk)
    grace = await premium(env, user)
    assert (grace["active"], grace["period"], grace["willRenew"]) == (True, "grace", True)
    await env.advance(timedelta(days=3))
    await verify(env, user, sdk)  # RuStore now shows the hold
    assert await premium(env, user) == INACTIVE


async def test_a_refunded_charge_removes_the_entitlement_though_rustore_still_shows_it_active(emulated):
    env = await emulated()
    user = await env.api.register()
    sdk = await subscribe(env, user)
    await env.settle()
    await verify(env, user, sdk)
    assert (await premium(env, user))["active"] is True
    env.emulator.invoice_action(int(sdk["invoiceId"]), "refund")
    await env.settle()
    assert await premium(env, user) == INACTIVE
    assert (await customer(env, user)).json["subscriptions"][0]["status"] == "refunded"
    profile = (await env.api.get("/api/user/profile", token=user["accessToken"])).json
    assert profile["subscription"]["status"] == "active"  # the profile keeps showing what RuStore says


async def test_a_non_consumable_grants_its_entitlement_forever_until_refunded(emulated):
    products = [*load_settings().extra["products"], NO_ADS]
    env = await emulated(extra={"products": products}, webhooks=False, entitlements_override="no_ads=no_ads")
    user = await env.api.register()
    sdk = env.buy("no_ads", user=user)
    assert (await env.api.post("/api/payments/verify", payment_body(sdk), token=user["accessToken"])).status == 200
    snapshot = (await customer(env, user)).json
    assert snapshot["entitlements"] == {"no_ads": {"active": True, "productId": "no_ads", "expiresAt": None,
                                                   "willRenew": False, "period": None, "sandbox": False}}
    assert [(n["productId"], n["invoiceId"]) for n in snapshot["nonConsumables"]] == [("no_ads", sdk["invoiceId"])]
    env.emulator.invoice_action(int(sdk["invoiceId"]), "refund")
    from jobs import find_job
    from jobs.runner import run_job

    await run_job(env.service.ctx, find_job("refund-sweep"))
    assert (await customer(env, user)).json["entitlements"]["no_ads"] == INACTIVE


async def test_etag_answers_304_until_something_changes(emulated):
    env = await emulated(webhooks=False)
    user = await env.api.register()
    first = await customer(env, user)
    etag = first.headers["ETag"]
    again = await customer(env, user, **{"If-None-Match": etag})
    assert again.status == 304 and again.text == "" and again.headers["ETag"] == etag
    sdk = await subscribe(env, user)
    await verify(env, user, sdk)
    changed = await customer(env, user, **{"If-None-Match": etag})
    assert changed.status == 200 and changed.headers["ETag"] != etag
    assert changed.json["entitlements"]["premium"]["active"] is True


async def test_server_api_takes_a_server_key_never_a_users_token(emulated):
    env = await emulated(webhooks=False, server_api_keys=(KEY, "sk_other_" + "o" * 32))
    user = await env.api.register()
    sdk = await subscribe(env, user)
    await verify(env, user, sdk)
    own = (await customer(env, user)).json
    path = f"/api/server/customers/{user['userId']}"
    resp = await env.api.get(path, token=KEY)
    assert resp.status == 200 and {k: v for k, v in resp.json.items() if k != "requestDate"} == \
        {k: v for k, v in own.items() if k != "requestDate"}
    one = await env.api.get(path + "/entitlements/premium", token=KEY)
    assert one.status == 200 and one.json == {"active": True, "expiresAt": own["entitlements"]["premium"]["expiresAt"]}
    for token in ("sk_test_" + "x" * 32, user["accessToken"], None):
        assert_error_shape(await env.api.get(path, token=token), 401, "invalid_api_key")
        assert_error_shape(await env.api.get(path + "/entitlements/premium", token=token), 401, "invalid_api_key")
    assert_error_shape(await env.api.get("/api/server/customers/5f0000000000000000000000", token=KEY), 404,
                       "user_not_found")
    assert_error_shape(await env.api.get(path + "/entitlements/gold", token=KEY), 404, "entitlement_not_found")


async def test_without_server_api_keys_every_key_is_refused(emulated):
    env = await emulated(webhooks=False)
    user = await env.api.register()
    assert_error_shape(await env.api.get(f"/api/server/customers/{user['userId']}", token="sk_" + "a" * 30), 401,
                       "invalid_api_key")
