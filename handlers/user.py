"""The signed-in user's own account: profile and credential changes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from marshmallow import ValidationError, fields, validate, validates_schema

from core import accounts
from documents import accounts as accounts_doc
from handlers import account_hooks
from handlers.auth import Password
from handlers.base import ApiError, APIHandler
from handlers.docs import api
from handlers.messages import LOCALES
from handlers.schemas import CamelSchema, Email, iso, present
from handlers.subscriptions import profile_subscription


def bounded_secret(value: str) -> None:
    """A typed password to check: 1 to 1024 bytes (marshmallow 4 validators must raise, not return False)."""
    if not 0 < len(value.encode()) <= 1024:
        raise ValidationError("Must be 1 to 1024 bytes.")


def account_view(user: dict) -> dict:
    """The lifecycle fields of the profile: verification state, a pending new email, the e-mail language."""
    return {"emailVerified": bool(user.get("email_verified")), "pendingEmail": user.get("pending_email"),
            "locale": user.get("locale") or "en"}


class PointsSummarySchema(CamelSchema):
    """The wallet as shown on the profile."""

    balance = fields.Integer(required=True)


class ProfileSchema(CamelSchema):
    """GET /api/user/profile answer."""

    user_id = fields.String(required=True)
    email = fields.String(required=True, allow_none=True,
                          metadata={"description": "null for a VK ID/Google account created without an email"})
    device_ids = fields.List(fields.String(), required=True)
    created_at = fields.String(required=True)
    points = fields.Nested(PointsSummarySchema, required=True)
    owned_products = fields.List(fields.Dict(), required=True,
                                 metadata={"description": "Non-consumable products the user owns"})
    subscription = fields.Dict(allow_none=True, required=True)
    email_verified = fields.Boolean(required=True, metadata={"description": "the email was proven by a link or the provider"})
    pending_email = fields.String(required=True, allow_none=True,
                                  metadata={"description": "a new email waiting for its verification link"})
    locale = fields.String(required=True, metadata={"enum": list(LOCALES), "description": "language of e-mails"})


class UpdateAccountSchema(CamelSchema):
    """PATCH /api/user/update body: the current password plus what to change.

    An account created through VK ID or Google has no password: it leaves currentPassword out to set its
    first password (with an email, if it has none).
    """

    current_password = fields.String(load_default=None, validate=bounded_secret,
                                     metadata={"format": "password", "minLength": 1, "maxLength": 1024})
    email = Email(load_default=None)
    password = Password(load_default=None)
    locale = fields.String(validate=validate.OneOf(LOCALES))
    OPENAPI_RULES = {"anyOf": [present("email"), present("password"), present("locale")]}

    @validates_schema
    def _something_to_change(self, data: dict, **kwargs: Any) -> None:
        if data.get("email") is None and data.get("password") is None and data.get("locale") is None:
            raise ValidationError("Give a new email, a new password and/or a locale.", "_schema")


def profile_view(user: dict, now: datetime) -> dict:
    """The public shape of a user document (`now` decides whether the subscription has ended)."""
    return {
        "userId": str(user["_id"]),
        "email": accounts_doc.public_email(user),
        "deviceIds": list(user.get("device_ids") or []),
        "createdAt": iso(user["created_at"]),
        "points": {"balance": int((user.get("points") or {}).get("balance", 0))},
        "ownedProducts": [
            {"productId": o["product_id"], "invoiceId": o["invoice_id"], "acquiredAt": iso(o.get("acquired_at")),
             "sandbox": bool(o.get("sandbox"))}
            for o in user.get("owned_products") or []
        ],
        "subscription": profile_subscription(user, now),
        **account_view(user),
    }


class ProfileHandler(APIHandler):
    """GET /api/user/profile — the caller's account."""

    @api("Your account: email, devices, points, owned products and subscription", responses={200: ProfileSchema},
         errors={404: ["user_not_found"]})
    async def get(self) -> None:
        user = await self.run(accounts_doc.get_user(self.db, self.user_id))
        self.write_json(profile_view(user, self.ctx.now()))


