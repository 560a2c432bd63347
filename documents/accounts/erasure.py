"""Erasing an account's personal data outside `users`: generations, images, sessions' devices, tokens and mail.

What stays (purchases, subscriptions, orders, ledger entries) is listed with the reasons in docs/accounts.md.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bson import ObjectId

from documents.accounts import mail as mail_outbox
from documents.accounts import tokens as account_tokens
from documents.accounts.sessions import COLLECTION as SESSIONS
from documents.generations import COLLECTION as GENERATIONS
from documents.generations import IMAGES


async def erase_personal_data(db: Any, user_id: ObjectId, now: datetime) -> dict[str, int]:
    """Remove what the user wrote or generated and every device and address trace; counts per kind."""
    texts = await db[GENERATIONS].update_many(
        {"user_id": user_id},
        {"$set": {"request": {}, "erased_at": now}, "$unset": {"result.text": "", "result.title": ""}})
    images = await db[IMAGES].delete_many({"user_id": user_id})
    sessions = await db[SESSIONS].update_many({"user_id": user_id}, {"$set": {"device_id": None}})
    await account_tokens.forget_user(db, user_id)
    mails = await mail_outbox.forget_user(db, user_id)
    return {"generations": texts.modified_count, "images": images.deleted_count,
            "sessions": sessions.modified_count, "mails": mails}
