"""A real HTTP receiver of our outbound events on 127.0.0.1: records every delivery, answers as told."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from aiohttp import web


@dataclass
class Delivery:
    """One POST the receiver got: headers and the exact raw body."""

    headers: dict[str, str]
    body: bytes

    @property
    def event(self) -> dict:
        return json.loads(self.body)


@dataclass
class Receiver:
    """The app team's backend: `answers` are the statuses of the next deliveries (then 200)."""

    url: str = ""
    answers: list[int] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)

    @property
    def events(self) -> list[dict]:
        return [d.event for d in self.deliveries]

    def types(self) -> list[str]:
        return [e["type"] for e in self.events]

    async def handle(self, request: web.Request) -> web.Response:
        self.deliveries.append(Delivery(dict(request.headers), await request.read()))
        return web.Response(status=self.answers.pop(0) if self.answers else 200, text="ok")


@asynccontextmanager
async def running_receiver() -> AsyncIterator[Receiver]:
    """Serve a Receiver on an ephemeral loopback port until the block ends."""
    receiver = Receiver()
    app = web.Application()
    app.router.add_post("/hooks", receiver.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    receiver.url = f"http://127.0.0.1:{port}/hooks"
    try:
        yield receiver
    finally:
        await runner.cleanup()
