"""Time as the documents store it: aware UTC datetimes, truncated to BSON's millisecond precision."""

from __future__ import annotations

from datetime import UTC, datetime


def utc(value: datetime) -> datetime:
    """Return `value` as an aware UTC datetime (naive values are taken as UTC)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def bson_now(now: datetime | None = None) -> datetime:
    """Return `now` (default: current time) in UTC truncated to BSON's millisecond precision."""
    value = utc(now or datetime.now(UTC))
    # Truncating up front makes a fresh result equal to its later replay.
    return value.replace(microsecond=value.microsecond // 1000 * 1000)
