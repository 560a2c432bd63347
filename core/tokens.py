"""Access tokens: short-lived HS256 JWTs with the algorithm pinned on decode."""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass

import jwt

ALGORITHM = "HS256"
VERIFIED_CACHE_SIZE = 10_000
REQUIRED_CLAIMS = ("sub", "sid", "iat", "exp", "jti")


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

    def __init__(self, secret: str, ttl_s: int, issuer: str = "rustore-backend") -> None:
        self._secret = secret
        self.ttl_s = ttl_s
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
