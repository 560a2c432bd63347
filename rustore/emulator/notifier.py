"""Webhook sender: encrypts like RuStore (API.md §5.3) and re-sends on non-200 with a growing schedule."""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from loguru import logger

from rustore.emulator.clock import Clock
from rustore.emulator.config import EmulatorApp
from rustore.emulator.records import iso


def encrypt_payload(content: dict[str, Any], key_b64: str) -> str:
    """Base64(IV[12] || AES-256-GCM ciphertext || tag[16]) of the UTF-8 JSON, no AAD."""
    iv = os.urandom(12)
    sealed = AESGCM(base64.b64decode(key_b64)).encrypt(iv, json.dumps(content).encode("utf-8"), None)
    return base64.b64encode(iv + sealed).decode("ascii")


@dataclass
class Outgoing:
    """One notification and its delivery state; `content` is the plaintext before encryption."""

    id: str
    app_id: int
    notification_type: str
    sandbox: bool
    url: str | None
    content: dict[str, Any]
    payload: str | None
    created_at: str | None
    attempts: int = 0
    delivered: bool = False
    given_up: bool = False

    def view(self) -> dict[str, Any]:
        """Control-API JSON."""
        return {
            "id": self.id, "appId": self.app_id, "notificationType": self.notification_type,
            "sandbox": self.sandbox, "url": self.url, "content": self.content, "createdAt": self.created_at,
            "attempts": self.attempts, "delivered": self.delivered, "givenUp": self.given_up,
        }


@dataclass
class Attempt:
    """One POST to a webhook URL."""

    notification_id: str
    attempt: int
    url: str
    at: str | None
    status: int | None
    error: str | None
    ok: bool = field(default=False)

    def view(self) -> dict[str, Any]:
        """Control-API JSON."""
        return {"notificationId": self.notification_id, "attempt": self.attempt, "url": self.url,
                "at": self.at, "status": self.status, "error": self.error, "ok": self.ok}


class Notifier:
    """Queues notifications and delivers them from one background task; retries wait on timers."""

    def __init__(self, clock: Clock, retry_schedule: Sequence[float], retry_scale: float, timeout_s: float) -> None:
        self.clock = clock
        self.retry_delays = [d * retry_scale for d in retry_schedule]
        self.timeout = aiohttp.ClientTimeout(total=timeout_s, sock_connect=min(3.0, timeout_s))
        self.status_case = "upper"
        self.notifications: list[Outgoing] = []
        self.attempts: list[Attempt] = []
        self._ids = itertools.count(1)
        self._queue: asyncio.Queue[tuple[Outgoing, int]] = asyncio.Queue()
        self._timers: set[asyncio.Task[None]] = set()
        self._worker: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None

    def enqueue(self, app: EmulatorApp, kind: str, data: dict[str, Any], sandbox: bool) -> Outgoing:
        """Record and queue a notification; without a configured URL/key it is only recorded."""
        if self.status_case == "lower" and kind.startswith("INVOICE_STATUS"):
            data = {k: v.lower() if k.startswith("status_") and isinstance(v, str) else v for k, v in data.items()}
        content = {"app_id": app.app_id, "notification_type": kind, "data": json.dumps(data, ensure_ascii=False)}
        url = app.sandbox_notification_url if sandbox else app.notification_url
        key = app.sandbox_notification_key_b64 if sandbox else app.notification_key_b64
        item = Outgoing(str(next(self._ids)), app.app_id, kind, sandbox, url if key else None, content,
                        encrypt_payload(content, key) if key else None, iso(self.clock.now()))
        self.notifications.append(item)
        if item.url is not None:
            self._queue.put_nowait((item, 0))
        return item

    async def start(self) -> None:
        """Start the delivery task (idempotent)."""
        if self._worker is None:
            # A queue belongs to the loop that first waits on it; carry queued items to a fresh one.
            pending = [self._queue.get_nowait() for _ in range(self._queue.qsize())]
            self._queue = asyncio.Queue()
            for item in pending:
                self._queue.put_nowait(item)
            self._session = aiohttp.ClientSession()
            self._worker = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Cancel delivery and pending retries, and close the HTTP session."""
        tasks = [*self._timers, *([self._worker] if self._worker else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._timers.clear()
        self._worker = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def drain(self, timeout_s: float = 10.0, *, include_retries: bool = False) -> None:
        """Wait until queued notifications were attempted (and, optionally, no retry is pending)."""
        async with asyncio.timeout(timeout_s):
            while True:
                await self._queue.join()
                if not include_retries or not self._timers:
                    return
                await asyncio.sleep(0.01)

    async def _run(self) -> None:
        while True:
            item, attempt = await self._queue.get()
            try:
                await self._deliver(item, attempt)
            finally:
                self._queue.task_done()

    async def _deliver(self, item: Outgoing, attempt: int) -> None:
        envelope = {"id": item.id, "timestamp": iso(self.clock.now()), "payload": item.payload}
        status: int | None = None
        error: str | None = None
        assert self._session is not None and item.url is not None
        try:
            async with self._session.post(item.url, json=envelope, timeout=self.timeout) as response:
                status = response.status
                await response.read()
        except TimeoutError:
            error = "Read timed out"
        except aiohttp.ClientError as exc:
            error = f"{type(exc).__name__}: {exc}"
        ok = status == 200
        item.attempts += 1
        item.delivered = item.delivered or ok
        self.attempts.append(Attempt(item.id, attempt, item.url, iso(self.clock.now()), status, error, ok))
        if ok:
            return
        if attempt >= len(self.retry_delays):
            item.given_up = True
            logger.warning("emulator gave up notification {} after {} attempts", item.id, item.attempts)
            return
        timer = asyncio.get_running_loop().create_task(self._retry_later(item, attempt + 1))
        self._timers.add(timer)
        timer.add_done_callback(self._timers.discard)

    async def _retry_later(self, item: Outgoing, attempt: int) -> None:
        await asyncio.sleep(self.retry_delays[attempt - 1])
        self._queue.put_nowait((item, attempt))
