"""Error texts in English and Russian by Accept-Language; reason and code never change with the language."""

from __future__ import annotations

import pytest

from handlers import all_routes
from handlers.errors import STATUS_REASON
from handlers.messages import TEXTS, localize, preferred_locale
from handlers.openapi import spec_for
from tests.handlers.test_conventions import assert_error_shape


def documented_reasons() -> set[str]:
    """Every `reason` any operation of the OpenAPI document lists."""
    found: set[str] = set()

    def walk(node):
        if isinstance(node, dict):
            reason = node.get("reason")
            if isinstance(reason, dict) and "enum" in reason:
                found.update(reason["enum"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(spec_for(all_routes()))
    return found


def is_cyrillic_text(text: str) -> bool:
    return any("\u0400" <= ch <= "\u04ff" for ch in text)


def test_every_documented_reason_has_an_english_and_a_russian_text():
    reasons = documented_reasons() | set(STATUS_REASON.values())
    assert len(reasons) > 60
    missing = sorted(r for r in reasons if r not in TEXTS)
    assert not missing, f"reasons without texts in handlers/messages.py: {missing}"
    for reason in reasons:
        english, russian = TEXTS[reason]
        assert english and not is_cyrillic_text(english), reason
        assert is_cyrillic_text(russian), reason


@pytest.mark.parametrize(("header", "locale"), [
    (None, "en"), ("", "en"), ("ru", "ru"), ("ru-RU,ru;q=0.9,en-US;q=0.8", "ru"), ("en-US,en;q=0.9,ru;q=0.8", "en"),
    ("de-DE,ru;q=0.5", "ru"), ("de", "en"), ("ru;q=0, en", "en"), ("RU", "ru"), ("ru;q=bad", "en"),
])
def test_accept_language_picks_the_preferred_supported_language(header, locale):
    assert preferred_locale(header) == locale


def test_english_keeps_the_call_sites_text():
    assert localize("payload_too_large", "Request body exceeds 10 bytes.", "en") == "Request body exceeds 10 bytes."
    assert localize("payload_too_large", "Request body exceeds 10 bytes.", "ru") == "Тело запроса слишком большое."


async def test_russian_error_text_with_accept_language_ru_and_the_same_reason_and_code(api):
    for headers in ({"Accept-Language": "ru"}, {"Accept-Language": "ru-RU,ru;q=0.9"}):
        resp = await api.post("/api/auth/login", {"email": "nobody@example.com", "password": "wrong password"},
                              headers=headers)
        assert_error_shape(resp, 401, "invalid_credentials")
        assert resp.json["error"] == "Неверный адрес почты или пароль."
    english = await api.post("/api/auth/login", {"email": "nobody@example.com", "password": "wrong password"})
    assert_error_shape(english, 401, "invalid_credentials")
    assert english.json["error"] == "Email or password is incorrect."
    missing = await api.get("/api/user/profile", headers={"Accept-Language": "ru"})
    assert_error_shape(missing, 401, "missing_token")
    assert missing.json["error"] == "Нужен токен доступа."
    invalid = await api.post("/api/auth/register", {"email": "not-an-email", "password": "x"},
                             headers={"Accept-Language": "ru"})
    assert_error_shape(invalid, 400, "validation_failed")
    assert invalid.json["error"] == "Некоторые поля заполнены неверно." and "email" in invalid.json["details"]["fields"]
