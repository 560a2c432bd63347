"""The sessions collection's functions where no handler shows the outcome (HTTP behaviour: tests/handlers/test_auth.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bson import ObjectId

from documents import accounts


async def test_revoke_session_answers_whether_it_ended_an_active_session_of_that_user(db):
    now = datetime.now(UTC)
    owner, stranger = ObjectId(), ObjectId()
    session, _ = await accounts.create_session(db, owner, "phone", now, idle_ttl=timedelta(days=30),
                                               absolute_ttl=timedelta(days=365))
    assert await accounts.revoke_session(db, session["_id"], "logout", now, user_id=stranger) is False
    assert await accounts.find_active_session(db, session["_id"], now) is not None  # not the stranger's to end
    assert await accounts.revoke_session(db, session["_id"], "logout", now, user_id=owner) is True
    assert await accounts.find_active_session(db, session["_id"], now) is None
    assert await accounts.revoke_session(db, session["_id"], "logout", now) is False  # already ended
    assert await accounts.revoke_session(db, "s_unknown", "logout", now) is False
