"""Fake Google JWKS server and shared plumbing: real HTTP on 127.0.0.1 inside the test's loop, token helpers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import jwt
import tornado.httpserver
import tornado.netutil
import tornado.web
from cryptography.hazmat.primitives.asymmetric import rsa

GOOGLE_CLIENT = "123-web.apps.googleusercontent.com"


@cache
def rsa_key(name: str) -> rsa.RSAPrivateKey:
    """A 2048-bit RSA key per name, generated once per test session."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_jwk(kid: str) -> dict:
    """The public JWK of `rsa_key(kid)` as Google publishes it."""
    jwk = jwt.algorithms.RSAAlgorithm.to_jwk(rsa_key(kid).public_key(), as_dict=True)
    return {**jwk, "kid": kid, "alg": "RS256", "use": "sig"}


class Served:
    """A Tornado app on an ephemeral loopback port; `release` frees handlers parked in 'slow' mode."""

    def __init__(self) -> None:
        self.port = 0
        self.release = asyncio.Event()
        self.inflight = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class FakeGoogle(Served):
    """Serves /oauth2/v3/certs; tests choose which kids are published, the max-age and the failure mode."""

    kids: list[str] = field(default_factory=lambda: ["k1"])
    max_age: int | None = 3600
    mode: str = "ok"  # ok | 500 | html | slow
    fetches: int = 0

    def __post_init__(self) -> None:
        Served.__init__(self)

    @property
    def jwks_url(self) -> str:
        return f"{self.base_url}/oauth2/v3/certs"

    def id_token(self, kid: str = "k1", *, key: Any = None, alg: str = "RS256", **claims: Any) -> str:
        """A Google-shaped ID token signed with `rsa_key(kid)` (or `key`); claim=None drops a claim."""
        now = int(time.time())
        payload = {"iss": "https://accounts.google.com", "aud": GOOGLE_CLIENT, "azp": "123-android",
                   "sub": "110169484474386276334", "email": "ann@gmail.com", "email_verified": True,
                   "iat": now, "exp": now + 3600, **claims}
        payload = {k: v for k, v in payload.items() if v is not None}
        signing_key = key if key is not None else (rsa_key(kid) if alg.startswith("RS") else None)
        return jwt.encode(payload, signing_key, algorithm=alg, headers={"kid": kid})


class _CertsHandler(tornado.web.RequestHandler):
    def initialize(self, fake: FakeGoogle) -> None:
        self.fake = fake

    async def get(self) -> None:
        fake = self.fake
        fake.fetches += 1
        if fake.mode == "slow":
            fake.inflight += 1
            try:
                await fake.release.wait()
            finally:
                fake.inflight -= 1
            return
        if fake.mode == "500":
            self.set_status(500)
            self.finish("oops")
            return
        if fake.mode == "html":
            self.finish("<html>maintenance</html>")
            return
        if fake.max_age is not None:
            self.set_header("Cache-Control", f"public, max-age={fake.max_age}, must-revalidate, no-transform")
        self.finish({"keys": [public_jwk(kid) for kid in fake.kids]})


@asynccontextmanager
async def serve(fake: Served, routes: list) -> AsyncIterator[Any]:
    sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
    server = tornado.httpserver.HTTPServer(tornado.web.Application(routes))
    server.add_sockets(sockets)
    fake.port = sockets[0].getsockname()[1]
    try:
        yield fake
    finally:
        fake.release.set()
        for _ in range(200):  # parked 'slow' handlers must finish before the loop closes
            if not fake.inflight:
                break
            await asyncio.sleep(0.01)
        server.stop()
        await server.close_all_connections()


@asynccontextmanager
async def running_google() -> AsyncIterator[FakeGoogle]:
    """A fake Google JWKS endpoint for the duration of the block."""
    fake = FakeGoogle()
    async with serve(fake, [(r"/oauth2/v3/certs", _CertsHandler, {"fake": fake})]) as served:
        yield served


def closed_port_url() -> str:
    """A loopback URL nothing listens on (connection refused)."""
    sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
    port = sockets[0].getsockname()[1]
    for sock in sockets:
        sock.close()
    return f"http://127.0.0.1:{port}"

