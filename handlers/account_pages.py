"""The small pages links in account e-mails open: choose a new password, confirm an e-mail address.

Plain HTML and one inline script each, in Russian or English (`?lang=`, else the browser's language),
calling this server's own API; no third-party assets. The Content-Security-Policy allows exactly the
inline script and style by hash and fetches to this origin only.
"""

from __future__ import annotations

import base64
import hashlib
import json

from handlers.base import APIHandler, public
from handlers.docs import api

STYLE = ("body{font-family:sans-serif;max-width:26em;margin:3em auto;padding:0 1em;color:#222}"
         "label{display:block;margin:.8em 0 .2em}input{width:100%;padding:.5em;box-sizing:border-box}"
         "button{margin-top:1em;padding:.6em 1.2em}#status{margin-top:1em;min-height:1.5em}"
         ".ok{color:#176c2b}.err{color:#a1221a}")

TEXTS = {
    "reset": {
        "en": {"title": "Choose a new password", "password": "New password", "confirm": "Repeat the new password",
               "submit": "Save the new password", "mismatch": "The two passwords differ.",
               "short": "The password needs 8 to 72 bytes.", "done": "Your password was changed. Sign in with it in the app.",
               "bad": "This link is invalid or has expired. Ask for a new one in the app.",
               "failed": "Something went wrong; try again.", "missing": "This link has no token. Open the link from the e-mail."},
        "ru": {"title": "Новый пароль", "password": "Новый пароль", "confirm": "Повторите новый пароль",
               "submit": "Сохранить пароль", "mismatch": "Пароли не совпадают.",
               "short": "Пароль должен быть от 8 до 72 байт.", "done": "Пароль изменён. Войдите с ним в приложении.",
               "bad": "Ссылка недействительна или устарела. Запросите новую в приложении.",
               "failed": "Что-то пошло не так, попробуйте ещё раз.", "missing": "В ссылке нет кода. Откройте ссылку из письма."},
    },
    "verify": {
        "en": {"title": "Confirm your e-mail address", "working": "Confirming…",
               "done": "Your address {email} is confirmed. You can close this page.",
               "bad": "This link is invalid or has expired. Ask for a new one in the app.",
               "taken": "Another account uses this address now.", "failed": "Something went wrong; reload the page.",
               "missing": "This link has no token. Open the link from the e-mail."},
        "ru": {"title": "Подтверждение почты", "working": "Подтверждаем…",
               "done": "Адрес {email} подтверждён. Страницу можно закрыть.",
               "bad": "Ссылка недействительна или устарела. Запросите новую в приложении.",
               "taken": "Этот адрес уже занят другой учётной записью.", "failed": "Что-то пошло не так, обновите страницу.",
               "missing": "В ссылке нет кода. Откройте ссылку из письма."},
    },
}

COMMON_JS = """
const T = JSON.parse(document.getElementById('texts').textContent);
const q = new URLSearchParams(location.search);
const lang = (q.get('lang') || navigator.language || 'en').slice(0, 2) === 'ru' ? 'ru' : 'en';
const t = T[lang];
const token = q.get('token');
history.replaceState(null, '', location.pathname + '?lang=' + lang);
document.documentElement.lang = lang;
document.title = t.title;
for (const el of document.querySelectorAll('[data-t]')) el.textContent = t[el.dataset.t];
const status = document.getElementById('status');
function show(text, ok) { status.textContent = text; status.className = ok ? 'ok' : 'err'; }
async function call(path, body) {
  const r = await fetch(path, {method: 'POST', headers: {'Content-Type': 'application/json', 'Accept-Language': lang},
                               body: JSON.stringify(body)});
  let data = null; try { data = await r.json(); } catch (e) {}
  return {status: r.status, data: data};
}
"""

RESET_JS = COMMON_JS + """
const form = document.getElementById('form');
if (!token) { show(t.missing, false); form.hidden = true; }
form.addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const pw = document.getElementById('password').value, again = document.getElementById('confirm').value;
  if (pw !== again) return show(t.mismatch, false);
  const bytes = new TextEncoder().encode(pw).length;
  if (bytes < 8 || bytes > 72) return show(t.short, false);
  form.querySelector('button').disabled = true;
  try {
    const r = await call('/api/auth/password/reset', {token: token, newPassword: pw});
    if (r.status === 200) { form.hidden = true; return show(t.done, true); }
    show(r.data && r.data.reason === 'invalid_or_expired_token' ? t.bad : ((r.data && r.data.error) || t.failed), false);
  } catch (e) { show(t.failed, false); }
  form.querySelector('button').disabled = false;
});
"""

VERIFY_JS = COMMON_JS + """
(async () => {
  if (!token) return show(t.missing, false);
  show(t.working, true);
  try {
    const r = await call('/api/auth/email/verify', {token: token});
    if (r.status === 200) return show(t.done.replace('{email}', r.data.email), true);
    const reason = r.data && r.data.reason;
    show(reason === 'invalid_or_expired_token' ? t.bad : reason === 'email_taken' ? t.taken : t.failed, false);
  } catch (e) { show(t.failed, false); }
})();
"""

RESET_BODY = """<h1 data-t="title"></h1>
<form id="form" autocomplete="off">
<label for="password" data-t="password"></label><input id="password" type="password" autocomplete="new-password" required>
<label for="confirm" data-t="confirm"></label><input id="confirm" type="password" autocomplete="new-password" required>
<button type="submit" data-t="submit"></button>
</form>
<p id="status" role="status"></p>"""

VERIFY_BODY = """<h1 data-t="title"></h1>
<p id="status" role="status"></p>"""


def _sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def build_page(kind: str, body: str, script: str) -> tuple[str, str]:
    """(HTML, Content-Security-Policy) of one page."""
    texts = json.dumps(TEXTS[kind], ensure_ascii=False).replace("</", "<\\/")
    html = (f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><title></title>'
            f'<style>{STYLE}</style></head><body>{body}'
            f'<script type="application/json" id="texts">{texts}</script><script>{script}</script></body></html>')
    csp = (f"default-src 'none'; script-src {_sha256(script)}; style-src {_sha256(STYLE)}; connect-src 'self'; "
           "form-action 'none'; base-uri 'none'; frame-ancestors 'none'")
    return html, csp


RESET_PAGE = build_page("reset", RESET_BODY, RESET_JS)
VERIFY_PAGE = build_page("verify", VERIFY_BODY, VERIFY_JS)


class PageHandler(APIHandler):
    """Serves one static page with its own CSP."""

    page: tuple[str, str] = ("", "")

    def serve(self) -> None:
        """Write the page."""
        html, csp = self.page
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        self.set_header("Content-Security-Policy", csp)
        self.finish(html)


class ResetPasswordPage(PageHandler):
    """GET /auth/reset-password — the form a password reset link opens."""

    page = RESET_PAGE

    @public
    @api("The page a password reset link opens (form in Russian or English)", responses={200: "text/html"})
    async def get(self) -> None:
        self.serve()


class VerifyEmailPage(PageHandler):
    """GET /auth/verify-email — the page a verification link opens; confirms the address."""

    page = VERIFY_PAGE

    @public
    @api("The page an e-mail verification link opens (confirms the address)", responses={200: "text/html"})
    async def get(self) -> None:
        self.serve()


default_handlers = [
    (r"/auth/reset-password", ResetPasswordPage),
    (r"/auth/verify-email", VerifyEmailPage),
]
