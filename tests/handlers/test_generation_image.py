"""Postcard image URLs: absolute `imageUrl` (bearer), and `signedImageUrl` that loads with no header until it expires."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlencode, urlsplit

import aiohttp
import pytest
from PIL import Image

from core.settings import SettingsError
from tests.conftest import make_settings
from tests.handlers.test_conventions import assert_error_shape
from tests.handlers.test_generation import generate
from tests.handlers.test_points import funded_user

CARD = {"kind": "card", "occasion": "день учителя", "language": "ru"}


class Clock:
    """A clock the test moves (the server reads it through its context)."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


async def fetch(url: str, headers: dict | None = None) -> tuple[int, bytes, dict]:
    """GET an absolute URL exactly as an image loader would: a fresh client, no cookies, only the given headers."""
    async with aiohttp.ClientSession() as session, session.get(url, headers=headers or {}) as resp:
        return resp.status, await resp.read(), dict(resp.headers)


async def card(service, api) -> tuple[dict, dict]:
    user = await funded_user(service, api, 3)
    resp = await generate(api, user, CARD, "card-1")
    assert resp.status == 200, resp.text
    return user, resp.json


async def test_image_url_is_absolute_and_still_needs_the_bearer_token(start_server):
    service, api = await start_server()
    user, answer = await card(service, api)
    assert answer["imageUrl"] == f"{api.base_url}/api/generation/{answer['generationId']}/image"
    status, _, _ = await fetch(answer["imageUrl"])
    assert status == 401
    status, body, headers = await fetch(answer["imageUrl"], {"Authorization": f"Bearer {user['accessToken']}"})
    assert status == 200 and headers["Content-Type"] == "image/png"
    assert Image.open(io.BytesIO(body)).size == (1200, 800)
    view = (await api.get(f"/api/generation/{answer['generationId']}", token=user["accessToken"])).json
    assert view["imageUrl"] == answer["imageUrl"] and view["signedImageUrl"].startswith(answer["imageUrl"] + "/signed?")


async def test_public_base_url_wins_and_forwarded_headers_count_only_from_trusted_proxies(start_server):
    service, api = await start_server(public_base_url="https://cards.example.com/")
    _, answer = await card(service, api)
    assert answer["imageUrl"].startswith("https://cards.example.com/api/generation/")
    assert answer["signedImageUrl"].startswith("https://cards.example.com/api/generation/")

    service, api = await start_server(trusted_proxies=("127.0.0.1/32",))
    user = await funded_user(service, api, 6)
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "api.example.org", "Idempotency-Key": "fw"}
    resp = await api.post("/api/generation/request", CARD, token=user["accessToken"], headers=forwarded)
    assert resp.json["imageUrl"].startswith("https://api.example.org/api/generation/")

    service, api = await start_server()  # no trusted proxies: the headers are anyone's words
    user = await funded_user(service, api, 3)
    resp = await api.post("/api/generation/request", CARD, token=user["accessToken"], headers=forwarded)
    assert resp.json["imageUrl"].startswith(f"{api.base_url}/api/generation/")


async def test_signed_image_url_loads_without_any_header_until_it_expires(start_server):
    clock = Clock()
    service, api = await start_server(clock=clock, image_url_ttl_s=600)
    user, answer = await card(service, api)
    signed = answer["signedImageUrl"]
    status, body, headers = await fetch(signed)
    assert status == 200 and headers["Content-Type"] == "image/png"
    assert Image.open(io.BytesIO(body)).format == "PNG"
    expires = int(parse_qs(urlsplit(signed).query)["e"][0])
    assert 600 <= expires - clock.now.timestamp() <= 600 + 60
    clock.now += timedelta(seconds=expires - clock.now.timestamp() + 1)
    status, body, _ = await fetch(signed)
    assert status == 403
    assert_error_shape(await api.get(signed.removeprefix(api.base_url)), 403, "image_url_expired")
    # Reading the generation again gives a fresh link that loads.
    fresh = (await api.get(f"/api/generation/{answer['generationId']}", token=user["accessToken"])).json
    assert fresh["signedImageUrl"] != signed and (await fetch(fresh["signedImageUrl"]))[0] == 200


async def test_tampered_signed_urls_are_refused(start_server):
    service, api = await start_server()
    _, answer = await card(service, api)
    other_user, other = await card(service, api)
    parts = urlsplit(answer["signedImageUrl"])
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    base = f"{api.base_url}{parts.path}"

    def url(path: str = base, **changes: str) -> str:
        return f"{path}?{urlencode({**query, **changes})}"

    later = str(int(query["e"]) + 86400)
    other_path = f"{api.base_url}/api/generation/{other['generationId']}/image/signed"
    tampered = [url(e=later), url(u=other_user["userId"]), url(s=query["s"][:-2] + "AA"), url(s=""),
                url(other_path), url(e="abc"), f"{base}"]
    for candidate in tampered:
        resp = await api.get(candidate.removeprefix(api.base_url))
        assert_error_shape(resp, 403, "invalid_image_signature")
    # A valid link of one card never opens another, and the bearer route is unaffected by query strings.
    assert (await fetch(url()))[0] == 200


@pytest.mark.parametrize("ttl", [0, -5, 8 * 86400])
def test_image_url_ttl_outside_one_second_to_a_week_is_refused(ttl):
    with pytest.raises(SettingsError, match="IMAGE_URL_TTL_S"):
        make_settings(image_url_ttl_s=ttl)
