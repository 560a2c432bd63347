"""RuStore auth-request signing (API.md §1.3): SHA512withRSA over `keyId + timestamp`."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from rustore.errors import RuStoreConfigError


def load_private_key(private_key_b64: str | None = None, private_key_file: str | None = None) -> rsa.RSAPrivateKey:
    """Parse the console's Base64 PKCS#8 DER text, or a PEM (or Base64 DER) file, into an RSA key."""
    if private_key_b64:
        key = _parse_key_text(private_key_b64.encode("ascii", "replace"), "RUSTORE_PRIVATE_KEY")
    elif private_key_file:
        try:
            data = Path(private_key_file).read_bytes()
        except OSError as exc:
            raise RuStoreConfigError(f"cannot read RUSTORE_PRIVATE_KEY_FILE: {exc.strerror}") from None
        key = _parse_key_text(data, "RUSTORE_PRIVATE_KEY_FILE")
    else:
        raise RuStoreConfigError("no private key configured")
    if not isinstance(key, rsa.RSAPrivateKey):
        raise RuStoreConfigError("the RuStore private key must be an RSA key")
    return key


def _parse_key_text(data: bytes, source: str) -> object:
    # Error messages deliberately never echo the key material.
    try:
        if b"-----BEGIN" in data:
            return serialization.load_pem_private_key(data, password=None)
        der = base64.b64decode(b"".join(data.split()), validate=True)
        return serialization.load_der_private_key(der, password=None)
    except (ValueError, TypeError, binascii.Error):
        raise RuStoreConfigError(
            f"{source} is not an unencrypted RSA private key (expected Base64 PKCS#8 DER or PEM)"
        ) from None


def format_timestamp(moment: datetime) -> str:
    """ISO-8601 with milliseconds and an explicit `+00:00` offset, the documented safe form."""
    if moment.tzinfo is None:
        raise ValueError("auth timestamp must be timezone-aware")
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


def sign_message(private_key: rsa.RSAPrivateKey, message: str) -> str:
    """Standard Base64 of the RSASSA-PKCS1-v1_5 / SHA-512 signature of the UTF-8 message."""
    signature = private_key.sign(message.encode("utf-8"), padding.PKCS1v15(), hashes.SHA512())
    return base64.b64encode(signature).decode("ascii")


@dataclass(frozen=True)
class AuthSigner:
    """Holds the parsed key once and produces `/public/auth/` bodies."""

    key_id: str
    private_key: rsa.RSAPrivateKey = field(repr=False)

    def auth_body(self, now: datetime) -> dict[str, str]:
        """Body for POST /public/auth/: the signed string is exactly `keyId + timestamp`."""
        timestamp = format_timestamp(now)
        return {
            "keyId": self.key_id,
            "timestamp": timestamp,
            "signature": sign_message(self.private_key, self.key_id + timestamp),
        }


@dataclass(frozen=True)
class KeyPair:
    """A generated RSA key pair in the formats the console hands out and the emulator registers."""

    private_key_b64: str = field(repr=False)
    public_key_pem: str

    @property
    def public_key_der_b64(self) -> str:
        """Base64 DER SubjectPublicKeyInfo, an alternative format the emulator also accepts."""
        der = serialization.load_pem_public_key(self.public_key_pem.encode()).public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return base64.b64encode(der).decode("ascii")


def generate_key_pair(key_size: int = 2048) -> KeyPair:
    """Make a fresh key pair: private as console-style Base64 PKCS#8 DER, public as PEM."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=key_size)
    private_der = key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return KeyPair(base64.b64encode(private_der).decode("ascii"), public_pem.decode("ascii"))
