"""Account lifecycle flows over the process context: verification, password reset, e-mail change, deletion.

Handlers stay thin and call these; the data rules live in documents/accounts/state.py,
account_tokens.py, account_erasure.py and mail_outbox.py. Links in mails are built from
PASSWORD_RESET_URL / EMAIL_VERIFY_URL (an app's deep link or web front-end) or, by default, this
server's own pages under PUBLIC_BASE_URL (else PUBLIC_URL; outside production, the request's origin).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from bson import ObjectId
from loguru import logger

from core.account_mail import queue_mail
from core.mail_templates import pick_locale, render
from documents import accounts
from documents.accounts import erase_personal_data, has_real_email
from documents.subscriptions import COLLECTION as SUBSCRIPTIONS
from documents.subscriptions import ENTITLED, UNSETTLED, SubscriptionNotActive, SubscriptionNotFound, cancel_subscription

RESET_PAGE = "/auth/reset-password"
VERIFY_PAGE = "/auth/verify-email"


def build_link(ctx: Any, configured: str | None, page: str, token: str, locale: str, origin: str) -> str:
    """The link a mail carries: the configured URL with ?token=…, or this server's page (in the user's language)."""
    if configured:
        return configured + ("&" if "?" in configured else "?") + urlencode({"token": token})
    base = ctx.settings.mail_base_url or origin.rstrip("/")
    return f"{base}{page}?" + urlencode({"token": token, "lang": locale})


def user_locale(user: dict) -> str:
    """The language of the account's mails."""
    return pick_locale(user.get("locale"))


