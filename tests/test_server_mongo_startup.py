"""server.py in production mode when MongoDB is not up yet: it waits, logs each attempt, then serves or exits 1."""

from __future__ import annotations

import asyncio
import base64
import os
import signal
import socket
import sys
import time

import aiohttp

from rustore.signing import generate_key_pair
from tests.conftest import TEST_REDIS_URL
from tests.core.test_settings import ROOT, STRONG_SECRET, _clean_env, _free_port
from tests.support.wire_mongo import WireMongo


def production_env(mongo_port: int, port: int, **extra: str) -> dict[str, str]:
    """Every production setting valid, MONGO_URL at `mongo_port`."""
    return _clean_env(
        APP_ENV="production", HOST="127.0.0.1", PORT=str(port), JWT_SECRET=STRONG_SECRET,
        MONGO_URL=f"mongodb://127.0.0.1:{mongo_port}/?replicaSet=rs0", MONGO_DB="startup_test",
        REDIS_URL=TEST_REDIS_URL, REDIS_PREFIX="test:startup:", TRUSTED_PROXIES="127.0.0.1/32",
        JOBS_ENABLED="false", BCRYPT_ROUNDS="4", RUSTORE_KEY_ID="123", RUSTORE_PRIVATE_KEY=generate_key_pair().private_key_b64,
        RUSTORE_APP_ID="3399750", RUSTORE_PACKAGE_NAME="com.example.app",
        RUSTORE_NOTIFICATION_KEY=base64.b64encode(os.urandom(32)).decode(),
        MONGO_SERVER_SELECTION_TIMEOUT_MS="500", LOG_FORMAT="text", **extra,
    )


async def start(env: dict[str, str]) -> asyncio.subprocess.Process:
    """server.py with `env`; its log and stderr in one stream (stdout)."""
    return await asyncio.create_subprocess_exec(sys.executable, "server.py", cwd=ROOT, env=env,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)


async def health(port: int, deadline_s: float) -> int:
    """GET /api/health until it answers (or the deadline passes): its status."""
    end = time.monotonic() + deadline_s
    async with aiohttp.ClientSession() as session:
        while True:
            try:
                async with session.get(f"http://127.0.0.1:{port}/api/ready") as resp:
                    return resp.status
            except aiohttp.ClientConnectionError:
                if time.monotonic() > end:
                    return 0
                await asyncio.sleep(0.1)


async def test_server_waits_for_a_mongodb_that_comes_up_late_then_serves():
    mongo_port, port = _free_port(), _free_port()
    proc = await start(production_env(mongo_port, port, MONGO_STARTUP_TIMEOUT_S="30"))
    wire = WireMongo(port=mongo_port)
    early: list[str] = []
    try:
        # The port refuses connections until the server has said three times that it is waiting.
        while sum("waiting for MongoDB" in line for line in early) < 3:
            line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
            assert line, "the server gave up instead of waiting:\n" + "".join(early)
            early.append(line)
        wire.start()
        assert await health(port, 20) == 200  # /api/ready: MongoDB and Redis answer
        assert wire.received.get("createIndexes", 0) > 0  # indexes were created once MongoDB answered
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        rest, _ = await asyncio.wait_for(proc.communicate(), 30)
        if wire.port:
            wire.stop()
    text = "".join(early) + rest.decode()
    assert proc.returncode == 0, text
    waiting = [line for line in text.splitlines() if "waiting for MongoDB" in line]
    assert 3 <= len(waiting) <= 5, text  # one line per attempt, with backoff
    assert all(f"waiting for MongoDB at 127.0.0.1:{mongo_port} (" in line for line in waiting), text
    assert all("([Errno 111] Connection refused)" in line for line in waiting[:3]), text  # before it listened
    assert "Traceback" not in text


async def test_server_exits_1_with_a_one_line_reason_when_mongodb_never_answers():
    # A port that accepts connections and never answers: the worst case (no quick "refused").
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    mongo_port, port = silent.getsockname()[1], _free_port()
    try:
        started = time.monotonic()
        proc = await start(production_env(mongo_port, port, MONGO_STARTUP_TIMEOUT_S="2"))
        err, _ = await asyncio.wait_for(proc.communicate(), 30)
        elapsed = time.monotonic() - started
    finally:
        silent.close()
    text = err.decode()
    assert proc.returncode == 1, text
    assert elapsed < 2 + 5, elapsed  # the timeout, plus interpreter start-up
    assert "Traceback" not in text and "ServerSelectionTimeoutError" not in text
    last = text.strip().splitlines()[-1]
    assert last.startswith(f"cannot start: MongoDB at 127.0.0.1:{mongo_port} did not answer within 2 s ("), text
    assert "waiting for MongoDB at" in text


async def test_a_one_off_command_exits_1_with_the_same_one_line_reason():
    mongo_port = _free_port()  # nothing listens: connections are refused
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "server.py", "run-job", "ledger-repair", cwd=ROOT,
        env=production_env(mongo_port, _free_port(), MONGO_STARTUP_TIMEOUT_S="1"),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(), 30)
    text = out.decode()
    assert proc.returncode == 1, text
    assert text.strip().splitlines()[-1] == (f"cannot start: MongoDB at 127.0.0.1:{mongo_port} did not answer "
                                             "within 1 s ([Errno 111] Connection refused)")
    assert "Traceback" not in text
