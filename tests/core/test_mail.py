"""SMTP_URL parsing, sealed bodies, templates, and delivery with credentials to a real SMTP server."""

from __future__ import annotations

import io
from types import SimpleNamespace

import aiosmtplib
import pytest

from core.mail import DEV_BANNER, Mail, Mailer, Sealer, parse_smtp_url
from core.mail_templates import LOCALES, TEMPLATES, render
from core.settings import SettingsError
from tests.conftest import make_settings
from tests.support.smtp import SmtpServer, text_of


def test_smtp_url_forms():
    plain = parse_smtp_url("smtp://mail.example.com")
    assert (plain.host, plain.port, plain.implicit_tls, plain.starttls, plain.username) == \
        ("mail.example.com", 25, False, False, None)
    submission = parse_smtp_url("smtp://ann%40example.com:p%3Ass@mail.example.com:587?starttls=true")
    assert (submission.port, submission.starttls, submission.username, submission.password) == \
        (587, True, "ann@example.com", "p:ss")
    implicit = parse_smtp_url("smtps://u:p@mail.example.com")
    assert (implicit.port, implicit.implicit_tls, implicit.starttls) == (465, True, False)
    assert "p:ss" not in repr(submission)
    for bad in ("http://mail.example.com", "smtp://", "smtp://host:notaport"):
        with pytest.raises(SettingsError):
            parse_smtp_url(bad)
    with pytest.raises(SettingsError):
        make_settings(smtp_url="mailto:someone")


def test_production_needs_a_link_base_when_mail_is_on():
    settings = make_settings(app_env="production", smtp_url="smtps://u:p@mail.example.com")
    assert any("PUBLIC_BASE_URL" in p for p in settings.problems())
    settings = make_settings(app_env="production", smtp_url="smtps://u:p@mail.example.com", public_url="https://a.b")
    assert not any("PUBLIC_BASE_URL" in p for p in settings.problems())
    assert settings.mail_base_url == "https://a.b"


def test_sealed_bodies_open_only_with_the_same_secret():
    sealed = Sealer("one secret").seal("reset link ?token=abc")
    assert "abc" not in sealed
    assert Sealer("one secret").open(sealed) == "reset link ?token=abc"
    with pytest.raises(ValueError):
        Sealer("another secret").open(sealed)


@pytest.mark.parametrize("kind", sorted(TEMPLATES))
@pytest.mark.parametrize("locale", LOCALES)
def test_every_template_renders_text_and_html_in_both_languages(kind, locale):
    mail = render(kind, locale, "ann@example.com", "https://x.test/p?token=t&lang=ru", minutes=60,
                  new_email="new@example.com")
    assert mail.subject and "ann@example.com" in mail.text and "ann@example.com" in mail.html
    cyrillic = any("\u0400" <= ch <= "\u04ff" for ch in mail.text)
    assert cyrillic is (locale == "ru")
    assert "{" not in mail.text and "<p>" in mail.html
    if TEMPLATES[kind][locale][2]:
        assert "https://x.test/p?token=t&lang=ru" in mail.text and "token=t&amp;lang=ru" in mail.html


async def test_delivery_logs_in_with_the_urls_credentials():
    server = SmtpServer(credentials=("ann@example.com", "p:ss"))
    server.start()
    try:
        url = f"smtp://ann%40example.com:p%3Ass@127.0.0.1:{server.port}"
        mailer = Mailer(make_settings(smtp_url=url, mail_from="app@example.com"), "secret")
        await mailer.deliver(Mail("bob@example.com", "Hi", "text body\n", "<p>html body</p>"))
        assert server.logins == [("ann@example.com", "p:ss")]
        assert text_of((await server.wait_for("bob@example.com"))[0]).strip() == "text body"
        wrong = Mailer(make_settings(smtp_url=f"smtp://ann:wrong@127.0.0.1:{server.port}", smtp_timeout_s=1.0), "secret")
        with pytest.raises(aiosmtplib.SMTPException):  # refused (aiosmtpd then stalls: SMTP_TIMEOUT_S ends it)
            await wrong.deliver(Mail("bob@example.com", "Hi", "t", "<p>h</p>"))
        assert server.logins[-1] == ("ann", "wrong") and len(server.to("bob@example.com")) == 1
    finally:
        server.stop()


async def test_without_smtp_a_development_mail_is_a_marked_block_with_its_links():
    out = io.StringIO()
    mailer = Mailer(make_settings(app_env="development"), "secret", out=out)
    assert mailer.available
    await mailer.deliver(render("password_reset", "en", "ann@example.com", "http://127.0.0.1:8000/r?token=abc",
                                minutes=60))
    block = out.getvalue()
    assert block.startswith(DEV_BANNER) and "Link: http://127.0.0.1:8000/r?token=abc" in block
    production = Mailer(SimpleNamespace(smtp_url=None, mail_from="a@b.c", is_production=True), "secret")
    assert not production.available
