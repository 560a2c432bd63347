"""Swagger UI in a real headless Chromium against the running server: operations render, "Try it out" works, offline.

Chromium is Debian's `chromium` package (bash .ci/run installs it); without it this test fails, never skips.
The page is opened under a name other than localhost (mapped to 127.0.0.1 inside the browser only), because
Swagger UI behaves differently on localhost (its online validator is skipped there), and every request the
page makes must stay on the server's own origin: no CDN, nothing external. The screenshot is saved to
artifacts/swagger-ui.png.
"""

from __future__ import annotations

import base64
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.support.browser import chromium_path, headless_chromium

ARTIFACT = Path(__file__).resolve().parents[2] / "artifacts" / "swagger-ui.png"
HOST = "api-docs.test"  # reserved TLD (RFC 2606): never resolvable outside this browser
HEALTH = "#operations-service-get_HealthHandler"


def q(selector: str) -> str:
    """JS for the first element matching `selector`."""
    return f"document.querySelector({selector!r})"


@pytest.mark.timeout(60)
async def test_swagger_ui_lists_operations_and_tries_out_health_offline(start_server):
    executable = chromium_path()
    if executable is None:
        pytest.fail("Chromium is required for the Swagger UI test: apt-get install chromium (bash .ci/run installs it)")
    _, api = await start_server()
    operations = sum(len(item) for item in (await api.get("/api/openapi.json")).json["paths"].values())
    origin = f"http://{HOST}:{urlsplit(api.base_url).port}"

    async with headless_chromium(executable, f"--host-resolver-rules=MAP {HOST} 127.0.0.1") as page:
        await page.send("Network.enable")
        await page.send("Page.enable")
        await page.send("Page.navigate", url=f"{origin}/api/docs")
        await page.wait_for(f"!!{q(HEALTH)}", timeout=15, what="the GET /api/health operation to render")
        paths = await page.evaluate(
            "Array.from(document.querySelectorAll('.opblock .opblock-summary-path')).map(e => e.dataset.path)")
        assert {"/api/health", "/api/payments/verify", "/api/points/spend", "/api/auth/oauth/vk"} <= set(paths)
        assert len(paths) == operations

        # Expand GET /api/health, then "Try it out" and "Execute": the live response must be a 200.
        await page.evaluate(f"{q(HEALTH + ' .opblock-summary-control')}.click()")
        await page.wait_for(f"!!{q(HEALTH + ' .try-out__btn')}", what='the "Try it out" button')
        await page.evaluate(f"{q(HEALTH + ' .try-out__btn')}.click()")
        await page.wait_for(f"!!{q(HEALTH + ' .btn.execute')}", what='the "Execute" button')
        await page.evaluate(f"{q(HEALTH + ' .btn.execute')}.click()")
        live = HEALTH + " .live-responses-table tbody .response"
        status = await page.wait_for(f"{q(live + ' .response-col_status')}?.textContent.trim()",
                                     what="the live response of GET /api/health")
        assert status == "200"
        assert '"ok"' in await page.evaluate(f"{q(live + ' .response-col_description')}.textContent")

        await page.evaluate(f"{q(HEALTH)}.scrollIntoView()")
        shot = await page.send("Page.captureScreenshot", format="png")
        ARTIFACT.parent.mkdir(exist_ok=True)
        ARTIFACT.write_bytes(base64.b64decode(shot["data"]))

    urls = page.requested_urls()
    assert f"{origin}/api/health" in urls  # the request "Execute" sent
    assert {u for u in urls if urlsplit(u).scheme != "data" and not u.startswith(origin + "/")} == set()
    failed = [e["params"] for e in page.events if e["method"] == "Network.loadingFailed"]
    assert failed == [], "requests the page could not load (a blocked asset or a CSP refusal)"
    assert ARTIFACT.read_bytes().startswith(b"\x89PNG")