class UpdateAccountHandler(APIHandler):
    """PATCH /api/user/update — change email and/or password; other sessions end."""

    @api("Change your email (after verification), password (other sessions end) and/or locale", body=UpdateAccountSchema,
         responses={200: ProfileSchema},
         errors={400: ["password_required", "email_required"],
                 403: ["invalid_current_password", "current_password_required"],
                 409: ["email_taken"], 429: ["too_many_login_attempts"], 503: ["mail_not_configured"]})
    async def patch(self) -> None:
        body = self.load(UpdateAccountSchema())
        user = await self.run(accounts_doc.get_user(self.db, self.user_id))
        if body["email"] is None and body["password"] is None:  # only the locale: no credentials involved
            await accounts_doc.set_locale(self.db, user["_id"], body.get("locale"), self.ctx.now())
            self.write_json(profile_view(await accounts_doc.get_user(self.db, user["_id"]), self.ctx.now()))
            return
        first_password = user.get("password_hash") is None  # a VK ID / Google account without one yet
        if first_password:
            self.check_first_password(user, body)
        elif body["current_password"] is None:
            # Depends on the account, not on the body's shape (the document cannot say it): 403, like a wrong one.
            raise ApiError(403, "current_password_required", "This account has a password: send currentPassword.",
                           details={"fields": {"currentPassword": ["Missing data for required field."]}})
        else:
            await self.check_current_password(user, body["current_password"])
        if body["email"] is not None and body["email"] != user["email"] and not self.ctx.mailer.available:
            raise ApiError(503, "mail_not_configured", "E-mail is not configured on this server.")
        new_hash = await self.ctx.passwords.hash(body["password"]) if body["password"] else None
        now = self.ctx.now()
        if body.get("locale"):
            await accounts_doc.set_locale(self.db, user["_id"], body.get("locale"), now)
        if not first_password and body["email"] is not None:
            # The new address waits for its verification link; the current one keeps working meanwhile.
            if body["email"] != user["email"]:
                await self.run(accounts.change_email(self.ctx, user, body["email"], account_hooks.origin(self)))
            elif user.get("pending_email"):  # changed their mind: back to the current address
                await accounts_doc.drop_pending_email(self.db, user["_id"], now)
            body["email"] = None
        if first_password:
            updated = await self.run(accounts_doc.set_first_password(self.db, user["_id"], new_hash, body["email"], now))
            if body["email"] and updated["email"] != user["email"] and self.ctx.mailer.available:
                await accounts_doc.set_email_verified(self.db, user["_id"], False, now)
                await accounts.send_verification(self.ctx, updated, updated["email"], account_hooks.origin(self))
        else:
            updated = await self.run(
                accounts_doc.update_account(self.db, user["_id"], now, email=body["email"], password_hash=new_hash))
        ended = await accounts_doc.revoke_user_sessions(
            self.db, user["_id"], "credentials_changed", now, keep=self.user.session_id
        )
        await self.ctx.sessions.mark_revoked(ended)
        self.write_json(profile_view(await accounts_doc.get_user(self.db, updated["_id"]), self.ctx.now()))

    @staticmethod
    def check_first_password(user: dict, body: dict) -> None:
        """A first password must come with an email to sign in with, unless the account already has one."""
        if body["password"] is None:
            raise ApiError(400, "password_required", "This account has no password yet; set one first.")
        if body["email"] is None and not accounts_doc.has_real_email(user):
            raise ApiError(400, "email_required", "Give an email with the first password so you can sign in with it.")

    async def check_current_password(self, user: dict, password: str) -> None:
        """Verify the current password under the same failure budgets as sign-in.

        Whoever holds a stolen access token could otherwise guess the password here at the API's
        per-address rate, then change email and password and end the owner's sessions.
        """
        limiter, email, ip = self.ctx.limiter, user["email"], self.client_ip
        # Check and count in one step (core/failures.py): concurrent guesses cannot exceed the budget.
        reserved = (limiter.failure_budget("login_pair", email, ip), limiter.failure_budget("login_email", email))
        verdict = await limiter.reserve_failures(*reserved)
        if not verdict.allowed:
            raise ApiError(429, "too_many_login_attempts", "Too many failed password attempts; try again later.",
                           headers={"Retry-After": str(verdict.retry_after)})
        ok = checked = False
        try:
            ok = await self.ctx.passwords.check(password, user.get("password_hash"))
            checked = True
        finally:
            if ok or not checked:  # right password, or no check ran: give the failure back
                for budget in reserved:
                    await limiter.release_failure(budget)
        if not ok:
            raise ApiError(403, "invalid_current_password", "The current password is incorrect.")


default_handlers = [
    (r"/api/user/profile", ProfileHandler),
    (r"/api/user/update", UpdateAccountHandler),
]
