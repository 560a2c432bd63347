"""The account e-mails in Russian and English, each as plain text and HTML, chosen by the user's stored locale."""

from __future__ import annotations

from html import escape

from core.mail import Mail

LOCALES = ("en", "ru")
DEFAULT_LOCALE = "en"

# kind -> locale -> (subject, paragraphs before the link, link label or None, paragraphs after)
TEMPLATES: dict[str, dict[str, tuple[str, list[str], str | None, list[str]]]] = {
    "password_reset": {
        "en": ("Reset your password",
               ["Someone (hopefully you) asked to reset the password of your account {email}.",
                "Open this link to choose a new password. It works once and expires in {minutes} minutes."],
               "Choose a new password",
               ["If you did not ask for this, ignore this mail: your password stays as it is."]),
        "ru": ("Сброс пароля",
               ["Кто-то (надеемся, вы) запросил сброс пароля для учётной записи {email}.",
                "Откройте ссылку, чтобы задать новый пароль. Она действует один раз и {minutes} мин."],
               "Задать новый пароль",
               ["Если вы не запрашивали сброс, просто проигнорируйте это письмо: пароль не изменится."]),
    },
    "password_changed": {
        "en": ("Your password was changed",
               ["The password of your account {email} was just reset, and every device was signed out."],
               None,
               ["If it was not you, reset your password again at once and contact support."]),
        "ru": ("Пароль изменён",
               ["Пароль учётной записи {email} только что был сброшен, все устройства вышли из неё."],
               None,
               ["Если это были не вы, сразу сбросьте пароль ещё раз и напишите в поддержку."]),
    },
    "verify_email": {
        "en": ("Confirm your e-mail address",
               ["Confirm that {email} is your address by opening this link. It expires in {minutes} minutes."],
               "Confirm my address",
               ["If you did not create an account or change your address, ignore this mail."]),
        "ru": ("Подтвердите адрес почты",
               ["Подтвердите, что {email} — ваш адрес, открыв ссылку. Она действует {minutes} мин."],
               "Подтвердить адрес",
               ["Если вы не создавали учётную запись и не меняли адрес, проигнорируйте это письмо."]),
    },
    "email_change_notice": {
        "en": ("Your e-mail address is being changed",
               ["Someone signed in to your account asked to change its address from {email} to {new_email}.",
                "Your account keeps {email} until the new address is confirmed."],
               None,
               ["If it was not you, change your password now: whoever did this knows it."]),
        "ru": ("Смена адреса почты",
               ["В вашей учётной записи запрошена смена адреса с {email} на {new_email}.",
                "Пока новый адрес не подтверждён, учётная запись остаётся привязанной к {email}."],
               None,
               ["Если это были не вы, срочно смените пароль: тот, кто это сделал, его знает."]),
    },
}
FOOTER = {"en": "This is an automatic message; replies are not read.",
          "ru": "Это автоматическое письмо, ответы на него не читаются."}


def pick_locale(value: str | None) -> str:
    """A supported locale for a stored or requested value (anything else is English)."""
    return value if value in LOCALES else DEFAULT_LOCALE


def render(kind: str, locale: str | None, to: str, link: str | None = None, **values: str | int) -> Mail:
    """Build one mail of `kind` for `to` in the locale, with `link` as its only link."""
    lang = pick_locale(locale)
    subject, before, label, after = TEMPLATES[kind][lang]
    fill = {"email": to, **values}
    before = [p.format(**fill) for p in before]
    after = [p.format(**fill) for p in after]
    text_parts = [*before, *([link] if link else []), *after, "--", FOOTER[lang]]
    text = "\n\n".join(text_parts) + "\n"
    paragraphs = "".join(f"<p>{escape(p)}</p>" for p in before)
    if link and label:
        paragraphs += (f'<p><a href="{escape(link, quote=True)}" style="font-weight:bold">{escape(label)}</a></p>'
                       f'<p style="font-size:small;color:#555">{escape(link)}</p>')
    paragraphs += "".join(f"<p>{escape(p)}</p>" for p in after)
    html = (f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8"><title>{escape(subject)}</title></head>'
            f'<body style="font-family:sans-serif;max-width:36em">{paragraphs}'
            f'<hr><p style="font-size:small;color:#777">{escape(FOOTER[lang])}</p></body></html>')
    return Mail(to=to, subject=subject, text=text, html=html, links=(link,) if link else ())
