"""Account lifecycle endpoints: forgot/reset password, e-mail verification and resend, account deletion."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from limits import RateLimitItemPerSecond
from marshmallow import fields

from core import accounts
from documents import accounts as accounts_doc
from documents.accounts import has_real_email
from handlers import account_hooks
from handlers.auth import Password
from handlers.base import ApiError, APIHandler, public
from handlers.docs import api
from handlers.schemas import CamelSchema, Email, Text
from handlers.user import UpdateAccountHandler, bounded_secret

RECENT_SIGN_IN = timedelta(minutes=10)  # accounts without a password prove themselves by a fresh sign-in


class ForgotSchema(CamelSchema):
    """POST /api/auth/password/forgot body."""

    email = Email(required=True)


class ResetSchema(CamelSchema):
    """POST /api/auth/password/reset body."""

    token = Text(required=True, min_length=1, max_length=256)
    new_password = Password(required=True)


class TokenSchema(CamelSchema):
    """POST /api/auth/email/verify body."""

    token = Text(required=True, min_length=1, max_length=256)


class AcceptedSchema(CamelSchema):
    """A request accepted for e-mail delivery."""

    status = fields.String(required=True, metadata={"enum": ["accepted"]})


class ResetDoneSchema(CamelSchema):
    """The password was reset."""

    status = fields.String(required=True, metadata={"enum": ["password_reset"]})


class VerifiedSchema(CamelSchema):
    """The address is verified."""

    email = fields.String(required=True)
    email_verified = fields.Boolean(required=True)


class DeleteAccountSchema(CamelSchema):
    """DELETE /api/user body: the password; accounts without one send {} within 10 minutes of signing in."""

    password = fields.String(load_default=None, validate=bounded_secret,
                             metadata={"format": "password", "minLength": 1, "maxLength": 1024})


class AccountMailMixin(APIHandler):
    """Shared rules of endpoints that send account mail: mail must be configured, budgets per address and IP."""

    def origin(self) -> str:
        """This server as the caller reached it (link base outside production when PUBLIC_BASE_URL is unset)."""
        return account_hooks.origin(self)

    def require_mail(self) -> None:
        """503 mail_not_configured in production without SMTP_URL."""
        if not self.ctx.mailer.available:
            raise ApiError(503, "mail_not_configured", "E-mail is not configured on this server.")

    async def spend_mail_budget(self, email: str) -> None:
        """One unit of the per-address and per-IP mail budgets, or 429 rate_limited."""
        limiter, s = self.ctx.limiter, self.ctx.settings
        if "account_mail_email" not in limiter.items:  # the budgets live with the feature that spends them
            limiter.items["account_mail_email"] = RateLimitItemPerSecond(s.account_mail_per_email, s.account_mail_window_s)
            limiter.items["account_mail_ip"] = RateLimitItemPerSecond(s.account_mail_per_ip, s.account_mail_window_s)
        for budget, key in (("account_mail_email", email), ("account_mail_ip", self.client_ip)):
            verdict = await limiter.hit(budget, key)
            if not verdict.allowed:
                raise ApiError(429, "rate_limited", "Too many e-mails requested; try again later.",
                               headers={"Retry-After": str(verdict.retry_after)})


class ForgotPasswordHandler(AccountMailMixin):
    """POST /api/auth/password/forgot — mail a reset link; the same 202 whether or not the account exists."""

    auth_budget = True

    @public
    @api("Ask for a password reset link by e-mail (202 whatever the address)", body=ForgotSchema,
         responses={202: AcceptedSchema}, errors={429: ["rate_limited"], 503: ["mail_not_configured"]})
    async def post(self) -> None:
        body = self.load()
        self.require_mail()
        await self.spend_mail_budget(body["email"])
        # The lookup and the mail happen after the answer, so its timing says nothing about the account.
        self.ctx.spawn(accounts.forgot_password(self.ctx, body["email"], self.origin()))
        self.write_json({"status": "accepted"}, 202)


class ResetPasswordHandler(AccountMailMixin):
    """POST /api/auth/password/reset — set a new password with a reset link's token; every session ends."""

    auth_budget = True

    @public
    @api("Set a new password with the token from a reset link (every session ends)", body=ResetSchema,
         responses={200: ResetDoneSchema},
         errors={400: ["invalid_or_expired_token"], 503: ["mail_not_configured", "server_busy"]})
    async def post(self) -> None:
        body = self.load()
        self.require_mail()
        password_hash = await self.ctx.passwords.hash(body["new_password"])  # before the token is used up
        await self.run(accounts.reset_password(self.ctx, body["token"], password_hash))
        self.write_json({"status": "password_reset"})


