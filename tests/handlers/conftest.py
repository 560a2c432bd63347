"""Fixtures for handler tests: fake Google and VK ID servers over real HTTP."""

from __future__ import annotations

import pytest

from tests.oauth.fake_vk import running_vk
from tests.oauth.fakes import running_google


@pytest.fixture
async def google():
    """A fake Google key server (JWKS) on 127.0.0.1."""
    async with running_google() as fake:
        yield fake


@pytest.fixture
async def vk():
    """A fake VK ID / VK API server on 127.0.0.1."""
    async with running_vk() as fake:
        yield fake


@pytest.fixture
def smtp():
    """A real SMTP server (aiosmtpd) on 127.0.0.1 collecting what it receives."""
    from tests.support.smtp import SmtpServer

    server = SmtpServer()
    server.start()
    yield server
    server.stop()
