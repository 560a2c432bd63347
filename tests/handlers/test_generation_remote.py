"""AI generation against a fake OpenAI-compatible server over real HTTP: success, failures refunded, replays."""

from __future__ import annotations

import io

import pytest
from bson import ObjectId
from PIL import Image

from documents import wallet
from documents.generations import store as generations
from tests.generation.conftest import API_KEY, MODEL, fake_llm  # noqa: F401 - the fake server fixture
from tests.handlers.test_conventions import assert_error_shape
from tests.handlers.test_generation import BIRTHDAY, generate
from tests.handlers.test_points import assert_ledger_clean, balance_of, funded_user


@pytest.fixture
async def remote(start_server, fake_llm):  # noqa: F811 - pytest injects the imported fixture
    """Our server pointed at the fake model (0.5 s timeout); returns (service, api, fake)."""
    service, api = await start_server(ai_api_url=fake_llm.base_url, ai_api_key=API_KEY, ai_model=MODEL,
                                       ai_timeout_s=0.5)
    return service, api, fake_llm


async def test_good_answer_is_returned_and_charged(remote):
    service, api, fake = remote
    user = await funded_user(service, api, 5)
    resp = await generate(api, user, BIRTHDAY, "ok-1")
    assert resp.status == 200, resp.text
    assert resp.json["text"] == fake.reply and resp.json["balance"] == 4
    sent = fake.requests[-1]
    assert sent.headers["Authorization"] == f"Bearer {API_KEY}" and sent.body["model"] == MODEL
    assert "Анна" in sent.body["messages"][1]["content"]
    assert await balance_of(api, user) == 4
    await assert_ledger_clean(service)


async def test_remote_card_is_rendered_from_the_model_text(remote):
    service, api, _ = remote
    user = await funded_user(service, api, 3)
    resp = await generate(api, user, {"kind": "card", "occasion": "день рождения"}, "card")
    assert resp.status == 200 and resp.json["cost"] == 3 and resp.json["balance"] == 0
    headers = {"Authorization": f"Bearer {user['accessToken']}"}
    async with api.session.get(resp.json["imageUrl"], headers=headers) as image:
        assert Image.open(io.BytesIO(await image.read())).size == (1200, 800)
    await assert_ledger_clean(service)


@pytest.mark.parametrize("mode", ["500", "slow", "malformed"])
async def test_failed_generation_is_502_and_refunded(remote, mode):
    service, api, fake = remote
    fake.mode = mode
    user = await funded_user(service, api, 5)
    resp = await generate(api, user, BIRTHDAY, f"fail-{mode}")
    assert_error_shape(resp, 502, "generation_failed")
    gen_id = resp.json["details"]["generationId"]
    assert resp.json["details"] == {"refunded": 1, "balance": 5, "retryable": True, "generationId": gen_id}
    assert await balance_of(api, user) == 5
    items = (await api.get("/api/points/history", token=user["accessToken"])).json["items"]
    assert [(i["type"], i["amount"]) for i in items] == [("refund", 1), ("spend", -1), ("admin_grant", 5)]
    db, oid = service.ctx.db, ObjectId(gen_id)
    spend = await wallet.find_entry(db, user["userId"], generations.spend_key(oid))
    refund = await wallet.find_entry(db, user["userId"], generations.refund_key(oid))
    assert refund.meta["corrects"] == spend.id
    view = (await api.get(f"/api/generation/{gen_id}", token=user["accessToken"])).json
    assert view["status"] == "failed" and view["refunded"] == 1 and view["text"] is None
    assert view["failure"]["reason"] == {"500": "upstream_error", "slow": "timeout", "malformed": "malformed_response"}[mode]
    await assert_ledger_clean(service)


async def test_failed_replay_answers_the_same_502_without_moving_points(remote):
    service, api, fake = remote
    fake.mode = "500"
    user = await funded_user(service, api, 5)
    first = await generate(api, user, BIRTHDAY, "replay-failed")
    fake.mode = "ok"
    again = await generate(api, user, BIRTHDAY, "replay-failed")
    assert again.status == 502 and again.json == first.json
    assert len(fake.requests) == 1
    items = (await api.get("/api/points/history", token=user["accessToken"])).json["items"]
    assert len(items) == 3
    retry = await generate(api, user, BIRTHDAY, "replay-failed-2")  # a new key is a new attempt
    assert retry.status == 200 and retry.json["balance"] == 4
    await assert_ledger_clean(service)
