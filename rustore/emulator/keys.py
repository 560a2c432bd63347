"""API keys, the `/public/auth/` check (API.md §1) and opaque tokens with a ttl."""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from rustore.emulator.errors import EmulatorError

WINDOW = timedelta(seconds=60)
TOKEN_EXPIRED = "Jwe token is expired"
_FRACTION = re.compile(r"(\.\d{6})\d+")


def load_public_key(value: str | bytes) -> rsa.RSAPublicKey:
    """RSA public key from PEM, Base64 DER (SubjectPublicKeyInfo) or raw DER."""
    data = value.encode() if isinstance(value, str) else value
    try:
        if b"-----BEGIN" in data:
            key = serialization.load_pem_public_key(data)
        else:
            try:
                der = base64.b64decode(b"".join(data.split()), validate=True)
            except (binascii.Error, ValueError):
                der = data
            key = serialization.load_der_public_key(der)
    except ValueError as exc:
        raise ValueError("public key must be RSA in PEM, Base64 DER or DER") from exc
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("public key must be RSA")
    return key


@dataclass
class RegisteredKey:
    """A console API key: which apps it covers (None = all) and whether test methods are allowed."""

    key_id: str
    public_key: rsa.RSAPublicKey
    app_ids: frozenset[int] | None = None
    sandbox: bool = True
    disabled: bool = False

    def covers(self, app_id: int) -> bool:
        """Whether the key may act on this application."""
        return self.app_ids is None or app_id in self.app_ids


@dataclass
class IssuedToken:
    """An opaque token handed out by `/public/auth/`."""

    key_id: str
    expires_at: datetime


class KeyRegistry:
    """Verifies auth requests and tokens the way RuStore documents, with RuStore's messages."""

    def __init__(self, token_ttl_s: int = 900) -> None:
        self.token_ttl_s = token_ttl_s
        self.keys: dict[str, RegisteredKey] = {}
        self.tokens: dict[str, IssuedToken] = {}

    def register(
        self, key_id: str, public_key: str | bytes, app_ids: set[int] | None = None, sandbox: bool = True
    ) -> RegisteredKey:
        """Add or replace a key (like "Обновить" in the console)."""
        key = RegisteredKey(str(key_id), load_public_key(public_key), frozenset(app_ids) if app_ids else None, sandbox)
        self.keys[key.key_id] = key
        return key

    def authenticate(self, body: Any, now: datetime) -> tuple[str, int]:
        """Check an auth body; return (token, ttl) or raise with the documented message."""
        if not isinstance(body, dict):
            raise EmulatorError(400, "Bad request")
        key_id = body.get("keyId")
        if key_id in (None, ""):
            if body.get("companyId") not in (None, ""):
                # companyId auth ended on 2024-07-30 (API.md §1.2).
                raise EmulatorError(400, "Incorrect usage of companyId. Please use keyId")
            raise EmulatorError(400, "KeyId or companyId must be not null")
        key = self.keys.get(str(key_id))
        if key is None:
            raise EmulatorError(404, "Company key not found")
        if key.disabled:
            raise EmulatorError(400, "Company key disabled")
        timestamp = str(body.get("timestamp") or "")
        sent = _parse_timestamp(timestamp)
        if sent is None or abs(now - sent) > WINDOW:
            raise EmulatorError(400, "Range timestamp not valid")
        try:
            signature = base64.b64decode(str(body.get("signature") or ""), validate=True)
            message = (str(key_id) + timestamp).encode("utf-8")
            key.public_key.verify(signature, message, padding.PKCS1v15(), hashes.SHA512())
        except (InvalidSignature, binascii.Error, ValueError):
            raise EmulatorError(400, "Signature encode error") from None
        token = secrets.token_urlsafe(48)
        self.tokens[token] = IssuedToken(key.key_id, now + timedelta(seconds=self.token_ttl_s))
        return token, self.token_ttl_s

    def check_token(self, token: str | None, now: datetime) -> RegisteredKey:
        """The key behind a live token; unknown, expired or disabled-key tokens get RuStore's 401."""
        issued = self.tokens.get(token or "")
        if issued is None or issued.expires_at <= now:
            raise EmulatorError(401, TOKEN_EXPIRED)
        key = self.keys.get(issued.key_id)
        if key is None or key.disabled:
            raise EmulatorError(401, TOKEN_EXPIRED)
        return key

    def expire_all(self) -> int:
        """Forget every issued token; returns how many there were."""
        count = len(self.tokens)
        self.tokens.clear()
        return count


def _parse_timestamp(text: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(_FRACTION.sub(r"\1", text.strip()))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None
