"""Strict JSON for untrusted bodies: UTF-8 only, bounded nesting, no duplicate keys, text that can be stored.

One parser for every body the service reads from outside (API requests, the RuStore webhook envelope and
its plaintext), so a hostile body fails the same way everywhere, before any handler logic runs:

* bytes must be UTF-8 without a byte-order mark (a BOM is not JSON, RFC 8259 §8.1);
* arrays and objects nest at most MAX_DEPTH levels (the stdlib parser recurses: ~1,000 levels is a
  RecursionError);
* an object may not repeat a key (parsers disagree on which copy wins; refusing means none does);
* every string, keys included, must be encodable as UTF-8: a lone surrogate (`"\\ud800"`) is valid JSON
  but can be neither hashed, stored in BSON nor written to a log; a paired one is one character and fine;
* numbers must be finite (`1e999` is not turned into infinity) and integers at most 4,300 digits
  (Python's own limit).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

MAX_DEPTH = 32
# Strings (with their escapes) are cut out before counting brackets, so "[[[" inside a string is not nesting.
# An unterminated string runs to the end of the text (possessively): otherwise every later quote would start a new
# scan to the end, which is quadratic on a body of escaped quotes.
_STRING = re.compile(r'"(?:[^"\\]|\\.)*+(?:"|\\?\Z)', re.DOTALL)
_BRACKETS = re.compile(r"[\[\]{}]")


class StrictJSONError(ValueError):
    """The body is not JSON this service accepts; the message says why (safe to show the client)."""


def loads(raw: bytes | str, *, max_depth: int = MAX_DEPTH) -> Any:
    """Parse untrusted JSON under the rules above; StrictJSONError otherwise."""
    if isinstance(raw, bytes):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise StrictJSONError("The body is not UTF-8.") from None
    else:
        text = raw
    if text.startswith("\ufeff"):
        raise StrictJSONError("The body starts with a byte-order mark.")
    if nesting_depth(text) > max_depth:
        raise StrictJSONError(f"The body nests deeper than {max_depth} levels.")
    try:
        value = json.loads(text, object_pairs_hook=_object, parse_constant=_constant, parse_float=_float)
    except StrictJSONError:
        raise
    except (ValueError, RecursionError):
        raise StrictJSONError("The body is not valid JSON.") from None
    _check_text(value)
    return value


def nesting_depth(text: str) -> int:
    """The deepest array/object nesting of a JSON text (an upper bound if the text is malformed)."""
    depth = deepest = 0
    for bracket in _BRACKETS.findall(_STRING.sub("", text)):
        if bracket in "[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth = max(depth - 1, 0)
    return deepest


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise StrictJSONError("The body repeats a key in one object.")
        result[key] = value
    return result


def _constant(name: str) -> Any:
    raise StrictJSONError(f"{name} is not valid JSON.")


def _float(literal: str) -> float:
    value = float(literal)
    if not math.isfinite(value):
        raise StrictJSONError("A number is too large.")
    return value


def _check_text(value: Any) -> None:
    # Depth is already bounded by MAX_DEPTH, so recursion here is shallow.
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise StrictJSONError("The body holds text that is not valid Unicode (a lone surrogate).") from None
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_text(key)
            _check_text(item)
    elif isinstance(value, list):
        for item in value:
            _check_text(item)
