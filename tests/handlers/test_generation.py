"""AI generation over HTTP with the offline provider: charging, replays, cards, ownership, history, concurrency."""

from __future__ import annotations

import asyncio
import io
import threading
from typing import Any

from PIL import Image

from documents import wallet
from tests.handlers.test_conventions import assert_error_shape
from tests.handlers.test_points import assert_ledger_clean, balance_of, funded_user
from tests.support.barrier import Barrier, HookedClient

BIRTHDAY = {"kind": "greeting", "occasion": "день рождения", "recipientName": "Анна"}


async def generate(api, user: dict, body: dict, key: str | None):
    """POST /api/generation/request with an optional Idempotency-Key."""
    headers = {"Idempotency-Key": key} if key is not None else {}
    return await api.post("/api/generation/request", body, token=user["accessToken"], headers=headers)


def is_cyrillic(ch: str) -> bool:
    return "\u0400" <= ch <= "\u04ff"


async def test_greeting_is_charged_and_returned(api, service):
    user = await funded_user(service, api, 5)
    resp = await generate(api, user, BIRTHDAY, "g-1")
    assert resp.status == 200, resp.text
    assert set(resp.json) == {"generationId", "kind", "text", "imageUrl", "signedImageUrl", "cost", "balance"}
    assert resp.json["kind"] == "greeting" and resp.json["imageUrl"] is None and resp.json["signedImageUrl"] is None
    assert resp.json["cost"] == 1 and resp.json["balance"] == 4
    assert "Анна" in resp.json["text"]
    assert await balance_of(api, user) == 4
    await assert_ledger_clean(service)


async def test_offline_provider_writes_in_russian_and_english(api, service):
    user = await funded_user(service, api, 5)
    ru = await generate(api, user, {"kind": "greeting", "occasion": "Новый год"}, "ru")
    en = await generate(api, user, {"kind": "greeting", "occasion": "new year", "language": "en", "tone": "funny"}, "en")
    assert ru.status == 200 and en.status == 200
    assert any(is_cyrillic(ch) for ch in ru.json["text"])
    assert not any(is_cyrillic(ch) for ch in en.json["text"])
    await assert_ledger_clean(service)


async def test_replay_returns_the_same_result_without_charging(api, service):
    user = await funded_user(service, api, 5)
    first = await generate(api, user, BIRTHDAY, "same")
    again = await generate(api, user, BIRTHDAY, "same")
    assert again.status == 200 and again.json == first.json
    assert await balance_of(api, user) == 4
    assert_error_shape(await generate(api, user, {**BIRTHDAY, "recipientName": "Олег"}, "same"),
                       422, "idempotency_key_mismatch")
    await assert_ledger_clean(service)


async def test_insufficient_points_is_402_and_the_key_works_after_buying(api, service):
    user = await funded_user(service, api, 2)
    card = {"kind": "card", "occasion": "8 марта"}
    resp = await generate(api, user, card, "card-1")
    assert_error_shape(resp, 402, "insufficient_points")
    assert resp.json["details"] == {"balance": 2, "required": 3}
    await wallet.credit(service.ctx.db, user["userId"], 1, "buy", "rustore:order-9")
    assert (await generate(api, user, card, "card-1")).status == 200
    assert await balance_of(api, user) == 0
    await assert_ledger_clean(service)


async def test_request_is_validated(api, service):
    user = await funded_user(service, api, 5)
    assert_error_shape(await generate(api, user, BIRTHDAY, None), 400, "idempotency_key_required")
    bad: list[dict[str, Any]] = [
        {**BIRTHDAY, "kind": "poem"}, {"kind": "greeting"}, {**BIRTHDAY, "occasion": "  "},
        {**BIRTHDAY, "occasion": "x" * 101}, {**BIRTHDAY, "recipientName": "x" * 81}, {**BIRTHDAY, "tone": "x" * 31},
        {**BIRTHDAY, "language": "de"}, {**BIRTHDAY, "details": "x" * 501}, {**BIRTHDAY, "extra": 1},
    ]
    for i, body in enumerate(bad):
        assert_error_shape(await generate(api, user, body, f"bad-{i}"), 400, "validation_failed")
    assert await balance_of(api, user) == 5
    await assert_ledger_clean(service)


async def test_card_image_is_a_png_served_to_its_owner_only(api, service):
    owner = await funded_user(service, api, 3)
    other = await funded_user(service, api)
    resp = await generate(api, owner, {"kind": "card", "occasion": "день учителя", "language": "ru"}, "card")
    assert resp.status == 200, resp.text
    url = resp.json["imageUrl"]
    assert url == f"{api.base_url}/api/generation/{resp.json['generationId']}/image"
    async with api.session.get(url, headers={"Authorization": f"Bearer {owner['accessToken']}"}) as r:
        assert r.status == 200
        assert r.headers["Content-Type"] == "image/png"
        assert r.headers["Cache-Control"] == "private, max-age=86400"
        image = Image.open(io.BytesIO(await r.read()))
    assert image.format == "PNG" and image.size == (1200, 800)
    assert_error_shape(await api.get(url.removeprefix(api.base_url), token=other["accessToken"]), 404, "generation_not_found")
    foreign = await api.get(f"/api/generation/{resp.json['generationId']}", token=other["accessToken"])
    malformed = await api.get("/api/generation/not-an-id", token=other["accessToken"])
    assert_error_shape(foreign, 404, "generation_not_found")
    assert foreign.json == malformed.json
    await assert_ledger_clean(service)


