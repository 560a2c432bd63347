"""Queueing and delivering account e-mails: seal, store, try once in the background, let the job retry.

The request that queues a mail never waits for SMTP: it stores the mail (durable from that moment)
and starts one delivery attempt in the background; `mail-delivery` (jobs/mail_delivery.py) sends
whatever that attempt could not. Failures are counted in `mail_deliveries_total` and logged with the
mail's id and the error's type only: no address, body, link or SMTP credential reaches the log.
"""

from __future__ import annotations

import json
from typing import Any

import aiosmtplib
from bson import ObjectId
from loguru import logger

from core.mail import Mail
from core.metrics import MAILS
from documents import accounts


async def queue_mail(ctx: Any, user_id: ObjectId | None, kind: str, mail: Mail) -> ObjectId:
    """Store `mail` durably and start one delivery attempt in the background; returns its id."""
    sealed = ctx.mailer.sealer.seal(json.dumps({"text": mail.text, "html": mail.html, "links": list(mail.links)}))
    doc = await accounts.enqueue(ctx.db, user_id=user_id, to=mail.to, kind=kind, subject=mail.subject,
                                    sealed=sealed, now=ctx.now())
    ctx.spawn(deliver_one(ctx, doc["_id"]))
    return doc["_id"]


async def deliver_one(ctx: Any, mail_id: ObjectId | None = None) -> str | None:
    """Claim one due mail (this one, or the oldest due) and try to deliver it; its new status, or None."""
    doc = await accounts.claim(ctx.db, ctx.now(), mail_id)
    if doc is None:
        return None
    kind = doc.get("kind", "unknown")
    try:
        body = json.loads(ctx.mailer.sealer.open(doc["sealed"]))
        await ctx.mailer.deliver(Mail(to=doc["to"], subject=doc["subject"], text=body["text"], html=body["html"],
                                      links=tuple(body.get("links") or ())))
    except ValueError:
        # Sealed under another secret (JWT_SECRET changed, or a development process restarted): unsendable.
        logger.error("queued mail cannot be opened; dropped", mail_id=str(doc["_id"]), kind=kind)
        status = await accounts.mark_failed(ctx.db, doc, ctx.now(), "unreadable", max_attempts=0)
        MAILS.labels(kind, status if status == "dead" else "retry").inc()
        return status
    except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
        error = type(exc).__name__
        status = await accounts.mark_failed(ctx.db, doc, ctx.now(), error, ctx.settings.mail_max_attempts)
        MAILS.labels(kind, "dead" if status == "dead" else "retry").inc()
        log = logger.error if status == "dead" else logger.warning
        log("mail delivery failed", mail_id=str(doc["_id"]), kind=kind, attempts=doc["attempts"], error=error,
            outcome=status)
        return status
    await accounts.mark_sent(ctx.db, doc, ctx.now())
    MAILS.labels(kind, "sent").inc()
    logger.info("mail sent", mail_id=str(doc["_id"]), kind=kind, attempts=doc["attempts"])
    return "sent"


async def deliver_due(ctx: Any, batch: int) -> dict[str, int]:
    """Deliver up to `batch` due mails one after another; counts per outcome."""
    summary = {"sent": 0, "pending": 0, "dead": 0}
    for _ in range(batch):
        status = await deliver_one(ctx)
        if status is None:
            break
        summary[status] += 1
    return summary
