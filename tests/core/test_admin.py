"""Admin commands: in-process against a running server (shared store), and the CLI for argument errors and exit codes."""

from __future__ import annotations

import asyncio
import json
import sys

import pytest
from bson import ObjectId

from core.admin import AdminRefused, adjust_points, dead_letters, replay_webhook, run_admin, user_report
from documents import wallet, webhooks
from documents.wallet import TRANSACTIONS, USERS
from server import build_parser, cmd_audit_ledger
from tests.core.test_settings import ROOT, _clean_env
from tests.handlers.test_webhooks import settle_all, stored_events


async def balance(api, user) -> int:
    return (await api.get("/api/points/balance", token=user["accessToken"])).json["balance"]


async def entries(db, user_id) -> list[dict]:
    return await db[TRANSACTIONS].find({"user_id": user_id}).sort("seq", 1).to_list(100)


async def assert_ledger_clean(db) -> None:
    audit = await wallet.verify_ledger(db)
    assert audit.ok, audit.drift


async def cli(*args: str) -> tuple[int, str, str]:
    """`python server.py ...` in development mode: its own empty in-memory store."""
    proc = await asyncio.create_subprocess_exec(sys.executable, "server.py", *args, cwd=ROOT, env=_clean_env(),
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode, out.decode(), err.decode()


async def test_grant_and_debit_write_one_entry_each_with_the_reason_and_a_replayed_key_changes_nothing(start_server):
    service, api = await start_server()
    db = service.ctx.db
    user = await api.register()
    granted = await adjust_points(db, user["email"].upper(), "grant", 250, "support ticket 42", "t42")
    assert granted["replayed"] is False and granted["balance"] == 250 and granted["key"] == "t42"
    assert (granted["entry"]["type"], granted["entry"]["amount"], granted["entry"]["reason"]) == ("admin_grant", 250,
                                                                                                 "support ticket 42")
    debited = await adjust_points(db, user["email"], "debit", 100, "chargeback on ticket 43", "t43")
    assert (debited["entry"]["type"], debited["entry"]["amount"], debited["balance"]) == ("admin_debit", -100, 150)
    stored = await entries(db, ObjectId(user["userId"]))
    assert [(e["type"], e["amount"], e["idempotency_key"], e["meta"]["reason"]) for e in stored] == [
        ("admin_grant", 250, "admin:t42", "support ticket 42"), ("admin_debit", -100, "admin:t43", "chargeback on ticket 43")]

    again = await adjust_points(db, user["email"], "grant", 250, "support ticket 42", "t42")
    assert again["replayed"] is True and again["entry"]["id"] == granted["entry"]["id"] and again["balance"] == 150
    for amount, reason in ((251, "support ticket 42"), (250, "another reason")):
        with pytest.raises(AdminRefused, match="--key t42 was already used"):
            await adjust_points(db, user["email"], "grant", amount, reason, "t42")
    with pytest.raises(AdminRefused, match="already used"):
        await adjust_points(db, user["email"], "debit", 250, "support ticket 42", "t42")
    assert len(await entries(db, ObjectId(user["userId"]))) == 2
    assert await balance(api, user) == 150
    history = (await api.get("/api/points/history", token=user["accessToken"])).json["items"]
    assert [(i["type"], i["amount"]) for i in history] == [("admin_debit", -100), ("admin_grant", 250)]
    await assert_ledger_clean(db)


async def test_debit_beyond_the_balance_and_unknown_users_are_refused_and_nothing_is_written(start_server):
    service, api = await start_server()
    db = service.ctx.db
    user = await api.register()
    await adjust_points(db, user["email"], "grant", 10, "welcome", "w1")
    before = await db[USERS].find_one({})
    with pytest.raises(AdminRefused, match=r"has 10 points, cannot debit 11; nothing was written"):
        await adjust_points(db, user["email"], "debit", 11, "too much", "d1")
    after = await db[USERS].find_one({})
    assert after["points"] == before["points"]
    assert [e["type"] for e in await entries(db, before["_id"])] == ["admin_grant"]
    for command in ("grant", "debit"):
        with pytest.raises(AdminRefused, match="no user with email 'ghost@example.com'"):
            await adjust_points(db, "ghost@example.com", command, 5, "nobody", "g1")
    with pytest.raises(AdminRefused, match="no user with email"):
        await user_report(db, "ghost@example.com", service.ctx.now())
    assert await db[TRANSACTIONS].count_documents({}) == 1
    assert await balance(api, user) == 10
    await assert_ledger_clean(db)


async def test_cli_path_in_process_prints_text_or_json_and_announces_a_generated_key(start_server, capsys):
    service, api = await start_server()
    user = await api.register()
    args = build_parser().parse_args(["grant", user["email"], "40", "--reason", "goodwill"])
    assert await run_admin(service.ctx, args) == 0
    out, err = capsys.readouterr()
    key = err.split("idempotency key: ")[1].split()[0]
    assert "admin_grant +40 points" in out and "balance 40 points" in out and f"Key: {key}" in out
    replay = build_parser().parse_args(["grant", user["email"], "40", "--reason", "goodwill", "--key", key, "--json"])
    assert await run_admin(service.ctx, replay) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["replayed"] is True and json.loads(out)["balance"] == 40 and "idempotency key" not in err
    short = build_parser().parse_args(["debit", user["email"], "41", "--reason", "oops"])
    assert await run_admin(service.ctx, short) == 1
    out, err = capsys.readouterr()
    assert out == "" and "refused: " in err and "has 40 points, cannot debit 41; nothing was written" in err
    assert await balance(api, user) == 40


async def test_user_report_shows_balance_subscription_owned_products_purchases_and_entries(emulated, capsys):
    from tests.handlers.test_subscriptions import subscribe, verify

    env = await emulated()
    user = await env.api.register()
    await env.order_and_buy(user, "points_100")
    await settle_all(env)
    sdk = await subscribe(env, user)
    assert (await verify(env, user, sdk)).status == 200
    await adjust_points(env.service.ctx.db, user["email"], "grant", 5, "sorry for the outage", "o1")
    report = await user_report(env.service.ctx.db, user["email"], env.service.ctx.now())
    assert report["user_id"] == user["userId"] and report["email"] == user["email"] and report["balance"] == 405
    assert report["subscription"]["status"] == "active" and report["subscription"]["product_id"] == "premium_monthly"
    assert [(p["product_id"], p["state"], p["points"]) for p in report["purchases"]] == [("points_100", "confirmed", 100)]
    assert [(e["type"], e["amount"]) for e in report["ledger"]] == [
        ("admin_grant", 5), ("subscription_grant", 300), ("buy", 100)]
    assert report["ledger"][0]["reason"] == "sorry for the outage"
    json.dumps(report)  # --json needs nothing beyond plain JSON types

    assert await run_admin(env.service.ctx, build_parser().parse_args(["user", user["email"]])) == 0
    text = capsys.readouterr().out
    for expected in ("405 points", "active — premium_monthly", "points_100", "confirmed", "subscription_grant",
                     "sorry for the outage"):
        assert expected in text
    # An hour past the period's end the same stored document reads expired: status is computed at read time.
    later = env.service.ctx.now() + (env.emulator.store.subscription(sdk["purchaseId"]).expiry_time
                                     - env.service.ctx.now()) * 2
    assert (await user_report(env.service.ctx.db, user["email"], later))["subscription"]["status"] == "expired"
    await assert_ledger_clean(env.service.ctx.db)


async def test_replay_webhook_reprocesses_a_dead_event_and_dead_letters_list_it_until_then(emulated, capsys):
    env = await emulated(webhook_max_attempts=1)
    ctx = env.service.ctx
    user = await env.api.register()
    sdk = await env.order_and_buy(user, "points_100", outcome="pending")
    # Only this invoice's lookups fail (a RuStore-wide outage would use up no attempts and dead-letter nothing).
    env.emulator.set_fault("payment_v2", "error", match=sdk["invoiceId"])
    env.emulator.invoice_action(int(sdk["invoiceId"]), "pay")
    await env.settle()
    dead = [e for e in await stored_events(env) if e["status"] == "dead"]
    assert dead and all(e["last_error"].startswith("RuStoreUnavailable") for e in dead)
    listed = await dead_letters(ctx.db, 50)
    assert {r["event_id"] for r in listed} == {e["_id"] for e in dead}
    assert all(r["attempts"] == 1 and r["type"] == "INVOICE_STATUS" for r in listed)
    assert await run_admin(ctx, build_parser().parse_args(["dead-letters"])) == 0
    assert dead[0]["_id"] in capsys.readouterr().out
    assert await balance(env.api, user) == 0

    env.emulator.clear_faults()
    outcomes = [await replay_webhook(ctx, e["notification_id"]) for e in dead]  # RuStore's bare id works too
    assert {(o["previous_status"], o["outcome"], o["status"]) for o in outcomes} == {("dead", "processed", "processed")}
    assert await balance(env.api, user) == 100
    assert await dead_letters(ctx.db, 50) == []
    # Replaying a processed event re-queries RuStore again: harmless, nothing is credited twice.
    assert await run_admin(ctx, build_parser().parse_args(["replay-webhook", dead[0]["_id"]])) == 0
    assert "was processed: processed, now processed" in capsys.readouterr().out
    assert await balance(env.api, user) == 100
    with pytest.raises(AdminRefused, match="no webhook event 'real:nope'"):
        await replay_webhook(ctx, "real:nope")
    assert await webhooks.find_event(ctx.db, "real:nope") is None
    await assert_ledger_clean(ctx.db)


async def test_replay_webhook_that_fails_again_exits_1_and_leaves_it_to_the_retry_job(emulated, capsys):
    env = await emulated(webhook_max_attempts=3)
    user = await env.api.register()
    sdk = await env.order_and_buy(user, "points_100", outcome="pending")
    env.emulator.set_fault("*", "error")
    env.emulator.invoice_action(int(sdk["invoiceId"]), "pay")
    await env.settle()
    failed = (await stored_events(env))[0]
    assert await run_admin(env.service.ctx, build_parser().parse_args(["replay-webhook", failed["_id"], "--json"])) == 1
    result = json.loads(capsys.readouterr().out)
    assert result["outcome"] == "failed" and result["next_attempt_at"] and result["error"].startswith("RuStoreUnavailable")


@pytest.mark.ledger_drift
async def test_audit_ledger_exits_1_on_drift(start_server, capsys):
    service, api = await start_server()
    user = await api.register()
    await adjust_points(service.ctx.db, user["email"], "grant", 7, "audit test", "a1")
    assert await cmd_audit_ledger(service.ctx) == 0
    assert json.loads(capsys.readouterr().out)["ok"] is True
    await service.ctx.db[USERS].update_one({}, {"$inc": {"points.balance": 1}})  # a hand edit in Compass
    assert await cmd_audit_ledger(service.ctx) == 1
    assert json.loads(capsys.readouterr().out)["drift"][0]["kind"] == "balance"


@pytest.mark.parametrize("args, message", [
    (["grant", "a@example.com", "1.5", "--reason", "x"], "argument AMOUNT: must be a whole number"),
    (["debit", "a@example.com", "0", "--reason", "x"], "from 1 to 1000000000"),
    (["grant", "a@example.com", "1000000001", "--reason", "x"], "from 1 to 1000000000"),
    (["grant", "a@example.com", "-5", "--reason", "x"], "got '-5'"),
    (["grant", "a@example.com", "1e3", "--reason", "x"], "got '1e3'"),
    (["grant", "a@example.com", "5"], "the following arguments are required: --reason"),
    (["grant", "a@example.com", "5", "--reason", " "], "argument --reason: must be 1 to 200 characters"),
    (["grant", "a@example.com", "5", "--reason", "x" * 201], "must be 1 to 200 characters, got 201"),
    (["grant", "a@example.com", "5", "--reason", "x", "--key", "two words"], "argument --key"),
    (["dead-letters", "--limit", "0"], "argument --limit"),
    (["user"], "required: EMAIL"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
])
def test_argument_errors_are_usage_errors(args, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(args)
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


async def test_cli_argument_errors_exit_2_before_connecting():
    results = await asyncio.gather(cli("grant", "a@example.com", "12.5", "--reason", "x"), cli("frobnicate"),
                                   cli("debit", "a@example.com", "5"))
    for (code, out, err), message in zip(results, ("argument AMOUNT", "invalid choice", "required: --reason"), strict=True):
        assert (code, out) == (2, "") and message in err and "in-memory" not in err


async def test_cli_refusals_exit_1_and_json_output_is_clean_on_stdout():
    (code, out, err), (dead_code, dead_out, dead_err), (replay_code, _, replay_err) = await asyncio.gather(
        cli("grant", "ghost@example.com", "5", "--reason", "nobody"), cli("dead-letters", "--json"),
        cli("replay-webhook", "123"))
    assert code == 1 and out == "" and "refused: no user with email 'ghost@example.com'" in err
    assert dead_code == 0 and json.loads(dead_out) == [] and "in-memory store" in dead_err  # logs go to stderr
    assert replay_code == 1 and "RuStore is not configured" in replay_err
