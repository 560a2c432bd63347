"""API documentation: the OpenAPI document and Swagger UI, with every asset served from an installed package."""

from __future__ import annotations

import base64
import hashlib
import importlib.util
from pathlib import Path

import tornado.web

from handlers.base import APIHandler, public
from handlers.docs import api


def swagger_ui_dir() -> Path:
    """Where the swagger-ui-py package keeps Swagger UI's static files (no CDN: works offline)."""
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("swagger-ui-py is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "static"


# validatorUrl: null, or Swagger UI asks validator.swagger.io about the document on any non-localhost host.
INIT_SCRIPT = """
window.onload = function () {
  window.ui = SwaggerUIBundle({
    url: "/api/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    persistAuthorization: true,
    displayRequestDuration: true,
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
    layout: "StandaloneLayout"
  });
};
"""
SCRIPT_HASH = base64.b64encode(hashlib.sha256(INIT_SCRIPT.encode()).digest()).decode()
PAGE = f"""<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="UTF-8">
  <title>RuStore backend API</title>
  <link rel="stylesheet" href="/api/docs/static/swagger-ui.css">
  <link rel="stylesheet" href="/api/docs/static/index.css">
  <link rel="icon" type="image/png" href="/api/docs/static/favicon-32x32.png" sizes="32x32">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/api/docs/static/swagger-ui-bundle.js" charset="UTF-8"></script>
  <script src="/api/docs/static/swagger-ui-standalone-preset.js" charset="UTF-8"></script>
  <script>{INIT_SCRIPT}</script>
</body>
</html>
"""
PAGE_CSP = (f"default-src 'none'; script-src 'self' 'sha256-{SCRIPT_HASH}'; style-src 'self' 'unsafe-inline'; "
            "img-src 'self' data:; connect-src 'self'; font-src 'self' data:; frame-ancestors 'none'")


class OpenAPIHandler(APIHandler):
    """GET /api/openapi.json — the machine-readable contract of every route."""

    @public
    @api("The OpenAPI 3.1 document of this API", responses={200: "application/json"})
    async def get(self) -> None:
        spec = self.application.settings.get("openapi")
        if spec is None:
            from handlers.openapi import build_spec

            spec = build_spec(self.application.settings["routes"])
            self.application.settings["openapi"] = spec
        self.set_header("Cache-Control", "public, max-age=300")
        self.write_json(spec)


class SwaggerUIHandler(APIHandler):
    """GET /api/docs — interactive documentation (Swagger UI)."""

    @public
    @api("Interactive API documentation (Swagger UI)", responses={200: "text/html"})
    async def get(self) -> None:
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        self.set_header("Content-Security-Policy", PAGE_CSP)
        self.set_header("Cache-Control", "public, max-age=300")
        self.finish(PAGE)


class SwaggerAssetsHandler(tornado.web.StaticFileHandler):
    """Swagger UI's scripts and styles, from the installed swagger-ui-py package."""

    public_handler = True  # static, non-personal assets of the documentation page

    def set_extra_headers(self, path: str) -> None:
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Cache-Control", "public, max-age=86400")


def _assets_route() -> tuple:
    return (r"/api/docs/static/(.*)", SwaggerAssetsHandler, {"path": str(swagger_ui_dir())})


default_handlers = [
    (r"/api/openapi.json", OpenAPIHandler),
    (r"/api/docs", SwaggerUIHandler),
    _assets_route(),
]
