"""Fixtures of the fault tests: a private Redis server the test may kill."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

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
