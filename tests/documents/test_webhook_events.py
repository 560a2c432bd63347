"""webhook_events: stored once per notification, claimed by one processor at a time, retried with backoff, dead-lettered."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import UTC, datetime, timedelta

import pytest
from mongomock_motor import AsyncMongoMockClient

from documents.webhooks import store as events
from rustore import InvoiceStatus, InvoiceStatusEvent, Notification, TestEvent
from tests.support.barrier import Barrier
from tests.support.yielding import YieldingDatabase

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def invoice_note(notification_id: str = "41", *, sandbox: bool = False, token: str | None = "100500.77") -> Notification:
    event = InvoiceStatusEvent(invoice_id="100500", purchase_id="p-1", order_id="o-1", product_code="points_100",
                               status_new=InvoiceStatus.CONFIRMED, status_old=InvoiceStatus.EXECUTED,
                               change_status_time=NOW, purchase_token=token)
    kind = "INVOICE_STATUS_SANDBOX" if sandbox else "INVOICE_STATUS"
    return Notification(notification_id, NOW, kind, 7, sandbox, event)


@pytest.fixture
async def store():
    """A tz-aware store (as the app configures Motor) that yields at every call, with this collection's indexes."""
    db = YieldingDatabase(AsyncMongoMockClient(tz_aware=True)["webhook_events_test"])
    await db[events.COLLECTION].create_indexes(events.INDEXES[events.COLLECTION])
    return db


async def stored(db, event_id: str) -> dict:
    return await db[events.COLLECTION].find_one({"_id": event_id})


async def test_a_notification_is_stored_once_and_its_purchase_token_only_as_a_hash(store):
    doc, created = await events.record_event(store, invoice_note(), NOW)
    assert created and doc["_id"] == "real:41" and doc["status"] == "received" and doc["next_attempt_at"] == NOW
    again, created_again = await events.record_event(store, invoice_note(), NOW + timedelta(seconds=5))
    assert not created_again and again["received_at"] == doc["received_at"]
    saved = await stored(store, "real:41")
    assert saved["event"]["purchase_token_sha256"] == hashlib.sha256(b"100500.77").hexdigest()
    assert "100500.77" not in str(saved)
    assert saved["event"]["status_new"] == "CONFIRMED" and saved["type"] == "INVOICE_STATUS" and saved["app_id"] == 7


async def test_real_and_sandbox_notifications_with_the_same_id_are_different_events(store):
    _, real = await events.record_event(store, invoice_note("5"), NOW)
    _, sandbox = await events.record_event(store, invoice_note("5", sandbox=True), NOW)
    assert real and sandbox
    assert (await events.find_event(store, "5"))["_id"] == "real:5"  # bare ids prefer the real environment
    assert (await events.find_event(store, "sandbox:5"))["sandbox"] is True
    assert await events.find_event(store, "6") is None


async def test_test_events_are_stored_done_and_expire_after_the_retention_period(store):
    note = Notification("9", NOW, "TEST_EVENT", 7, False, TestEvent({"test": "TEST"}))
    doc, _ = await events.record_event(store, note, NOW)
    assert doc["status"] == "processed" and doc["expires_at"] == NOW + events.RETENTION
    assert "next_attempt_at" not in doc
    assert await events.due_event_ids(store, NOW + timedelta(days=1), 10) == []


async def test_only_one_of_many_concurrent_claims_wins(store):
    await events.record_event(store, invoice_note(), NOW)
    racing = store.with_hook(barrier := Barrier(5, events.COLLECTION))  # all five at the claiming update
    claims = await asyncio.gather(*(events.claim_event(racing, "real:41", NOW) for _ in range(5)))
    assert barrier.met
    winners = [c for c in claims if c is not None]
    assert len(winners) == 1
    claim = winners[0]
    assert claim["status"] == "processing" and claim["attempts"] == 1
    assert claim["processing_until"] == claim["next_attempt_at"] == NOW + events.LEASE


async def test_an_abandoned_claim_expires_and_its_late_result_is_refused(store):
    await events.record_event(store, invoice_note(), NOW)
    crashed = await events.claim_event(store, "real:41", NOW)
    assert await events.due_event_ids(store, NOW + events.LEASE - timedelta(seconds=1), 10) == []
    assert await events.claim_event(store, "real:41", NOW + timedelta(seconds=30)) is None
    later = NOW + events.LEASE
    assert await events.due_event_ids(store, later, 10) == ["real:41"]
    successor = await events.claim_event(store, "real:41", later)
    assert successor["attempts"] == 2 and successor["claim"] != crashed["claim"]
    assert not await events.mark_processed(store, crashed, later, {"by": "the crashed one"})
    assert await events.mark_processed(store, successor, later, {"by": "successor"})
    done = await stored(store, "real:41")
    assert done["status"] == "processed" and done["result"] == {"by": "successor"}
    assert {"claim", "processing_until", "next_attempt_at"}.isdisjoint(done)
    assert done["expires_at"] == later + events.RETENTION


