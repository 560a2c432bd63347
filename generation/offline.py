"""Built-in offline provider: composes greetings from phrase catalogues, reproducibly for a given seed."""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Mapping, Sequence

from generation.base import GenerationRequest, GenerationResult, normalize_kind, normalize_language, normalize_tone
from generation.occasions import ResolvedOccasion, resolve_occasion
from generation.sanitize import MAX_DETAILS, capitalize_first, clean_name, clean_user_text, ensure_sentence_end
from generation.texts import LanguageTexts, OccasionTexts, language_texts

MODEL = "templates-v1"
_PLACEHOLDER_RE = re.compile(r"\{(\w+)\}")


def fill(template: str, values: Mapping[str, str]) -> str:
    """Substitute {key} placeholders in one pass; substituted user text is never re-scanned."""
    return _PLACEHOLDER_RE.sub(lambda m: values.get(m.group(1), m.group(0)), template)


def make_rng(request: GenerationRequest) -> random.Random:
    """A seeded RNG when the request has a seed (reproducible), otherwise a fresh random one."""
    if request.seed is None:
        return random.Random()
    material = "\x1f".join(
        str(part) for part in (request.seed, request.kind, request.occasion, request.recipient_name,
                               request.tone, request.language, request.details)
    )
    # hashlib rather than hash(): str hashing is randomised per process, which would break reproducibility.
    return random.Random(int.from_bytes(hashlib.sha256(material.encode("utf-8", "replace")).digest()[:8], "big"))


def _day_name(resolved: ResolvedOccasion, language: str) -> str | None:
    return resolved.day_ru if language == "ru" else resolved.day_en


def _cheer_and_phrase(resolved: ResolvedOccasion, data: OccasionTexts, language: str) -> tuple[str, str]:
    """Prefer the user's own holiday name ("С Днём учителя") over the generic one when we could parse it."""
    day = _day_name(resolved, language)
    if day and language == "ru":
        return "С " + day, "с " + day
    if day:
        return "Happy " + day, "on " + day
    return data.cheer, data.phrase


def _mention_value(text: str) -> str:
    # Lower-casing or capitalising a word like "iPhone" would damage it, so only all-lowercase text is touched.
    first = text.split(" ", 1)[0]
    return capitalize_first(text) if first == first.lower() else text


def pick_title(request: GenerationRequest, rng: random.Random | None = None) -> str:
    """Choose a short postcard title for the request's occasion and language."""
    rng = rng or make_rng(request)
    language = normalize_language(request.language)
    texts = language_texts(language)
    resolved = resolve_occasion(request.occasion)
    data = texts.occasions[resolved.key or "congratulations"]
    if _day_name(resolved, language):
        return _cheer_and_phrase(resolved, data, language)[0] + "!"
    if resolved.key is None:
        return rng.choice(texts.unknown_titles)
    return rng.choice(data.titles)


def _pick_wishes(rng: random.Random, own: Sequence[str], generic: Sequence[str], count: int) -> list[str]:
    """Lead with an occasion-specific wish so the text stays on topic, then add variety from the rest."""
    chosen: list[str] = [rng.choice(own)] if own else []
    rest = [w for w in (*own, *generic) if w not in chosen]
    rng.shuffle(rest)
    while rest and len(chosen) < count:
        # Two wishes that both start with "Желаю Вам …" read like a form letter, so prefer another opening word.
        used = {c.split(" ", 1)[0] for c in chosen}
        pick = next((w for w in rest if w.split(" ", 1)[0] not in used), rest[0])
        rest.remove(pick)
        chosen.append(pick)
    return chosen[:count]


def _pool(table: Mapping[str, Sequence[str]], tone: str) -> Sequence[str]:
    return table.get(tone) or table.get("warm") or ()


def compose(request: GenerationRequest) -> GenerationResult:
    """Write a greeting for the request from the phrase catalogues; never raises on odd input."""
    rng = make_rng(request)
    language = normalize_language(request.language)
    tone = normalize_tone(request.tone)
    kind = normalize_kind(request.kind)
    texts: LanguageTexts = language_texts(language)
    resolved = resolve_occasion(request.occasion)
    data = texts.occasions[resolved.key or "congratulations"]
    name = clean_name(request.recipient_name)
    details = clean_user_text(request.details, MAX_DETAILS)
    cheer, phrase = _cheer_and_phrase(resolved, data, language)
    has_day = _day_name(resolved, language) is not None
    # A parsed holiday name ("Днём матери") reads naturally through the shared "поздравляю с …" openers.
    custom = {} if resolved.key is None and has_day else (data.openers or {})
    # A missing tone falls back to the occasion's own warm openers first: for a wedding the shared
    # singular "ты" openers would be wrong, while the occasion's plural ones still fit.
    named, plain = custom.get(tone) or custom.get("warm") or texts.openers.get(tone) or texts.openers["warm"]
    values = {
        "name": name, "Cheer": cheer, "cheer": cheer[:1].lower() + cheer[1:], "phrase": phrase,
        "occasion": resolved.text, "Occasion": _mention_value(resolved.text),
    }
    opener = fill(rng.choice(named if name else plain), values)

    wish_tone = "warm" if tone == "short" else tone
    count = 1 if tone == "short" or kind == "card" else 2
    generic = _pool(texts.generic_wishes, wish_tone) if data.generic or resolved.key is None else ()
    body = _pick_wishes(rng, _pool(data.wishes, wish_tone), generic, count)
    if resolved.key is None and not has_day:
        body.insert(0, fill(rng.choice(_pool(texts.mentions, tone)), values))
    if details:
        body.append(fill(rng.choice(texts.details_lines), {"details": ensure_sentence_end(details)}))

    lines = [opener, " ".join(body)]
    if tone != "short":
        closings = texts.plural_closings if tone in data.plural_tones else texts.closings
        lines.append(rng.choice(_pool(closings, tone)))
    return GenerationResult(
        text="\n".join(line for line in lines if line),
        title=pick_title(request, rng),
        provider=OfflineProvider.name,
        model=MODEL,
    )


class OfflineProvider:
    """Template-based provider used in development and whenever no AI key is configured."""

    name = "offline"

    async def generate(self, request: GenerationRequest) -> GenerationResult:
        """Compose a greeting locally; this is CPU-light, so it runs inline on the event loop."""
        return compose(request)

    async def close(self) -> None:
        """Nothing to release."""
