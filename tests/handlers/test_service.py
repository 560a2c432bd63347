"""Liveness and readiness probes."""

from __future__ import annotations

from mongomock_motor import AsyncMongoMockClient

from core.context import create_context
from server import Service
from tests.conftest import make_settings
from tests.support.http import ApiClient


async def test_health_is_public_and_cheap(api):
    resp = await api.get("/api/health")
    assert resp.status == 200 and resp.json == {"status": "ok"}


async def test_ready_checks_mongo_and_redis(api):
    resp = await api.get("/api/ready")
    assert resp.status == 200
    assert resp.json == {"status": "ready", "checks": {"mongo": "ok", "redis": "ok"}}


async def test_ready_names_what_is_down_with_503():
    settings = make_settings(redis_url="redis://127.0.0.1:1/0")  # nothing listens there
    store = AsyncMongoMockClient(tz_aware=True)
    ctx = create_context(settings, mongo=(store, store["db"], True))
    service = Service(ctx)
    port = await service.start(host="127.0.0.1", port=0)
    client = ApiClient(f"http://127.0.0.1:{port}")
    try:
        resp = await client.get("/api/ready")
        assert resp.status == 503
        assert resp.json["reason"] == "dependency_unavailable"
        assert resp.json["details"]["down"] == ["redis"]
        assert resp.json["details"]["checks"] == {"mongo": "ok", "redis": "down"}
    finally:
        await client.close()
        await service.stop()
