"""`python server.py demo`: the whole app flow runs and says so; a step that misbehaves ends it with exit status 1."""

from __future__ import annotations

import asyncio
import sys

from core.demo import run_demo
from tests.core.test_settings import ROOT, _clean_env


async def test_demo_with_start_runs_every_step_and_saves_the_postcard(tmp_path):
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "server.py", "demo", "--start", "--out", str(tmp_path), cwd=ROOT, env=_clean_env(),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    text = out.decode()
    assert proc.returncode == 0, text + err.decode()
    for line in ("[1/10] register", "-> POST /api/auth/register", "<- 201", "-> POST /api/payments/orders",
                 "-> POST [emulator]/_emulator/apps/1000001/purchases", "-> POST /api/payments/verify",
                 "[4/10] two-step purchase, confirmed", "-> POST /api/subscriptions/verify", "-> GET /api/user/profile",
                 "-> POST /api/generation/request", "/image/signed?u=", "saved the postcard to",
                 "-> GET /api/points/history", "/refund", "-> GET /api/points/history?type=clawback",
                 "demo OK: all 10 steps behaved as documented"):
        assert line in text, (line, text)
    assert "eyJ" not in text.replace('"eyJhbG…"', "")  # tokens are shortened in the printout
    pngs = list(tmp_path.glob("postcard-*.png"))
    assert len(pngs) == 1 and pngs[0].read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


async def test_demo_exits_1_at_the_first_step_that_does_not_behave_as_documented(emulated, tmp_path):
    env = await emulated()
    env.emulator.set_fault("*", "error", status=500)  # RuStore down: verify answers 503, not the documented 200
    lines: list[str] = []
    emulator_url = env.service.ctx.settings.rustore_api_url
    assert await run_demo(env.api.base_url, emulator_url, tmp_path, say=lines.append) == 1
    assert lines[-1].startswith("demo FAILED at step 3 (order, purchase in the emulator, verify)"), lines


async def test_demo_against_nothing_fails_at_the_first_step(tmp_path):
    lines: list[str] = []
    assert await run_demo("http://127.0.0.1:9", "http://127.0.0.1:9", tmp_path, say=lines.append) == 1
    assert lines[-1].startswith("demo FAILED at step 1"), lines
