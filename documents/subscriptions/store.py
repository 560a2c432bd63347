"""The `subscriptions` collection and `users.subscription`: what is stored per RuStore subscription and what a user sees.

Modules: this one (shape, rules, the user's current subscription, reads); `subscriptions.apply`
(the only code that applies RuStore's answer); `subscriptions.sync` (RuStore calls: verify, legacy,
acknowledge, cancel, refresh) used by the handlers, the webhook processor and the job.

Ordering: answers may arrive out of order (a slow verify racing a webhook or the job). Each answer
is applied with the time it was fetched (the caller's `now`, taken before the call); a document keeps
the fetch time of the answer it shows (`observed_at`) and the state write is conditional on
`observed_at <= fetched_at`, so an older answer never overwrites a newer one. Expiry cannot order
answers: RuStore legitimately moves it back (hold sets it to when access was lost, a cancel in grace
closes at once). Entitlement is never stored as a flag: readers compare `end_date` with their clock
(`display_status`), so a cancelled subscription reads `expired` at its end with no event.

Grants: `points_per_period` once per paid period, ledger key `subgrant:[sandbox:]<id>:<end ms>`. The
period end (expiryTimeMillis, or S1's nextPaymentDate) is what a payment buys; it is in every variant
of RuStore's answer, identical whether verify, a webhook or the job fetched it, moves with every
renewal and never with a cancel or an acknowledgement. RuStore's orderId (`41456..3`) was the
alternative, but it is UNCONFIRMED for V4, absent from S1 and documented as counting invoices, failed
charges included. A period is paid when the status is ACTIVE or CANCELLED and paymentState is neither
0 (charge outstanding: grace, hold, pending) nor 2 (free trial). A stale answer still grants (the
period it shows was paid), so grants do not depend on the ordering rule. Effects run BEFORE the state
write and are idempotent, so a crash anywhere is finished by whoever checks the subscription next
(`next_check_at` stays set until the subscription is final and shown on its user).

Current subscription: `users.subscription` {plan, product_id, purchase_id, status, start_date, end_date,
auto_renewing, sandbox, last_checked_at} copies the user's entitled subscription with the latest
end_date, else a paused one, else the latest ended one (never a pending one). Every applied change
bumps the document's `revision`; `users.subscription_basis` holds the sum of the revisions the copy was
computed from. The copy is written only over a smaller or equal sum and then re-read: if the sum
moved meanwhile (a racing change), it is recomputed. Revisions only grow, so the last writer always
leaves the copy of the latest state.

Document shape (Compass)::

    {_id, purchase_id (Pay SDK purchaseId, or the BillingClient subscriptionToken), sandbox,
     source: "pay" | "billing", subscription_token, user_id | null, claims: [...], product_id, plan,
     status (RuStore's normalised SubscriptionStatus), auto_renewing, start_date, end_date, payment_state,
     rustore_order_id, acknowledged, ack_attempts, observed_at, last_checked_at, next_check_at,
     check_attempts, last_error, revision, history: [{at, status, end_date, auto_renewing, source}],
     granted_periods: [{key, end_date, points, entry_id, credited_by, at, order_id, invoice_id, refunded_at, refund_status,
     clawback_entry_id}], refunds: [...], refund_due_at (refunds: see `subscriptions.refunds`), created_at, updated_at}
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bson import ObjectId
from loguru import logger
from pymongo import ASCENDING, DESCENDING, IndexModel, ReturnDocument

from documents.common import Conflict, NotFound, backoff, utc
from rustore import Subscription, SubscriptionStatus

COLLECTION = "subscriptions"
USERS = "users"
INDEXES = {
    COLLECTION: [
        IndexModel([("purchase_id", ASCENDING), ("sandbox", ASCENDING)], unique=True, name="purchase_unique"),
        IndexModel([("next_check_at", ASCENDING)], sparse=True, name="next_check"),
        IndexModel([("user_id", ASCENDING), ("end_date", DESCENDING)], name="user_subscriptions"),
        IndexModel([("granted_periods.invoice_id", ASCENDING)], sparse=True, name="granted_invoice"),
        IndexModel([("refund_due_at", ASCENDING)], sparse=True, name="refund_due"),
        # The event job's pass over what changed since its last run (an $or: one index per branch).
        IndexModel([("updated_at", ASCENDING)], name="updated"),
        IndexModel([("end_date", ASCENDING)], name="end_date"),
    ]
}
ENTITLED = ("ACTIVE", "GRACE", "CANCELLED")  # access until end_date
UNSETTLED = ("PENDING", "UNKNOWN")  # never paid (yet): not shown, re-checked soon
PAID = (SubscriptionStatus.ACTIVE, SubscriptionStatus.CANCELLED)
SUMMARY_FIELDS = ("plan", "product_id", "purchase_id", "status", "start_date", "end_date", "auto_renewing",
                  "sandbox", "last_checked_at")
MAX_PER_USER = 100  # the projection reads at most this many of a user's subscriptions, latest end first
PROJECTION_ROUNDS = 5
RETRY = timedelta(minutes=2)
WATCH = timedelta(hours=6)  # grace/hold: RuStore retries the charge daily
DAILY = timedelta(days=1)
SETTLE = timedelta(minutes=1)  # the renewal charge runs at the period end; look just after it
LAG_WINDOW = timedelta(days=3)  # an auto-renewing one reading EXPIRED may be a renewal RuStore has not shown yet


class SubscriptionNotFound(NotFound):
    """No such subscription among the caller's."""

    reason = "subscription_not_found"


