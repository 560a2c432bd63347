"""Clocks for the emulator: the real one, and a settable one tests and demos can move."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """Anything with `now()` returning an aware UTC datetime."""

    def now(self) -> datetime:
        """Current time, timezone-aware."""
        ...


class SystemClock:
    """Wall-clock time."""

    def now(self) -> datetime:
        """Current UTC time."""
        return datetime.now(UTC)


class FakeClock:
    """Time that only moves when told to; starts at the real current time by default."""

    def __init__(self, start: datetime | None = None) -> None:
        moment = start or datetime.now(UTC)
        if moment.tzinfo is None:
            raise ValueError("FakeClock needs a timezone-aware start")
        # Whole milliseconds keep round trips through epoch-ms fields exact.
        self._now = moment.astimezone(UTC).replace(microsecond=moment.microsecond // 1000 * 1000)

    def now(self) -> datetime:
        """The current fake time."""
        return self._now

    def advance(self, delta: timedelta | float) -> datetime:
        """Move forward by a timedelta or seconds; returns the new time."""
        step = delta if isinstance(delta, timedelta) else timedelta(seconds=delta)
        if step < timedelta(0):
            raise ValueError("time only moves forward")
        self._now += step
        return self._now

    def set(self, moment: datetime) -> datetime:
        """Jump to a later moment; returns it."""
        if moment.tzinfo is None:
            raise ValueError("time must be timezone-aware")
        if moment < self._now:
            raise ValueError("time only moves forward")
        self._now = moment.astimezone(UTC)
        return self._now
