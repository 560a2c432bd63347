"""Tolerant converters for the many time, money and id spellings RuStore uses (API.md §9)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

# RuStore is a Moscow service; date-only and offset-less values are read as Moscow time.
# UNCONFIRMED: no page states the zone of such values (API.md §2.5, §3.2).
MOSCOW = timezone(timedelta(hours=3), "MSK")
_DIGITS = re.compile(r"^-?\d+$")
# Python parses up to 6 fraction digits; RuStore sends up to 9.
_LONG_FRACTION = re.compile(r"(\.\d{6})\d+")


def parse_time(value: Any) -> datetime | None:
    """Aware UTC datetime from ISO-8601 (any offset spelling, up to 9 fraction digits), epoch ms or a date."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=MOSCOW)
        return moment.astimezone(UTC)
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return _from_epoch(float(value))
    if not isinstance(value, str):
        return None
    text = value.strip()
    if _DIGITS.match(text):
        return _from_epoch(float(text))
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            return datetime(day.year, day.month, day.day, tzinfo=MOSCOW).astimezone(UTC)
        moment = datetime.fromisoformat(_LONG_FRACTION.sub(r"\1", text))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=MOSCOW)
    return moment.astimezone(UTC)


def _from_epoch(number: float) -> datetime | None:
    # RuStore's epoch values are milliseconds; anything this small can only be seconds.
    seconds = number / 1000 if abs(number) >= 1e11 else number
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        return None


def to_int(value: Any) -> int | None:
    """Integer from an int or a digit string; None for anything else (booleans included)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and _DIGITS.match(value.strip()):
        return int(value.strip())
    return None


def to_kopecks(value: Any) -> int | None:
    """Kopecks from an integer amount already in kopecks (RuStore's unit for invoices)."""
    if isinstance(value, str):
        try:
            number = Decimal(value.strip())
        except InvalidOperation:
            return None
        return int(number) if number == number.to_integral_value() else None
    return to_int(value)


def micros_to_kopecks(value: Any) -> int | None:
    """Kopecks from `priceAmountMicros` (1 RUB = 1 000 000 micros = 100 kopecks), rounded half up."""
    if value is None or isinstance(value, bool):
        return None
    try:
        micros = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    return int((micros / Decimal(10_000)).quantize(Decimal(1), rounding="ROUND_HALF_UP"))


def to_bool(value: Any) -> bool | None:
    """Boolean from JSON booleans, 0/1 or "true"/"false"; None when absent or unreadable."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0"):
        return value.strip().lower() in ("true", "1")
    return None


def to_str(value: Any) -> str | None:
    """String id from a string or number (invoice ids are typed both ways); None when empty."""
    if value is None or isinstance(value, bool | dict | list):
        return None
    text = str(value).strip()
    return text or None


def pick(data: Any, *paths: str) -> Any:
    """First non-null value found along dotted paths; `a.0.b` indexes into lists."""
    for path in paths:
        node = data
        for part in path.split("."):
            if isinstance(node, dict):
                node = node.get(part)
            elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            else:
                node = None
            if node is None:
                break
        if node is not None:
            return node
    return None