class CancelNotSupported(Conflict):
    """RuStore lets only the user cancel BillingClient subscriptions."""

    reason = "cancel_not_supported"


class SubscriptionNotActive(Conflict):
    """The subscription has already ended."""

    reason = "subscription_not_active"


@dataclass(frozen=True)
class SubscriptionOutcome:
    """What applying RuStore's record did: the document, points this call credited and took back, the balance if known."""

    subscription: dict
    points_granted: int
    balance: int | None
    points_clawed_back: int = 0


def grant_key(purchase_id: str, sandbox: bool, period_end: datetime) -> str:
    """Ledger key of the grant for the paid period ending at `period_end` (one per period, forever)."""
    return f"subgrant:{'sandbox:' if sandbox else ''}{purchase_id}:{int(utc(period_end).timestamp() * 1000)}"


def is_paid_period(sub: Subscription) -> bool:
    """True when RuStore's answer shows a period that was actually paid (not grace, hold, pending or trial)."""
    return sub.status in PAID and sub.expiry_time is not None and sub.payment_state not in (0, 2)


def display_status(status: str | None, end_date: datetime | None, now: datetime, auto_renewing: bool | None) -> str:
    """What the API shows: active, grace, paused, cancelled, expired (entitlement read from end_date now) or none."""
    if status in UNSETTLED or status is None:
        return "none"
    if status == "PAUSED":
        return "paused"
    if status in ENTITLED and end_date is not None and utc(end_date) > now:
        return "cancelled" if status == "ACTIVE" and auto_renewing is False else status.lower()
    return "expired"


def retry_after(attempts: int) -> timedelta:
    """Delay after `attempts` failed checks (or acknowledgements): 1, 2, 4 ... minutes, at most WATCH."""
    return backoff(attempts, first=timedelta(minutes=1), cap=WATCH)


def next_check(doc: Mapping[str, Any], now: datetime) -> datetime | None:
    """When the job should look at this subscription again; None once it is final."""
    status, end = doc.get("status"), doc.get("end_date")
    end = utc(end) if end else None
    if status in UNSETTLED:
        return now + retry_after(int(doc.get("check_attempts") or 0))
    if status in ("GRACE", "PAUSED"):
        due = min(now + WATCH, end + SETTLE) if end and end > now else now + WATCH
    elif status in ENTITLED and end and end > now:
        due = min(now + DAILY, end + SETTLE)
    elif status in ENTITLED or renewal_lagging(doc, now):
        # Ended yet not closed: most likely a renewal RuStore has not shown yet; look again after as
        # long as it has been overdue (doubling), between RETRY and WATCH.
        due = now + min(WATCH, max(RETRY, now - end if end else WATCH))
    else:
        return None
    if doc.get("user_id") and doc.get("source") == "pay" and status in ENTITLED and not doc.get("acknowledged"):
        due = min(due, now + retry_after(int(doc.get("ack_attempts") or 0)))  # S7 retry; never later than the watch
    return due


def renewal_lagging(doc: Mapping[str, Any], now: datetime) -> bool:
    """True for an auto-renewing subscription that RuStore shows ended recently (the renewal may still come)."""
    end = doc.get("end_date")
    return (doc.get("status") == "EXPIRED" and bool(doc.get("auto_renewing")) and end is not None
            and utc(end) <= now < utc(end) + LAG_WINDOW)


