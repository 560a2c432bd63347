"""Postcard image URLs: absolute, and a signed variant an image loader fetches without any header until it expires.

`imageUrl` (`<base>/api/generation/<id>/image`) still needs the owner's bearer token. `signedImageUrl`
(`<base>/api/generation/<id>/image/signed?u=<user>&e=<expiry>&s=<signature>`) needs none: the
signature is HMAC-SHA256 over "<generation id>:<user id>:<expiry>" with a key derived from
JWT_SECRET (`TokenService.derived_key`: never JWT_SECRET itself), compared in
constant time. Expiry is a Unix time at least IMAGE_URL_TTL_S ahead, rounded up to a step (a tenth
of the TTL, at most 5 minutes) so repeated reads within a step answer the same URL (loader caches work).

The base is PUBLIC_BASE_URL, else PUBLIC_URL, else the request's own origin (scheme from a trusted
proxy's X-Forwarded-Proto, host from its X-Forwarded-Host, else the Host header).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from tornado.httputil import HTTPServerRequest

from handlers.netinfo import Network, is_trusted_peer, request_scheme

KEY_LABEL = b"postcard-image-url:v1"
HOST = re.compile(r"^[A-Za-z0-9.\-:\[\]]{1,255}$")
MAX_STEP_S = 300


def signature(key: bytes, generation_id: str, user_id: str, expires: int) -> str:
    """The URL-safe signature over a generation, its owner and the expiry."""
    mac = hmac.new(key, f"{generation_id}:{user_id}:{expires}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


def expiry(now_s: float, ttl_s: int) -> int:
    """An expiry at least `ttl_s` ahead, rounded up to a step so URLs stay stable for a while."""
    step = max(1, min(MAX_STEP_S, ttl_s // 10))
    return (int(now_s) // step + 1) * step + ttl_s


def check(key: bytes, generation_id: str, user_id: str, expires: str, given: str, now_s: float) -> str | None:
    """None if the signed URL is valid now, else why not: "invalid" (tampered or malformed) or "expired"."""
    if not expires.isascii() or not expires.isdigit() or len(expires) > 12:
        return "invalid"
    expected = signature(key, generation_id, user_id, int(expires))
    if not hmac.compare_digest(expected.encode(), given.encode("utf-8", "replace")):
        return "invalid"
    return "expired" if int(expires) <= now_s else None


def request_origin(request: HTTPServerRequest, networks: tuple[Network, ...]) -> str:
    """This server as the caller reached it, believing forwarded headers only from trusted proxies."""
    host = request.host
    if is_trusted_peer(request, networks):
        forwarded = request.headers.get("X-Forwarded-Host", "").split(",")[0].strip()
        if forwarded and HOST.match(forwarded):
            host = forwarded
    return f"{request_scheme(request, networks)}://{host}"


@dataclass(frozen=True)
class ImageLinks:
    """Builds a generation's image URLs for one request."""

    base: str
    key: bytes
    ttl_s: int
    now_s: float

    def plain(self, generation_id: str) -> str:
        """The absolute URL that needs the owner's bearer token."""
        return f"{self.base}/api/generation/{generation_id}/image"

    def signed(self, generation_id: str, user_id: str) -> str:
        """The absolute URL that loads without a header until it expires."""
        expires = expiry(self.now_s, self.ttl_s)
        query = urlencode({"u": user_id, "e": expires, "s": signature(self.key, generation_id, user_id, expires)})
        return f"{self.base}/api/generation/{generation_id}/image/signed?{query}"


def links_for(handler: Any) -> ImageLinks:
    """The image URL builder for this request (PUBLIC_BASE_URL, else PUBLIC_URL, else the request's origin)."""
    settings = handler.ctx.settings
    base = settings.mail_base_url or request_origin(handler.request, settings.trusted_networks)
    return ImageLinks(base=base.rstrip("/"), key=handler.ctx.tokens.derived_key(KEY_LABEL),
                      ttl_s=settings.image_url_ttl_s, now_s=handler.ctx.now().timestamp())