def test_backoff_doubles_from_a_minute_with_jitter_and_stops_growing_at_six_hours():
    assert events.retry_delay(1, lambda: 0.5) == timedelta(minutes=1)
    assert events.retry_delay(3, lambda: 0.5) == timedelta(minutes=4)
    assert events.retry_delay(1, lambda: 0.0) == timedelta(seconds=45)
    assert events.retry_delay(1, lambda: 1.0) == timedelta(seconds=75)
    assert events.retry_delay(10, lambda: 0.5) == events.retry_delay(50, lambda: 0.5) == timedelta(hours=6)


async def test_failures_are_retried_after_backoff_until_the_last_attempt_dead_letters_them(store):
    await events.record_event(store, invoice_note(), NOW)
    now = NOW
    for attempt in (1, 2):
        claim = await events.claim_event(store, "real:41", now)
        assert claim["attempts"] == attempt
        status = await events.mark_failed(store, claim, now, "RuStoreUnavailable: down", max_attempts=3,
                                          rng=lambda: 0.5)
        assert status == "failed"
        saved = await stored(store, "real:41")
        assert saved["next_attempt_at"] == now + events.retry_delay(attempt, lambda: 0.5)
        assert await events.claim_event(store, "real:41", now) is None  # not before the backoff
        now = saved["next_attempt_at"]
    claim = await events.claim_event(store, "real:41", now)
    assert await events.mark_failed(store, claim, now, "RuStoreUnavailable: still down", max_attempts=3) == "dead"
    dead = await stored(store, "real:41")
    assert dead["status"] == "dead" and dead["attempts"] == 3 and dead["last_error"] == "RuStoreUnavailable: still down"
    assert "next_attempt_at" not in dead and "expires_at" not in dead  # dead letters stay until someone acts


async def test_dead_letters_are_listed_newest_first_and_a_requeue_makes_them_due_with_fresh_attempts(store):
    for n, minutes in (("1", 0), ("2", 5), ("3", 10)):
        await events.record_event(store, invoice_note(n), NOW)
        claim = await events.claim_event(store, f"real:{n}", NOW + timedelta(minutes=minutes))
        await events.mark_dead(store, claim, NOW + timedelta(minutes=minutes), "unknown_product: nope")
    assert [e["_id"] for e in await events.list_dead_events(store, 2)] == ["real:3", "real:2"]
    later = NOW + timedelta(hours=1)
    requeued = await events.requeue_event(store, "2", later)
    assert requeued["status"] == "received" and requeued["attempts"] == 0 and requeued["next_attempt_at"] == later
    assert requeued["requeues"] == 1 and requeued["last_error"] == "unknown_product: nope"
    assert await events.due_event_ids(store, later, 10) == ["real:2"]
    assert [e["_id"] for e in await events.list_dead_events(store, 10)] == ["real:3", "real:1"]


async def test_requeue_refuses_unknown_ids_and_events_under_a_live_claim(store):
    with pytest.raises(events.WebhookEventNotFound):
        await events.requeue_event(store, "404", NOW)
    await events.record_event(store, invoice_note(), NOW)
    await events.claim_event(store, "real:41", NOW)
    with pytest.raises(events.WebhookEventBusy):
        await events.requeue_event(store, "real:41", NOW + timedelta(seconds=10))
    after_lease = await events.requeue_event(store, "real:41", NOW + events.LEASE)
    assert after_lease["status"] == "received" and "claim" not in after_lease


async def test_processed_events_are_purged_after_the_retention_period_and_others_are_kept(store):
    for n in ("1", "2", "3"):
        await events.record_event(store, invoice_note(n), NOW)
    done = await events.claim_event(store, "real:1", NOW)
    await events.mark_processed(store, done, NOW)
    dead = await events.claim_event(store, "real:2", NOW)
    await events.mark_dead(store, dead, NOW, "unknown_product: nope")
    await events.record_event(store, Notification("9", NOW, "TEST_EVENT", 7, False, TestEvent({})), NOW)
    assert await events.purge_expired(store, NOW + events.RETENTION - timedelta(seconds=1), 10) == 0
    assert await events.purge_expired(store, NOW + events.RETENTION, 1) == 1  # bounded batch
    assert await events.purge_expired(store, NOW + events.RETENTION, 10) == 1
    left = await store[events.COLLECTION].find({}, {"status": 1}).limit(10).to_list(10)
    assert sorted((d["_id"], d["status"]) for d in left) == [("real:2", "dead"), ("real:3", "received")]
