"""Issue 12, case 3: a spend with a lone surrogate must not poison the wallet, and repair jobs isolate bad users.

The bad spend is refused before anything changes; the same user then spends, generates a card and buys points
normally and the audit is clean. Then a wallet poisoned the way older code left it (an entry no store can write,
stuck in its outbox) is planted among repairable ones: both repair jobs repair the others, skip it, log it once per
run and export how many users they skipped.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from loguru import logger

from documents import generations, wallet
from documents.accounts import parse_id
from jobs import generation_repair, ledger_repair
from jobs.runner import run_job
from tests.documents.test_ledger_unwritable import applied_unwritten
from tests.handlers.test_conventions import assert_error_shape
from tests.handlers.test_generation import BIRTHDAY, generate
from tests.handlers.test_payments import verify_body

POISON = b'{"amount": 1, "reason": "r\\ud800"}'


async def balance(api, user) -> int:
    return (await api.get("/api/points/balance", token=user["accessToken"])).json["balance"]


async def metric(api, service, job: str) -> str:
    """The repair_skipped_users line for `job` as Prometheus scrapes it."""
    text = (await api.get("/metrics", headers={"Authorization": f"Bearer {service.ctx.settings.metrics_token}"})).text
    return next(line for line in text.splitlines() if line.startswith(f'repair_skipped_users{{job="{job}"}}'))


@pytest.mark.ledger_drift  # the planted wallet's outbox stays stuck on purpose
async def test_a_lone_surrogate_spend_changes_nothing_and_repair_jobs_skip_only_the_poisoned_user(emulated):
    env = await emulated(metrics_token="m" * 32)
    api, service, db = env.api, env.service, env.service.ctx.db
    user = await api.register()
    uid = parse_id(user["userId"])
    await wallet.credit(db, uid, 130, "admin_grant", "grant")
    auth = {"Authorization": f"Bearer {user['accessToken']}", "Content-Type": "application/json"}

    bad = await api.post("/api/points/spend", data=POISON, headers={**auth, "Idempotency-Key": "poison"})
    assert_error_shape(bad, 400, "invalid_json")
    assert await balance(api, user) == 130

    spent = await api.post("/api/points/spend", {"amount": 2, "reason": "r"}, token=user["accessToken"],
                           headers={"Idempotency-Key": "normal"})
    assert spent.status == 200 and spent.json["balance"] == 128
    card = await generate(api, user, BIRTHDAY, "card-1")
    assert card.status == 200, card.text
    cost = service.ctx.settings.generation_cost_greeting
    bought = await api.post("/api/points/buy", verify_body(env.buy("points_100", user=user)), token=user["accessToken"])
    assert bought.status == 200 and bought.json["balance"] == 128 - cost + 100
    history = (await api.get("/api/points/history", token=user["accessToken"])).json["items"]
    assert [(i["type"], i["amount"]) for i in history] == [("buy", 100), ("spend", -cost), ("spend", -2),
                                                           ("admin_grant", 130)]
    assert (await wallet.verify_ledger(db)).ok

    # Plant: three wallets a crash left with an entry in the outbox, the middle one unwritable, each with a failed
    # generation whose refund is due.
    now = service.ctx.now()
    planted = [parse_id((await api.register())["userId"]) for _ in range(3)]
    poisoned = planted[1]
    for index, who in enumerate(planted):
        await wallet.credit(db, who, 10, "admin_grant", "grant")
        gen, created = await generations.start_generation(db, who, f"g-{index}", "greeting", {"occasion": "x"}, 1,
                                                   "offline", now)
        assert created
        await generations.charge(db, gen, now)
        await generations.fail_generation(db, gen["_id"], "timeout", True, now)
        meta = {"reason": "r\ud800"} if who == poisoned else {"reason": "fine"}
        await applied_unwritten(db, who, -2, f"crashed-{index}", meta, now)
    env.clock.advance(timedelta(minutes=2))

    logged: list[str] = []
    sink = logger.add(lambda message: logged.append(str(message)), level="ERROR", format="{message}")
    try:
        runs = [await run_job(service.ctx, job) for job in (ledger_repair.JOB, generation_repair.JOB) * 2]
    finally:
        logger.remove(sink)
    assert [run.outcome for run in runs] == ["ok"] * 4
    first_ledger, first_gen, second_ledger, second_gen = (run.summary for run in runs)
    assert (first_ledger["entries_written"], first_ledger["users_skipped"]) == (2, 1)
    assert (first_gen["refunds"], first_gen["users_skipped"]) == (2, 1)
    assert (second_ledger["entries_written"], second_ledger["users_skipped"]) == (0, 1)
    assert (second_gen["refunds"], second_gen["users_skipped"]) == (0, 1)
    about_poisoned = [line for line in logged if str(poisoned) in line]
    assert len(about_poisoned) == 4 and all("UnicodeEncodeError" in line for line in about_poisoned)  # once a run
    assert not [line for line in logged if any(str(other) in line for other in planted if other != poisoned)]
    assert await metric(api, service, "ledger-repair") == 'repair_skipped_users{job="ledger-repair"} 1.0'
    assert await metric(api, service, "generation-repair") == 'repair_skipped_users{job="generation-repair"} 1.0'

    for who in planted:
        points = (await db.users.find_one({"_id": who}))["points"]
        assert points["balance"] == (10 - 1 - 2 if who == poisoned else 10 - 1 - 2 + 1)
        assert bool(points["outbox"]) is (who == poisoned)
    audit = await wallet.verify_ledger(db, now=service.ctx.now() + timedelta(minutes=10))
    assert {(d.user_id, d.kind) for d in audit.drift} == {(poisoned, "stale_outbox")}
