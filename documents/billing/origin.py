"""Who credited a purchase or a subscription period first (`creditedBy`) and what it granted, as the app is told.

Every path that applies RuStore's word names itself with a `source` (verify, renew, webhook, job,
recovery, refund-sweep, status, cancel). Apps see three origins: "verify" (an app call: verify, renew,
or a status/cancel call that refreshed from RuStore), "webhook" (RuStore's notification) and "job"
(any background pass: reconciliation, outage recovery, refund sweep).

The origin is written into the ledger entry's meta by the call that creates the credit (the ledger
creates an entry once per key, so the first writer's meta is the answer even if it crashed before
updating the purchase) and copied onto the purchase (`credited_by`) or the period
(`granted_periods.$.credited_by`) by whoever records the entry id. Documents credited before this
existed fall back to the source of the first history entry that shows the purchase granted, else null.
"""

from __future__ import annotations

from typing import Any

from documents.common import utc

ORIGINS = ("verify", "webhook", "job")
APP_SOURCES = ("verify", "renew", "status", "cancel")
GRANTED_STATES = ("paid", "confirmed")


def origin_of(source: str | None) -> str | None:
    """The app-facing origin of an internal source name (None when unknown)."""
    if source is None:
        return None
    if source == "webhook":
        return "webhook"
    return "verify" if source in APP_SOURCES else "job"


def recorded_origin(entry_meta: dict[str, Any] | None, source: str | None) -> str | None:
    """The origin stored in a credit's ledger meta (the first writer's), else this caller's."""
    stored = (entry_meta or {}).get("credited_by")
    return stored if stored in ORIGINS else origin_of(source)


def purchase_credited_by(doc: dict) -> str | None:
    """`creditedBy` of a purchase: its stored origin, else (older documents) its history, else None."""
    if doc.get("credited_by") in ORIGINS:
        return doc["credited_by"]
    if not (doc.get("credit_entry_id") or doc.get("granted")):
        return None
    for step in doc.get("history") or []:
        if step.get("state") in GRANTED_STATES:
            return origin_of(step.get("source"))
    return None


def current_period(doc: dict) -> dict | None:
    """The granted period that ends at the subscription's end date (the paid period the app shows), or None."""
    end = doc.get("end_date")
    for period in reversed(doc.get("granted_periods") or []):
        if end is not None and _same_instant(period.get("end_date"), end):
            return period
    return None


def period_view(doc: dict) -> tuple[int, str | None]:
    """(pointsGranted, creditedBy) of the current paid period; (0, None) when it granted nothing."""
    period = current_period(doc)
    if period is None or not period.get("entry_id"):
        return 0, None
    return int(period.get("points") or 0), period.get("credited_by") if period.get("credited_by") in ORIGINS else None


def _same_instant(a: Any, b: Any) -> bool:
    try:
        return utc(a) == utc(b)
    except (TypeError, AttributeError, ValueError):
        return False
