"""GET /metrics in Prometheus text format, behind METRICS_TOKEN (or on a separate internal port)."""

from __future__ import annotations

import hmac

import tornado.web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from handlers.base import ApiError, APIHandler, public
from handlers.docs import api


def render_metrics() -> bytes:
    """The process's metrics in Prometheus text format."""
    return generate_latest(REGISTRY)


class MetricsHandler(APIHandler):
    """GET /metrics on the API port: Prometheus scrapes it with `Authorization: Bearer <METRICS_TOKEN>`."""

    @public  # not an end-user route: guarded by its own token below, not by user sessions
    @api("Prometheus metrics (Authorization: Bearer <METRICS_TOKEN>)", responses={200: "text/plain"},
         errors={401: ["invalid_metrics_token"], 404: ["metrics_disabled"]})
    async def get(self) -> None:
        token = self.ctx.settings.metrics_token
        if not token:
            if not self.ctx.settings.is_development:
                raise ApiError(404, "metrics_disabled", "Set METRICS_TOKEN or METRICS_PORT to expose metrics.")
        else:
            scheme, _, given = self.request.headers.get("Authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
                raise ApiError(401, "invalid_metrics_token", "A valid metrics token is required.",
                               headers={"WWW-Authenticate": 'Bearer realm="metrics"'})
        self.set_header("Content-Type", CONTENT_TYPE_LATEST)
        self.finish(render_metrics())


class InternalMetricsHandler(tornado.web.RequestHandler):
    """GET /metrics on METRICS_PORT: no token, so bind that port to an internal address only."""

    public_handler = True  # reachable only on the internal metrics listener

    def get(self) -> None:
        self.set_header("Content-Type", CONTENT_TYPE_LATEST)
        self.finish(render_metrics())


def make_metrics_app() -> tornado.web.Application:
    """The tiny application served on METRICS_PORT."""
    return tornado.web.Application([(r"/metrics", InternalMetricsHandler)])


default_handlers = [
    (r"/metrics", MetricsHandler),
]
