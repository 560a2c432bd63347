"""HTTP layer: gathers every module's `default_handlers`, appends the JSON 404, builds the app."""

from __future__ import annotations

import time
from typing import Any

import tornado.web
from loguru import logger

from core.catalog import Catalog
from core.context import AppContext
from core.metrics import HTTP_LATENCY, HTTP_REQUESTS
from handlers import account as account_routes
from handlers import account_pages as account_page_routes
from handlers import apidocs, auth, generation, metrics, oauth, payments, points, products, service, subscriptions, user, webhooks
from handlers import customer as customer_handlers
from handlers import demo as demo_routes
from handlers.base import APIHandler
from handlers.openapi import spec_for
from handlers.routing import NotFoundHandler, check_routes

HANDLER_MODULES = [service, apidocs, metrics, auth, oauth, user, products, points, generation, payments, webhooks, subscriptions]
HANDLER_MODULES.append(customer_handlers)
HANDLER_MODULES += [account_routes, account_page_routes]
# Registered outside production only: the web reference client at /demo/ (handlers/demo.py).
DEVELOPMENT_MODULES = [demo_routes]


def all_routes(development: bool = False) -> list[tuple]:
    """Every route of the API in registration order (plus the development-only ones if asked), the 404 catch-all last."""
    routes: list[tuple[str, type]] = []
    for module in HANDLER_MODULES + (DEVELOPMENT_MODULES if development else []):
        routes.extend(module.default_handlers)
    routes.append((r".*", NotFoundHandler))
    return routes


def route_template(handler: tornado.web.RequestHandler) -> str:
    """The route pattern a handler serves (metrics label; ids never become labels)."""
    return handler.application.settings.get("route_templates", {}).get(type(handler), "unmatched")


def access_log(handler: tornado.web.RequestHandler) -> None:
    """One line per API call: request id, method, path, status, duration and user; plus metrics."""
    status = handler.get_status()
    started = getattr(handler, "started", None)
    elapsed = time.perf_counter() - started if started else 0.0
    duration_ms = round(elapsed * 1000, 2)
    route = route_template(handler)
    HTTP_REQUESTS.labels(route, handler.request.method, str(status)).inc()
    HTTP_LATENCY.labels(route, handler.request.method).observe(elapsed)
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
    """Build the Tornado application; refuses routes that are not authenticated or public, or lack an @api declaration."""
    routes = all_routes(development=not ctx.settings.is_production)
    openapi = spec_for(routes)  # raises on a route verb without a declaration: such an app never starts
    templates = {rule[1]: rule[0] for rule in routes if rule[0] != r".*"}
    app = tornado.web.Application(
        routes,
        route_templates=templates,
        routes=routes,
        openapi=openapi,
        catalog=Catalog(ctx),
        ctx=ctx,
        log_function=access_log,
        compress_response=False,
        xsrf_cookies=False,
        **overrides,
    )
    check_routes(app)
    return app
