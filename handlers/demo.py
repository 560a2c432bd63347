"""The web reference client at /demo/ (development and test only): its static files, its config, an emulator relay.

The page itself lives in clients/web/ (plain HTML + JS, no build step, no third-party assets) and talks to
this API like any web front-end. Two small helpers exist only because the page stands in for the Pay SDK:
`/demo/config.json` says whether an in-process RuStore emulator runs (and for which app), and
`/demo/emulator/{purchases|subscriptions}` relays "the user pays" to that emulator's control API. The relay
keeps the page on one origin: the emulator sends no CORS headers, and a real front-end never talks to it.
None of these routes is registered in production (`handlers.all_routes(development=False)`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import tornado.httpclient
import tornado.web

CLIENT_DIR = Path(__file__).resolve().parent.parent / "clients" / "web"
# Scripts and styles from this origin only, fetches to this origin only; postcards load as blob: URLs
# (fetched with the bearer token) or from the signed URL on this origin.
PAGE_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; connect-src 'self'; "
            "form-action 'none'; base-uri 'none'; frame-ancestors 'none'")
RELAY_TIMEOUT_S = 10.0


def _error(handler: tornado.web.RequestHandler, status: int, reason: str, message: str) -> None:
    """Answer in the API's shared error shape."""
    handler.set_status(status)
    handler.set_header("Content-Type", "application/json; charset=UTF-8")
    handler.finish(json.dumps({"error": message, "code": status, "reason": reason}))


class DemoFilesHandler(tornado.web.StaticFileHandler):
    """GET /demo/ and its files: the reference web client, with a strict Content-Security-Policy."""

    public_handler = True  # static, non-personal files; the page signs in through the API itself

    def set_extra_headers(self, path: str) -> None:
        self.set_header("Content-Security-Policy", PAGE_CSP)
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Referrer-Policy", "no-referrer")
        self.set_header("Cache-Control", "no-cache")


class DemoConfigHandler(tornado.web.RequestHandler):
    """GET /demo/config.json — whether the in-process RuStore emulator runs, and the app id it serves."""

    public_handler = True  # says only what the development start-up output prints anyway

    def get(self) -> None:
        ctx = self.application.settings["ctx"]
        emulator = None
        if ctx.emulator is not None:
            emulator = {"url": ctx.settings.rustore_api_url, "appId": ctx.settings.rustore_app_id}
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.set_header("Cache-Control", "no-store")
        self.finish(json.dumps({"environment": ctx.settings.app_env, "emulator": emulator}))


class DemoEmulatorRelay(tornado.web.RequestHandler):
    """POST /demo/emulator/{purchases|subscriptions} — "the user pays": forwarded to the emulator's control API."""

    public_handler = True  # acts only on the in-process emulator, which exists only without RuStore credentials

    async def post(self, kind: str) -> None:
        ctx = self.application.settings["ctx"]
        if ctx.emulator is None:
            return _error(self, 404, "emulator_not_running", "No RuStore emulator runs in this process.")
        try:
            body: Any = json.loads(self.request.body or b"{}")
        except ValueError:
            return _error(self, 400, "invalid_json", "The body is not valid JSON.")
        if not isinstance(body, dict):
            return _error(self, 400, "invalid_json", "The body must be a JSON object.")
        url = f"{ctx.settings.rustore_api_url.rstrip('/')}/_emulator/apps/{ctx.settings.rustore_app_id}/{kind}"
        request = tornado.httpclient.HTTPRequest(url, method="POST", body=json.dumps(body),
                                                 headers={"Content-Type": "application/json"},
                                                 request_timeout=RELAY_TIMEOUT_S)
        client = tornado.httpclient.AsyncHTTPClient()
        response = await client.fetch(request, raise_error=False)
        if response.code == 599:  # no HTTP answer at all (connection refused, timeout)
            return _error(self, 502, "emulator_unreachable", "The RuStore emulator did not answer.")
        self.set_status(response.code)
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.finish(response.body or b"{}")


default_handlers = [
    (r"/demo/config\.json", DemoConfigHandler),
    (r"/demo/emulator/(purchases|subscriptions)", DemoEmulatorRelay),
    (r"/demo/(.*)", DemoFilesHandler, {"path": str(CLIENT_DIR), "default_filename": "index.html"}),
]
