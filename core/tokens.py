"""Access tokens (short-lived) and device tokens (long-lived): HS256 JWTs with the algorithm pinned on decode.

A device token is what the server hands out at a successful sign-in and later takes as proof that
a login comes from a device that already signed in to that account (the exemption from the
per-email failed-login budget). It is signed with a key derived from the same secret, so neither
kind of token can ever be presented as the other.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass

import jwt

ALGORITHM = "HS256"
VERIFIED_CACHE_SIZE = 10_000
REQUIRED_CLAIMS = ("sub", "sid", "iat", "exp", "jti")
DEVICE_CLAIMS = ("sub", "iat", "exp", "jti")


class InvalidToken(Exception):
    """The access token is missing, malformed, forged, expired or for another purpose."""


@dataclass(frozen=True)
class AccessClaims:
    """The verified claims the API relies on."""

    user_id: str
    session_id: str
    jti: str
    issued_at: int
    expires_at: int


class TokenService:
    """Issues and verifies access tokens with one secret."""

    def __init__(self, secret: str, ttl_s: int, issuer: str = "rustore-backend", device_ttl_s: int = 365 * 86400) -> None:
        self._secret = secret
        self.ttl_s = ttl_s
        self.device_ttl_s = device_ttl_s
        self._device_key = hashlib.sha256(b"device-token\x00" + secret.encode()).hexdigest()
        self._issuer = issuer
        # A client sends the same token for many requests: remember tokens that passed the
        # signature check (PyJWT's decode was ~15% of a cheap request), but never past their expiry.
        self._verified: OrderedDict[str, AccessClaims] = OrderedDict()

    def issue(self, user_id: str, session_id: str) -> tuple[str, int]:
        """Return (token, expires_in_seconds) for a user's session."""
        now = int(time.time())
        claims = {
            "sub": user_id,
            "sid": session_id,
            "iat": now,
            "exp": now + self.ttl_s,
            "jti": secrets.token_hex(12),
            "iss": self._issuer,
            "typ": "access",
        }
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM), self.ttl_s

    def verify(self, token: str) -> AccessClaims:
        """Check signature, algorithm, expiry, issuer and required claims."""
        known = self._verified.get(token)
        if known is not None:
            if known.expires_at > time.time():
                self._verified.move_to_end(token)
                return known
            del self._verified[token]
        claims = self._decode(token)
        self._verified[token] = claims
        if len(self._verified) > VERIFIED_CACHE_SIZE:
            self._verified.popitem(last=False)
        return claims

    def _decode(self, token: str) -> AccessClaims:
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                issuer=self._issuer,
                options={"require": list(REQUIRED_CLAIMS)},
            )
        except jwt.PyJWTError as exc:
            raise InvalidToken(type(exc).__name__) from None
        if claims.get("typ") != "access" or not isinstance(claims["sub"], str) or not isinstance(claims["sid"], str):
            raise InvalidToken("wrong token type")
        return AccessClaims(claims["sub"], claims["sid"], str(claims["jti"]), int(claims["iat"]), int(claims["exp"]))

    def issue_device(self, user_id: str, device_id: str | None) -> str:
        """A device token for the account that just signed in (device_id is informative only)."""
        now = int(time.time())
        claims = {"sub": user_id, "did": device_id, "iat": now, "exp": now + self.device_ttl_s,
                  "jti": secrets.token_hex(12), "iss": self._issuer, "typ": "device"}
        return jwt.encode(claims, self._device_key, algorithm=ALGORITHM)

    def device_user(self, token: str | None) -> str | None:
        """The user id a valid device token was issued to; None for a missing, forged or expired one."""
        if not token:
            return None
        try:
            claims = jwt.decode(token, self._device_key, algorithms=[ALGORITHM], issuer=self._issuer,
                                options={"require": list(DEVICE_CLAIMS)})
        except jwt.PyJWTError:
            return None
        if claims.get("typ") != "device" or not isinstance(claims["sub"], str):
            return None
        return claims["sub"]

    def derived_key(self, label: bytes) -> bytes:
        """A key for another purpose (signed image URLs) derived from the token secret, never the secret itself."""
        return hmac.new(self._secret.encode(), label, hashlib.sha256).digest()
