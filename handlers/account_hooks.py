"""Small hooks the existing auth handlers call into the account lifecycle (kept apart to avoid import cycles)."""

from __future__ import annotations

from typing import Any

from core import accounts
from handlers.messages import preferred_locale
from handlers.netinfo import request_scheme


def origin(handler: Any) -> str:
    """This server as the caller reached it: the base of e-mail links outside production without PUBLIC_BASE_URL."""
    return f"{request_scheme(handler.request, handler.ctx.settings.trusted_networks)}://{handler.request.host}"


async def registered(handler: Any, user: dict, locale: str | None) -> None:
    """A password account was created: store its language (body, else Accept-Language) and mail a verification link."""
    chosen = locale or preferred_locale(handler.request.headers.get("Accept-Language"))
    await accounts.after_register(handler.ctx, user, chosen, origin(handler))