class VerifyEmailHandler(APIHandler):
    """POST /api/auth/email/verify — confirm the address a verification link was sent to."""

    auth_budget = True

    @public
    @api("Confirm an e-mail address with the token from a verification link", body=TokenSchema,
         responses={200: VerifiedSchema}, errors={400: ["invalid_or_expired_token"], 409: ["email_taken"]})
    async def post(self) -> None:
        body = self.load()
        user = await self.run(accounts.verify_email(self.ctx, body["token"]))
        self.write_json({"email": user["email"], "emailVerified": True})


class ResendVerificationHandler(AccountMailMixin):
    """POST /api/auth/email/verify/resend — a new verification link for the pending or unverified address."""

    @api("Send a new verification link (to the pending address, else the unverified current one)",
         responses={202: AcceptedSchema},
         errors={404: ["user_not_found"], 409: ["email_already_verified"], 429: ["rate_limited"],
                 503: ["mail_not_configured"]})
    async def post(self) -> None:
        self.require_mail()
        user = await self.run(accounts_doc.get_user(self.db, self.user_id))
        target = user.get("pending_email") or (
            user["email"] if has_real_email(user) and not user.get("email_verified") else None)
        if target is None:
            raise ApiError(409, "email_already_verified", "There is no unverified e-mail address on this account.")
        await self.spend_mail_budget(target)
        await accounts.send_verification(self.ctx, user, target, self.origin())
        self.write_json({"status": "accepted"}, 202)


class DeleteAccountHandler(APIHandler):
    """DELETE /api/user — delete the caller's account: renewals cancelled, sessions ended, personal data erased."""

    @api("Delete your account (password, or a sign-in within 10 minutes for accounts without one)",
         body=DeleteAccountSchema, responses={204: None},
         errors={403: ["invalid_current_password", "current_password_required", "reauthentication_required"],
                 404: ["user_not_found"],
                 429: ["too_many_login_attempts"], 502: ["rustore_rejected"], 503: ["rustore_unavailable"]})
    async def delete(self) -> None:
        body = self.load()
        user = await self.run(accounts_doc.get_user(self.db, self.user_id))
        if user.get("password_hash"):
            if body["password"] is None:
                # Depends on the account, not the body's shape (the document cannot say it): 403, as on update.
                raise ApiError(403, "current_password_required", "This account has a password: send password.",
                               details={"fields": {"password": ["Missing data for required field."]}})
            # The same failure budgets as sign-in: a stolen access token must not guess its way to deletion.
            await UpdateAccountHandler.check_current_password(self, user, body["password"])  # type: ignore[arg-type]
        else:
            await self.require_recent_sign_in()
        await self.run(accounts.delete_account(self.ctx, user["_id"]))
        self.write_no_content()

    async def require_recent_sign_in(self) -> None:
        """403 reauthentication_required unless this session started within RECENT_SIGN_IN."""
        session = await self.db[accounts_doc.SESSIONS].find_one({"_id": self.user.session_id}, {"created_at": 1})
        started: Any = session and session.get("created_at")
        if not started or self.ctx.now() - started > RECENT_SIGN_IN:
            raise ApiError(403, "reauthentication_required",
                           "Sign in again (within the last 10 minutes) to delete this account.")


default_handlers = [
    (r"/api/auth/password/forgot", ForgotPasswordHandler),
    (r"/api/auth/password/reset", ResetPasswordHandler),
    (r"/api/auth/email/verify", VerifyEmailHandler),
    (r"/api/auth/email/verify/resend", ResendVerificationHandler),
    (r"/api/user", DeleteAccountHandler),
]
