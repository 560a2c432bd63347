"""Service endpoints: liveness and readiness probes."""

from __future__ import annotations

import asyncio

import pymongo
from marshmallow import fields

from core.metrics import DEPENDENCY_UP
from handlers.base import APIHandler, public
from handlers.docs import api
from handlers.schemas import CamelSchema

READY_TIMEOUT_S = 2.0


class HealthSchema(CamelSchema):
    """Liveness answer."""

    status = fields.String(required=True, metadata={"enum": ["ok"]})


class ReadySchema(CamelSchema):
    """Readiness answer."""

    status = fields.String(required=True, metadata={"enum": ["ready"]})
    checks = fields.Dict(keys=fields.String(), values=fields.String(), required=True)


class HealthHandler(APIHandler):
    """GET /api/health — the process is up (no I/O: it stays 200 while MongoDB or Redis is down)."""

    @public
    @api("Liveness: the process is up (no I/O)", responses={200: HealthSchema})
    async def get(self) -> None:
        self.write_json({"status": "ok"})


class ReadyHandler(APIHandler):
    """GET /api/ready — MongoDB and Redis answer; 503 naming what is down otherwise."""

    @public
    @api("Readiness: MongoDB and Redis answer", responses={200: ReadySchema},
         errors={503: ["dependency_unavailable"]})
    async def get(self) -> None:
        checks = {"mongo": self._ping_mongo(), "redis": self._ping_redis()}
        results = await asyncio.gather(*(self._probe(c) for c in checks.values()))
        status = dict(zip(checks, results, strict=True))
        for name, ok in status.items():
            DEPENDENCY_UP.labels(name).set(1 if ok else 0)
        down = sorted(name for name, ok in status.items() if not ok)
        payload = {"status": "ready" if not down else "unavailable",
                   "checks": {k: "ok" if v else "down" for k, v in status.items()}}
        if down:
            self.write_json({"error": f"Not ready: {', '.join(down)} unavailable.", "code": 503,
                             "reason": "dependency_unavailable", "details": {**payload, "down": down}}, 503)
        else:
            self.write_json(payload)

    async def _ping_mongo(self) -> None:
        # The driver's own deadline too, so a hung MongoDB leaves no ping running past the probe.
        with pymongo.timeout(READY_TIMEOUT_S):
            await self.db.command("ping")

    async def _ping_redis(self) -> None:
        await self.ctx.redis.ping()

    @staticmethod
    async def _probe(coro) -> bool:  # type: ignore[no-untyped-def]
        try:
            await asyncio.wait_for(coro, READY_TIMEOUT_S)
            return True
        except Exception:  # noqa: BLE001 - any failure means "down"
            return False


default_handlers = [
    (r"/api/health", HealthHandler),
    (r"/api/ready", ReadyHandler),
]
