"""The web reference client at /demo/ in a real headless Chromium: sign up, buy, verify, generate, histories.

The server runs with the RuStore emulator wired in as `python server.py` does in development, and with
2-second access tokens so the page has to refresh (with rotation) in the middle of the flow. Chromium is
required (never skipped); every request the page makes stays on the server's own origin, nothing fails to
load and no script error is thrown. The screenshot is saved to artifacts/demo-web-client.png.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from handlers import make_app
from tests.support.browser import chromium_path, headless_chromium

ARTIFACT = Path(__file__).resolve().parents[2] / "artifacts" / "demo-web-client.png"
HOST = "demo-client.test"  # reserved TLD (RFC 2606): resolvable only inside this browser
EMAIL, PASSWORD = "web-demo@example.com", "a web demo password"


def text(element_id: str) -> str:
    return f"document.getElementById({element_id!r}).textContent"


async def click(page, selector: str) -> None:
    await page.evaluate(f"document.querySelector({selector!r}).click()")


@pytest.mark.timeout(90)
async def test_demo_page_runs_the_whole_flow_and_refreshes_its_token(emulated):
    executable = chromium_path()
    if executable is None:
        pytest.fail("Chromium is required for the demo page test: apt-get install chromium (bash .ci/run installs it)")
    env = await emulated(access_token_ttl_s=2)
    env.service.ctx.emulator = env.emulator  # what `python server.py` does in development
    origin = f"http://{HOST}:{urlsplit(env.api.base_url).port}"

    async with headless_chromium(executable, f"--host-resolver-rules=MAP {HOST} 127.0.0.1") as page:
        for domain in ("Network", "Page", "Runtime"):
            await page.send(f"{domain}.enable")
        await page.send("Page.navigate", url=f"{origin}/demo/")
        await page.wait_for("document.body?.dataset.ready === 'true'", timeout=15, what="the page to start")

        await page.evaluate(f"document.getElementById('email').value = {EMAIL!r}")
        await page.evaluate(f"document.getElementById('password').value = {PASSWORD!r}")
        await click(page, "#signup")
        await page.wait_for(f"{text('balance')} === '0' && !!document.querySelector('[data-product]')",
                            what="the wallet after signing up")

        await click(page, "[data-product=points_100]")
        await page.wait_for(f"{text('balance')} === '100'", what="100 points credited")
        assert "points_100: credited" in await page.evaluate(text("purchase-status")) or \
            "points_100: already_credited" in await page.evaluate(text("purchase-status"))

        await asyncio.sleep(2.5)  # the access token expires: the next call gets 401 invalid_token and refreshes
        await click(page, "[data-product=premium_monthly]")
        await page.wait_for("document.querySelector('[data-entitlement=premium]')?.dataset.active === 'true'",
                            what="the premium entitlement")
        assert await page.evaluate(text("balance")) == "400"  # + 300 points of the first period

        await click(page, "#greeting")
        await page.wait_for(f"{text('generation-status')}.includes('balance 399')", what="the greeting")
        assert await page.evaluate(text("text"))
        await click(page, "#card")
        await page.wait_for(f"{text('generation-status')}.includes('balance 396')", what="the postcard")
        await page.wait_for("document.getElementById('postcard').complete && "
                            "document.getElementById('postcard').naturalWidth > 0", what="the postcard image")

        await page.wait_for("document.querySelectorAll('#points-history tr').length === 5", what="4 ledger rows")
        assert await page.evaluate("document.querySelectorAll('#payments-history tr').length") >= 2
        assert await page.evaluate("document.querySelectorAll('#generation-history tr').length") == 3
        assert await page.evaluate(text("error")) == ""

        shot = await page.send("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        ARTIFACT.parent.mkdir(exist_ok=True)
        ARTIFACT.write_bytes(base64.b64decode(shot["data"]))

    urls = page.requested_urls()
    refreshes = [u for u in urls if u == f"{origin}/api/auth/refresh"]
    assert refreshes, "the page never refreshed its expired access token"
    assert f"{origin}/demo/emulator/purchases" in urls and f"{origin}/api/payments/verify" in urls
    assert {u for u in urls if urlsplit(u).scheme not in ("data", "blob") and not u.startswith(origin + "/")} == set()
    assert [e for e in page.events if e["method"] == "Network.loadingFailed"] == []
    assert [e for e in page.events if e["method"] == "Runtime.exceptionThrown"] == []
    assert ARTIFACT.read_bytes().startswith(b"\x89PNG")

    # What the page showed is what the server holds; the session survived every rotation.
    login = await env.api.post("/api/auth/login", {"email": EMAIL, "password": PASSWORD})
    customer = await env.api.get("/api/customer", token=login.json["accessToken"])
    assert customer.json["balance"] == 396 and customer.json["entitlements"]["premium"]["active"] is True


async def test_demo_files_carry_a_strict_content_security_policy(api):
    page = await api.get("/demo/")
    assert page.status == 200 and '<script type="module" src="app.js">' in page.text
    csp = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "connect-src 'self'" in csp and "default-src 'none'" in csp
    assert (await api.get("/demo/api.js")).status == 200


async def test_without_an_emulator_the_config_says_so_and_the_relay_refuses(api):
    config = await api.get("/demo/config.json")
    assert config.status == 200 and config.json == {"environment": "test", "emulator": None}
    relay = await api.post("/demo/emulator/purchases", {"productId": "points_100"})
    assert relay.status == 404 and relay.json["reason"] == "emulator_not_running"


async def test_the_emulator_relay_answers_what_the_pay_sdk_would(emulated):
    env = await emulated()
    env.service.ctx.emulator = env.emulator
    sdk = await env.api.post("/demo/emulator/purchases", {"productId": "points_100"})
    assert sdk.status == 201 and {"invoiceId", "purchaseId", "productId"} <= set(sdk.json)
    config = await env.api.get("/demo/config.json")
    assert config.json["emulator"]["appId"] == env.app_id
    for body in ("not json", "[1, 2]"):
        refused = await env.api.post("/demo/emulator/purchases", data=body)
        assert refused.status == 400 and refused.json["reason"] == "invalid_json"
    wrong = await env.api.post("/demo/emulator/purchases", {"productId": "premium_monthly"})
    assert wrong.status == 400 and "subscription" in wrong.text  # the emulator's own refusal, passed through


def test_demo_routes_are_not_registered_in_production(service):
    production = dataclasses.replace(service.ctx, settings=dataclasses.replace(service.ctx.settings, app_env="production"))
    patterns = [rule.matcher.regex.pattern for rule in make_app(production).wildcard_router.rules]
    assert not [p for p in patterns if p.startswith("/demo")]
    patterns = [rule.matcher.regex.pattern for rule in make_app(service.ctx).wildcard_router.rules]
    assert any(p.startswith("/demo/") for p in patterns)
