"""Record one template per endpoint of the mix: the store calls our app makes for it, and its answer.

Runs the real app in this process on a small seeded store wrapped in `RecordingDatabase`, with
the same settings (RuStore = the bench's emulator) as the measured server, and sends one request
of each kind exactly as the load generator builds it. The user's session is cached first, so a
template holds the handler's own calls (the bare server does the session check itself). Work the
handler hands to the background (webhook processing) is held until the answer arrived and then
recorded separately, which is what the bare server replays after answering.
"""

from __future__ import annotations

import json
import os
import random
from typing import Any

import aiohttp
from bson import ObjectId
from mongomock_motor import AsyncMongoMockClient

from bench.mix import WEIGHTS, Mix, Purchases, Req
from bench.replay import Call, RecordingDatabase, Template
from bench.seed import bench_user, seed
from core.context import create_context
from core.settings import load_settings
from server import Service

RECORD_USERS = 20
RECORD_USER = 1


async def make_purchases(http: aiohttp.ClientSession, emulator: str, app_id: int, product: str,
                         owners: list[int], user_id_of: Any) -> tuple[list[tuple[int, dict]], list[tuple[int, dict]]]:
    """Buy through the emulator's control API for each owner; return (owner, SDK answer) and (owner, notification)."""
    sdk, invoices = [], {}
    for owner in owners:
        async with http.post(f"{emulator}/_emulator/apps/{app_id}/purchases",
                             json={"productId": product, "appUserId": user_id_of(owner)}) as resp:
            answer = await resp.json()
            if resp.status != 201:
                raise RuntimeError(f"emulator purchase failed: {resp.status} {answer}")
        sdk.append((owner, answer))
        invoices[str(answer["invoiceId"])] = owner
    async with http.get(f"{emulator}/_emulator/notifications") as resp:
        every = await resp.json()
    notes = []
    for note in every:
        if note["notificationType"] != "INVOICE_STATUS":
            continue
        invoice = str(_invoice_of(note))
        if invoice in invoices:
            notes.append((invoices[invoice], note))
    return sdk, notes


def _invoice_of(note: dict) -> str:
    return json.loads(note["content"]["data"])["invoice_id"]


async def send(http: aiohttp.ClientSession, base: str, req: Req) -> tuple[int, bytes]:
    """Send one built request; return (status, body)."""
    async with http.request(req.method, base + req.path, data=req.body, headers=req.headers) as resp:
        return resp.status, await resp.read()


async def record_templates(env: dict[str, str], emulator: str, app_id: int, product: str, secret: str,
                           key_b64: str) -> dict[str, Template]:
    """One Template per endpoint of WEIGHTS, recorded on an in-process app with `env` as its environment."""
    calls: list[Call] = []
    client = AsyncMongoMockClient(tz_aware=True)
    await seed(client["record"], RECORD_USERS, RECORD_USERS * 10, rounds=4)
    db = RecordingDatabase(client["record"], calls)
    settings = load_settings({**os.environ, **env}, redis_prefix=f"bench:record:{os.getpid()}:", jobs_enabled=False)
    ctx = create_context(settings, mongo=(client, db, True))
    held: list[Any] = []
    ctx.spawn = held.append  # type: ignore[method-assign] - run background work after the answer
    service = Service(ctx)
    port = await service.start(host="127.0.0.1", port=0)
    base = f"http://127.0.0.1:{port}"
    templates: dict[str, Template] = {}
    try:
        async with aiohttp.ClientSession() as http:
            sdk, notes = await make_purchases(http, emulator, app_id, product, [RECORD_USER, RECORD_USER],
                                              lambda i: bench_user(i).user_id)
            purchases = Purchases()
            purchases.sdk.append(sdk[0])
            purchases.notes.extend(n for n in notes if _invoice_of(n[1]) == str(sdk[1][1]["invoiceId"]))
            mix = Mix(RECORD_USERS, secret, key_b64, random.Random(1), "record", purchases,
                      first_refresh=RECORD_USER)
            await send(http, base, mix.build("profile", RECORD_USER))  # caches the session
            for endpoint in WEIGHTS:
                req = mix.build(endpoint, RECORD_USER)
                calls.clear()
                status, body = await send(http, base, req)
                answered = list(calls)
                calls.clear()
                while held:
                    await held.pop(0)
                if not 200 <= status < 300:
                    raise RuntimeError(f"recording {endpoint}: {status} {body[:300]!r}")
                user = ObjectId(req.headers["X-Bench-User"])
                templates[endpoint] = Template(endpoint, req.path.split("?")[0], user, dict(req.strings),
                                               answered, list(calls), status, body)
    finally:
        await service.stop()
    return templates
