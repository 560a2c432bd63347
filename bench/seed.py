"""The load benchmark's data set: users, sessions and ledger entries, the same in every process that seeds it.

Everything is derived from the user's index, so the load generator computes ids, emails, session
ids, refresh tokens and (with the shared JWT_SECRET) access tokens itself, and two server
processes seeded separately hold identical stores. Entries are inserted in bulk, already settled
(chained seq and balance_after, the wallet's `recent` keys), before the indexes exist: mongomock
checks a unique index by scanning the collection on every insert, which would make 100k single
ledger writes take hours. `check_sample` runs the ledger's own audit on some of them.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import bcrypt
from bson import ObjectId

from documents import ensure_indexes
from documents.accounts.sessions import hash_token
from documents.wallet import verify_ledger
from documents.wallet.apply import key_hash

PASSWORD = "benchmark password"
EPOCH = 1_700_000_000  # the timestamp inside every seeded ObjectId
GRANT, SPEND = 1000, 100  # odd entries grant, even ones spend: 10 entries leave 4500 points


@dataclass(frozen=True)
class BenchUser:
    """One seeded account as the load generator addresses it."""

    index: int
    user_id: str
    email: str
    session_id: str
    refresh_token: str


def bench_user(i: int) -> BenchUser:
    """The i-th seeded user (pure function of i)."""
    oid = ObjectId(struct.pack(">I", EPOCH) + i.to_bytes(8, "big"))
    return BenchUser(i, str(oid), f"user{i}@bench.example", f"s_bench{i:08d}", f"rt_bench_{i:08d}_seeded")


def _entries(uid: ObjectId, i: int, count: int, start: datetime) -> tuple[list[dict], dict]:
    docs, balance = [], 0
    for seq in range(1, count + 1):
        amount, kind = (GRANT, "admin_grant") if seq % 2 else (-SPEND, "spend")
        balance += amount
        at = start + timedelta(minutes=seq)
        docs.append({"_id": ObjectId(struct.pack(">I", EPOCH + seq) + uid.binary[4:]), "user_id": uid, "seq": seq,
                     "type": kind, "amount": amount, "balance_after": balance, "reference": None,
                     "idempotency_key": f"seed:{i}:{seq}", "created_at": at, "meta": {}})
    wallet = {"balance": balance, "seq": count, "updated_at": start + timedelta(minutes=count),
              "recent": [{"k": key_hash(d["idempotency_key"]), "at": d["created_at"]} for d in docs], "outbox": []}
    return docs, wallet


def documents_for(users: int, entries: int, password_hash: str, now: datetime) -> dict[str, list[dict]]:
    """The users, sessions and transactions documents of the data set."""
    start = (now - timedelta(days=30)).replace(microsecond=0)
    per_user, extra = divmod(entries, users)
    out: dict[str, list[dict]] = {"users": [], "sessions": [], "transactions": []}
    for i in range(users):
        u = bench_user(i)
        uid = ObjectId(u.user_id)
        docs, wallet = _entries(uid, i, per_user + (1 if i < extra else 0), start)
        out["transactions"].extend(docs)
        out["users"].append({"_id": uid, "email": u.email, "password_hash": password_hash, "device_ids": [],
                             "created_at": start, "updated_at": start, "points": wallet, "subscription": None,
                             "owned_products": []})
        out["sessions"].append({"_id": u.session_id, "user_id": uid, "device_id": None, "created_at": start,
                                "last_used_at": now, "idle_expires_at": now + timedelta(days=30),
                                "expires_at": now + timedelta(days=300), "refresh_hash": hash_token(u.refresh_token),
                                "previous_hash": None, "rotated_at": None, "used_hashes": [], "revoked_at": None,
                                "revoked_reason": None, "purge_at": now + timedelta(days=330)})
    return out


async def seed(db: Any, users: int, entries: int, rounds: int = 12) -> dict[str, Any]:
    """Insert the data set into an empty database, then create the indexes; return counts."""
    password_hash = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds)).decode()
    docs = documents_for(users, entries, password_hash, datetime.now(UTC))
    for name, batch in docs.items():
        for start in range(0, len(batch), 10_000):
            await db[name].insert_many(batch[start:start + 10_000], ordered=False)
    await ensure_indexes(db)
    return {name: len(batch) for name, batch in docs.items()}


async def check_sample(db: Any, users: int, sample: int = 50) -> dict[str, Any]:
    """Audit a spread-out sample of seeded wallets with the ledger's own `verify_ledger`."""
    step = max(1, users // sample)
    ids = [ObjectId(bench_user(i).user_id) for i in range(0, users, step)][:sample]
    audit = await verify_ledger(db, ids)
    return {"users": audit.users_checked, "entries": audit.entries_checked, "ok": audit.ok,
            "drift": [str(d) for d in audit.drift[:5]]}


def digest(users: int, entries: int) -> str:
    """A short fingerprint of a data set's shape (two processes seeded alike share it)."""
    return hashlib.sha256(f"{users}:{entries}:{EPOCH}:{GRANT}:{SPEND}".encode()).hexdigest()[:12]
