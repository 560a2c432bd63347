"""Replica-set elections and lost answers over the wire: every credit, spend and webhook store happens exactly once.

The wire server (tests/support/wire_mongo.py) answers a money write with NotWritablePrimary (10107)
and reports no primary for a moment, or applies a write and closes the connection before answering.
The driver's retryable writes re-send with the same transaction number (answered from the server's
record, as a real primary does); when even that answer is lost, the app's own retry with the same
idempotency key replays the first effect.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from core.emulated import build_emulator
from documents import wallet, webhooks
from documents.accounts import parse_id
from documents.wallet import TRANSACTIONS, verify_ledger
from tests.conftest import make_settings
from tests.faults.test_mongo_outage import assert_database_unavailable, webhook_body, webhook_settings
from tests.support.wire_mongo import Fault, moves_balance

ELECTION_S = 0.6  # no primary for this long after the step-down (a real election takes about 10-12 s)


async def seeded(env: Any, points: int = 10) -> dict:
    """A registered user holding `points`, credited through the ledger over the wire."""

    user = await env.api.register()
    await wallet.credit(env.ctx.db, user["userId"], points, "admin_grant", f"seed:{user['userId']}")
    return user


async def spend(env: Any, user: dict, amount: int, key: str):  # type: ignore[no-untyped-def]
    return await env.api.post("/api/points/spend", {"amount": amount}, token=user["accessToken"],
                              headers={"Idempotency-Key": key})


async def entries(env: Any, user: dict) -> list[tuple[str, int]]:
    stored = await env.ctx.db[TRANSACTIONS].find({"user_id": parse_id(user["userId"])}).sort("seq", 1).to_list(None)
    return [(e["type"], e["amount"]) for e in stored]


async def assert_clean(env: Any) -> None:
    audit = await verify_ledger(env.ctx.db)
    assert audit.ok, audit.drift


async def test_a_step_down_during_a_spend_is_retried_by_the_driver_and_spends_once(over_the_wire):
    env = await over_the_wire()
    user = await seeded(env)
    fault = env.wire.inject(Fault("findAndModify", "users", "step_down", election_s=ELECTION_S, where=moves_balance))
    resp = await spend(env, user, 3, "spend-1")
    assert resp.status == 200, resp.text
    assert (fault.hits, resp.json["balance"]) == (1, 7)
    assert len(env.wire.balance_changes()) == 2  # the seed credit and this spend: the retry applied it once
    assert await entries(env, user) == [("admin_grant", 10), ("spend", -3)]
    # Every write went out as a retryable write (a transaction number) waiting for a majority.
    assert env.wire.writes and all(doc["writeConcern"]["w"] == "majority" and "txnNumber" in doc
                                   for _, _, doc in env.wire.writes)
    again = await spend(env, user, 3, "spend-1")  # the app's own retry of the same call
    assert again.json == resp.json
    await assert_clean(env)


async def test_an_answer_lost_after_the_spend_was_applied_is_resolved_by_the_driver_retry(over_the_wire):
    env = await over_the_wire()
    user = await seeded(env)
    fault = env.wire.inject(Fault("findAndModify", "users", "hang_up_after", where=moves_balance))
    resp = await spend(env, user, 4, "spend-2")
    assert (resp.status, resp.json["balance"], fault.hits) == (200, 6, 1)
    assert len(env.wire.balance_changes()) == 2  # the re-sent write was answered from the server's record
    assert await entries(env, user) == [("admin_grant", 10), ("spend", -4)]
    await assert_clean(env)


async def test_an_answer_lost_until_the_timeout_is_replayed_by_the_apps_retry_with_the_same_key(over_the_wire):
    env = await over_the_wire()
    user = await seeded(env)
    fault = env.wire.inject(Fault("findAndModify", "users", "hang_up_after", times=1000, where=moves_balance))
    resp = await spend(env, user, 4, "spend-3")
    assert_database_unavailable(resp)  # applied on the server, unknown to us
    assert fault.hits >= 2  # the first answer and the driver's retry were both lost
    assert len(env.wire.balance_changes()) == 2
    fault.times = fault.hits  # the network heals
    retry = await spend(env, user, 4, "spend-3")
    assert retry.status == 200, retry.text
    assert retry.json["balance"] == 6 and retry.json["transaction"]["amount"] == -4
    assert len(env.wire.balance_changes()) == 2  # no second debit
    assert await entries(env, user) == [("admin_grant", 10), ("spend", -4)]
    balance = await env.api.get("/api/points/balance", token=user["accessToken"])
    assert balance.json["balance"] == 6
    await assert_clean(env)


async def purchase_env(over_the_wire: Any) -> tuple[Any, Any]:
    """The app over the wire plus a running RuStore emulator it verifies purchases with."""
    emulator, app, settings = build_emulator(make_settings(rustore_timeout_s=2.0, rustore_retry_deadline_s=1.0),
                                             retry_scale=0.001, tick_interval_s=None)
    url = await emulator.start(port=0)
    env = await over_the_wire(settings=dataclasses.replace(settings, rustore_api_url=url))
    env.service.on_stop.append(emulator.stop)
    return env, lambda product, **kw: emulator.simulate_purchase(app.app_id, product, **kw)


def sdk_body(sdk: dict) -> dict:
    return {key: sdk[key] for key in ("invoiceId", "purchaseId", "productId", "orderId", "sandbox")}


async def test_a_step_down_during_a_purchase_credit_credits_once(over_the_wire):
    env, buy = await purchase_env(over_the_wire)
    user = await env.api.register()
    fault = env.wire.inject(Fault("findAndModify", "users", "step_down", election_s=ELECTION_S, where=moves_balance))
    body = sdk_body(buy("points_100", app_user_id=user["userId"]))  # the buyer's appUserId: RuStore's evidence of ownership
    resp = await env.api.post("/api/points/buy", body, token=user["accessToken"])
    assert resp.status == 200, resp.text
    assert (resp.json["balance"], fault.hits) == (100, 1)
    assert len(env.wire.balance_changes()) == 1
    assert await entries(env, user) == [("buy", 100)]
    await assert_clean(env)


async def test_a_purchase_credit_whose_answer_was_lost_is_credited_once_on_retry(over_the_wire):
    env, buy = await purchase_env(over_the_wire)
    user = await env.api.register()
    body = sdk_body(buy("points_100", app_user_id=user["userId"]))
    fault = env.wire.inject(Fault("findAndModify", "users", "hang_up_after", times=1000, where=moves_balance))
    first = await env.api.post("/api/points/buy", body, token=user["accessToken"])
    assert_database_unavailable(first)
    assert fault.hits >= 2
    fault.times = fault.hits
    retry = await env.api.post("/api/points/buy", body, token=user["accessToken"])
    assert retry.status == 200, retry.text
    assert retry.json["balance"] == 100
    assert len(env.wire.balance_changes()) == 1  # credited once, whatever the app saw
    assert await entries(env, user) == [("buy", 100)]
    await assert_clean(env)


async def test_a_step_down_while_storing_a_webhook_stores_it_once_and_acknowledges_it(over_the_wire):
    app, settings = webhook_settings()
    env = await over_the_wire(settings=settings)
    fault = env.wire.inject(Fault("insert", webhooks.COLLECTION, "step_down", election_s=ELECTION_S))
    resp = await env.api.post("/api/webhooks/rustore", data=webhook_body(app, "note-3"))
    assert (resp.status, resp.json, fault.hits) == (200, {"status": "accepted", "id": "note-3"}, 1)
    assert env.wire.count("insert", webhooks.COLLECTION) == 1
    assert await env.ctx.db[webhooks.COLLECTION].count_documents({}) == 1
