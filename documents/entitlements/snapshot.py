"""Entitlements and the customer snapshot, computed at read time from RuStore-verified state (never a stored flag).

A subscription grants its entitlements while it is entitled: RuStore shows it ACTIVE, in GRACE or
CANCELLED and its `end_date` is still ahead, and the charge that paid the current period was not
refunded (`granted_periods[].refunded_at`). On hold (PAUSED), EXPIRED, pending and refunded ones
grant nothing. A non-consumable grants its entitlements forever while it is in `users.owned_products`
(a refund or reversal pulls it there, `documents.purchases.effects.revoke`).

`users.subscription` (the profile's `subscription`) keeps showing what RuStore says about the user's
current subscription; the entitlement is the app-facing answer to "may this user use premium now".
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from bson import ObjectId

from documents.common import utc
from documents.events import iso
from documents.subscriptions import COLLECTION as SUBSCRIPTIONS
from documents.subscriptions import ENTITLED, MAX_PER_USER, UNSETTLED, display_status

USERS = "users"
SUB_FIELDS = {"product_id": 1, "purchase_id": 1, "status": 1, "start_date": 1, "end_date": 1, "auto_renewing": 1,
              "payment_state": 1, "sandbox": 1, "granted_periods.end_date": 1, "granted_periods.refunded_at": 1}


def refunded_now(doc: Mapping[str, Any]) -> bool:
    """True when the charge that paid the subscription's current period was refunded."""
    end = doc.get("end_date")
    return end is not None and any(p.get("refunded_at") and p.get("end_date") and utc(p["end_date"]) == utc(end)
                                   for p in doc.get("granted_periods") or [])


def entitled(doc: Mapping[str, Any], now: datetime) -> bool:
    """True while a subscription grants access: active, grace or cancelled before its end, not refunded."""
    end = doc.get("end_date")
    return doc.get("status") in ENTITLED and end is not None and utc(end) > now and not refunded_now(doc)


def _period(doc: Mapping[str, Any]) -> str:
    if doc.get("status") == "GRACE":
        return "grace"
    return "trial" if doc.get("payment_state") == 2 else "normal"


def _will_renew(doc: Mapping[str, Any], now: datetime) -> bool:
    return entitled(doc, now) and doc.get("status") in ("ACTIVE", "GRACE") and bool(doc.get("auto_renewing"))


def _subscription_view(doc: Mapping[str, Any], now: datetime) -> dict:
    status = "refunded" if refunded_now(doc) else display_status(doc.get("status"), doc.get("end_date"), now,
                                                                  doc.get("auto_renewing"))
    return {"productId": doc.get("product_id"), "purchaseId": doc.get("purchase_id"), "status": status,
            "startedAt": iso(doc.get("start_date")), "expiresAt": iso(doc.get("end_date")),
            "willRenew": _will_renew(doc, now)}


INACTIVE = {"active": False, "productId": None, "expiresAt": None, "willRenew": False, "period": None, "sandbox": False}


def _entitlement(product_ids: tuple[str, ...], subs: list[dict], owned: list[dict], now: datetime) -> dict:
    for item in owned:  # a non-consumable grants forever: the strongest answer
        if item.get("product_id") in product_ids:
            return {"active": True, "productId": item["product_id"], "expiresAt": None, "willRenew": False,
                    "period": None, "sandbox": bool(item.get("sandbox"))}
    live = [d for d in subs if d.get("product_id") in product_ids and entitled(d, now)]
    if not live:
        return dict(INACTIVE)
    best = max(live, key=lambda d: utc(d["end_date"]))
    return {"active": True, "productId": best["product_id"], "expiresAt": iso(best["end_date"]),
            "willRenew": _will_renew(best, now), "period": _period(best), "sandbox": bool(best.get("sandbox"))}


async def customer_snapshot(db: Any, user_id: ObjectId, declared: Mapping[str, tuple[str, ...]],
                            now: datetime) -> dict | None:
    """The customer snapshot without `requestDate`, or None when the user does not exist."""
    user = await db[USERS].find_one({"_id": user_id}, {"points.balance": 1, "owned_products": 1})
    if user is None:
        return None
    cursor = db[SUBSCRIPTIONS].find({"user_id": user_id}, SUB_FIELDS).sort("end_date", -1)
    subs = [d for d in await cursor.limit(MAX_PER_USER).to_list(MAX_PER_USER) if d.get("status") not in UNSETTLED]
    owned = list(user.get("owned_products") or [])
    return {
        "userId": str(user_id),
        "balance": int((user.get("points") or {}).get("balance", 0)),
        "entitlements": {name: _entitlement(ids, subs, owned, now) for name, ids in declared.items()},
        "subscriptions": [_subscription_view(d, now) for d in subs],
        "nonConsumables": [{"productId": o.get("product_id"), "invoiceId": o.get("invoice_id"),
                            "purchasedAt": iso(o.get("acquired_at"))} for o in owned],
    }


def snapshot_etag(snapshot: Mapping[str, Any]) -> str:
    """A strong ETag of a snapshot (without requestDate, so an unchanged customer keeps it)."""
    body = json.dumps({k: v for k, v in snapshot.items() if k != "requestDate"}, sort_keys=True, separators=(",", ":"))
    return '"' + hashlib.sha256(body.encode()).hexdigest()[:32] + '"'


def request_date(now: datetime) -> str:
    """The snapshot's `requestDate`."""
    return iso(now.astimezone(UTC)) or ""
