"""The generation-repair job on the real app: a crash mid-generation ends refunded exactly once, never resurrected."""

from __future__ import annotations

from datetime import timedelta

from documents import wallet
from documents.accounts import parse_id
from documents.generations import store as gens
from jobs import find_job
from jobs.generation_repair import JOB, stale_after
from jobs.runner import run_job
from tests.handlers.test_conventions import assert_error_shape
from tests.handlers.test_generation import BIRTHDAY, generate
from tests.handlers.test_points import assert_ledger_clean, balance_of, funded_user

REQUEST = {"occasion": "день рождения", "recipient_name": "Анна", "tone": None, "language": "ru", "details": None}
RESULT = {"text": "late answer", "title": "t", "model": "m", "image": False}


async def crashed_after_charging(service, user: dict, key: str):
    """What the handler leaves behind when its process dies while waiting for the provider."""
    db, ctx = service.ctx.db, service.ctx
    gen, created = await gens.start_generation(db, parse_id(user["userId"]), key, "greeting", REQUEST,
                                               ctx.settings.generation_cost_greeting, "offline", ctx.now())
    assert created
    return gen, await gens.charge(db, gen, ctx.now())


def advance(service, delta: timedelta) -> None:
    """Move the app's clock forward."""
    base = service.ctx.clock()
    service.ctx.clock = lambda: base + delta


async def test_job_is_registered_with_its_interval_setting():
    assert find_job("generation-repair") is JOB and JOB.interval_setting == "generation_repair_interval_s"


async def test_crashed_generation_is_refunded_once_and_a_late_answer_does_not_resurrect_it(api, service):
    user = await funded_user(service, api, 5)
    body = {"kind": "greeting", "occasion": "день рождения", "recipientName": "Анна"}
    gen, spend = await crashed_after_charging(service, user, "crash-1")
    assert await balance_of(api, user) == 4
    in_progress = await generate(api, user, body, "crash-1")
    assert_error_shape(in_progress, 409, "generation_in_progress")

    early = await run_job(service.ctx, JOB)  # not stale yet: a live request may still finish it
    assert early.outcome == "ok" and early.summary["abandoned"] == 0
    advance(service, stale_after(service.ctx.settings) + timedelta(seconds=1))
    first = await run_job(service.ctx, JOB)
    second = await run_job(service.ctx, JOB)
    assert first.outcome == "ok" and (first.summary["abandoned"], first.summary["points_refunded"]) == (1, 1)
    assert second.outcome == "ok" and (second.summary["abandoned"], second.summary["points_refunded"]) == (0, 0)
    assert await balance_of(api, user) == 5

    late = await gens.complete_generation(service.ctx.db, gen, RESULT, spend, service.ctx.now())
    assert late is None
    view = (await api.get(f"/api/generation/{gen['_id']}", token=user["accessToken"])).json
    assert view["status"] == "failed" and view["text"] is None and view["failure"]["reason"] == "abandoned"
    replay = await generate(api, user, body, "crash-1")
    assert_error_shape(replay, 502, "generation_failed")
    assert replay.json["details"] == {"refunded": 1, "balance": 5, "retryable": True, "generationId": str(gen["_id"])}
    refunds = await wallet.list_entries(service.ctx.db, user["userId"], limit=10, type="refund")
    assert len(refunds) == 1 and refunds[0].meta["corrects"] == spend.entry.id
    await assert_ledger_clean(service)


async def test_refund_left_due_by_a_crash_after_failing_is_paid_by_the_job(api, service):
    user = await funded_user(service, api, 5)
    gen, _ = await crashed_after_charging(service, user, "crash-2")
    await gens.fail_generation(service.ctx.db, gen["_id"], "timeout", True, service.ctx.now())
    assert await balance_of(api, user) == 4
    advance(service, gens.REFUND_SETTLE + timedelta(seconds=1))
    outcome = await run_job(service.ctx, JOB)
    assert (outcome.summary["abandoned"], outcome.summary["refunds"]) == (0, 1)
    assert (await run_job(service.ctx, JOB)).summary["refunds"] == 0
    assert await balance_of(api, user) == 5
    await assert_ledger_clean(service)


async def test_completed_generations_are_left_alone(api, service):
    user = await funded_user(service, api, 5)
    made = await generate(api, user, BIRTHDAY, "done")
    assert made.status == 200
    advance(service, timedelta(days=1))
    outcome = await run_job(service.ctx, JOB)
    assert (outcome.summary["abandoned"], outcome.summary["refunds"]) == (0, 0)
    assert (await generate(api, user, BIRTHDAY, "done")).json == made.json
    assert await balance_of(api, user) == 4
    await assert_ledger_clean(service)
