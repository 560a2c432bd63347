"""The reset and verification pages in a real headless Chromium: fill the form, submit, see success; offline.

Like the Swagger UI test, Chromium is required (never skipped) and every request the page makes must stay
on the server's own origin.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from tests.handlers.test_auth import PASSWORD
from tests.support.browser import chromium_path, headless_chromium
from tests.support.smtp import link_of

HOST = "accounts.test"  # reserved TLD: resolvable only inside this browser
NEW = "chosen in a browser"


def browser_url(link: str, port: int) -> str:
    parts = urlsplit(link)
    return f"http://{HOST}:{port}{parts.path}?{parts.query}"


@pytest.mark.timeout(60)
async def test_reset_page_sets_the_new_password_in_russian(start_server, smtp):
    executable = chromium_path()
    if executable is None:
        pytest.fail("Chromium is required for the page tests: apt-get install chromium (bash .ci/run installs it)")
    _, api = await start_server(smtp_url=smtp.url)
    user = await api.register(locale="ru")
    await api.post("/api/auth/password/forgot", {"email": user["email"]})
    mail = next(m for m in await smtp.wait_for(user["email"], 2) if m["Subject"] == "Сброс пароля")
    port = urlsplit(api.base_url).port

    async with headless_chromium(executable, f"--host-resolver-rules=MAP {HOST} 127.0.0.1") as page:
        await page.send("Network.enable")
        await page.send("Page.enable")
        await page.send("Page.navigate", url=browser_url(link_of(mail), port))
        await page.wait_for("document.readyState === 'complete' && !!document.querySelector('button').textContent",
                            what="the reset form")
        assert await page.evaluate("document.title") == "Новый пароль"
        assert "token" not in await page.evaluate("location.search")  # removed from the address bar and history
        await page.evaluate("document.getElementById('password').value = 'one thing'")
        await page.evaluate("document.getElementById('confirm').value = 'another thing'")
        await page.evaluate("document.querySelector('button').click()")
        assert await page.wait_for("document.getElementById('status').textContent", what="the mismatch note") \
            == "Пароли не совпадают."
        for field in ("password", "confirm"):
            await page.evaluate(f"document.getElementById('{field}').value = '{NEW}'")
        await page.evaluate("document.querySelector('button').click()")
        status = await page.wait_for(
            "document.getElementById('status').className === 'ok' && document.getElementById('status').textContent",
            what="the success message")
        assert status == "Пароль изменён. Войдите с ним в приложении."
        assert await page.evaluate("document.getElementById('form').hidden") is True

    assert (await api.post("/api/auth/login", {"email": user["email"], "password": NEW})).status == 200
    assert (await api.post("/api/auth/login", {"email": user["email"], "password": PASSWORD})).status == 401


@pytest.mark.timeout(60)
async def test_verify_page_confirms_the_address_in_english(start_server, smtp):
    executable = chromium_path()
    if executable is None:
        pytest.fail("Chromium is required for the page tests: apt-get install chromium (bash .ci/run installs it)")
    _, api = await start_server(smtp_url=smtp.url)
    user = await api.register()
    mail = (await smtp.wait_for(user["email"]))[0]
    async with headless_chromium(executable, f"--host-resolver-rules=MAP {HOST} 127.0.0.1") as page:
        await page.send("Page.enable")
        await page.send("Page.navigate", url=browser_url(link_of(mail), urlsplit(api.base_url).port))
        status = await page.wait_for(
            "document.getElementById('status')?.className === 'ok' && "
            "document.getElementById('status').textContent.includes('confirmed') && "
            "document.getElementById('status').textContent", what="the confirmation")
        assert status == f"Your address {user['email']} is confirmed. You can close this page."
    profile = await api.get("/api/user/profile", token=user["accessToken"])
    assert profile.json["emailVerified"] is True
