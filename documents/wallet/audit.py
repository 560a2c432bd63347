"""Ledger audit: recompute every wallet from its entries and report drift.

For each user (paged by ``_id``) the wallet snapshot is read FIRST; then the
user's entries are streamed in seq order.  Only entries with
``seq <= points.seq - len(points.outbox)`` are judged, because the outbox
only ever loses a prefix after it was written, so exactly those entries were
durable when the snapshot was taken.  That makes the audit safe to run against
a live database: an op landing mid-audit never shows up as drift.

Checks per user (drift ``kind`` in brackets):
* seqs are exactly 1..n with n == wallet seq minus outbox length [seq];
* each entry's balance_after == previous balance_after + amount [chain];
* wallet balance == sum(entry amounts) + sum(outbox amounts) [balance];
* no entry takes the balance below zero unless it is a clawback recorded with
  ``meta.allow_negative`` [negative];
* an outbox older than ``pending_grace`` [stale_outbox]; a younger one is only
  listed in ``pending``;
* entries of a requested user id with no user document [missing_user].

Cost is O(users + entries): two indexed queries per page of users.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from bson import ObjectId
from pymongo import ASCENDING, DESCENDING

from documents.common import bson_now, utc
from documents.wallet.entries import CLAWBACK, TRANSACTIONS, USERS

_WALLET = {"points.balance": 1, "points.seq": 1, "points.outbox.amount": 1,
           "points.outbox.created_at": 1}
_ENTRY = {"user_id": 1, "seq": 1, "type": 1, "amount": 1, "balance_after": 1,
          "meta.allow_negative": 1}


@dataclass(frozen=True)
class Drift:
    """One inconsistency found by the audit."""

    user_id: ObjectId
    kind: str
    expected: Any
    actual: Any
    seq: int | None = None


@dataclass(frozen=True)
class LedgerAudit:
    """Result of `verify_ledger`."""

    users_checked: int
    entries_checked: int
    drift: list[Drift] = field(default_factory=list)
    pending: list[ObjectId] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no drift was found (pending outboxes are not drift)."""
        return not self.drift


@dataclass
class _Chain:
    """Running totals over one user's entries."""

    bound: int
    count: int = 0
    next_seq: int = 1
    total: int = 0
    last_after: int = 0


async def _user_pages(db: Any, user_ids: Iterable[ObjectId] | None,
                      batch: int) -> AsyncIterator[tuple[list[ObjectId], list[dict[str, Any]]]]:
    """Yield (requested ids, found wallet docs) page by page."""
    users = db[USERS]
    if user_ids is not None:
        wanted = sorted(set(user_ids))
        for start in range(0, len(wanted), batch):
            ids = wanted[start:start + batch]
            docs = await users.find({"_id": {"$in": ids}}, _WALLET) \
                .limit(len(ids)).to_list(len(ids))
            yield ids, docs
        return
    last: ObjectId | None = None
    while True:
        query = {} if last is None else {"_id": {"$gt": last}}
        docs = await users.find(query, _WALLET).sort("_id", ASCENDING) \
            .limit(batch).to_list(batch)
        if not docs:
            return
        yield [doc["_id"] for doc in docs], docs
        last = docs[-1]["_id"]


def _check_entry(chain: _Chain, uid: ObjectId, entry: dict[str, Any],
                 drift: list[Drift]) -> None:
    seq, amount, after = entry["seq"], entry["amount"], entry["balance_after"]
    if seq != chain.next_seq:
        drift.append(Drift(uid, "seq", chain.next_seq, seq, seq))
    if after != chain.last_after + amount:
        drift.append(Drift(uid, "chain", chain.last_after + amount, after, seq))
    allowed = entry["type"] == CLAWBACK and (entry.get("meta") or {}).get("allow_negative")
    if after < 0 and amount < 0 and not allowed:
        drift.append(Drift(uid, "negative", 0, after, seq))
    # Resynchronise so one bad entry is reported once, not on every later one.
    chain.count += 1
    chain.next_seq = seq + 1
    chain.total += amount
    chain.last_after = after


async def verify_ledger(db: Any, user_ids: Iterable[ObjectId] | None = None, *,
                        pending_grace: timedelta = timedelta(minutes=5),
                        now: datetime | None = None, batch: int = 200) -> LedgerAudit:
    """Recompute wallets from entries and report drift per user."""
    now = bson_now(now)
    drift: list[Drift] = []
    pending: list[ObjectId] = []
    orphans: set[ObjectId] = set()
    users_checked = entries_checked = 0
    async for ids, docs in _user_pages(db, user_ids, batch):
        wallets = {doc["_id"]: doc.get("points") or {} for doc in docs}
        chains = {uid: _Chain(bound=p.get("seq", 0) - len(p.get("outbox") or []))
                  for uid, p in wallets.items()}
        users_checked += len(wallets)
        # (user_id desc, seq asc) walks the (user_id asc, seq desc) index backwards.
        cursor = db[TRANSACTIONS].find({"user_id": {"$in": ids}}, _ENTRY) \
            .sort([("user_id", DESCENDING), ("seq", ASCENDING)])
        async for entry in cursor:
            uid = entry["user_id"]
            chain = chains.get(uid)
            if chain is None:
                if uid not in orphans:
                    orphans.add(uid)
                    drift.append(Drift(uid, "missing_user", None, "entries", entry["seq"]))
                continue
            if entry["seq"] > chain.bound:
                continue  # written after our snapshot; judged via the outbox
            entries_checked += 1
            _check_entry(chain, uid, entry, drift)
        for uid, points in wallets.items():
            chain = chains[uid]
            outbox = points.get("outbox") or []
            if chain.count != chain.bound or chain.next_seq - 1 != chain.bound:
                drift.append(Drift(uid, "seq", chain.bound, chain.count))
            expected = chain.total + sum(item["amount"] for item in outbox)
            balance = points.get("balance", 0)
            if balance != expected:
                drift.append(Drift(uid, "balance", expected, balance))
            if outbox:
                age = now - min(utc(item["created_at"]) for item in outbox)
                if age > pending_grace:
                    drift.append(Drift(uid, "stale_outbox", pending_grace, age))
                else:
                    pending.append(uid)
    return LedgerAudit(users_checked, entries_checked, drift, pending)
