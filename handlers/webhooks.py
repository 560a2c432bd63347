"""POST /api/webhooks/rustore — RuStore's server notifications: authenticate, persist once, answer, process later.

RuStore waits 3 s for a 200 and re-sends otherwise (16 times over 36 h), possibly out of order.
So the handler does only what must happen before the 200: check the source address, decrypt and
authenticate the body, and store it under its notification id (a redelivery is a no-op). The
actual work (asking RuStore for the current state and applying it) runs in the background and,
if it fails, in the `webhook-retry` job. Nothing here trusts the notification's own status.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import re
from collections.abc import Awaitable, Callable
from typing import Any

from loguru import logger
from marshmallow import INCLUDE, Schema, fields

from core.metrics import WEBHOOKS
from core.mongo_health import is_unavailable
from core.webhook_wiring import webhook_processor
from documents import webhooks
from documents.common import utc
from handlers.base import ApiError, APIHandler, public
from handlers.docs import api
from handlers.schemas import CamelSchema
from rustore import (
    NotificationAppIdError,
    NotificationBase64Error,
    NotificationDecryptError,
    NotificationEnvelopeError,
    NotificationError,
    NotificationKeyMismatchError,
    NotificationMissingKeyError,
    NotificationPlaintextError,
)

INLINE_PROCESSING = 4  # notifications processed at once per process; the rest wait their turn
ACK_PRIORITY_S = 1.0  # how long processing defers to deliveries still being acknowledged

# Stable `details.error` per decoder failure, so RuStore Console / logs show what was wrong.
REJECTIONS: dict[type[NotificationError], str] = {
    NotificationEnvelopeError: "envelope_invalid",
    NotificationBase64Error: "payload_not_base64",
    NotificationDecryptError: "decryption_failed",
    NotificationMissingKeyError: "key_missing",
    NotificationKeyMismatchError: "key_mismatch",
    NotificationPlaintextError: "plaintext_invalid",
    NotificationAppIdError: "app_id_mismatch",
}


class NotificationEnvelopeSchema(Schema):
    """What RuStore POSTs; rustore.notifications checks it (AES-GCM over `payload`), not load()."""

    class Meta:
        unknown = INCLUDE  # RuStore may add fields; only these three are read

    id = fields.Raw(required=True, metadata={"type": ["string", "integer"], "description": "Notification id."})
    timestamp = fields.String(metadata={"description": "When RuStore sent it (ISO-8601)."})
    payload = fields.String(required=True, metadata={"description": "Base64 of IV + AES-256-GCM ciphertext + tag."})


class WebhookAckSchema(CamelSchema):
    """The acknowledgement RuStore waits for (any 200 stops its redeliveries)."""

    status = fields.String(required=True, metadata={"enum": ["accepted", "duplicate"]})
    id = fields.String(required=True, metadata={"description": "The notification id."})


def rejection_code(exc: NotificationError) -> str:
    """The `details.error` of a refused notification."""
    for kind, code in REJECTIONS.items():
        if isinstance(exc, kind):
            return code
    return re.sub(r"(?<!^)(?=[A-Z])", "_", type(exc).__name__).lower()


def _inside(address: str, networks: tuple) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in networks)


class InlineProcessing:
    """Per-application scheduler of background processing that lets acknowledgements go first.

    Processing shares the event loop with the acknowledgements RuStore waits 3 s for. So at most
    INLINE_PROCESSING events are processed at once (a redelivery burst after an outage does not
    start hundreds of RuStore calls), and each waits, up to ACK_PRIORITY_S, until no delivery is
    being acknowledged. Waiting tasks are cheap; if the process stops first the event is still
    `received` and the retry job takes it.
    """

    def __init__(self) -> None:
        self.slots = asyncio.Semaphore(INLINE_PROCESSING)
        self.acking = 0
        self.idle = asyncio.Event()
        self.idle.set()

    def ack_started(self) -> None:
        self.acking += 1
        self.idle.clear()

    def ack_finished(self) -> None:
        self.acking -= 1
        if self.acking == 0:
            self.idle.set()

    async def run(self, work: Callable[[], Awaitable[Any]]) -> None:
        async with self.slots:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.idle.wait(), ACK_PRIORITY_S)
            await work()


class RuStoreWebhookHandler(APIHandler):
    """POST /api/webhooks/rustore — public: authenticity comes from AES-GCM (and the optional IP allow-list)."""

    @property
    def inline(self) -> InlineProcessing:
        """This application's background-processing scheduler."""
        return self.application.settings.setdefault("webhook_inline", InlineProcessing())

    async def prepare(self) -> None:
        self._acking = True
        self.inline.ack_started()
        await super().prepare()

    def on_finish(self) -> None:
        self._ack_done()

    def on_connection_close(self) -> None:
        self._ack_done()  # the sender hung up: on_finish may never come
        super().on_connection_close()

    def _ack_done(self) -> None:
        if getattr(self, "_acking", False):
            self._acking = False
            self.inline.ack_finished()

    def source_allowed(self) -> bool | None:
        """True/False for a sender inside/outside RUSTORE_WEBHOOK_ALLOWED_IPS; None when no list is set."""
        if not hasattr(self, "_source_allowed"):
            networks = self.ctx.settings.webhook_networks
            self._source_allowed = _inside(self.client_ip, networks) if networks else None
        return self._source_allowed

    async def _apply_rate_limits(self, verdict: Any) -> None:
        # RuStore sends from a few addresses; after an outage it replays a backlog, which the
        # per-IP API budget would turn into 429s and more redeliveries. Allow-listed sources skip it.
        if self.source_allowed():
            return
        await super()._apply_rate_limits(verdict)

    @public
    @api("RuStore server notification (payments, refunds, subscriptions)", raw_body=NotificationEnvelopeSchema,
         responses={200: WebhookAckSchema},
         errors={400: ["invalid_notification"], 403: ["webhook_source_not_allowed"], 503: ["webhooks_not_configured"]},
         description="Called by RuStore, not by apps. The body is authenticated by decrypting it with the "
                     "notification key; `details.error` of a 400 names what failed. The server then re-asks "
                     "RuStore for the current state instead of trusting the notification.")
    async def post(self) -> None:
        ctx = self.ctx
        if self.source_allowed() is False:
            WEBHOOKS.labels("rejected").inc()
            logger.warning("webhook from outside RUSTORE_WEBHOOK_ALLOWED_IPS", ip=self.client_ip,
                           request_id=self.request_id)
            raise ApiError(403, "webhook_source_not_allowed", "This address may not send RuStore notifications.")
        if ctx.notifications is None:
            raise ApiError(503, "webhooks_not_configured", "RuStore notification keys are not configured.")
        try:
            note = ctx.notifications.decode(self.raw_body())
        except NotificationError as exc:
            code = rejection_code(exc)
            WEBHOOKS.labels("rejected").inc()
            # The exception text names what failed, never the payload or a key.
            logger.warning("webhook rejected: {}", exc, error=code, ip=self.client_ip, request_id=self.request_id)
            raise ApiError(400, "invalid_notification", "The notification could not be authenticated.",
                           details={"error": code}) from None
        try:
            event, created = await webhooks.record_event(self.db, note, ctx.now())
        except Exception as exc:
            if is_unavailable(exc):
                # Not stored, so not acknowledged: the 503 makes RuStore redeliver (for up to 36 h). If the
                # insert did land before the connection broke, the redelivery is a duplicate and gets its 200.
                WEBHOOKS.labels("store_failed").inc()
                logger.warning("webhook not stored, MongoDB unavailable", notification_id=note.id,
                               request_id=self.request_id)
            raise
        if not created:
            WEBHOOKS.labels("duplicate").inc()
            self._nudge(event)
            self.write_json({"status": "duplicate", "id": note.id})
            return
        WEBHOOKS.labels("received").inc()
        if event["status"] == webhooks.RECEIVED:
            self._process_later(event["_id"])
        elif event["status"] in (webhooks.PROCESSED, webhooks.IGNORED):
            WEBHOOKS.labels(event["status"]).inc()  # test events are done, unknown types stored as ignored
        logger.info("webhook accepted", event_id=event["_id"], type=note.notification_type, status=event["status"],
                    request_id=self.request_id)
        self.write_json({"status": "accepted", "id": note.id})

    def _nudge(self, event: dict) -> None:
        """A redelivery of an event still waiting (e.g. we died before answering) is processed now."""
        due = event.get("next_attempt_at")
        if event.get("status") in (webhooks.RECEIVED, webhooks.FAILED) and due is not None and utc(due) <= self.ctx.now():
            self._process_later(event["_id"])

    def _process_later(self, event_id: str) -> None:
        processor = webhook_processor(self.ctx)
        self.ctx.spawn(self.inline.run(lambda: processor.process(event_id)))


default_handlers = [
    (r"/api/webhooks/rustore", RuStoreWebhookHandler),
]
