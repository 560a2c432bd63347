"""Occasion matching, input cleaning and model-output normalisation."""

from __future__ import annotations

import pytest

from generation import OCCASIONS, resolve_occasion
from generation.sanitize import clean_name, clean_user_text, normalize_output, truncate


@pytest.mark.parametrize(("text", "key"), [
    ("birthday", "birthday"), ("С Днём Рождения!", "birthday"), ("день рождения сына", "birthday"),
    ("ДР", "birthday"), ("Happy B-day", "birthday"), ("юбилей 50 лет", "jubilee"),
    ("Новый год", "new_year"), ("new_year", "new_year"), ("Рождество", "christmas"), ("Xmas", "christmas"),
    ("8 марта", "march_8"), ("Международный женский день", "march_8"), ("Women's Day", "march_8"),
    ("23 февраля", "feb_23"), ("День защитника Отечества", "feb_23"), ("14 февраля", "valentine"),
    ("День святого Валентина", "valentine"), ("свадьба", "wedding"), ("годовщина свадьбы", "anniversary"),
    ("спасибо", "thanks"), ("благодарность", "thanks"), ("выпускной", "graduation"),
    ("рождение дочки", "new_baby"), ("new baby", "new_baby"), ("выход на пенсию", "retirement"),
    ("выздоравливай", "get_well"), ("get well soon", "get_well"), ("день учителя", "professional_day"),
    ("С днём программиста", "professional_day"), ("Nurses Day", "professional_day"),
    ("новая работа", "new_job"), ("promotion", "new_job"), ("поздравление", "congratulations"),
    ("", "congratulations"), ("!!!", "congratulations"), ("новоселье", None), ("День матери", None),
])
def test_resolution(text, key):
    assert resolve_occasion(text).key == key


def test_every_key_resolves_to_itself():
    assert all(resolve_occasion(key).key == key for key in OCCASIONS)


def test_day_names():
    assert resolve_occasion("с днём металлурга").day_ru == "Днём металлурга"
    assert resolve_occasion("Happy mother's day").day_en == "Mother's Day"
    assert resolve_occasion("день").day_ru is None
    assert resolve_occasion("день <b>").day_ru is None


def test_clean_user_text():
    assert clean_user_text("  a\tb\n\nc\x07 ", 100) == "a b c"
    assert clean_user_text("x\u200b\u202ey\ud800", 100) == "xy"
    assert clean_user_text(None, 10) == ""
    assert len(clean_user_text("слово " * 100, 50)) <= 50


def test_clean_name():
    assert clean_name("анна") == "Анна"
    assert clean_name("ван Гог") == "ван Гог"
    assert clean_name("  Анна!!! ") == "Анна"
    assert len(clean_name("Я" * 500)) <= 60


def test_truncate_prefers_word_boundary():
    assert truncate("один два три четыре", 12) == "один два…"
    assert truncate("короткий", 50) == "короткий"
    assert len(truncate("x" * 100, 10)) == 10


@pytest.mark.parametrize(("raw", "clean"), [
    ('"Привет!"', "Привет!"),
    ("«Привет, «друг»!»", "Привет, «друг»!"),
    ("«Раз» и «два»", "«Раз» и «два»"),
    ("```\nHello\n```", "Hello"),
    ("```markdown\n# Title\n**bold** text\n```", "Title\nbold text"),
    ("  a  \r\n\r\n\r\n\r\nb  ", "a\n\nb"),
    ("", ""),
])
def test_normalize_output(raw, clean):
    assert normalize_output(raw) == clean
