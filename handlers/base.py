"""APIHandler: the one base for every API route — JSON in/out, validation, auth, limits, errors.

Order of work for each request, all in `prepare()` (the body is streamed, so this runs before
it is read): request id, HTTPS rule, CORS, rate limit, declared body size, authentication.
A verb method needs a user's access token unless decorated with `@public`, or with `@server_api_key`
(a key from SERVER_API_KEYS instead); `check_routes` refuses to start an application with a route
that is none of these.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, TypeVar

import sentry_sdk
import tornado.web
from loguru import logger
from marshmallow import Schema, ValidationError

from core import strict_json
from core.context import AppContext
from core.gate import GateResult
from core.metrics import MONGO_UNAVAILABLE
from core.mongo_health import is_unavailable, short_reason
from core.ratelimit import Verdict
from core.tokens import AccessClaims, InvalidToken
from documents.common import DomainError
from handlers.docs import Operation, operation_of
from handlers.errors import (
    STATUS_REASON,
    ApiError,
    database_unavailable,
    domain_error,
    expected_error,
    is_credentials_problem,
    is_expected,
)
from handlers.messages import localize
from handlers.netinfo import client_address, request_scheme

__all__ = ["APIHandler", "ApiError", "CurrentUser", "public", "server_api_key", "verb_auth"]

F = TypeVar("F", bound=Callable[..., Any])
REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
# Probes from load balancers and Prometheus come over the internal network in plain HTTP.
HTTPS_EXEMPT_PATHS = ("/api/health", "/api/ready", "/metrics")


def drain_limit(max_body_bytes: int) -> int:
    """How much of an oversized chunked body is read (and dropped) before answering 413 and closing the connection.

    Most HTTP clients (aiohttp, requests) read no answer before they have sent the whole body, so a body is
    drained, unread, up to this size to give them the 413; past it the connection is cut (BODY_TIMEOUT bounds
    slow senders).
    """
    return max(max_body_bytes * 4, 16 << 20)


def public(method: F) -> F:
    """Mark a verb method as reachable without an access token."""
    method.__public__ = True  # type: ignore[attr-defined]
    return method


def server_api_key(method: F) -> F:
    """Mark a verb as server-to-server: it takes `Authorization: Bearer sk_...` from SERVER_API_KEYS, never a user token."""
    method.__auth__ = "api_key"  # type: ignore[attr-defined]
    return method


def verb_auth(method: Any) -> str:
    """How a verb is authenticated: "public", "api_key" or "bearer" (a user's access token)."""
    if getattr(method, "__public__", False):
        return "public"
    return getattr(method, "__auth__", "bearer")


@dataclass(frozen=True)
class CurrentUser:
    """Who is calling: verified from the access token and the live session."""

    user_id: str
    session_id: str


@tornado.web.stream_request_body
class APIHandler(tornado.web.RequestHandler):
    """Base for all API handlers; subclasses implement verbs and call `load()` / `write_json()`."""

    auth_budget = False  # True on register/login/refresh: the stricter per-IP budget applies too

    def initialize(self) -> None:
        self._chunks: list[bytes] = []
        self._received = 0
        self._too_large = False
        self._json: Any = None
        self.request_id = ""
        self._sticky: dict[str, str] = {}
        self.user: CurrentUser | None = None
        self.started = time.perf_counter()

    # ---- shared objects -------------------------------------------------------------------
    @property
    def ctx(self) -> AppContext:
        """The process context (settings, database, Redis, pools)."""
        return self.application.settings["ctx"]

    @property
    def db(self) -> Any:
        """The MongoDB database."""
        return self.ctx.db

    @property
    def user_id(self) -> str:
        """The authenticated user's id (only on authenticated verbs)."""
        assert self.user is not None
        return self.user.user_id

    @property
    def client_ip(self) -> str:
        """The caller's address, believing X-Forwarded-For only from TRUSTED_PROXIES."""
        return client_address(self.request, self.ctx.settings.trusted_networks)

    # ---- request lifecycle ----------------------------------------------------------------
    def set_sticky_header(self, name: str, value: str) -> None:
        """Set a header that must survive an error response (send_error clears the others)."""
        self._sticky[name] = value
        self.set_header(name, value)

    def set_default_headers(self) -> None:
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("X-Frame-Options", "DENY")
        self.set_header("Referrer-Policy", "no-referrer")
        self.set_header("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
        self.set_header("Cache-Control", "no-store")
        self.clear_header("Server")

    async def prepare(self) -> None:
        incoming = self.request.headers.get("X-Request-ID", "")
        self.request_id = incoming if REQUEST_ID.match(incoming) else uuid.uuid4().hex
        self.set_sticky_header("X-Request-ID", self.request_id)
        self._check_declared_size()
        try:
            if self.request.method not in self.allowed_methods():
                raise tornado.web.HTTPError(405)
            self._apply_https_rule()
            self._apply_cors()
            api_key = self.request.method != "OPTIONS" and self._verb_auth() == "api_key"
            needs_auth = self.request.method != "OPTIONS" and self._verb_auth() == "bearer"
            claims = self._verify_token() if needs_auth else None
            # One Redis round trip answers both the rate limit and the session check.
            session_id = claims.session_id if isinstance(claims, AccessClaims) else None
            gate = await self.ctx.gate.check(self.client_ip, session_id)
            await self._apply_rate_limits(gate.verdict)
            if api_key:
                self._check_api_key()  # after the rate limit: guessing keys costs budget
            if needs_auth:
                await self._authenticate(claims, gate)
        except tornado.web.HTTPError as exc:
            self._reject_after_body(exc)
        except Exception as exc:
            if not is_unavailable(exc):
                raise
            self._note_database_unavailable(exc)  # the session check reached a MongoDB that is down
            self._reject_after_body(database_unavailable())

    def _reject_after_body(self, exc: tornado.web.HTTPError) -> None:
        # An answer written before the request is fully read makes Tornado close the connection
        # (it cannot know where the next request starts), which keep-alive clients see as a
        # connection error instead of our 401/429. So rejections are raised from the verb slot,
        # after the (bounded) body has arrived; only an oversized body is refused up front.
        def rejected(*args: Any, **kwargs: Any) -> None:
            raise exc

        setattr(self, self.request.method.lower(), rejected)

    def data_received(self, chunk: bytes) -> None:
        self._received += len(chunk)
        if self._finished:
            return  # answered early (below); the connection closes once the answer is written
        if self._received > self.ctx.settings.max_body_bytes:
            if not self._too_large:  # keep draining, answer 413 once the body has arrived, whatever the verb
                self._reject_after_body(self._payload_too_large())
            self._too_large = True
            self._chunks.clear()
            if self._received > drain_limit(self.ctx.settings.max_body_bytes):
                # Past the drain limit: answer now (Tornado would answer a bare 400) and drop the connection.
                self._answer_too_large()
        else:
            self._chunks.append(chunk)

    def _payload_too_large(self) -> ApiError:
        return ApiError(413, "payload_too_large", f"Request body exceeds {self.ctx.settings.max_body_bytes} bytes.")

    def _answer_too_large(self) -> None:
        self.send_error(413, exc_info=(ApiError, self._payload_too_large(), None))

    def _verb_auth(self) -> str:
        return verb_auth(getattr(self, self.request.method.lower(), None))

    def _check_api_key(self) -> None:
        """Accept only a key from SERVER_API_KEYS, compared in constant time against every configured key."""
        scheme, _, given = self.request.headers.get("Authorization", "").partition(" ")
        # Digests have one length, so the comparison reveals nothing about a key's length either.
        candidate = hashlib.sha256(given.strip().encode() if scheme.lower() == "bearer" else b"").digest()
        matched = False
        for key in self.ctx.settings.server_api_keys:
            matched |= hmac.compare_digest(candidate, hashlib.sha256(key.encode()).digest())
        if not matched:
            raise ApiError(401, "invalid_api_key", "A valid server API key is required.",
                           headers={"WWW-Authenticate": 'Bearer realm="server"'})

    def _apply_https_rule(self) -> None:
        scheme = request_scheme(self.request, self.ctx.settings.trusted_networks)
        if scheme == "https":
            self.set_sticky_header("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
        elif self.ctx.settings.is_production and self.request.path not in HTTPS_EXEMPT_PATHS:
            raise ApiError(403, "https_required", "This API is only served over HTTPS.")

    def _apply_cors(self) -> None:
        origin = self.request.headers.get("Origin")
        if not origin:
            return
        self.set_sticky_header("Vary", "Origin")
        if origin in self.ctx.settings.cors_origins:
            self.set_sticky_header("Access-Control-Allow-Origin", origin)
            self.set_sticky_header(
                "Access-Control-Expose-Headers",
                "X-Request-ID, Retry-After, ETag, X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset",
            )
        elif self.request.method == "OPTIONS":
            raise ApiError(403, "cors_origin_not_allowed", "This origin may not call the API.")

    async def _apply_rate_limits(self, verdict: Verdict) -> None:
        self.set_sticky_header("X-RateLimit-Limit", str(verdict.limit))
        self.set_sticky_header("X-RateLimit-Remaining", str(verdict.remaining))
        self.set_sticky_header("X-RateLimit-Reset", str(int(verdict.reset_at)))
        if not verdict.allowed:
            raise ApiError(429, "rate_limited", "Too many requests; slow down.",
                           headers={"Retry-After": str(verdict.retry_after)})
        if self.auth_budget and self.request.method != "OPTIONS":
            strict = await self.ctx.limiter.hit("auth", self.client_ip)
            if not strict.allowed:
                raise ApiError(429, "rate_limited", "Too many sign-in requests from this address.",
                               headers={"Retry-After": str(strict.retry_after)})

    def _check_declared_size(self) -> None:
        declared = self.request.headers.get("Content-Length")
        limit = self.ctx.settings.max_body_bytes
        if declared and declared.isdigit() and int(declared) > limit:
            raise ApiError(413, "payload_too_large", f"Request body exceeds {limit} bytes.")
        # Tornado's own cap answers a bare 400; ours (data_received) answers first, with the JSON shape.
        self.request.connection.set_max_body_size(drain_limit(limit) + (1 << 20))

    def _verify_token(self) -> AccessClaims | ApiError:
        """Check the bearer token's signature and claims (no I/O); an ApiError describes a bad one."""
        header = self.request.headers.get("Authorization")
        if header is None or not header.strip():
            return ApiError(401, "missing_token", "An access token is required.",
                            headers={"WWW-Authenticate": 'Bearer realm="api"'})
        # A header that is there but is not `Bearer <token>` (garbage, another scheme, no token) is a bad token.
        scheme, _, token = header.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return ApiError(401, "invalid_token", "The access token is invalid or expired.",
                            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
        try:
            return self.ctx.tokens.verify(token.strip())
        except InvalidToken:
            return ApiError(401, "invalid_token", "The access token is invalid or expired.",
                            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})

    async def _authenticate(self, claims: AccessClaims | ApiError, gate: GateResult) -> None:
        if isinstance(claims, ApiError):
            raise claims
        if not await self.ctx.sessions.resolve(gate.session_value, claims.session_id, claims.user_id,
                                               redis_ok=gate.redis_ok):
            raise ApiError(401, "session_ended", "This session has ended; sign in again.",
                           headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
        self.user = CurrentUser(claims.user_id, claims.session_id)

    # ---- input ----------------------------------------------------------------------------
    def json_body(self) -> Any:
        """The request body parsed as JSON (an object unless `allow_any`); 400/413/415 otherwise."""
        if self._too_large:
            raise ApiError(413, "payload_too_large", f"Request body exceeds {self.ctx.settings.max_body_bytes} bytes.")
        if self._json is not None:
            return self._json
        raw = b"".join(self._chunks)
        if not raw.strip():
            self._json = {}
            return self._json
        ctype = self.request.headers.get("Content-Type", "application/json").split(";")[0].strip().lower()
        if ctype not in ("application/json", "") and not ctype.endswith("+json"):
            raise ApiError(415, "unsupported_media_type", "Send the body as application/json.")
        try:
            value = strict_json.loads(raw)
        except strict_json.StrictJSONError as exc:
            raise ApiError(400, "invalid_json", str(exc)) from None
        if not isinstance(value, dict):
            raise ApiError(400, "invalid_json", "The request body must be a JSON object.")
        self._json = value
        return value

    def raw_body(self) -> bytes:
        """The request body bytes as received (webhooks verify them before parsing)."""
        if self._too_large:
            raise ApiError(413, "payload_too_large", f"Request body exceeds {self.ctx.settings.max_body_bytes} bytes.")
        return b"".join(self._chunks)

    def operation(self) -> Operation | None:
        """The @api declaration of the verb being served."""
        return operation_of(getattr(type(self), self.request.method.lower(), None))

    def _declared(self, schema: Schema | None, kind: str) -> Schema:
        # Validate with exactly what the OpenAPI document declares, so the two cannot drift apart.
        op = self.operation()
        declared = getattr(op, kind, None) if op is not None else None
        if schema is None:
            if declared is None:
                raise RuntimeError(f"{type(self).__name__}.{self.request.method.lower()} declares no {kind} schema")
            return declared()
        if declared is not None and type(schema) is not declared:
            raise RuntimeError(f"{type(self).__name__} validates its {kind} with {type(schema).__name__} "
                               f"but documents {declared.__name__}")
        return schema

    def load(self, schema: Schema | None = None) -> Any:
        """Validate the JSON body with the verb's declared schema; 400 with per-field details."""
        return self.validate(self._declared(schema, "body"), self.json_body())

    def load_query(self, schema: Schema | None = None) -> Any:
        """Validate query arguments (single-valued) with the verb's declared query schema."""
        args = {k: self.get_query_argument(k) for k in self.request.query_arguments}
        return self.validate(self._declared(schema, "query"), args)

    @staticmethod
    def validate(schema: Schema, payload: Any) -> Any:
        """Run a marshmallow schema; 400 validation_failed with per-field messages."""
        try:
            return schema.load(payload)
        except ValidationError as err:
            raise ApiError(400, "validation_failed", "Some fields are invalid.",
                           details={"fields": err.normalized_messages()}) from None

    # ---- output ---------------------------------------------------------------------------
    def compute_etag(self) -> None:
        return None  # API answers are personal and no-store; an ETag would only cost a hash

    def write_json(self, payload: Any, status: int = 200) -> None:
        """Finish the request with a JSON body."""
        self.set_status(status)
        self.finish(json.dumps(payload, ensure_ascii=False, separators=(",", ":"), default=str))

    def write_no_content(self) -> None:
        """Finish with 204 and no body."""
        self.set_status(204)
        self.clear_header("Content-Type")
        self.finish()

    async def options(self, *args: Any, **kwargs: Any) -> None:
        """CORS preflight: allowed origins get the methods this route implements."""
        if self.request.headers.get("Origin"):
            self.set_header("Access-Control-Allow-Methods", ", ".join(self.allowed_methods()))
            self.set_header("Access-Control-Allow-Headers",
                            "Authorization, Content-Type, Idempotency-Key, If-None-Match, X-Request-ID")
            self.set_header("Access-Control-Max-Age", "600")
        self.set_header("Allow", ", ".join(self.allowed_methods()))
        self.write_no_content()

    options.__public__ = True  # type: ignore[attr-defined]

    @classmethod
    def allowed_methods(cls) -> list[str]:
        """The HTTP methods this handler class implements."""
        base = tornado.web.RequestHandler
        return [m for m in HTTP_METHODS if getattr(cls, m.lower(), None) is not getattr(base, m.lower(), None)]

    # ---- errors ---------------------------------------------------------------------------
    async def run(self, awaitable: Awaitable[Any]) -> Any:
        """Await a documents/ or rustore/ call, translating domain errors into API errors."""
        try:
            return await awaitable
        except DomainError as exc:
            raise domain_error(exc) from None

    def send_error(self, status_code: int = 500, **kwargs: Any) -> None:
        # Domain, capacity and RuStore errors escaping a verb are expected outcomes with their own status.
        mapped = expected_error(kwargs.get("exc_info", (None, None, None))[1])
        if mapped is not None:
            status_code = mapped.status_code
        super().send_error(status_code, **kwargs)

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        if is_credentials_problem(value):
            logger.error("RuStore credentials problem: {}", value, request_id=self.request_id)
            return
        if is_unavailable(value):
            self._note_database_unavailable(value)
            return
        if is_expected(value):
            return  # the access log line records the status
        logger.opt(exception=(typ, value, tb)).error(
            "unhandled error", request_id=self.request_id, method=self.request.method, path=self.request.path
        )
        sentry_sdk.capture_exception(value)  # a no-op unless SENTRY_DSN started the SDK

    def _note_database_unavailable(self, exc: BaseException) -> None:
        MONGO_UNAVAILABLE.labels("api").inc()
        logger.warning("database unavailable: {}", short_reason(exc), request_id=self.request_id,
                       method=self.request.method, path=self.request.path)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        details = None
        exc = expected_error(exc) or exc
        for name, value in self._sticky.items():
            self.set_header(name, value)
        if isinstance(exc, ApiError):
            reason, message, details = exc.api_reason, exc.message, exc.details
            for name, value in exc.headers.items():
                self.set_header(name, value)
        elif isinstance(exc, tornado.web.HTTPError) and status_code < 500:
            reason = STATUS_REASON.get(status_code, "error")
            message = HTTPStatus(status_code).phrase
        else:
            status_code = 500 if status_code < 500 or exc is not None else status_code
            reason = STATUS_REASON.get(status_code, "internal_error")
            message = "Internal server error." if status_code == 500 else HTTPStatus(status_code).phrase
        if status_code == 405:
            self.set_header("Allow", ", ".join(self.allowed_methods()))
            message = f"Method {self.request.method} is not allowed here."
        self.set_status(status_code)
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        message = localize(reason, message, self.request.headers.get("Accept-Language"))
        body: dict[str, Any] = {"error": message, "code": status_code, "reason": reason}
        if details:
            body["details"] = details
        self.finish(json.dumps(body, ensure_ascii=False, separators=(",", ":"), default=str))
