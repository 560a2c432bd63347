"""Tornado base handlers: RuStore envelopes, token checks and fault injection; control-API JSON."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, ClassVar

import tornado.web

from rustore.emulator.errors import EmulatorError
from rustore.emulator.faults import Fault, lowercase_statuses
from rustore.emulator.keys import TOKEN_EXPIRED, RegisteredKey
from rustore.emulator.records import iso

if TYPE_CHECKING:
    from rustore.emulator.core import Emulator

_GATEWAY_PAGE = "<html><body><h1>{status}</h1>The server is temporarily unable to serve the request.</body></html>"


class _JsonHandler(tornado.web.RequestHandler):
    """Shared JSON plumbing; EmulatorError raised by a handler becomes a rendered refusal."""

    emulator: Emulator

    def initialize(self, emulator: Emulator) -> None:
        self.emulator = emulator

    def json_body(self) -> Any:
        """Decoded request body ({} when empty); malformed JSON is a 400."""
        if not self.request.body:
            return {}
        try:
            return json.loads(self.request.body)
        except ValueError:
            raise EmulatorError(400, "Bad request") from None

    def send_json(self, data: Any, status: int = 200) -> None:
        """Write `data` as the whole JSON response."""
        self.set_status(status)
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(json.dumps(data, ensure_ascii=False))

    def render_error(self, error: EmulatorError) -> None:
        """Subclasses render refusals their own way."""
        raise NotImplementedError

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, EmulatorError):
            self.render_error(exc)
        elif isinstance(exc, tornado.web.HTTPError):
            self.render_error(EmulatorError(exc.status_code, exc.reason or "Bad request"))
        else:
            self.render_error(EmulatorError(500, "Something went wrong"))

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        if not isinstance(value, EmulatorError):
            super().log_exception(typ, value, tb)


class RuStoreHandler(_JsonHandler):
    """A Public API endpoint: counts the call, applies faults, runs due transitions, checks the token."""

    endpoint: ClassVar[str] = ""
    needs_token: ClassVar[bool] = True
    fault: Fault | None = None
    key: RegisteredKey

    @property
    def sandbox(self) -> bool:
        """Whether the request came in on a `/public/sandbox/...` path."""
        return self.request.path.startswith("/public/sandbox/")

    async def prepare(self) -> None:
        emulator = self.emulator
        emulator.request_started(self.endpoint)
        self.fault = emulator.faults.take(self.endpoint, tuple(str(a) for a in self.path_args))
        fault = self.fault
        if fault is not None and fault.mode in ("slow", "timeout"):
            await emulator.sleep(fault.delay_s)
            if fault.mode == "timeout":
                self.set_status(504)
                self.finish(_GATEWAY_PAGE.format(status="504 Gateway Time-out"))
                return
        if fault is not None and fault.mode == "error":
            self.set_status(fault.status)
            self.finish(_GATEWAY_PAGE.format(status=f"{fault.status} Service Unavailable"))
            return
        if fault is not None and fault.mode == "malformed":
            self.set_header("Content-Type", "application/json")
            self.finish('{"code":"OK","message":null,"body":{"invoiceId":')
            return
        if fault is not None and fault.mode == "expired_token":
            self.render_error(EmulatorError(401, TOKEN_EXPIRED))
            return
        emulator.run_due()
        if self.needs_token:
            try:
                self.key = emulator.keys.check_token(self.request.headers.get("Public-Token"), emulator.clock.now())
            except EmulatorError as exc:
                self.render_error(exc)
                return
            if self.sandbox and not self.key.sandbox:
                self.render_error(EmulatorError(403, "Forbidden"))

    def on_finish(self) -> None:
        self.emulator.request_finished()

    def require_app(self, app_id: int, missing: EmulatorError | None = None) -> None:
        """The token's key must cover the app: 403 Forbidden, or `missing` to hide the record's existence."""
        if not self.key.covers(app_id):
            raise missing or EmulatorError(403, "Forbidden")

    def ok(self, body: Any, *, wrap: bool = True) -> None:
        """Success: the standard envelope, or the bare object for V3's unwrapped answers."""
        if self.fault is not None and self.fault.mode == "lowercase":
            body = lowercase_statuses(body)
        if wrap:
            body = {"code": "OK", "message": None, "body": body, "timestamp": iso(self.emulator.clock.now())}
        self.send_json(body)

    def render_error(self, error: EmulatorError) -> None:
        """RuStore's error envelope with the HTTP status suggested by API.md §7.2."""
        self.send_json({"code": error.code, "message": error.message, "body": None,
                        "timestamp": iso(self.emulator.clock.now())}, error.status)


class ControlHandler(_JsonHandler):
    """An `/_emulator/` control endpoint; optionally guarded by the `X-Emulator-Token` header."""

    def prepare(self) -> None:
        expected = self.emulator.control_token
        if expected is not None and self.request.headers.get("X-Emulator-Token") != expected:
            raise EmulatorError(401, "missing or wrong X-Emulator-Token")

    def render_error(self, error: EmulatorError) -> None:
        """Plain JSON error with the SDK error code when there is one."""
        self.send_json({"error": error.message, "errorCode": error.error_code}, error.status)


class NotFoundHandler(RuStoreHandler):
    """Unknown paths answer like RuStore's gateway would: a NOT_FOUND envelope."""

    needs_token = False

    async def prepare(self) -> None:
        self.emulator.request_started("unknown")
        raise EmulatorError(404, "Not found", code="NOT_FOUND")
