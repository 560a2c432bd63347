"""Password hashing with bcrypt, always run in the CPU pool so the event loop never blocks."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import bcrypt

MIN_CHARS = 8
MAX_CHARS = 72
BCRYPT_MAX_BYTES = 72  # bcrypt reads at most 72 bytes; longer secrets are pre-hashed (see `_secret`), never truncated


def password_problem(password: str) -> str | None:
    """Return why a new password is unacceptable, or None when it is fine (8 to 72 characters, any Unicode)."""
    if len(password) < MIN_CHARS:
        return f"Password must be at least {MIN_CHARS} characters."
    if len(password) > MAX_CHARS:
        return f"Password must be at most {MAX_CHARS} characters."
    return None


def _secret(password: str) -> bytes:
    """What bcrypt hashes: the UTF-8 bytes, or for longer ones a SHA-256 digest of them (so nothing is cut off).

    Bounds are in characters so the OpenAPI document can state them exactly; 72 characters can be up to 288
    bytes. Passwords of at most 72 bytes (every password set before the bounds were in characters) hash as
    before, so stored hashes stay valid.
    """
    raw = password.encode("utf-8")
    if len(raw) <= BCRYPT_MAX_BYTES:
        return raw
    return base64.b64encode(hashlib.sha256(raw).digest())


class PasswordHasher:
    """Hashes and checks passwords at a fixed bcrypt cost through a bounded CPU pool."""

    def __init__(self, cpu: Any, rounds: int) -> None:
        self._cpu = cpu
        self.rounds = rounds
        self._dummy: bytes | None = None

    async def warm_up(self) -> None:
        """Compute the dummy hash once at start-up so the first unknown-email login is not slower."""
        if self._dummy is None:
            self._dummy = await self._cpu.run(lambda: bcrypt.hashpw(b"dummy-password", bcrypt.gensalt(self.rounds)))

    async def hash(self, password: str) -> str:
        """Return a bcrypt hash of the password."""
        raw = _secret(password)
        hashed = await self._cpu.run(lambda: bcrypt.hashpw(raw, bcrypt.gensalt(self.rounds)))
        return hashed.decode("ascii")

    async def check(self, password: str, hashed: str | None) -> bool:
        """Check a password; with no hash, spend the same time on a dummy so timing reveals nothing."""
        raw = _secret(password)
        if hashed is None:
            await self.warm_up()
            await self._cpu.run(bcrypt.checkpw, raw, self._dummy)
            return False
        return await self._cpu.run(bcrypt.checkpw, raw, hashed.encode("ascii"))