async def send_verification(ctx: Any, user: dict, email: str, origin: str) -> None:
    """Mail a fresh verification link for `email` (the current or the pending address) to that address."""
    s, locale = ctx.settings, user_locale(user)
    token = await accounts.issue(ctx.db, user["_id"], "email_verify", email, ctx.now(),
                                       timedelta(seconds=s.email_verify_ttl_s))
    link = build_link(ctx, s.email_verify_url, VERIFY_PAGE, token, locale, origin)
    await queue_mail(ctx, user["_id"], "verify_email",
                     render("verify_email", locale, email, link, minutes=s.email_verify_ttl_s // 60))


async def after_register(ctx: Any, user: dict, locale: str, origin: str) -> None:
    """A new password account: store its language and mail the verification link (when mail can go anywhere)."""
    await accounts.start_account(ctx.db, user["_id"], locale, ctx.now())
    user = {**user, "locale": locale}
    if ctx.mailer.available:
        await send_verification(ctx, user, user["email"], origin)


async def forgot_password(ctx: Any, email: str, origin: str) -> None:
    """Mail a reset link if an account signs in with this address; silently nothing otherwise (no enumeration)."""
    try:
        user = await accounts.find_user_by_email(ctx.db, email)
        if user is None or user.get("deleted_at") or not has_real_email(user):
            return
        s, locale = ctx.settings, user_locale(user)
        token = await accounts.issue(ctx.db, user["_id"], "password_reset", user["email"], ctx.now(),
                                           timedelta(seconds=s.password_reset_ttl_s))
        link = build_link(ctx, s.password_reset_url, RESET_PAGE, token, locale, origin)
        await queue_mail(ctx, user["_id"], "password_reset",
                         render("password_reset", locale, user["email"], link, minutes=s.password_reset_ttl_s // 60))
    except Exception:  # noqa: BLE001 - runs after the 202; the user can ask again
        logger.exception("password reset request failed")


async def reset_password(ctx: Any, token: str, password_hash: str) -> dict:
    """Use a reset token: set the password, end every session, mail a notice; InvalidOrExpiredToken otherwise."""
    now = ctx.now()
    used = await accounts.consume(ctx.db, token, "password_reset", now)
    user = await accounts.find_user(ctx.db, used["user_id"])
    if user is None or user.get("deleted_at") or user.get("email") != used["email"]:
        raise accounts.InvalidOrExpiredToken("This link is invalid or has expired; ask for a new one.")
    user = await accounts.update_account(ctx.db, user["_id"], now, password_hash=password_hash)
    # The link reached this mailbox, which proves it as well as a verification link would.
    await accounts.set_email_verified(ctx.db, user["_id"], True, now)
    await end_all_sessions(ctx, user["_id"], "password_reset")
    await queue_mail(ctx, user["_id"], "password_changed", render("password_changed", user_locale(user), user["email"]))
    return user


async def verify_email(ctx: Any, token: str) -> dict:
    """Use a verification token: the address it was sent to becomes the account's verified e-mail."""
    now = ctx.now()
    used = await accounts.consume(ctx.db, token, "email_verify", now)
    return await accounts.confirm_email(ctx.db, used["user_id"], used["email"], now)


async def change_email(ctx: Any, user: dict, new_email: str, origin: str) -> dict:
    """Hold a new address as pending, mail it a verification link and tell the old address."""
    updated = await accounts.request_email_change(ctx.db, user, new_email, ctx.now())
    await send_verification(ctx, updated, updated["pending_email"], origin)
    if has_real_email(user):
        await queue_mail(ctx, user["_id"], "email_change_notice",
                         render("email_change_notice", user_locale(user), user["email"],
                                new_email=updated["pending_email"]))
    return updated


async def end_all_sessions(ctx: Any, user_id: ObjectId, reason: str) -> list[str]:
    """End every session of the account now (the Redis cache learns it at once)."""
    ended = await accounts.revoke_user_sessions(ctx.db, user_id, reason, ctx.now())
    await ctx.sessions.mark_revoked(ended)
    return ended


async def cancel_renewals(ctx: Any, user_id: ObjectId) -> list[str]:
    """Developer-cancel (S8) every auto-renewing RuStore subscription of the account; the purchase ids cancelled.

    RuStore being unreachable raises (RuStoreUnavailable): the deletion stops before erasing anything,
    so it can be retried and no deleted account is charged again.
    """
    # Every one RuStore may still charge: on hold it keeps retrying the renewal, and a copy that shows it ended may
    # be stale (RuStore renewed since), so RuStore is asked for each.
    may_renew = [*ENTITLED, "PAUSED", *UNSETTLED]
    cursor = ctx.db[SUBSCRIPTIONS].find(
        {"user_id": user_id, "source": "pay", "auto_renewing": {"$ne": False}, "status": {"$in": may_renew}},
        {"purchase_id": 1})
    cancelled = []
    async for doc in cursor:
        if ctx.rustore is None:
            logger.error("cannot cancel a subscription of a deleted account: RuStore is not configured",
                         purchase_id=doc["purchase_id"])
            continue
        try:
            await cancel_subscription(ctx.db, ctx.rustore, user_id, doc["purchase_id"], products=ctx.products,
                                      policy=ctx.purchase_policy, now=ctx.now(), even_if_ended=True)
        except (SubscriptionNotActive, SubscriptionNotFound):
            continue  # ended meanwhile, or RuStore never had it: nothing will renew
        cancelled.append(doc["purchase_id"])
    return cancelled


async def delete_account(ctx: Any, user_id: ObjectId) -> dict:
    """Cancel renewals, end every session, erase personal data; what stays is anonymous (docs/accounts.md)."""
    cancelled = await cancel_renewals(ctx, user_id)
    ended = await end_all_sessions(ctx, user_id, "account_deleted")
    now = ctx.now()
    erased = await erase_personal_data(ctx.db, user_id, now)
    await accounts.erase_user(ctx.db, user_id, now)
    logger.info("account deleted", user_id=str(user_id), subscriptions_cancelled=len(cancelled))
    return {"user_id": str(user_id), "subscriptions_cancelled": cancelled, "sessions_ended": len(ended), **erased}
