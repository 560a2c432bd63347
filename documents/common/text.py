"""Rules for text people type: Unicode normalisation, invisible characters, and the MongoDB '$'/NUL guard.

One home for these rules; the request schema types (handlers/schemas.py) apply them and state them in the
OpenAPI document from the same character sets, so the document and the validators cannot drift apart.

* Names and free text are stored in NFC (one spelling of "é"), after trimming.
* E-mail addresses are NFKC-folded, trimmed and lowercased (fullwidth "ｎａｍｅ" is "name") and refuse
  invisible and bidirectional control characters, so one visible address is one account.
* The '$' and NUL rules look through what a reader cannot see: a value may not start with '$' (or a
  character NFKC folds to '$', like fullwidth '＄') after any leading whitespace or invisible characters.
"""

from __future__ import annotations

import unicodedata

BMP = range(0x10000)
# Fillers and selectors that render as nothing but are letters or marks, not format characters.
_BLANK = {"\u034f", "\u115f", "\u1160", "\u17b4", "\u17b5", "\u2800", "\u3164", "\uffa0",
          *map(chr, range(0x180b, 0x1810)), *map(chr, range(0xfe00, 0xfe10))}


def _invisible(char: str) -> bool:
    # Cc controls, Cf format characters (zero-width, bidi embeddings/isolates/marks, BOM, soft hyphen),
    # Zl/Zp separators. (Lone surrogates are refused as text that cannot be encoded, see is_encodable.)
    return unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp") or char in _BLANK


INVISIBLE = frozenset(c for c in map(chr, BMP) if _invisible(c))
# What is skipped before the '$' rule looks at the first character.
LEADING_IGNORED = frozenset(c for c in map(chr, BMP) if c.isspace() or c in INVISIBLE)
_LEADING = "".join(sorted(LEADING_IGNORED))
DOLLARS = frozenset(c for c in map(chr, BMP) if unicodedata.normalize("NFKC", c).startswith("$"))
# Characters an e-mail part may hold: none that is, or NFKC-folds into, '@', whitespace or an invisible one.
_EMAIL_BAD = frozenset({"@"}) | LEADING_IGNORED
EMAIL_REFUSED = frozenset(c for c in map(chr, BMP)
                          if c in _EMAIL_BAD or any(f in _EMAIL_BAD for f in unicodedata.normalize("NFKC", c)))


def char_class(chars: frozenset[str], *, negate: bool = False) -> str:
    """A regex character class (Python and ECMA-262 alike) of BMP characters, as compact \\u ranges."""
    codes = sorted(ord(c) for c in chars)
    parts: list[str] = []
    start = prev = None
    for code in [*codes, None]:
        if start is not None and (code is None or code != prev + 1):
            parts.append(f"\\u{start:04x}" if start == prev else f"\\u{start:04x}-\\u{prev:04x}")
            start = None
        if code is not None and start is None:
            start = code
        prev = code
    return "[" + ("^" if negate else "") + "".join(parts) + "]"


def is_encodable(text: str) -> bool:
    """Whether the text can be stored at all (UTF-8 has no lone surrogates)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def normalize_text(text: str, *, strip: bool = True) -> str:
    """A name or free text as stored: NFC, trimmed unless `strip` is False."""
    text = unicodedata.normalize("NFC", text)
    return text.strip() if strip else text


def text_problem(text: str) -> str | None:
    """Why a (normalised) text may not be stored, or None."""
    if not is_encodable(text):
        return "Must be valid Unicode text."
    if "\x00" in text:
        return "Must not contain NUL characters."
    visible = text.lstrip(_LEADING)
    if visible[:1] == "$" or visible[:1] in DOLLARS:
        return "Must not start with '$'."
    return None


def normalize_email(email: str) -> str:
    """An e-mail address as stored and looked up: NFKC, trimmed, lowercased."""
    return unicodedata.normalize("NFKC", email).strip().lower()


def email_problem(email: str) -> str | None:
    """Why a (normalised) e-mail address is refused beyond its format, or None."""
    # BMP only, like the document's pattern (JSON Schema regexes cannot name astral characters portably).
    if any(c in INVISIBLE for c in email):
        return "Must not contain invisible or bidirectional control characters."
    return None
