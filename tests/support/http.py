"""A small JSON HTTP client for tests that talk to the real app over a socket."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

import aiohttp


@dataclass
class Response:
    """What a test inspects: status, parsed JSON (or None), headers and raw text."""

    status: int
    json: Any
    headers: Any
    text: str = field(repr=False)

    def error_reason(self) -> str | None:
        """The `reason` of an error body, if any."""
        return self.json.get("reason") if isinstance(self.json, dict) else None


class ApiClient:
    """Sends requests to one server; `token=` adds a Bearer header."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.session = aiohttp.ClientSession(auto_decompress=True)

    async def close(self) -> None:
        await self.session.close()

    async def request(
        self, method: str, path: str, *, json_body: Any = None, data: bytes | str | None = None,
        token: str | None = None, headers: dict[str, str] | None = None, params: Any = None,
    ) -> Response:
        hdrs = dict(headers or {})
        if token:
            hdrs["Authorization"] = f"Bearer {token}"
        body = data
        if json_body is not None:
            body = json.dumps(json_body)
        if body is not None:
            hdrs.setdefault("Content-Type", "application/json")
        async with self.session.request(method, self.base_url + path, data=body, headers=hdrs, params=params,
                                        allow_redirects=False) as resp:
            text = await resp.text()
            try:
                parsed = json.loads(text) if text else None
            except ValueError:
                parsed = None
            return Response(resp.status, parsed, resp.headers, text)

    async def get(self, path: str, **kw: Any) -> Response:
        return await self.request("GET", path, **kw)

    async def post(self, path: str, json: Any = None, **kw: Any) -> Response:
        return await self.request("POST", path, json_body=json, **kw)

    async def patch(self, path: str, json: Any = None, **kw: Any) -> Response:
        return await self.request("PATCH", path, json_body=json, **kw)

    async def delete(self, path: str, **kw: Any) -> Response:
        return await self.request("DELETE", path, **kw)

    async def register(self, email: str | None = None, password: str = "correct horse 1", **extra: Any) -> dict:
        """Create an account and return the token pair plus the email and password used."""
        email = email or f"user-{uuid.uuid4().hex[:10]}@example.com"
        resp = await self.post("/api/auth/register", {"email": email, "password": password, **extra})
        assert resp.status == 201, resp.text
        return {**resp.json, "email": email, "password": password}
