"""A real SMTP server on loopback (aiosmtpd) that keeps what it receives; it can be stopped and started on one port."""

from __future__ import annotations

import asyncio
import re
import socket
from email import message_from_bytes, policy
from email.message import EmailMessage
from urllib.parse import parse_qs, urlsplit

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

LINK = re.compile(r"[a-z][a-z0-9+.-]*://\S+")


class _Collect:
    def __init__(self, inbox: list[EmailMessage]) -> None:
        self.inbox = inbox

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        msg = message_from_bytes(envelope.original_content or envelope.content, policy=policy.default)
        msg["X-Envelope-To"] = ", ".join(envelope.rcpt_tos)
        self.inbox.append(msg)
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class SmtpServer:
    """aiosmtpd in its own thread; `inbox` holds every message received, in order."""

    def __init__(self, credentials: tuple[str, str] | None = None) -> None:
        self.port = _free_port()
        self.inbox: list[EmailMessage] = []
        self.credentials = credentials
        self.logins: list[tuple[str, str]] = []
        self._controller: Controller | None = None

    def _authenticate(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        login = (auth_data.login.decode(), auth_data.password.decode())
        self.logins.append(login)
        return AuthResult(success=login == self.credentials)

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def start(self) -> None:
        auth = {} if self.credentials is None else {
            "auth_require_tls": False, "authenticator": self._authenticate}  # loopback only: no TLS needed
        self._controller = Controller(_Collect(self.inbox), hostname="127.0.0.1", port=self.port, **auth)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def to(self, address: str) -> list[EmailMessage]:
        """Messages received for an address."""
        return [m for m in self.inbox if address in m["X-Envelope-To"]]

    async def wait_for(self, address: str, count: int = 1, timeout: float = 10.0) -> list[EmailMessage]:
        """Wait until `count` messages for `address` arrived; return them."""
        for _ in range(int(timeout / 0.02)):
            found = self.to(address)
            if len(found) >= count:
                return found
            await asyncio.sleep(0.02)
        raise AssertionError(f"{count} mail(s) to {address} did not arrive; got {len(self.to(address))}")


def text_of(msg: EmailMessage) -> str:
    """The plain-text part."""
    return msg.get_body(preferencelist=("plain",)).get_content()


def html_of(msg: EmailMessage) -> str:
    """The HTML part."""
    return msg.get_body(preferencelist=("html",)).get_content()


def link_of(msg: EmailMessage) -> str:
    """The one link in the plain-text part."""
    links = LINK.findall(text_of(msg))
    assert len(links) == 1, links
    return links[0]


def token_of(msg: EmailMessage) -> str:
    """The token carried by the mail's link."""
    return parse_qs(urlsplit(link_of(msg)).query)["token"][0]
