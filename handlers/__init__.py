"""HTTP layer: gathers every module's `default_handlers`, appends the JSON 404, builds the app."""

from __future__ import annotations

import time
from typing import Any

import tornado.web
from loguru import logger

from core.context import AppContext
from handlers import auth, service, user
from handlers.base import APIHandler, NotFoundHandler, check_routes

HANDLER_MODULES = [service, auth, user]


def all_routes() -> list[tuple[str, type]]:
    """Every route of the API in registration order, the 404 catch-all last."""
    routes: list[tuple[str, type]] = []
    for module in HANDLER_MODULES:
        routes.extend(module.default_handlers)
    routes.append((r".*", NotFoundHandler))
    return routes


def access_log(handler: tornado.web.RequestHandler) -> None:
    """One line per API call: request id, method, path, status, duration and user."""
    status = handler.get_status()
    started = getattr(handler, "started", None)
    duration_ms = round((time.perf_counter() - started) * 1000, 2) if started else None
    user = getattr(handler, "user", None)
    level = "ERROR" if status >= 500 else "INFO"
    logger.log(
        level,
        "{method} {path} {status}",
        method=handler.request.method,
        path=handler.request.path,
        status=status,
        request_id=getattr(handler, "request_id", None),
        duration_ms=duration_ms,
        user_id=user.user_id if user else None,
        ip=handler.client_ip if isinstance(handler, APIHandler) else handler.request.remote_ip,
    )


def make_app(ctx: AppContext, **overrides: Any) -> tornado.web.Application:
    """Build the Tornado application; refuses routes that are neither authenticated nor public."""
    app = tornado.web.Application(
        all_routes(),
        ctx=ctx,
        log_function=access_log,
        compress_response=False,
        xsrf_cookies=False,
        **overrides,
    )
    check_routes(app)
    return app
