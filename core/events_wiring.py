"""Turns outbound events on for a process's database when EVENTS_WEBHOOK_URLS is set (nothing is stored otherwise)."""

from __future__ import annotations

from typing import Any

from documents import events as events_doc


def configure_events(ctx: Any) -> None:
    """Record events written through `ctx.db` for the configured receivers, until the context closes."""
    urls = ctx.settings.events_webhook_urls
    if not urls:
        return
    events_doc.enable(ctx.db, tuple(urls))
    ctx.closers.append(lambda: events_doc.disable(ctx.db))
