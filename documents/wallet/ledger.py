"""Points ledger: exactly-once credits, debits and clawbacks on a user's wallet.

Design (no multi-document transactions, so it runs on a standalone mongod)
-------------------------------------------------------------------------
State lives in two places.  ``users.points`` is the wallet: ``balance``,
``seq`` (ops ever applied), ``updated_at``, ``recent`` (short hashes of the last
RECENT_MAX idempotency keys), ``outbox`` (ops applied to the balance but not yet
written as entries, oldest first) and ``pending_since`` (present only while the
outbox may be non-empty).  ``transactions`` holds immutable entries, unique on
(user_id, idempotency_key) and on (user_id, seq).

Every balance change runs the same steps:

1. Pre-check: an entry for (user_id, key) exists -> replay it.
2. Apply: ONE ``find_one_and_update`` on the user filtered by
   ``points.recent.k != hash(key)`` and ``points.outbox.idempotency_key != key``
   (plus ``points.balance >= amount`` for debits) that ``$inc``s balance and
   seq, pushes the key hash onto ``recent`` (``$slice`` -RECENT_MAX), pushes
   the pending entry (with its pre-generated ``_id``) onto ``outbox``, sets
   ``updated_at`` and ``$min``s ``pending_since``; it returns the document as
   it is AFTER the update.  Balance change and "this key was applied" are one
   atomic write, so no interleaving can apply a key twice or lose an op.
3. Flush: from that snapshot every outbox entry gets its final seq and
   balance_after by walking back from the snapshot's balance/seq (see
   `documents.wallet.outbox`); entries are inserted in order (a
   duplicate key means another runner already wrote it) and exactly those ids
   are ``$pull``ed.  ``pending_since`` is unset only by a filter requiring an
   empty outbox.  Whoever runs next on the user finishes a crashed
   predecessor's outbox the same way, always from a fresh snapshot, so entries
   are never written out of order or with wrong balances.
4. Filter failure: re-read.  Key in ``recent``/``outbox`` -> applied by someone
   else: flush, replay.  User gone -> UserNotFound.  Debit with balance <
   amount -> InsufficientPoints.  Otherwise we lost a race: retry.
5. Replay: return the original entry with ``replayed=True`` and the balance
   right after it; a different type/amount (clawback: requested amount and
   corrected entry) or a different ``request_hash`` -> IdempotencyKeyMismatch.
6. Clawback: by default take ``min(balance, requested)`` with an optimistic
   loop guarded by ``points.balance == b`` and record ``meta.requested`` and
   ``meta.shortfall`` (floor at zero, like RevenueCat); with
   ``allow_negative`` take the full amount unconditionally.
7. Repair: `repair_users` flushes users whose ``pending_since`` is old,
   covering a crash between step 2 and step 3 on a user with no later traffic.
8. Audit: `verify_ledger` (documents.wallet.audit) recomputes every wallet.

Failure handling: a crash or database error before step 2 changes nothing;
after step 2 the op is durable in the outbox and the call still returns it
(a database error while writing the entry is logged, not raised), and any
later flush writes it.  Callers must retry with the SAME key (e.g.
``rustore:<purchaseId>``) and get a replay.

Limits: the durable guard is the unique index; ``recent`` and ``outbox`` only
cover the gap between a call's pre-check and its update.  A key is applied
twice only if its first application was flushed AND more than RECENT_MAX other
ops hit the same user inside that gap; the flush then sees the twin, records
it under ``<key>#dup:<id>`` with ``meta.duplicate_of`` so the ledger still
balances, and logs an error.  Times are stored as UTC, millisecond precision.
``meta`` keys the ledger writes itself (RESERVED_META) are refused from callers.
Before step 2 the key, reference and meta are BSON-encoded once (`UnwritableEntry`
if they cannot be, e.g. a lone surrogate, or exceed MAX_ENTRY_BYTES): an op whose
entry could never be written is refused whole instead of moving the balance.

Modules: `documents.wallet.apply` (steps 1-4), `documents.wallet.outbox`
(steps 3 and 7), `documents.wallet.audit` (step 8), `documents.wallet.entries`
(entry model, wallet shape, INDEXES, reads).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import bson
import bson.errors
from bson import ObjectId

from core.metrics import POINTS
from documents.common import bson_now, utc
from documents.wallet.apply import RECENT_MAX, USER_NOT_FOUND, Attempt, Plan, apply_once
from documents.wallet.audit import Drift, LedgerAudit, verify_ledger
from documents.wallet.entries import (
    CLAWBACK,
    CREDIT_TYPES,
    DEBIT_TYPES,
    INDEXES,
    TRANSACTIONS,
    USERS,
    LedgerEntry,
    Wallet,
    ensure_indexes,
    new_wallet,
)
from documents.wallet.entries import find_entry as _find_entry
from documents.wallet.entries import list_entries as _list_entries
from documents.wallet.outbox import RepairReport, flush_user, repair_pending, repair_users

__all__ = [
    "INDEXES", "RECENT_MAX", "MAX_AMOUNT", "Drift", "IdempotencyKeyMismatch",
    "InsufficientPoints", "InvalidAmount", "LedgerAudit", "LedgerEntry",
    "LedgerError", "LedgerResult", "UnwritableEntry", "UserNotFound", "Wallet", "clawback", "credit",
    "debit", "ensure_indexes", "find_entry", "flush_user", "get_balance",
    "list_entries", "new_wallet", "RepairReport", "repair_pending", "repair_users", "verify_ledger"]

MAX_AMOUNT = 10**9
MAX_KEY_LENGTH = 256
# Entries also sit in the wallet's outbox (inside the user document) until written: keep them small.
MAX_ENTRY_BYTES = 16 * 1024
# Written by the ledger itself; the audit and replay checks trust them.
RESERVED_META = frozenset({"request_hash", "requested", "shortfall", "allow_negative",
                           "corrects", "duplicate_of"})


class LedgerError(Exception):
    """Base class of every ledger error."""


class InsufficientPoints(LedgerError):
    """The wallet holds fewer points than the debit needs."""

    def __init__(self, balance: int) -> None:
        super().__init__(f"insufficient points: balance {balance}")
        self.balance = balance


class IdempotencyKeyMismatch(LedgerError):
    """The idempotency key was already used for a different request."""

    def __init__(self, entry: LedgerEntry) -> None:
        super().__init__(f"idempotency key {entry.idempotency_key!r} already used "
                         f"by entry {entry.id}")
        self.entry = entry


class UserNotFound(LedgerError):
    """No user document with that id exists."""


class InvalidAmount(LedgerError, ValueError):
    """The amount is not an int in 1..MAX_AMOUNT."""


@dataclass(frozen=True)
class LedgerResult:
    """Outcome of one credit/debit/clawback call."""

    entry: LedgerEntry
    balance: int
    replayed: bool


def _oid(user_id: ObjectId | str) -> ObjectId:
    if isinstance(user_id, ObjectId):
        return user_id
    if isinstance(user_id, str) and ObjectId.is_valid(user_id):
        return ObjectId(user_id)
    raise UserNotFound(f"invalid user id {user_id!r}")


def _check(amount: object, idempotency_key: object) -> int:
    # bool is an int subclass and floats round silently: both are bugs upstream.
    if type(amount) is not int or not 1 <= amount <= MAX_AMOUNT:
        raise InvalidAmount(f"amount must be an int in 1..{MAX_AMOUNT}, got {amount!r}")
    if not isinstance(idempotency_key, str) or not 0 < len(idempotency_key) <= MAX_KEY_LENGTH:
        raise ValueError(f"idempotency_key must be a str of 1..{MAX_KEY_LENGTH} chars")
    return amount


class UnwritableEntry(LedgerError, ValueError):
    """The entry could not be stored (not BSON-encodable, e.g. a lone surrogate, or too large): nothing changed."""


def _check_writable(key: str, reference: str | None, meta: dict[str, Any]) -> None:
    # Everything the op will write is encoded here, BEFORE the balance changes: an op whose entry cannot be
    # stored would otherwise move the balance and then block the wallet's outbox (and every later op) for good.
    try:
        size = len(bson.encode({"idempotency_key": key, "reference": reference, "meta": meta}))
    except (bson.errors.BSONError, UnicodeError, OverflowError, TypeError, ValueError) as exc:
        raise UnwritableEntry(f"ledger entry for key {key!r} cannot be stored: {type(exc).__name__}") from None
    if size > MAX_ENTRY_BYTES:
        raise UnwritableEntry(f"ledger entry for key {key!r} is {size} bytes (max {MAX_ENTRY_BYTES})")


async def _post(db: Any, user_id: ObjectId, key: str, type: str, plan: Plan,
                matches: Callable[[LedgerEntry], bool], reference: str | None,
                meta: dict[str, Any] | None, now: datetime | None) -> LedgerResult:
    if meta and RESERVED_META & meta.keys():
        raise ValueError(f"meta keys {sorted(RESERVED_META & meta.keys())} are reserved")
    _check_writable(key, reference, meta or {})
    outcome = await apply_once(db, user_id, key, type, plan, reference=reference,
                               meta=meta or {}, now=bson_now(now))
    if outcome.problem == USER_NOT_FOUND:
        raise UserNotFound(str(user_id))
    if outcome.entry is None:
        raise LedgerError(f"{outcome.problem}: could not settle key {key!r} "
                          f"for user {user_id}; retry with the same key")
    if outcome.replayed and not matches(outcome.entry):
        raise IdempotencyKeyMismatch(outcome.entry)
    if not outcome.replayed:
        POINTS.labels(type).inc(abs(outcome.entry.amount))  # every path that moves points passes here once
    return LedgerResult(outcome.entry, outcome.entry.balance_after, outcome.replayed)


def _balance(state: dict[str, Any]) -> int:
    return (state.get("points") or {}).get("balance", 0)


async def credit(db: Any, user_id: ObjectId | str, amount: int, type: str,
                 idempotency_key: str, *, reference: str | None = None,
                 meta: dict[str, Any] | None = None, request_hash: str | None = None,
                 corrects: ObjectId | None = None, now: datetime | None = None) -> LedgerResult:
    """Add `amount` points exactly once per idempotency key (`corrects`: the entry a refund corrects)."""
    amount = _check(amount, idempotency_key)
    if type not in CREDIT_TYPES:
        raise ValueError(f"credit type must be one of {sorted(CREDIT_TYPES)}")
    base = _hash_meta(request_hash)
    if corrects is not None:
        base["corrects"] = await _existing_entry(db, _oid(user_id), corrects)

    async def plan(state: dict[str, Any] | None) -> Attempt:
        return Attempt(amount, {}, base)

    return await _post(db, _oid(user_id), idempotency_key, type, plan,
                       _same(type, amount, request_hash), reference, meta, now)


async def debit(db: Any, user_id: ObjectId | str, amount: int, type: str,
                idempotency_key: str, *, reference: str | None = None,
                meta: dict[str, Any] | None = None, request_hash: str | None = None,
                now: datetime | None = None) -> LedgerResult:
    """Take `amount` points exactly once per key; raise InsufficientPoints if short."""
    amount = _check(amount, idempotency_key)
    if type not in DEBIT_TYPES:
        raise ValueError(f"debit type must be one of {sorted(DEBIT_TYPES)}")

    async def plan(state: dict[str, Any] | None) -> Attempt:
        if state is not None and _balance(state) < amount:
            raise InsufficientPoints(_balance(state))
        return Attempt(-amount, {"points.balance": {"$gte": amount}},
                       _hash_meta(request_hash))

    return await _post(db, _oid(user_id), idempotency_key, type, plan,
                       _same(type, -amount, request_hash), reference, meta, now)


async def clawback(db: Any, user_id: ObjectId | str, amount: int, idempotency_key: str,
                   *, corrects: ObjectId | None = None, reference: str | None = None,
                   meta: dict[str, Any] | None = None, allow_negative: bool = False,
                   now: datetime | None = None) -> LedgerResult:
    """Take back up to `amount` points (all of it with allow_negative) exactly once per key."""
    requested = _check(amount, idempotency_key)
    uid = _oid(user_id)
    base: dict[str, Any] = {"requested": requested}
    if corrects is not None:
        base["corrects"] = await _existing_entry(db, uid, corrects)

    async def plan(state: dict[str, Any] | None) -> Attempt:
        if allow_negative:
            return Attempt(-requested, {}, {**base, "shortfall": 0, "allow_negative": True})
        if state is None:
            state = await db[USERS].find_one({"_id": uid}, {"points.balance": 1})
            if state is None:
                raise UserNotFound(str(uid))
        points = state.get("points") or {}
        seen = points.get("balance", 0)
        take = min(max(seen, 0), requested)
        # Optimistic: only valid if the balance is still the one we sized it on.
        guard = ({"points.balance": seen} if "balance" in points
                 else {"points.balance": {"$exists": False}})
        return Attempt(-take, guard, {**base, "shortfall": requested - take})

    def matches(entry: LedgerEntry) -> bool:
        return (entry.type == CLAWBACK and entry.meta.get("requested") == requested
                and entry.meta.get("corrects") == corrects)

    return await _post(db, uid, idempotency_key, CLAWBACK, plan, matches, reference,
                       meta, now)


async def _existing_entry(db: Any, user_id: ObjectId, entry_id: ObjectId) -> ObjectId:
    # A correction must point at a real entry of the same user, or the audit trail admins
    # rely on is broken from the start.
    if await db[TRANSACTIONS].find_one({"_id": entry_id, "user_id": user_id}, {"_id": 1}) is None:
        raise LedgerError(f"entry {entry_id} to correct not found for user {user_id}")
    return entry_id


def _hash_meta(request_hash: str | None) -> dict[str, Any]:
    return {} if request_hash is None else {"request_hash": request_hash}


def _same(type: str, amount: int, request_hash: str | None) -> Callable[[LedgerEntry], bool]:
    def matches(entry: LedgerEntry) -> bool:
        return (entry.type == type and entry.amount == amount
                and (request_hash is None or entry.meta.get("request_hash") == request_hash))
    return matches


async def get_balance(db: Any, user_id: ObjectId | str) -> Wallet:
    """Return the user's current balance; raise UserNotFound."""
    doc = await db[USERS].find_one({"_id": _oid(user_id)},
                                   {"points.balance": 1, "points.updated_at": 1})
    if doc is None:
        raise UserNotFound(str(user_id))
    points = doc.get("points") or {}
    updated = points.get("updated_at")
    return Wallet(balance=points.get("balance", 0), updated_at=utc(updated) if updated else None)


async def find_entry(db: Any, user_id: ObjectId | str,
                     idempotency_key: str) -> LedgerEntry | None:
    """Return the written entry for (user, idempotency key), or None."""
    return await _find_entry(db, _oid(user_id), idempotency_key)


async def list_entries(db: Any, user_id: ObjectId | str, *, limit: int,
                       before_seq: int | None = None,
                       type: str | None = None) -> list[LedgerEntry]:
    """Return up to `limit` entries newest first (by seq), older than `before_seq`."""
    return await _list_entries(db, _oid(user_id), limit=limit, before_seq=before_seq,
                               type=type)

