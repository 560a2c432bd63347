"""Cleaning of user-supplied strings and of model output before they reach templates, prompts or images."""

from __future__ import annotations

import re
import unicodedata

MAX_DETAILS = 500
MAX_NAME = 60
MAX_OCCASION = 100
MAX_OUTPUT = 1500

# Cc/Cf/Cs/Co/Cn cover control codes, bidi overrides and zero-width tricks, lone surrogates
# (which would make UTF-8 encoding of the HTTP body fail) and unassigned code points.
_DROP_CATEGORIES = {"Cc", "Cf", "Cs", "Co", "Cn"}
_FENCE_RE = re.compile(r"^```[\w-]*\s*\n?(.*?)\n?```$", re.DOTALL)
_QUOTE_PAIRS = {'"': '"', "«": "»", "“": "”", "„": "“", "'": "'"}
_MD_HEADING_RE = re.compile(r"^\s{0,3}#{1,6}\s+", re.MULTILINE)
_MD_EMPHASIS_RE = re.compile(r"(\*\*|__)(.+?)\1", re.DOTALL)


def _strip_invisible(text: str, keep_newlines: bool) -> str:
    out = []
    for ch in text.replace("\r\n", "\n"):
        if ch in "\n\r\t\u2028\u2029":
            out.append("\n" if keep_newlines and ch not in "\t" else " ")
        elif unicodedata.category(ch) not in _DROP_CATEGORIES:
            out.append(ch)
    return "".join(out)


def _balanced(inner: str, opening: str, closing: str) -> bool:
    """True when removing the outer quote pair would not orphan a quote inside the text."""
    if opening == closing:
        return opening not in inner
    depth = 0
    for ch in inner:
        depth += (ch == opening) - (ch == closing)
        if depth < 0:
            return False
    return depth == 0


def truncate(text: str, limit: int) -> str:
    """Cut text to at most `limit` characters, preferring a word boundary and marking the cut with "…"."""
    if len(text) <= limit:
        return text
    if limit <= 1:
        return text[:limit]
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    # Only back off to a word boundary when it does not throw away most of the text.
    if space > limit * 0.6:
        cut = cut[:space]
    return cut.rstrip(" ,;:—-") + "…"


def clean_user_text(value: object, limit: int) -> str:
    """Turn arbitrary user input into a single safe line: no control/invisible chars, collapsed spaces."""
    if value is None:
        return ""
    text = unicodedata.normalize("NFC", _strip_invisible(str(value), keep_newlines=False))
    text = " ".join(text.split())
    return truncate(text, limit)


def clean_name(value: object) -> str:
    """Clean a recipient name; an all-lowercase name gets its first letter capitalised."""
    name = clean_user_text(value, MAX_NAME).strip(" ,.!?;:—-")
    if name and name == name.lower():
        name = name[0].upper() + name[1:]
    return name


def ensure_sentence_end(text: str) -> str:
    """Append a full stop unless the text already ends with sentence punctuation."""
    text = text.rstrip()
    if not text or text[-1] in ".!?…»)\"":
        return text
    return text + "."


def capitalize_first(text: str) -> str:
    """Upper-case only the first character (str.capitalize would lower-case the rest)."""
    return text[:1].upper() + text[1:]


def clean_multiline(value: object, limit: int) -> str:
    """Like clean_user_text but keeps line breaks (at most one blank line in a row)."""
    raw = _strip_invisible(str(value or ""), keep_newlines=True)
    lines = [" ".join(line.split()) for line in raw.split("\n")]
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
    return unicodedata.normalize("NFC", truncate(text, limit))


def normalize_output(text: object, limit: int = MAX_OUTPUT) -> str:
    """Normalise model output to plain text: no fences, wrapping quotes or markdown, bounded length."""
    raw = _strip_invisible(str(text or ""), keep_newlines=True).strip()
    fenced = _FENCE_RE.match(raw)
    if fenced:
        raw = fenced.group(1).strip()
    raw = _MD_HEADING_RE.sub("", raw)
    raw = _MD_EMPHASIS_RE.sub(r"\2", raw)
    # Models often wrap the whole answer in quotes; inner quotes are left alone.
    while len(raw) >= 2 and _QUOTE_PAIRS.get(raw[0]) == raw[-1] and _balanced(raw[1:-1], raw[0], raw[-1]):
        raw = raw[1:-1].strip()
    return clean_multiline(raw, limit)
