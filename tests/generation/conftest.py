"""Fixtures for generation tests: a real fake OpenAI-compatible HTTP server on 127.0.0.1 and provider helpers."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

import pytest
import tornado.httpserver
import tornado.netutil
import tornado.web

from generation import OpenAICompatibleProvider

API_KEY = "sk-test-SECRET-0123456789"
MODEL = "test-model"


@dataclass
class Received:
    """One request as the fake server saw it."""

    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class FakeLLM:
    """State of the fake server; tests set `mode` and `reply` and then inspect `requests`."""

    mode: str = "ok"
    reply: str = "Анна, с днём рождения! Пусть всё получается."
    requests: list[Received] = field(default_factory=list)
    port: int = 0
    inflight: int = 0
    release: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    async def wait_idle(self) -> None:
        # Handlers parked in "slow" mode must finish before the loop closes, or their tasks leak.
        for _ in range(200):
            if self.inflight == 0:
                return
            await asyncio.sleep(0.01)


def completion(content: Any, finish_reason: str = "stop") -> dict[str, Any]:
    """A minimal chat-completions response body."""
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "served-model",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                     "finish_reason": finish_reason}],
    }


class _ChatHandler(tornado.web.RequestHandler):
    def initialize(self, fake: FakeLLM) -> None:
        self.fake = fake

    async def post(self) -> None:
        fake = self.fake
        fake.inflight += 1
        try:
            try:
                body: Any = json.loads(self.request.body)
            except ValueError:
                body = None
            fake.requests.append(Received(self.request.path, dict(self.request.headers), body))
            await self._answer(fake.mode)
        finally:
            fake.inflight -= 1

    async def _answer(self, mode: str) -> None:
        fake = self.fake
        if mode == "slow":
            await fake.release.wait()
            if self.request.connection.stream.closed():
                return
            mode = "ok"
        if mode == "ok":
            self.write(completion(fake.reply))
        elif mode.isdigit():
            self.set_status(int(mode))
            self.write({"error": {"message": f"echo of {self.request.headers.get('Authorization')}"}})
        elif mode == "malformed":
            self.set_header("Content-Type", "application/json")
            self.write('{"choices": [ {"message": ')
        elif mode == "html":
            self.set_header("Content-Type", "text/html")
            self.write("<html><body>502 Bad Gateway</body></html>")
        elif mode == "wrong_shape":
            self.write({"result": {"text": "hello"}})
        elif mode == "empty":
            self.write(completion("   \n  "))
        elif mode == "null_content":
            self.write(completion(None))
        elif mode == "filtered":
            self.write(completion("", finish_reason="content_filter"))
        elif mode == "huge":
            self.write(completion("я" * 1_500_000))
        elif mode == "parts":
            self.write(completion([{"type": "text", "text": "Happy "}, {"type": "text", "text": "birthday!"}]))
        else:
            raise AssertionError(f"unknown fake mode {mode}")


@pytest.fixture
async def fake_llm():
    """Start the fake server inside the test's event loop on an ephemeral loopback port."""
    fake = FakeLLM()
    app = tornado.web.Application([(r"/v1/chat/completions", _ChatHandler, {"fake": fake})])
    sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
    server = tornado.httpserver.HTTPServer(app)
    server.add_sockets(sockets)
    fake.port = sockets[0].getsockname()[1]
    try:
        yield fake
    finally:
        fake.release.set()
        await fake.wait_idle()
        server.stop()
        await server.close_all_connections()


@pytest.fixture
async def remote(fake_llm):
    """Factory for providers pointed at the fake server; every provider is closed after the test."""
    created: list[OpenAICompatibleProvider] = []

    def make(**overrides: Any) -> OpenAICompatibleProvider:
        options: dict[str, Any] = {"api_url": fake_llm.base_url, "api_key": API_KEY, "model": MODEL, "timeout_s": 5.0}
        options.update(overrides)
        provider = OpenAICompatibleProvider(**options)
        created.append(provider)
        return provider

    try:
        yield make
    finally:
        for provider in created:
            await provider.close()
