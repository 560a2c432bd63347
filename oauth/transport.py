"""One lazily created aiohttp session shared by every provider, with bounded JSON requests."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import aiohttp

from oauth.errors import ProviderUnavailable

MAX_RESPONSE_BYTES = 256 * 1024  # JWKS and user info answers are a few kB; anything larger is not theirs


@dataclass(frozen=True)
class JsonResponse:
    """A provider's answer: HTTP status, headers and the parsed JSON body (None if it was not JSON)."""

    status: int
    headers: Any
    body: Any


class HttpClient:
    """Sends provider requests over one session created on first use (inside the running loop)."""

    def __init__(self, timeout_s: float) -> None:
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout, raise_for_status=False)
        return self._session

    async def request(self, method: str, url: str, *, form: dict[str, str] | None = None) -> JsonResponse:
        """Send one request; network errors, timeouts and oversized bodies become ProviderUnavailable."""
        try:
            async with self._get_session().request(method, url, data=form, allow_redirects=False) as resp:
                raw = await resp.content.read(MAX_RESPONSE_BYTES + 1)
                if len(raw) > MAX_RESPONSE_BYTES:
                    raise ProviderUnavailable(f"{url} answered more than {MAX_RESPONSE_BYTES} bytes")
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = None
                return JsonResponse(resp.status, resp.headers, body)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ProviderUnavailable(f"{url}: {type(exc).__name__}: {exc}") from None

    async def close(self) -> None:
        """Close the session if one was opened."""
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None
