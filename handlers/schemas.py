"""Marshmallow building blocks shared by every request and response schema.

Conventions: camelCase on the wire (declared once here, snake_case in Python), unknown fields
rejected, integers strict (1.5 or "3" is not an int; 275.0 is, as in JSON Schema), every string bounded, and no string may
be a MongoDB operator or a dotted path: the NoSQL-injection guard lives in the types.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate

from documents.common import (
    BMP,
    DOLLARS,
    EMAIL_REFUSED,
    LEADING_IGNORED,
    char_class,
    email_problem,
    normalize_email,
    normalize_text,
    text_problem,
)

SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:\-]*$")
# The e-mail format over characters that stay clear of '@', whitespace and invisible ones under NFKC (spelled
# out, since JSON Schema's \s is not Python's); checked on the normalised address, documented as is.
_PART = char_class(EMAIL_REFUSED, negate=True)
EMAIL = re.compile(f"^{_PART}{{1,64}}@{_PART}{{1,255}}\\.{_PART}{{1,63}}$")
# What Text refuses, as a JSON Schema pattern for the document (documents/common/text.py has the rule): a '$' or a
# character NFKC folds to '$' after leading whitespace or invisible characters, or a NUL anywhere.
REFUSED_TEXT = f"^{char_class(LEADING_IGNORED)}*{char_class(DOLLARS)}|\\u0000"
# A required text holds something besides the whitespace str.strip() removes.
NOT_BLANK = char_class(frozenset(c for c in map(chr, BMP) if c.isspace()), negate=True)


def camelcase(name: str) -> str:
    """snake_case -> camelCase."""
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def iso(value: datetime | None) -> str | None:
    """An aware datetime as ISO-8601 UTC with milliseconds and 'Z'."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class CamelSchema(Schema):
    """Base schema: camelCase keys, unknown fields rejected."""

    class Meta:
        unknown = RAISE

    def on_bind_field(self, field_name: str, field_obj: fields.Field) -> None:
        field_obj.data_key = camelcase(field_obj.data_key or field_name)


def present(*names: str) -> dict[str, Any]:
    """A JSON Schema clause: these (camelCase) string fields are given and not null (for oneOf/anyOf bodies)."""
    return {"required": list(names), "properties": {name: {"type": "string"} for name in names}}


class Text(fields.String):
    """A bounded string, NFC-normalised and trimmed; refuses a leading '$' (MongoDB operators) and NUL."""

    NORMALISED = "Leading and trailing whitespace is trimmed before the length is checked; stored in Unicode NFC."

    def __init__(self, *, max_length: int, min_length: int = 0, strip: bool = True, **kwargs: Any) -> None:
        validators = list(kwargs.pop("validate", []) or [])
        validators.append(validate.Length(min=min_length, max=max_length))
        # Documented too, so clients and the fuzzer see the guard (and the fuzzer sends '$' strings to test it).
        metadata = {"not": {"type": "string", "pattern": REFUSED_TEXT}, **(kwargs.pop("metadata", None) or {})}
        if strip:
            note = self.NORMALISED
            metadata["description"] = f"{metadata['description']} {note}" if "description" in metadata else note
            if min_length > 0 and not any(isinstance(v, validate.Regexp) for v in validators):
                metadata.setdefault("pattern", NOT_BLANK)  # all-whitespace would be empty once trimmed
        super().__init__(validate=validators, metadata=metadata, **kwargs)
        self._strip = strip

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = self._normalize(super()._deserialize(value, attr, data, **kwargs))
        problem = text_problem(text)
        if problem:
            raise ValidationError(problem)
        return text

    def _normalize(self, text: str) -> str:
        return normalize_text(text, strip=self._strip)


class Identifier(Text):
    """An id-like token: letters, digits and . _ : - only (no '$', no spaces, no dotted operators)."""

    def __init__(self, *, max_length: int = 128, **kwargs: Any) -> None:
        validators = list(kwargs.pop("validate", []) or [])
        validators.append(validate.Regexp(SAFE_ID, error="Only letters, digits and . _ : - are allowed."))
        super().__init__(max_length=max_length, min_length=1, validate=validators, **kwargs)


class Email(Text):
    """An email address: NFKC, trimmed, lowercased; invisible and bidi control characters refused."""

    NORMALISED = ("Compared and stored NFKC-folded, trimmed and lowercased; invisible and bidirectional control "
                  "characters are refused.")

    def __init__(self, **kwargs: Any) -> None:
        email_format = validate.Regexp(EMAIL, error="Not a valid email address.")
        super().__init__(max_length=254, min_length=3, validate=[email_format], **kwargs)

    def _normalize(self, text: str) -> str:
        return normalize_email(text)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        # Checked before folding too: NFKC keeps these characters today, but the rule must not depend on it.
        problem = email_problem(fields.String._deserialize(self, value, attr, data, **kwargs))
        if problem:
            raise ValidationError(problem)
        text = super()._deserialize(value, attr, data, **kwargs)
        problem = email_problem(text)
        if problem:
            raise ValidationError(problem)
        return text


class Bool(fields.Boolean):
    """A JSON boolean only: 1, "true" or "yes" are refused."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return value


class StrictInteger(fields.Integer):
    """A JSON Schema `integer`: a JSON number with no fraction (so 275.0 is 275); never a string or a boolean."""

    def _validated(self, value: Any) -> int:
        # JSON Schema (and so the OpenAPI document clients are generated from) counts 275.0 as an integer.
        if isinstance(value, float) and value.is_integer() and abs(value) <= 2**53:
            return int(value)
        return super()._validated(value)


def Int(**kwargs: Any) -> fields.Integer:  # noqa: N802 - reads like a field class
    """A strict integer: no fractions, numeric strings or booleans; an integral float like 275.0 is accepted."""
    return StrictInteger(strict=True, **kwargs)


class ErrorSchema(CamelSchema):
    """The shared error shape."""

    error = fields.String(required=True, metadata={"description": "Human-readable message."})
    code = fields.Integer(required=True, metadata={"description": "HTTP status code."})
    reason = fields.String(required=True, metadata={"description": "Stable snake_case reason."})
    details = fields.Dict(metadata={"description": "Optional details, e.g. per-field messages."})