async def test_generation_can_be_read_back(api, service):
    user = await funded_user(service, api, 5)
    made = (await generate(api, user, {**BIRTHDAY, "tone": "тёплый", "details": "любит кофе"}, "read")).json
    resp = await api.get(f"/api/generation/{made['generationId']}", token=user["accessToken"])
    assert resp.status == 200
    view = resp.json
    assert view["status"] == "completed" and view["text"] == made["text"] and view["title"]
    assert (view["occasion"], view["recipientName"], view["tone"], view["details"]) == (
        "день рождения", "Анна", "тёплый", "любит кофе")
    assert view["failure"] is None and view["refunded"] == 0 and view["createdAt"].endswith("Z")
    assert_error_shape(await api.get("/api/generation/" + "0" * 24, token=user["accessToken"]), 404,
                       "generation_not_found")
    await assert_ledger_clean(service)


async def test_generation_history_pages_newest_first(api, service):
    user = await funded_user(service, api, 10)
    made = [(await generate(api, user, {**BIRTHDAY, "details": f"#{i}"}, f"h{i}")).json["generationId"] for i in range(5)]
    first = await api.get("/api/generation/history", token=user["accessToken"], params={"limit": 2})
    assert [g["generationId"] for g in first.json["items"]] == [made[4], made[3]]
    await generate(api, user, {**BIRTHDAY, "details": "late"}, "late")
    rest: list[str] = []
    cursor = first.json["nextCursor"]
    while cursor:
        page = await api.get("/api/generation/history", token=user["accessToken"], params={"limit": 2, "cursor": cursor})
        rest += [g["generationId"] for g in page.json["items"]]
        cursor = page.json["nextCursor"]
    assert rest == [made[2], made[1], made[0]]
    bad = await api.get("/api/generation/history", token=user["accessToken"], params={"cursor": "c2VxOjE"})
    assert_error_shape(bad, 400, "invalid_cursor")
    await assert_ledger_clean(service)


async def test_concurrent_generations_charge_each_point_once(start_server):
    mongo = HookedClient()
    service, api = await start_server(mongo=mongo)
    user = await funded_user(service, api, 10)
    mongo.hook = barrier = Barrier(20)  # twice as many charges as the wallet pays for, at the ledger's update at once
    results = await asyncio.gather(*(generate(api, user, BIRTHDAY, f"c-{i}") for i in range(50)))
    assert barrier.met
    statuses = [r.status for r in results]
    assert statuses.count(200) == 10 and statuses.count(402) == 40
    assert await balance_of(api, user) == 0
    spends = await wallet.list_entries(service.ctx.db, user["userId"], limit=100, type="spend")
    assert len(spends) == 10
    stored = await service.ctx.db.generations.count_documents({})
    assert stored == 10  # the refused ones left nothing behind that would block their keys
    await assert_ledger_clean(service)


async def test_card_that_cannot_be_rendered_is_refunded(start_server):
    service, api = await start_server(cpu_queue_max=1)
    user = await funded_user(service, api, 3)
    release = threading.Event()
    blocker = asyncio.ensure_future(service.ctx.cpu.run(release.wait, 5))  # fills the one-slot CPU queue
    await asyncio.sleep(0)
    try:
        resp = await generate(api, user, {"kind": "card", "occasion": "день рождения"}, "busy")
    finally:
        release.set()
        await blocker
    assert_error_shape(resp, 502, "generation_failed")
    assert resp.json["details"]["refunded"] == 3 and resp.json["details"]["retryable"] is True
    assert await balance_of(api, user) == 3
    view = (await api.get(f"/api/generation/{resp.json['details']['generationId']}", token=user["accessToken"])).json
    assert view["failure"] == {"reason": "render_failed", "retryable": True} and view["imageUrl"] is None
    await assert_ledger_clean(service)


async def test_concurrent_requests_with_one_key_charge_once(start_server):
    mongo = HookedClient()
    service, api = await start_server(mongo=mongo)
    user = await funded_user(service, api, 5)
    mongo.hook = barrier = Barrier(10, "generations", "insert_one")  # all ten insert the key at once
    results = await asyncio.gather(*(generate(api, user, BIRTHDAY, "one-key") for _ in range(10)))
    assert barrier.met
    done = [r.json for r in results if r.status == 200]
    assert done and all(body == done[0] for body in done)
    assert all(r.status == 409 and r.error_reason() == "generation_in_progress" for r in results if r.status != 200)
    assert await balance_of(api, user) == 4
    await assert_ledger_clean(service)
