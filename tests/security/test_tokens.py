"""Forged, confused, expired and orphaned access tokens get 401; refresh-token reuse ends the whole session at once."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import jwt
from bson import ObjectId
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.handlers.test_conventions import assert_error_shape

SECRET = "security-tests-secret-" + "s" * 48  # 64+ bytes: PyJWT warns below that for HS512
PROFILE = "/api/user/profile"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims_of(token: str) -> dict:
    """The claims of one of our tokens, read without checking (to forge look-alikes)."""
    return jwt.decode(token, options={"verify_signature": False})


def unsigned(header: dict, claims: dict, key: bytes | None = None) -> str:
    """A JWT assembled by hand, HMAC-SHA256-signed with `key` (any bytes, even a PEM) or unsigned."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    signature = b64(hmac.new(key, signing_input.encode(), hashlib.sha256).digest()) if key is not None else ""
    return f"{signing_input}.{signature}"


async def test_forged_and_confused_tokens_are_invalid_token(start_server):
    _, api = await start_server(jwt_secret=SECRET)
    user = await api.register()
    claims = claims_of(user["accessToken"])
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = private.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    now = int(time.time())
    forged = {
        "alg none": unsigned({"alg": "none", "typ": "JWT"}, claims),
        "alg None, signature kept": unsigned({"alg": "None"}, claims) + user["accessToken"].rsplit(".", 1)[1],
        "HS256 keyed with an RSA public key": unsigned({"alg": "HS256", "typ": "JWT"}, claims, public_pem),
        "RS256 signed with a private key": jwt.encode(claims, private, algorithm="RS256"),
        "HS512 with the right secret": jwt.encode(claims, SECRET, algorithm="HS512"),
        "wrong secret": jwt.encode(claims, "another-secret-" + "x" * 50, algorithm="HS256"),
        "expired": jwt.encode({**claims, "iat": now - 3600, "exp": now - 1}, SECRET, algorithm="HS256"),
        "not yet valid": jwt.encode({**claims, "nbf": now + 3600}, SECRET, algorithm="HS256"),
        "another issuer": jwt.encode({**claims, "iss": "someone-else"}, SECRET, algorithm="HS256"),
        "not an access token": jwt.encode({**claims, "typ": "refresh"}, SECRET, algorithm="HS256"),
        "no session claim": jwt.encode({k: v for k, v in claims.items() if k != "sid"}, SECRET, algorithm="HS256"),
        "non-string subject": jwt.encode({**claims, "sub": {"$ne": None}}, SECRET, algorithm="HS256"),
        "garbage": "not.a.jwt",
    }
    for what, token in forged.items():
        resp = await api.get(PROFILE, token=token)
        assert_error_shape(resp, 401, "invalid_token")
        assert resp.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"', what
    # The real token still works, and a correctly signed copy of it too: the checks above are not over-eager.
    assert (await api.get(PROFILE, token=user["accessToken"])).status == 200
    assert (await api.get(PROFILE, token=jwt.encode(claims, SECRET, algorithm="HS256"))).status == 200


async def test_a_validly_signed_token_for_someone_elses_session_is_session_ended(start_server):
    _, api = await start_server(jwt_secret=SECRET)
    alice, bob = await api.register(), await api.register()
    # Alice's user id with Bob's session: the session exists but is not hers.
    mixed = jwt.encode({**claims_of(bob["accessToken"]), "sub": alice["userId"]}, SECRET, algorithm="HS256")
    assert_error_shape(await api.get(PROFILE, token=mixed), 401, "session_ended")
    invented = jwt.encode({**claims_of(alice["accessToken"]), "sid": "s_invented"}, SECRET, algorithm="HS256")
    assert_error_shape(await api.get(PROFILE, token=invented), 401, "session_ended")


async def test_tokens_of_a_deleted_user_are_refused(start_server, redis_client):
    service, api = await start_server(jwt_secret=SECRET)
    fresh, cached = await api.register(), await api.register()
    assert (await api.get(PROFILE, token=cached["accessToken"])).status == 200  # its session is now cached in Redis
    for user in (fresh, cached):
        await service.ctx.db["users"].delete_one({"_id": ObjectId(user["userId"])})
    assert_error_shape(await api.get(PROFILE, token=fresh["accessToken"]), 401, "session_ended")
    # A cached "active" answer outlives the user by at most SESSION_CACHE_TTL_S, and serves none of its data...
    assert_error_shape(await api.get(PROFILE, token=cached["accessToken"]), 404, "user_not_found")
    # ...and once that entry is gone (expired), the session check sees the user is gone.
    sid = claims_of(cached["accessToken"])["sid"]
    await redis_client.delete(service.ctx.key("sess", sid))
    assert_error_shape(await api.get(PROFILE, token=cached["accessToken"]), 401, "session_ended")


async def test_ended_sessions_refuse_their_tokens_at_once(start_server):
    _, api = await start_server(jwt_secret=SECRET)
    user = await api.register()
    second = (await api.post("/api/auth/login", {"email": user["email"], "password": user["password"]})).json
    for token in (user["accessToken"], second["accessToken"]):
        assert (await api.get(PROFILE, token=token)).status == 200  # cached as active
    sid = claims_of(second["accessToken"])["sid"]
    assert (await api.delete(f"/api/auth/sessions/{sid}", token=user["accessToken"])).status == 204
    assert_error_shape(await api.get(PROFILE, token=second["accessToken"]), 401, "session_ended")
    assert (await api.post("/api/auth/logout", {}, token=user["accessToken"])).status == 204
    assert_error_shape(await api.get(PROFILE, token=user["accessToken"]), 401, "session_ended")


async def test_refresh_token_reuse_ends_every_access_token_of_the_session_at_once(start_server):
    """End to end (tests/handlers/test_auth.py covers the rotation rules): reuse kills the family, not the user."""
    _, api = await start_server(jwt_secret=SECRET, refresh_reuse_grace_s=0)
    user = await api.register()
    other_device = (await api.post("/api/auth/login", {"email": user["email"], "password": user["password"]})).json
    pairs = [user]
    for _ in range(2):
        resp = await api.post("/api/auth/refresh", {"refreshToken": pairs[-1]["refreshToken"]})
        assert resp.status == 200, resp.text
        pairs.append(resp.json)
    for pair in pairs:  # every access token of the family is valid and cached as active
        assert (await api.get(PROFILE, token=pair["accessToken"])).status == 200
    stolen = await api.post("/api/auth/refresh", {"refreshToken": pairs[0]["refreshToken"]})
    assert_error_shape(stolen, 401, "refresh_token_reused")
    for pair in pairs:
        assert_error_shape(await api.get(PROFILE, token=pair["accessToken"]), 401, "session_ended")
    assert_error_shape(await api.post("/api/auth/refresh", {"refreshToken": pairs[-1]["refreshToken"]}),
                       401, "invalid_refresh_token")
    # The user's other session is another family: it keeps working.
    assert (await api.get(PROFILE, token=other_device["accessToken"])).status == 200
    assert (await api.post("/api/auth/refresh", {"refreshToken": other_device["refreshToken"]})).status == 200
