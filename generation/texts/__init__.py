"""Phrase catalogues for the offline provider: per-language shared phrases plus per-occasion texts."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

# tone -> (openers used when a recipient name is known, openers used without a name)
Openers = Mapping[str, tuple[tuple[str, ...], tuple[str, ...]]]


@dataclass(frozen=True)
class OccasionTexts:
    """Everything the composer needs for one occasion in one language.

    Placeholders are {name}, {Cheer}, {cheer}, {phrase}; they are filled in a single pass, so user
    text substituted into them is never re-interpreted as a template.
    """

    titles: tuple[str, ...]
    cheer: str  # standalone exclamation without "!": "С днём рождения", "Happy birthday"
    phrase: str  # what follows "поздравляю"/"wishes": "с днём рождения", "on your birthday"
    wishes: Mapping[str, tuple[str, ...]]  # keys: warm, formal, funny, romantic
    openers: Openers | None = None  # replaces the language's shared openers (thanks, get well, …)
    generic: bool = True  # whether the language's generic celebratory wishes fit this occasion
    # Tones in which the text addresses a couple or family ("вы"), so singular closings do not fit.
    plural_tones: frozenset[str] = frozenset()


@dataclass(frozen=True)
class LanguageTexts:
    """Shared phrases of one language and its occasion table."""

    openers: Openers
    generic_wishes: Mapping[str, tuple[str, ...]]
    closings: Mapping[str, tuple[str, ...]]
    plural_closings: Mapping[str, tuple[str, ...]]
    details_lines: tuple[str, ...]  # each contains {details}
    mentions: Mapping[str, tuple[str, ...]]  # for unknown occasions; contain {occasion}/{Occasion}
    unknown_titles: tuple[str, ...]
    occasions: Mapping[str, OccasionTexts] = field(default_factory=dict)


def occasion(
    titles: tuple[str, ...],
    cheer: str,
    phrase: str,
    *,
    warm: tuple[str, ...] = (),
    formal: tuple[str, ...] = (),
    funny: tuple[str, ...] = (),
    romantic: tuple[str, ...] = (),
    openers: Openers | None = None,
    generic: bool = True,
    plural_tones: tuple[str, ...] = (),
) -> OccasionTexts:
    """Shorthand constructor that keeps the phrase tables readable."""
    wishes = MappingProxyType({"warm": warm, "formal": formal, "funny": funny, "romantic": romantic})
    return OccasionTexts(titles, cheer, phrase, wishes, openers, generic, frozenset(plural_tones))


def language_texts(language: str) -> LanguageTexts:
    """Return the phrase catalogue for "ru" or "en"."""
    # Imported here because the catalogue modules themselves import `occasion` from this package.
    if language == "en":
        from generation.texts.en import TEXTS as EN

        return EN
    from generation.texts.ru import TEXTS as RU

    return RU
