"""Fixtures of the fault tests: a private Redis server the test may kill, the app over a MongoDB wire server."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from tests.support.redis_server import RedisServer


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A running redis-server on its own port; killed at teardown even when the test fails."""
    server = RedisServer(tmp_path)
    try:
        server.start()
        yield server
    finally:
        server.kill()


@pytest.fixture
async def over_the_wire(redis_client: Any) -> AsyncIterator[Callable[..., Awaitable[Any]]]:
    """Factory: a WireMongo server and the real app connected to it by MONGO_URL (no mongomock in between)."""
    from core.context import create_context
    from server import Service
    from tests.conftest import _delete_prefix, make_settings
    from tests.support.http import ApiClient
    from tests.support.wire_mongo import WireMongo

    running: list[tuple[WireMongo, Any, ApiClient, str]] = []

    async def start(settings: Any = None, **overrides: Any) -> SimpleNamespace:
        wire = WireMongo()
        wire.start()
        values = {"mongo_server_selection_timeout_ms": 1000, "mongo_operation_timeout_ms": 1500, **overrides}
        settings = dataclasses.replace(settings, mongo_url=wire.url, **values) if settings else make_settings(
            mongo_url=wire.url, **values)
        service = Service(create_context(settings))
        port = await service.start(host="127.0.0.1", port=0)
        api = ApiClient(f"http://127.0.0.1:{port}")
        running.append((wire, service, api, settings.redis_prefix))
        return SimpleNamespace(wire=wire, service=service, api=api, ctx=service.ctx, settings=settings)

    yield start
    for wire, service, api, prefix in reversed(running):
        wire.hung = False
        await api.close()
        await service.stop()
        wire.stop()
        await _delete_prefix(redis_client, prefix)