def _rank(doc: Mapping[str, Any], now: datetime) -> tuple[int, float]:
    status, end = doc.get("status"), doc.get("end_date")
    live = status in ENTITLED and end is not None and utc(end) > now
    return (0 if live else 1 if status == "PAUSED" else 2), -(utc(end).timestamp() if end else 0.0)


async def _user_documents(db: Any, user_id: ObjectId) -> list[dict]:
    fields = {f: 1 for f in SUMMARY_FIELDS} | {"revision": 1}
    cursor = db[COLLECTION].find({"user_id": user_id}, fields).sort("end_date", DESCENDING)
    return await cursor.limit(MAX_PER_USER).to_list(MAX_PER_USER)


async def project_user(db: Any, user_id: ObjectId, now: datetime) -> dict | None:
    """Write the user's current subscription into `users.subscription`; redo it if a change raced the write."""
    summary: dict | None = None
    for _ in range(PROJECTION_ROUNDS):
        docs = await _user_documents(db, user_id)
        basis = sum(int(d.get("revision") or 0) for d in docs)
        shown = [d for d in docs if d.get("status") not in UNSETTLED]
        current = min(shown, key=lambda d: _rank(d, now), default=None)
        summary = None if current is None else {f: current.get(f) for f in SUMMARY_FIELDS}
        await db[USERS].update_one(
            {"_id": user_id, "$or": [{"subscription_basis": {"$exists": False}}, {"subscription_basis": {"$lte": basis}}]},
            {"$set": {"subscription": summary, "subscription_basis": basis}},
        )
        if sum(int(d.get("revision") or 0) for d in await _user_documents(db, user_id)) == basis:
            return summary
    logger.warning("subscription projection kept racing; the next check rewrites it", user_id=str(user_id))
    return summary


async def find_current(db: Any, user_id: ObjectId) -> dict | None:
    """The user's current subscription as embedded in the user document, or None."""
    user = await db[USERS].find_one({"_id": user_id}, {"subscription": 1})
    return (user or {}).get("subscription")


async def find_subscription(db: Any, key: str, sandbox: bool) -> dict | None:
    """The document of a RuStore subscription (purchaseId or legacy token), or None."""
    return await db[COLLECTION].find_one({"purchase_id": key, "sandbox": sandbox})


async def get_user_subscription(db: Any, user_id: ObjectId, key: str, sandbox: bool | None = None) -> dict:
    """The caller's subscription with this purchaseId (or token); SubscriptionNotFound for anyone else's."""
    query: dict[str, Any] = {"purchase_id": key, "user_id": user_id}
    if sandbox is not None:
        query["sandbox"] = sandbox
    doc = await db[COLLECTION].find_one(query, {"history": 0})
    if doc is None:
        raise SubscriptionNotFound("No such subscription on this account.")
    return doc


async def due_for_check(db: Any, now: datetime, limit: int) -> list[dict]:
    """Subscriptions whose next check is due, most overdue first."""
    cursor = db[COLLECTION].find({"next_check_at": {"$lte": now}}, {"history": 0, "granted_periods": 0})
    return await cursor.sort("next_check_at", ASCENDING).limit(limit).to_list(limit)


async def note_check_failure(db: Any, doc: dict, now: datetime, error: str, *, ack: bool = False,
                             outage: bool = False) -> None:
    """Count a failed check (or acknowledgement) and schedule the next one with backoff.

    A failure caused by a RuStore-wide outage (`outage`) does not grow the counter; the recovery pass re-checks it.
    """
    counter = "ack_attempts" if ack else "check_attempts"
    attempts = int(doc.get(counter) or 0) + (0 if outage else 1)
    await db[COLLECTION].update_one(
        {"_id": doc["_id"]}, {"$set": {counter: attempts, "last_error": error, "next_check_at": now + retry_after(attempts)}},
    )


async def mark_acknowledged(db: Any, doc: dict, now: datetime) -> dict:
    """Record that RuStore accepted our acknowledgement (S7)."""
    changes = {"acknowledged": True, "acknowledged_at": now, "ack_attempts": 0}
    changes["next_check_at"] = next_check(doc | changes, now) or now + RETRY
    return await db[COLLECTION].find_one_and_update({"_id": doc["_id"]}, {"$set": changes},
                                                    return_document=ReturnDocument.AFTER)
