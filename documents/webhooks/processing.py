"""Applies a stored RuStore notification: claim it, re-query RuStore through the verify path, record the outcome.

A notification only says "something changed"; its status may be stale or out of order. So it is
never applied itself: INVOICE_STATUS goes to `purchases.sync.verify_invoice`, SUBSCRIPTION_EVENT and
a subscription charge's INVOICE_STATUS (with its invoice id) to `verify_subscription`, all with
`claim=None`, which fetch RuStore's current record and move documents forward only. Running an
event twice is therefore harmless; the claim (see `webhook_events`) only keeps two processors from
doing the same work at once.

Failures: permanent ones (another app, sandbox not allowed, a product we do not sell, a record
that contradicts itself, RuStore refusing the request) dead-letter the event at once with the
reason; anything else (RuStore unreachable, our credentials rejected, a bug) is retried with
backoff until `max_attempts`, then dead-lettered with the last error.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from loguru import logger

from documents.billing import PurchaseNotFound, PurchasePolicy, check_notification, is_subscription
from documents.common import DomainError, Invalid, utc
from documents.purchases import find_purchase, is_credited, verify_invoice
from documents.subscriptions import verify_subscription
from documents.webhooks import store as events
from rustore import RuStoreAuthError, RuStoreRejected, RuStoreUnavailable


class MalformedEvent(Invalid):
    """The notification lacks what is needed to look it up at RuStore."""

    reason = "malformed_notification"


class ProcessingUnavailable(RuntimeError):
    """This process cannot apply the event yet (RuStore is not configured)."""


@dataclass(frozen=True)
class ProcessResult:
    """What one processing attempt did: processed / failed / dead / skipped (not ours) / error (store down)."""

    event_id: str
    outcome: str
    lag_s: float | None = None
    error: str | None = None


def _is_permanent(exc: BaseException) -> bool:
    if isinstance(exc, PurchaseNotFound):
        return False  # RuStore just told us about it; "unknown invoice" is more likely lag than forgery
    return isinstance(exc, DomainError | RuStoreRejected)


def _describe(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None) if isinstance(exc, DomainError) else None
    return f"{reason or type(exc).__name__}: {exc}"


def _purchase_summary(outcome: Any) -> dict:
    doc = outcome.purchase
    return {"kind": "purchase", "invoice_id": doc.get("invoice_id"), "state": doc.get("state"),
            "owned": doc.get("user_id") is not None, "credited_now": bool(outcome.credited_now)}


def _subscription_summary(outcome: Any) -> dict:
    doc = getattr(outcome, "subscription", None) or {}
    return {"kind": "subscription", "purchase_id": doc.get("purchase_id"), "state": doc.get("status"),
            "owned": doc.get("user_id") is not None, "points_granted": int(getattr(outcome, "points_granted", 0) or 0),
            "points_clawed_back": int(getattr(outcome, "points_clawed_back", 0) or 0)}


@dataclass(frozen=True)
class WebhookProcessor:
    """Everything processing needs, built once per process (see `core.webhook_wiring.webhook_processor`)."""

    db: Any
    client: Any
    products: Mapping[str, Any]
    policy: PurchasePolicy
    clock: Callable[[], datetime]
    max_attempts: int
    lease: timedelta = events.LEASE
    observe: Callable[[ProcessResult], None] | None = None

    async def process(self, event_id: str) -> ProcessResult:
        """One attempt at an event, if it is due and nobody else holds it; never raises."""
        try:
            result = await self._attempt(event_id)
        except Exception as exc:  # noqa: BLE001 - the store itself failed; the lease lets the job retry
            logger.opt(exception=exc).error("webhook processing could not record its outcome", event_id=event_id)
            result = ProcessResult(event_id, "error", error=type(exc).__name__)
        if self.observe is not None:
            self.observe(result)
        return result

    async def process_due(self, limit: int) -> dict[str, int]:
        """Process up to `limit` due events one after the other; counts per outcome."""
        counts: Counter[str] = Counter()
        for event_id in await events.due_event_ids(self.db, self.clock(), limit):
            counts[(await self.process(event_id)).outcome] += 1
        return {key: counts.get(key, 0) for key in ("processed", "failed", "dead", "skipped", "error")}

    async def _attempt(self, event_id: str) -> ProcessResult:
        event = await events.claim_event(self.db, event_id, self.clock(), self.lease)
        if event is None:
            return ProcessResult(event_id, "skipped")
        if event["attempts"] > self.max_attempts:
            # Only reachable when earlier attempts never finished (crash, lease expiry) and used the budget.
            error = f"abandoned: {event['attempts'] - 1} attempts did not finish; last error: {event.get('last_error')}"
            return await self._dead(event, error)
        try:
            summary = await self._apply(event)
        except Exception as exc:  # noqa: BLE001 - every failure is recorded on the event, none escapes
            if _is_permanent(exc):
                logger.warning("webhook dead-lettered", event_id=event_id, type=event["type"], error=_describe(exc))
                return await self._dead(event, _describe(exc))
            return await self._failed(event, exc)
        now = self.clock()
        if not await events.mark_processed(self.db, event, now, summary):
            return self._lost(event_id)
        lag = (now - utc(event["received_at"])).total_seconds() if event.get("received_at") else None
        logger.info("webhook processed", event_id=event_id, type=event["type"], attempt=event["attempts"], **summary)
        return ProcessResult(event_id, "processed", lag_s=lag)

    async def _apply(self, event: dict) -> dict:
        kind, data = events.base_type(event["type"]), event.get("event") or {}
        # The authenticated notification's purchase_id: evidence for confirming a hold and for possession.
        notified = str(data["purchase_id"]) if data.get("purchase_id") else None
        if kind == "INVOICE_STATUS" and data.get("invoice_id") and self.client is not None and is_credited(
                await find_purchase(self.db, str(data["invoice_id"]), bool(event.get("sandbox")))):
            # A purchase we credited: its refund comes back whatever today's catalog or sandbox setting says.
            return _purchase_summary(await verify_invoice(
                self.db, self.client, str(data["invoice_id"]), sandbox=bool(event.get("sandbox")), claim=None,
                products=self.products, policy=self.policy, now=self.clock(), source="webhook",
                notified_purchase_id=notified))
        check_notification(self.policy, app_id=event.get("app_id"), sandbox=bool(event.get("sandbox")))
        if self.client is None:
            raise ProcessingUnavailable("RuStore is not configured in this process")
        charge = kind == "INVOICE_STATUS" and is_subscription(self.products, data.get("product_code"))
        if kind == "SUBSCRIPTION_EVENT" or charge:
            # A renewal charge is an invoice too; the subscription's own record is what counts, and the
            # invoice (RuStore's record of it) links the charge to its period or takes a refunded one back.
            return await self._subscription(event, data, data.get("invoice_id") if kind == "INVOICE_STATUS" else None)
        if kind != "INVOICE_STATUS":
            raise MalformedEvent(f"{event['type']} notifications are not processed")
        if not data.get("invoice_id"):
            raise MalformedEvent("INVOICE_STATUS notification without invoice_id")
        outcome = await verify_invoice(
            self.db, self.client, str(data["invoice_id"]), sandbox=bool(event["sandbox"]), claim=None,
            products=self.products, policy=self.policy, now=self.clock(), source="webhook",
            notified_purchase_id=notified,
        )
        return _purchase_summary(outcome)

    async def _subscription(self, event: dict, data: dict, invoice_id: Any) -> dict:
        if not data.get("purchase_id") or not data.get("product_code"):
            raise MalformedEvent(f"{event['type']} notification without purchase_id or product_code")
        outcome = await verify_subscription(
            self.db, self.client, str(data["purchase_id"]), str(data["product_code"]), sandbox=bool(event["sandbox"]),
            claim=None, products=self.products, policy=self.policy, now=self.clock(), source="webhook",
            invoice_id=str(invoice_id) if invoice_id else None,
        )
        return _subscription_summary(outcome)

    async def _failed(self, event: dict, exc: Exception) -> ProcessResult:
        error = _describe(exc)
        if isinstance(exc, RuStoreUnavailable | ProcessingUnavailable):
            logger.warning("webhook processing failed, will retry", event_id=event["_id"], error=error)
        elif isinstance(exc, RuStoreAuthError):
            logger.error("webhook processing: RuStore refused our credentials", event_id=event["_id"], error=error)
        else:
            logger.opt(exception=exc).error("webhook processing failed unexpectedly", event_id=event["_id"])
        status = await events.mark_failed(self.db, event, self.clock(), error, max_attempts=self.max_attempts,
                                          outage=isinstance(exc, RuStoreUnavailable) and exc.outage)
        if status is None:
            return self._lost(event["_id"])
        return ProcessResult(event["_id"], status, error=error)

    async def _dead(self, event: dict, error: str) -> ProcessResult:
        if not await events.mark_dead(self.db, event, self.clock(), error):
            return self._lost(event["_id"])
        return ProcessResult(event["_id"], "dead", error=error)

    @staticmethod
    def _lost(event_id: str) -> ProcessResult:
        # Our lease ran out and another processor took over; its result is the one recorded.
        logger.warning("webhook attempt finished after losing its claim", event_id=event_id)
        return ProcessResult(event_id, "skipped")
