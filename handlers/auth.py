"""Accounts and sessions: register, login, refresh-token rotation, logout, session management."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from marshmallow import ValidationError, fields, validate

from documents import accounts
from documents.accounts import MAX_CHARS, MIN_CHARS, password_problem
from documents.common import InvalidCredentials
from handlers import account_hooks
from handlers.base import ApiError, APIHandler, public
from handlers.docs import api
from handlers.messages import LOCALES
from handlers.schemas import Bool, CamelSchema, Email, Identifier, Text, iso


class Password(fields.String):
    """A new password exactly as typed: never stripped, 8 to 72 characters (documents/accounts/passwords.py)."""

    DOCUMENTED = {"format": "password", "minLength": MIN_CHARS, "maxLength": MAX_CHARS,
                  "description": "8 to 72 characters, used exactly as typed (may start with '$': it only reaches bcrypt)."}

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(metadata={**self.DOCUMENTED, **(kwargs.pop("metadata", None) or {})}, **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        problem = password_problem(text)
        if problem:
            raise ValidationError(problem)
        return text


class SignInPassword(fields.String):
    """A password to check: any 1 to 72 characters (older accounts may have fewer than 8); a wrong one is a 401."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(validate=validate.Length(1, MAX_CHARS),
                         metadata={"format": "password", "minLength": 1, "maxLength": MAX_CHARS}, **kwargs)


class CredentialsSchema(CamelSchema):
    """Register body."""

    email = Email(required=True)
    password = Password(required=True)
    device_id = Identifier(max_length=128, load_default=None)


class LoginSchema(CredentialsSchema):
    """Login body: the deviceToken from an earlier sign-in on this device spares it the per-email failure budget."""

    password = SignInPassword(required=True)
    device_token = Text(max_length=2048, load_default=None, metadata={
        "description": "The deviceToken an earlier sign-in on this device returned. deviceId alone grants nothing."})


class RegisterSchema(CredentialsSchema):
    """Register body: the credentials plus the language of the account's e-mails (else from Accept-Language)."""

    locale = fields.String(validate=validate.OneOf(LOCALES))


class TokenPairSchema(CamelSchema):
    """What register, login and refresh answer."""

    user_id = fields.String(required=True)
    access_token = fields.String(required=True)
    refresh_token = fields.String(required=True)
    token_type = fields.String(required=True, metadata={"enum": ["Bearer"]})
    expires_in = fields.Integer(required=True, metadata={"description": "Access token lifetime in seconds."})


class SignInSchema(TokenPairSchema):
    """What register, login and the VK/Google sign-ins answer: a token pair and this device's deviceToken."""

    device_token = fields.String(required=True, metadata={
        "description": "Keep it on the device and send it with later logins: they then skip the per-email "
                       "failed-login budget, so others failing logins for this email cannot lock this device out."})


class RefreshSchema(CamelSchema):
    """Refresh body."""

    refresh_token = Text(required=True, min_length=1, max_length=512)


class LogoutSchema(CamelSchema):
    """Logout body: end this session, the one owning refreshToken, or all of the user's sessions."""

    refresh_token = Text(min_length=1, max_length=512, load_default=None)
    all = Bool(load_default=False)


class SessionSchema(CamelSchema):
    """One active session as listed to its owner."""

    id = fields.String(required=True)
    device_id = fields.String(allow_none=True)
    created_at = fields.String(required=True)
    last_used_at = fields.String(required=True)
    current = fields.Boolean(required=True)


class SessionListSchema(CamelSchema):
    """The caller's active sessions."""

    sessions = fields.List(fields.Nested(SessionSchema), required=True)


class AuthHandlerMixin(APIHandler):
    """Token issuing shared by register, login and refresh."""

    auth_budget = True

    async def start_session(self, user_id: Any, device_id: str | None) -> tuple[str, str]:
        """Create a session; return (session id, refresh token)."""
        s = self.ctx.settings
        session, refresh = await accounts.create_session(
            self.db, user_id, device_id, self.ctx.now(),
            idle_ttl=timedelta(seconds=s.refresh_idle_ttl_s), absolute_ttl=timedelta(seconds=s.refresh_absolute_ttl_s),
        )
        return session["_id"], refresh

    def write_tokens(self, user_id: Any, session_id: str, refresh: str, status: int = 200, *,
                     device_id: str | None = None, sign_in: bool = True) -> None:
        """Answer with a fresh access token and the given refresh token (and, on a sign-in, a deviceToken)."""
        access, expires_in = self.ctx.tokens.issue(str(user_id), session_id)
        answer = {"userId": str(user_id), "accessToken": access, "refreshToken": refresh,
                  "tokenType": "Bearer", "expiresIn": expires_in}
        if sign_in:
            answer["deviceToken"] = self.ctx.tokens.issue_device(str(user_id), device_id)
        self.write_json(answer, status)


class RegisterHandler(AuthHandlerMixin):
    """POST /api/auth/register — create an account and sign in."""

    @public
    @api("Create an account and sign in", body=RegisterSchema, responses={201: SignInSchema},
         errors={409: ["email_taken"], 503: ["server_busy"]})
    async def post(self) -> None:
        body = self.load()
        password_hash = await self.ctx.passwords.hash(body["password"])
        user = await self.run(accounts.create_user(self.db, body["email"], password_hash, body["device_id"], self.ctx.now()))
        await account_hooks.registered(self, user, body.get("locale"))
        session_id, refresh = await self.start_session(user["_id"], body["device_id"])
        self.write_tokens(user["_id"], session_id, refresh, 201, device_id=body["device_id"])


