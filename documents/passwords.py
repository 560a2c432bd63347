"""Password hashing with bcrypt, always run in the CPU pool so the event loop never blocks."""

from __future__ import annotations

from typing import Any

import bcrypt

MIN_BYTES = 8
MAX_BYTES = 72  # bcrypt ignores everything after 72 bytes; longer passwords are refused, never truncated


def password_problem(password: str) -> str | None:
    """Return why a password is unacceptable, or None when it is fine."""
    size = len(password.encode("utf-8"))
    if size < MIN_BYTES:
        return f"Password must be at least {MIN_BYTES} bytes."
    if size > MAX_BYTES:
        return f"Password must be at most {MAX_BYTES} bytes in UTF-8 (bcrypt's limit)."
    return None


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
        raw = password.encode("utf-8")
        hashed = await self._cpu.run(lambda: bcrypt.hashpw(raw, bcrypt.gensalt(self.rounds)))
        return hashed.decode("ascii")

    async def check(self, password: str, hashed: str | None) -> bool:
        """Check a password; with no hash, spend the same time on a dummy so timing reveals nothing."""
        raw = password.encode("utf-8")[:MAX_BYTES]
        if hashed is None:
            await self.warm_up()
            await self._cpu.run(bcrypt.checkpw, raw, self._dummy)
            return False
        return await self._cpu.run(bcrypt.checkpw, raw, hashed.encode("ascii"))
