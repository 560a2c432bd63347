"""server.py as a user runs it: development mode with the in-process RuStore emulator."""

from __future__ import annotations

import asyncio
import re
import signal
import sys

import aiohttp

from tests.core.test_settings import ROOT, _clean_env, _free_port


async def test_development_mode_runs_the_emulator_and_a_purchase_goes_through():
    port, emulator_port = _free_port(), _free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "server.py", cwd=ROOT, env=_clean_env(PORT=str(port), HOST="127.0.0.1",
                                                              EMULATOR_PORT=str(emulator_port)),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    output: list[str] = []
    try:
        emulator_url = None
        while emulator_url is None:
            line = (await asyncio.wait_for(proc.stdout.readline(), 60)).decode()
            assert line, "server exited early:\n" + "".join(output)
            output.append(line)
            found = re.search(r"RuStore emulator .*: (http://\S+)", line)
            emulator_url = found.group(1) if found else None
        assert emulator_url == f"http://127.0.0.1:{emulator_port}"
        api = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession() as session:
            async with session.post(api + "/api/auth/register",
                                    json={"email": "dev@example.com", "password": "demo password"}) as resp:
                token = (await resp.json())["accessToken"]
            async with session.post(emulator_url + "/_emulator/apps/1000001/purchases",
                                    json={"productId": "points_500"}) as resp:
                sdk = await resp.json()
            body = {k: sdk[k] for k in ("invoiceId", "purchaseId", "productId", "orderId", "sandbox")}
            async with session.post(api + "/api/points/buy", json=body,
                                    headers={"Authorization": f"Bearer {token}"}) as resp:
                assert resp.status == 200, await resp.text()
                assert (await resp.json())["balance"] == 500
    finally:
        proc.send_signal(signal.SIGTERM)
        rest, _ = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, "".join(output) + rest.decode()