class LoginHandler(AuthHandlerMixin):
    """POST /api/auth/login — email and password in, token pair out."""

    @public
    @api("Sign in with email and password", body=LoginSchema, responses={200: SignInSchema},
         errors={401: ["invalid_credentials"], 429: ["too_many_login_attempts"], 503: ["server_busy"]})
    async def post(self) -> None:
        body = self.load()
        email, limiter = body["email"], self.ctx.limiter
        user = await accounts.find_user_by_email(self.db, email)
        # Only a deviceToken we signed for this account proves a device that signed in before;
        # a deviceId is chosen by the client, so anyone can send the victim's.
        known_device = user is not None and self.ctx.tokens.device_user(body["device_token"]) == str(user["_id"])
        pair = limiter.failure_budget("login_pair", email, self.client_ip)
        per_email = limiter.failure_budget("login_email", email)
        reserved = [pair] if known_device else [pair, per_email]
        verdict = await limiter.reserve_failures(*reserved)
        if not verdict.allowed:
            raise self.too_many(verdict.retry_after)
        checked = False
        try:
            ok = await self.ctx.passwords.check(body["password"], user.get("password_hash") if user else None)
            checked = True
        finally:
            if not checked:  # no guess was made (e.g. server_busy): the reserved failure goes back
                for budget in reserved:
                    await limiter.release_failure(budget)
        if not ok or user is None:
            if known_device:  # exempt from the per-email check, still counted in it
                await limiter.hit("login_email", email)
            raise InvalidCredentials("Email or password is incorrect.")
        await limiter.clear("login_pair", email, self.client_ip)
        if not known_device:
            await limiter.release_failure(per_email)
        await accounts.remember_device(self.db, user["_id"], body["device_id"], self.ctx.now())
        session_id, refresh = await self.start_session(user["_id"], body["device_id"])
        self.write_tokens(user["_id"], session_id, refresh, device_id=body["device_id"])

    @staticmethod
    def too_many(retry_after: int) -> ApiError:
        """429 for too many failed logins."""
        return ApiError(429, "too_many_login_attempts", "Too many failed sign-in attempts; try again later.",
                        headers={"Retry-After": str(retry_after)})


class RefreshHandler(AuthHandlerMixin):
    """POST /api/auth/refresh — rotate the refresh token, get a new access token."""

    @public
    @api("Exchange a refresh token for a new pair (rotation)", body=RefreshSchema, responses={200: TokenPairSchema},
         errors={401: ["invalid_refresh_token", "refresh_token_reused"]})
    async def post(self) -> None:
        body = self.load()
        s = self.ctx.settings
        try:
            session, refresh = await accounts.rotate_refresh_token(
                self.db, body["refresh_token"], self.ctx.now(),
                idle_ttl=timedelta(seconds=s.refresh_idle_ttl_s), grace=timedelta(seconds=s.refresh_reuse_grace_s),
            )
        except accounts.RefreshTokenReused as exc:
            await self.ctx.sessions.mark_revoked([exc.session_id])
            raise
        self.write_tokens(session["user_id"], session["_id"], refresh, sign_in=False)


class LogoutHandler(APIHandler):
    """POST /api/auth/logout — end this session, another of the user's sessions, or all of them."""

    @api("End this session, the one owning refreshToken, or all of them", body=LogoutSchema, responses={204: None},
         errors={400: ["invalid_refresh_token"]})
    async def post(self) -> None:
        body = self.load()
        user_id = accounts.parse_id(self.user_id)
        now = self.ctx.now()
        if body["all"]:
            ended = await accounts.revoke_user_sessions(self.db, user_id, "logout_all", now)
        else:
            session_id = self.user.session_id if self.user else ""
            if body["refresh_token"]:
                owner = await accounts.find_session_by_refresh_token(self.db, body["refresh_token"])
                if owner is None or owner["user_id"] != user_id:
                    raise ApiError(400, "invalid_refresh_token", "This refresh token is not one of your sessions.")
                session_id = owner["_id"]
            await accounts.revoke_session(self.db, session_id, "logout", now, user_id=user_id)
            ended = [session_id]
        await self.ctx.sessions.mark_revoked(ended)
        self.write_no_content()


class SessionsHandler(APIHandler):
    """GET /api/auth/sessions — the caller's active sessions."""

    @api("List your active sessions", responses={200: SessionListSchema})
    async def get(self) -> None:
        user_id = accounts.parse_id(self.user_id)
        found = await accounts.list_active_sessions(self.db, user_id, self.ctx.now())
        current = self.user.session_id if self.user else None
        self.write_json({"sessions": [
            {"id": s["_id"], "deviceId": s.get("device_id"), "createdAt": iso(s["created_at"]),
             "lastUsedAt": iso(s["last_used_at"]), "current": s["_id"] == current}
            for s in found
        ]})


class SessionHandler(APIHandler):
    """DELETE /api/auth/sessions/{id} — end one of the caller's sessions."""

    @api("End one of your sessions", responses={204: None}, errors={404: ["session_not_found"]})
    async def delete(self, session_id: str) -> None:
        user_id = accounts.parse_id(self.user_id)
        await self.run(accounts.end_session_for_user(self.db, user_id, session_id, "ended_by_user", self.ctx.now()))
        await self.ctx.sessions.mark_revoked([session_id])
        self.write_no_content()


default_handlers = [
    (r"/api/auth/register", RegisterHandler),
    (r"/api/auth/login", LoginHandler),
    (r"/api/auth/refresh", RefreshHandler),
    (r"/api/auth/logout", LogoutHandler),
    (r"/api/auth/sessions", SessionsHandler),
    (r"/api/auth/sessions/([A-Za-z0-9_]{1,64})", SessionHandler),
]
