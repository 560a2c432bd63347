"""Start-up output as a newcomer sees it: one short summary block, no scheduler noise, one line per job run."""

from __future__ import annotations

import asyncio
import re
import signal
import sys

from core.startup import StartupInfo, render
from tests.core.test_settings import ROOT, _clean_env, _free_port


async def test_development_start_prints_one_short_summary_and_each_job_run_is_one_line():
    port, emulator_port = _free_port(), _free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "server.py", cwd=ROOT,
        env=_clean_env(PORT=str(port), HOST="127.0.0.1", EMULATOR_PORT=str(emulator_port), LEDGER_REPAIR_INTERVAL_S="1"),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    startup: list[str] = []
    later: list[str] = []
    try:
        while not any("Try it" in line for line in startup):
            line = (await asyncio.wait_for(proc.stdout.readline(), 60)).decode()
            assert line, "server exited early:\n" + "".join(startup)
            startup.append(line)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 2.6  # the 1-second job runs twice or so
        while loop.time() < deadline:
            try:
                line = await asyncio.wait_for(proc.stdout.readline(), max(0.01, deadline - loop.time()))
            except TimeoutError:
                break
            later.append(line.decode())
    finally:
        proc.send_signal(signal.SIGTERM)
        rest, _ = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, "".join(startup + later) + rest.decode()
    text = "".join(startup)
    assert len(startup) <= 14, text  # three in-memory warnings and the summary block
    assert "apscheduler" not in text.lower() and "Added job" not in text
    for expected in ("rustore-backend started (development)", f"API        http://127.0.0.1:{port}",
                     "MongoDB    in-memory", "Redis      in-memory",
                     f"RuStore emulator (development, no RuStore credentials): http://127.0.0.1:{emulator_port}",
                     "Jobs       ", f"python server.py demo --url http://127.0.0.1:{port}",
                     f"Web demo   http://127.0.0.1:{port}/demo/"):
        assert expected in text, (expected, text)
    runs = [line for line in later if "ledger-repair" in line]
    assert runs and all(re.search(r"job ledger-repair ok .*summary_", line) for line in runs), "".join(later)
    assert not any("apscheduler" in line.lower() or "Running job" in line for line in later), "".join(later)


def test_summary_never_shows_store_credentials():
    from core.startup import describe_stores

    class S:
        mongo_url = "mongodb://admin:hunter2@db.internal:27017/app?authSource=admin"
        mongo_db = "app"
        redis_url = "redis://:s3cret@cache.internal:6379/0"

    mongo, redis = describe_stores(S())
    block = render(StartupInfo("production", "https://api.example.com", mongo, redis, "https://public-api.rustore.ru",
                               None, None, 10, None))
    assert "hunter2" not in block and "s3cret" not in block and "admin:" not in block
    assert "mongodb://db.internal:27017" in block and "redis://cache.internal:6379" in block
    assert "RuStore API: https://public-api.rustore.ru" in block and "demo" not in block


async def test_with_json_logs_the_summary_is_one_started_record():
    import json

    port, emulator_port = _free_port(), _free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "server.py", cwd=ROOT,
        env=_clean_env(PORT=str(port), HOST="127.0.0.1", EMULATOR_PORT=str(emulator_port), LOG_FORMAT="json"),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    records: list[dict] = []
    try:
        while not any(r.get("message") == "started" for r in records):
            line = (await asyncio.wait_for(proc.stdout.readline(), 60)).decode()
            assert line, "server exited early"
            records.append(json.loads(line))  # every line is JSON: no text block on stdout
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.communicate(), 60)
    started = records[-1]
    assert started["api_url"] == f"http://127.0.0.1:{port}" and started["emulator_url"] == f"http://127.0.0.1:{emulator_port}"
    assert started["mode"] == "development" and started["jobs"] > 0 and "in-memory" in started["mongo"]
    assert not any("apscheduler" in json.dumps(r).lower() for r in records)
