"""Outgoing e-mail: SMTP_URL parsing, sealing queued bodies, and one delivery attempt (SMTP or the development log).

Mail bodies carry single-use links (password reset, e-mail verification) whose tokens the database
keeps only as hashes, so a queued body is sealed with AES-GCM under a key derived from JWT_SECRET
before it is stored, and erased once sent. Without SMTP_URL outside production each mail is printed
as a marked block (links included) so a developer can click them; production answers
`503 mail_not_configured` instead (see handlers/account.py).
"""

from __future__ import annotations

import base64
import hashlib
import os
import sys
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formataddr, make_msgid
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import aiosmtplib
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from core.settings import SettingsError

DEV_BANNER = "=" * 25 + " DEVELOPMENT MAIL (not sent: SMTP_URL is unset) " + "=" * 25


@dataclass(frozen=True)
class SmtpConfig:
    """Where and how to deliver: host, port, credentials and the TLS mode."""

    host: str
    port: int
    username: str | None
    password: str | None
    implicit_tls: bool
    starttls: bool

    def __repr__(self) -> str:  # never show the password (tracebacks, debug logs)
        return f"SmtpConfig(host={self.host!r}, port={self.port}, tls={self.implicit_tls}, starttls={self.starttls})"


def parse_smtp_url(url: str) -> SmtpConfig:
    """`smtp://user:pass@host:port[?starttls=true]` or `smtps://…` (implicit TLS) into an SmtpConfig."""
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise SettingsError("SMTP_URL: expected smtp://user:pass@host:port or smtps://…")
    query = {k: v[-1].lower() for k, v in parse_qs(parts.query).items()}
    implicit = parts.scheme == "smtps"
    try:
        port = parts.port or (465 if implicit else 25)
    except ValueError:
        raise SettingsError("SMTP_URL: the port is not a number") from None
    return SmtpConfig(
        host=parts.hostname, port=port,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        implicit_tls=implicit, starttls=not implicit and query.get("starttls") in ("true", "1", "yes"),
    )


class Sealer:
    """AES-GCM sealing of queued mail bodies (key = SHA-256 of the server secret and a purpose label)."""

    def __init__(self, secret: str) -> None:
        self._aead = AESGCM(hashlib.sha256(b"mail-outbox\x00" + secret.encode()).digest())

    def seal(self, text: str) -> str:
        """Encrypt text; the result is ASCII (nonce + ciphertext, base64)."""
        nonce = os.urandom(12)
        return base64.b64encode(nonce + self._aead.encrypt(nonce, text.encode(), None)).decode()

    def open(self, sealed: str) -> str:
        """Decrypt what `seal` produced; raises ValueError when the key differs or the data was altered."""
        raw = base64.b64decode(sealed)
        try:
            return self._aead.decrypt(raw[:12], raw[12:], None).decode()
        except Exception as exc:  # cryptography's InvalidTag: a different secret sealed it
            raise ValueError("cannot open a sealed mail body") from exc


@dataclass(frozen=True)
class Mail:
    """One message ready to deliver."""

    to: str
    subject: str
    text: str
    html: str
    links: tuple[str, ...] = ()


class Mailer:
    """Delivers one Mail per call: over SMTP when configured, else (outside production) to the log."""

    def __init__(self, settings: Any, secret: str, out: Any = None) -> None:
        self.settings = settings
        self.smtp = parse_smtp_url(settings.smtp_url) if settings.smtp_url else None
        self.sender = settings.mail_from
        self.sealer = Sealer(secret)
        self._out = out

    @property
    def available(self) -> bool:
        """True when mail can go somewhere: SMTP, or the development log outside production."""
        return self.smtp is not None or not self.settings.is_production

    def message(self, mail: Mail) -> EmailMessage:
        """The MIME message: plain text with an HTML alternative."""
        msg = EmailMessage()
        msg["From"] = formataddr(("", self.sender)) if "<" not in self.sender else self.sender
        msg["To"] = mail.to
        msg["Subject"] = mail.subject
        msg["Message-ID"] = make_msgid(domain=self.sender.rsplit("@", 1)[-1].strip(">") or None)
        msg.set_content(mail.text)
        msg.add_alternative(mail.html, subtype="html")
        return msg

    async def deliver(self, mail: Mail) -> None:
        """Send one mail; raises aiosmtplib.SMTPException or OSError when the server refuses or is down."""
        if self.smtp is None:
            self._print(mail)
            return
        c = self.smtp
        await aiosmtplib.send(
            self.message(mail), hostname=c.host, port=c.port, username=c.username, password=c.password,
            use_tls=c.implicit_tls, start_tls=True if c.starttls else False, timeout=self.settings.smtp_timeout_s,
        )

    def _print(self, mail: Mail) -> None:
        # Written straight to the process's output, not through loguru: its scrubber would redact the
        # `token=` in the links, which are the whole point of this block. Never reached in production.
        lines = [DEV_BANNER, f"To: {mail.to}", f"Subject: {mail.subject}", "", mail.text.rstrip(), ""]
        lines += [f"Link: {link}" for link in mail.links]
        lines.append("=" * len(DEV_BANNER))
        out = self._out or sys.stderr  # stdout may carry an admin command's JSON
        out.write("\n".join(lines) + "\n")
        out.flush()
