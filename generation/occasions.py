"""Mapping of free-form occasion strings (Russian or English) to the occasions we have templates for."""

from __future__ import annotations

import re
from dataclasses import dataclass

from generation.sanitize import MAX_OCCASION, clean_user_text

OCCASIONS = (
    "birthday", "jubilee", "new_year", "christmas", "march_8", "feb_23", "valentine",
    "wedding", "anniversary", "thanks", "graduation", "new_baby", "retirement",
    "get_well", "professional_day", "new_job", "congratulations",
)

_PROFESSIONS_RU = (
    r"учител|врач|медик|медицинск|программист|строител|полиц|юрист|бухгалтер|энергетик|"
    r"металлург|шахтер|нефтяник|газовик|железнодорожник|спасател|воспитател|журналист|"
    r"работник|таможен|пограничник|связист|химик|геолог|моряк|летчик|десантник|вдв|"
    r"библиотекар|психолог|дизайнер|инженер|менеджер|продавц|повар|водител|финансист|"
    r"экономист|эколог|архитектор|фармацевт|кадровик|маркетолог|сисадмин|тестировщик"
)
_PROFESSIONS_EN = (
    r"teacher|doctor|nurse|programmer|engineer|accountant|police|firefighter|builder|"
    r"lawyer|librarian|designer|pharmacist|secretar|admin|tester|worker|chef|driver"
)

# Order matters: "день рождения сына" is a birthday, "рождение сына" is a new baby,
# "годовщина свадьбы" is an anniversary rather than a wedding.
_RULES: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (key, re.compile(pattern))
    for key, pattern in (
        ("birthday", r"(день|дн\w*) рождени|днюх|днюш|\bдр\b|birthday|\bb ?day\b"),
        ("jubilee", r"юбиле|jubilee|milestone"),
        ("anniversary", r"годовщин|anniversary"),
        ("new_baby", r"рождени\w* (ребен|малыш|сын|доч|внук|внучк|дет|близнец)|новорожд|"
                     r"пополнени\w* в семье|выписк\w* из роддом|new ?born|new baby|baby (boy|girl|shower)"),
        ("wedding", r"свадьб|бракосочет|венчани|молодожен|wedding|marriage|newlywed|just married"),
        ("new_year", r"нов\w* год|\bнг\b|new ?year"),
        ("christmas", r"рождеств|christmas|xmas"),
        ("march_8", r"8 (марта|march)|march 8|женск\w* (день|дн)|women ?s day|women day"),
        ("feb_23", r"23 феврал|защитник\w* отечеств|день защитника|feb\w* 23|23 feb|defender"),
        ("valentine", r"валентин|valentine|14 феврал|влюбленн|feb\w* 14"),
        ("thanks", r"спасиб|благодар|признательн|thank|gratitude|appreciat"),
        ("graduation", r"выпускн|окончани\w* (школ|вуз|универ|учеб|институт|колледж|курс)|"
                       r"защит\w* диплом|graduat"),
        ("retirement", r"пенси|retire"),
        ("get_well", r"выздор|поправл|болезн|болеет|get well|recover|feel better|sick"),
        ("new_job", r"нов\w* (работ|должност|мест)|повышени|new (job|role|position)|promotion"),
        ("professional_day", r"профессиональн|professional|(день|днем) (" + _PROFESSIONS_RU + r")|"
                             r"(" + _PROFESSIONS_EN + r")\w*( s)? day"),
        ("congratulations", r"^(поздравлени\w*|поздравляю|без повода|просто так|праздник|"
                            r"congratulations?|congrats|just because|holiday|celebration)$"),
    )
)
_DAY_EN_RE = re.compile(r"^(?:happy\s+)?(.+?\bday)$", re.IGNORECASE)
_WORDY_RE = re.compile(r"^[\w\s'’\-]+$")


@dataclass(frozen=True)
class ResolvedOccasion:
    """A recognised occasion key (or None) plus what is needed to mention the user's own wording."""

    key: str | None
    text: str
    day_ru: str | None = None
    day_en: str | None = None


def _normalize(text: str) -> str:
    lowered = text.lower().replace("ё", "е").replace("’", "'")
    lowered = lowered.replace("_", " ").replace("-", " ").replace("'", " ")
    lowered = re.sub(r"[^\w\s]", " ", lowered)
    return " ".join(lowered.split())


def _day_names(text: str) -> tuple[str | None, str | None]:
    """Build "Днём учителя" / "Teacher's Day" style names so templates can say "С Днём …"."""
    if not text or len(text) > 60 or not _WORDY_RE.match(text):
        return None, None
    words = text.split()
    lowered = [w.lower().replace("ё", "е") for w in words]
    rest: list[str] = []
    if lowered[0] in ("день", "днем") and len(words) > 1:
        rest = words[1:]
    elif lowered[0] == "с" and len(words) > 2 and lowered[1] == "днем":
        rest = words[2:]
    day_ru = "Днём " + " ".join(rest) if re.search(r"[а-яё]", " ".join(rest), re.IGNORECASE) else None
    day_en = None
    en = _DAY_EN_RE.match(text)
    if en and re.fullmatch(r"[a-z\s'’\-]+", en.group(1), re.IGNORECASE):
        day_en = " ".join(w[:1].upper() + w[1:] for w in en.group(1).split())
    return day_ru, day_en


def resolve_occasion(occasion: object) -> ResolvedOccasion:
    """Match free-form occasion text to a template key; unknown text is kept for mentioning."""
    text = clean_user_text(occasion, MAX_OCCASION).strip(" .,!?;:—-")
    norm = _normalize(text)
    key: str | None = None
    if not norm:
        # Nothing usable to mention, so a plain congratulation is the most sensible answer.
        key = "congratulations"
    elif norm.replace(" ", "_") in OCCASIONS:
        key = norm.replace(" ", "_")
    else:
        key = next((k for k, rule in _RULES if rule.search(norm)), None)
    if key not in (None, "professional_day"):
        return ResolvedOccasion(key=key, text=text)
    day_ru, day_en = _day_names(text)
    return ResolvedOccasion(key=key, text=text, day_ru=day_ru, day_en=day_en)
