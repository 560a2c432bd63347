"""The webhook-retry job on the real app: it finishes whatever the inline attempt did not, once, and gives up visibly."""

from __future__ import annotations

from datetime import timedelta

from core.metrics import WEBHOOKS
from core.webhook_wiring import webhook_processor
from documents import wallet
from documents.webhooks import store as events
from jobs import find_job
from jobs.runner import run_job
from jobs.webhook_retry import JOB
from tests.handlers.test_webhooks import recorded, replay, stored_events


async def balance_of(env, user) -> int:
    return (await env.api.get("/api/points/balance", token=user["accessToken"])).json["balance"]


async def persisted_only(env, note: dict) -> str:
    """What the handler leaves behind when its process dies right after storing a notification."""
    ctx = env.service.ctx
    event, created = await events.record_event(ctx.db, ctx.notifications.decode(replay(env, note)), ctx.now())
    assert created
    return event["_id"]


async def paid_purchase(env) -> tuple[dict, dict]:
    """A user whose purchase RuStore confirmed, with the CONFIRMED notification not delivered to us."""
    user = await env.api.register()
    await env.order_and_buy(user, "points_100")
    return user, recorded(env)[-1]


async def test_job_is_registered_with_its_interval_setting():
    assert find_job("webhook-retry") is JOB and JOB.interval_setting == "webhook_retry_interval_s"


async def test_notification_stored_by_a_process_that_died_before_processing_is_applied_by_the_job(emulated):
    env = await emulated(webhooks=False)
    user, confirmed = await paid_purchase(env)
    await persisted_only(env, confirmed)
    outcome = await run_job(env.service.ctx, JOB)
    assert outcome.outcome == "ok"
    assert outcome.summary == {"processed": 1, "failed": 0, "dead": 0, "skipped": 0, "error": 0, "purged": 0}
    assert await balance_of(env, user) == 100
    again = await run_job(env.service.ctx, JOB)
    assert again.summary["processed"] == 0
    assert (await wallet.verify_ledger(env.service.ctx.db)).ok
    await env.advance(events.RETENTION)
    assert (await run_job(env.service.ctx, JOB)).summary["purged"] == 1
    assert await stored_events(env) == []


async def test_claim_of_a_crashed_processor_runs_out_and_the_job_then_applies_the_event_once(emulated):
    env = await emulated(webhooks=False)
    user, confirmed = await paid_purchase(env)
    event_id = await persisted_only(env, confirmed)
    ctx = env.service.ctx
    crashed = await events.claim_event(ctx.db, event_id, ctx.now())  # then the process died
    assert (await run_job(ctx, JOB)).summary["processed"] == 0  # the claim still stands
    await env.advance(events.LEASE)
    assert (await run_job(ctx, JOB)).summary["processed"] == 1
    assert not await events.mark_processed(ctx.db, crashed, ctx.now())  # its late word does not count
    [event] = await stored_events(env)
    assert event["status"] == "processed" and event["attempts"] == 2
    assert await balance_of(env, user) == 100


async def test_event_that_keeps_crashing_its_processor_is_dead_lettered_after_the_attempt_budget(emulated):
    env = await emulated(webhooks=False, webhook_max_attempts=2)
    _, confirmed = await paid_purchase(env)
    event_id = await persisted_only(env, confirmed)
    ctx = env.service.ctx
    for _ in range(2):
        await events.claim_event(ctx.db, event_id, ctx.now())
        await env.advance(events.LEASE)
    assert (await run_job(ctx, JOB)).summary["dead"] == 1
    [event] = await stored_events(env)
    assert event["status"] == "dead" and event["last_error"].startswith("abandoned: 2 attempts did not finish")


async def test_event_failing_on_its_own_past_the_attempt_budget_is_dead_lettered_and_an_admin_requeue_applies_it(
        emulated):
    env = await emulated(webhooks=False, webhook_max_attempts=2)
    user, confirmed = await paid_purchase(env)
    event_id = await persisted_only(env, confirmed)
    ctx = env.service.ctx
    env.emulator.set_fault("payment_v2", "error")  # only this invoice's lookup fails; RuStore itself answers
    dead_before = WEBHOOKS.labels("dead")._value.get()
    assert (await run_job(ctx, JOB)).summary["failed"] == 1
    await env.advance(timedelta(minutes=2))
    assert (await run_job(ctx, JOB)).summary["dead"] == 1
    assert WEBHOOKS.labels("dead")._value.get() - dead_before == 1
    [dead] = await events.list_dead_events(ctx.db, 10)
    assert dead["_id"] == event_id and dead["attempts"] == 2 and dead["last_error"].startswith("RuStoreUnavailable")
    await env.advance(timedelta(hours=1))
    assert (await run_job(ctx, JOB)).summary["processed"] == 0  # dead letters wait for a person
    env.emulator.clear_faults()
    await events.requeue_event(ctx.db, confirmed["id"], ctx.now())
    assert (await run_job(ctx, JOB)).summary["processed"] == 1
    assert await balance_of(env, user) == 100
    assert await events.list_dead_events(ctx.db, 10) == []


async def test_a_rustore_wide_outage_uses_up_no_attempts_and_dead_letters_nothing(emulated):
    env = await emulated(webhooks=False, webhook_max_attempts=2, rustore_recovery_probe_s=3600)
    user, confirmed = await paid_purchase(env)
    event_id = await persisted_only(env, confirmed)
    ctx = env.service.ctx
    env.emulator.set_fault("*", "error")  # token and lookup fail alike: nothing this event could cause
    for _ in range(4):
        assert (await run_job(ctx, JOB)).summary["failed"] == 1
        await env.advance(timedelta(minutes=2))
    [event] = [e for e in await stored_events(env) if e["_id"] == event_id]
    assert event["status"] == "failed" and event["attempts"] == 0 and await events.list_dead_events(ctx.db, 10) == []
    env.emulator.clear_faults()
    assert (await run_job(ctx, JOB)).summary["processed"] == 1
    assert await balance_of(env, user) == 100


async def test_one_run_processes_a_bounded_batch_oldest_first(emulated):
    env = await emulated(webhooks=False)
    user = await env.api.register()
    for _ in range(3):
        await env.order_and_buy(user, "points_100")
    ids = []
    for note in recorded(env)[1::2]:  # EXECUTED, CONFIRMED per purchase: store the CONFIRMED ones, a second apart
        ids.append(await persisted_only(env, note))
        await env.advance(1)
    processor = webhook_processor(env.service.ctx)
    assert (await processor.process_due(2))["processed"] == 2
    statuses = {e["_id"]: e["status"] for e in await stored_events(env)}
    assert [statuses[i] for i in ids] == ["processed", "processed", "received"]
    assert (await processor.process_due(2))["processed"] == 1
    assert await balance_of(env, user) == 300
