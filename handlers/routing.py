"""Routing safety: the JSON 404 catch-all, and the start-up check that every route is authenticated or public."""

from __future__ import annotations

from typing import Any

import tornado.web

from handlers.base import ApiError, APIHandler, public


class NotFoundHandler(APIHandler):
    """The JSON 404 catch-all, registered after every other route."""

    def _not_found(self, *args: Any, **kwargs: Any) -> None:
        raise ApiError(404, "not_found", "No such endpoint.")

    get = head = post = put = patch = delete = public(_not_found)  # type: ignore[assignment]


def check_routes(app: tornado.web.Application) -> None:
    """Refuse an application with a route that is neither authenticated nor explicitly public."""
    offenders = []
    for rule in app.wildcard_router.rules:
        handler = rule.target
        if not isinstance(handler, type):
            continue
        if issubclass(handler, APIHandler):
            continue  # authenticated in prepare() unless the verb is @public
        if not getattr(handler, "public_handler", False):
            offenders.append(f"{rule.matcher.regex.pattern} -> {handler.__name__}")
    if offenders:
        raise RuntimeError("Routes that are neither authenticated nor marked public: " + ", ".join(offenders))
