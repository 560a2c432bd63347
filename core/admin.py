"""Admin commands behind `python server.py user | grant | debit | replay-webhook | dead-letters | shortfalls | unowned`.

Each command is an async function returning JSON-safe data (tests call them in-process); `run_admin`
prints that as text or, with `--json`, as JSON, and maps a refusal to exit code 1. Argument errors
are argparse's exit code 2, raised before anything connects. grant/debit write one ledger entry and
nothing else, under the key `admin:<KEY>`: re-running a command with the same `--key` replays it.
"""

from __future__ import annotations

import argparse
import getpass
import hashlib
import json
import re
import secrets
import sys
from datetime import datetime
from typing import Any

from bson import ObjectId

from core.admin_text import render
from core.webhook_wiring import webhook_processor
from documents import wallet, webhooks
from documents.accounts import find_user, find_user_by_email, public_email
from documents.billing import list_shortfalls
from documents.purchases import list_unowned_stopped, list_user_purchases
from documents.subscriptions import display_status

ADMIN_COMMANDS = ("user", "grant", "debit", "replay-webhook", "dead-letters", "shortfalls", "unowned")
ADMIN_COMMANDS += ("delete-user",)
EXIT_FAILED = 1  # refused (nothing written), or a replayed event still did not process
LAST = 10  # purchases and ledger entries shown by `user`
MAX_REASON = 200
MAX_LIST = 1000
KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@-]{0,99}")
LEDGER_TYPES = {"grant": "admin_grant", "debit": "admin_debit"}


class AdminRefused(Exception):
    """The command was refused and nothing was written; the message says why."""


def parse_amount(text: str) -> int:
    """argparse type: a whole number of points in 1..10^9 (no sign, decimals or exponent)."""
    if not re.fullmatch(r"[0-9]{1,10}", text) or not 1 <= int(text) <= wallet.MAX_AMOUNT:
        raise argparse.ArgumentTypeError(f"must be a whole number of points from 1 to {wallet.MAX_AMOUNT}, got {text!r}")
    return int(text)


def parse_reason(text: str) -> str:
    """argparse type: a non-empty reason of at most 200 characters."""
    reason = text.strip()
    if not reason or len(reason) > MAX_REASON:
        raise argparse.ArgumentTypeError(f"must be 1 to {MAX_REASON} characters, got {len(reason)}")
    return reason


def parse_key(text: str) -> str:
    """argparse type: an idempotency key of 1..100 letters, digits and . _ : @ -."""
    if not KEY.fullmatch(text):
        raise argparse.ArgumentTypeError("must be 1 to 100 letters, digits or . _ : @ - (starting with a letter or digit)")
    return text


def parse_limit(text: str) -> int:
    """argparse type: how many rows to list, 1..1000."""
    if not re.fullmatch(r"[0-9]{1,4}", text) or not 1 <= int(text) <= MAX_LIST:
        raise argparse.ArgumentTypeError(f"must be a number from 1 to {MAX_LIST}, got {text!r}")
    return int(text)


def new_key() -> str:
    """A fresh idempotency key for a grant or debit run without --key."""
    return secrets.token_hex(8)


def iso(value: datetime | None) -> str | None:
    """A stored date as ISO-8601 UTC text."""
    return value.isoformat(timespec="seconds").replace("+00:00", "Z") if value else None


async def find_account(db: Any, who: str) -> dict:
    """The account with this email (or, for accounts without one, this user id); AdminRefused if none."""
    user = await find_user_by_email(db, who)
    if user is None and "@" not in who:
        user = await find_user(db, who)
    if user is None:
        raise AdminRefused(f"no user with email {who!r}")
    return user


def _subscription(summary: dict | None, now: datetime) -> dict | None:
    if summary is None:
        return None
    # Entitlement is read from end_date at this moment, exactly as the API shows it.
    return {"status": display_status(summary.get("status"), summary.get("end_date"), now, summary.get("auto_renewing")),
            "product_id": summary.get("product_id"), "plan": summary.get("plan"),
            "end_date": iso(summary.get("end_date")), "auto_renewing": bool(summary.get("auto_renewing")),
            "sandbox": bool(summary.get("sandbox")), "rustore_status": summary.get("status")}


def _entry(entry: wallet.LedgerEntry) -> dict:
    return {"id": str(entry.id), "seq": entry.seq, "type": entry.type, "amount": entry.amount,
            "balance_after": entry.balance_after, "created_at": iso(entry.created_at), "reference": entry.reference,
            "reason": entry.meta.get("reason")}


async def user_report(db: Any, who: str, now: datetime) -> dict:
    """Profile, balance, current subscription, owned products, last purchases and ledger entries of one account."""
    user = await find_account(db, who)
    uid: ObjectId = user["_id"]
    purchases = await list_user_purchases(db, uid, limit=LAST)
    entries = await wallet.list_entries(db, uid, limit=LAST)
    return {
        "user_id": str(uid), "email": public_email(user), "created_at": iso(user.get("created_at")),
        "device_ids": list(user.get("device_ids") or []),
        "sign_in": {"password": bool(user.get("password_hash")),
                    "providers": [i.get("provider") for i in user.get("identities") or []]},
        "balance": int((user.get("points") or {}).get("balance", 0)),
        "subscription": _subscription(user.get("subscription"), now),
        "owned_products": [{"product_id": o.get("product_id"), "invoice_id": o.get("invoice_id"),
                            "acquired_at": iso(o.get("acquired_at")), "sandbox": bool(o.get("sandbox"))}
                           for o in user.get("owned_products") or []],
        "purchases": [{"invoice_id": p.get("invoice_id"), "product_id": p.get("product_id"), "state": p.get("state"),
                       "points": p.get("points"), "amount": p.get("amount"), "currency": p.get("currency"),
                       "sandbox": bool(p.get("sandbox")), "created_at": iso(p.get("created_at"))} for p in purchases],
        "ledger": [_entry(e) for e in entries],
    }


def _operator() -> str | None:
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # a container uid without a passwd entry
        return None


async def adjust_points(db: Any, who: str, command: str, amount: int, reason: str, key: str) -> dict:
    """grant/debit: one admin_grant/admin_debit ledger entry with the reason, exactly once per (account, key)."""
    user = await find_account(db, who)
    label = public_email(user) or str(user["_id"])
    meta = {"reason": reason, "operator": _operator(), "source": "cli"}
    # The reason is part of the request: the same key with another reason is a different command, refused.
    request_hash = hashlib.sha256(reason.encode()).hexdigest()[:32]
    write = wallet.credit if command == "grant" else wallet.debit
    try:
        result = await write(db, user["_id"], amount, LEDGER_TYPES[command], f"admin:{key}", meta=meta,
                             request_hash=request_hash)
    except wallet.InsufficientPoints as exc:
        raise AdminRefused(f"{label} has {exc.balance} points, cannot debit {amount}; nothing was written") from None
    except wallet.UserNotFound:
        raise AdminRefused(f"no user with email {who!r}") from None
    except wallet.IdempotencyKeyMismatch as exc:
        e = exc.entry
        raise AdminRefused(f"--key {key} was already used on {label} for another command ({e.type} {e.amount:+d}, "
                           f"entry {e.id} at {iso(e.created_at)}); nothing was written") from None
    balance = (await wallet.get_balance(db, user["_id"])).balance
    return {"user_id": str(user["_id"]), "email": public_email(user), "command": command, "key": key,
            "replayed": result.replayed, "entry": _entry(result.entry), "balance": balance}


async def replay_webhook(ctx: Any, event_id: str) -> dict:
    """Requeue a stored notification (dead, failed or processed) and process it now, as the webhook path does."""
    if ctx.rustore is None:
        raise AdminRefused("RuStore is not configured in this process (RUSTORE_KEY_ID, RUSTORE_PRIVATE_KEY...), "
                           "so the event cannot be re-checked; nothing changed")
    before = await webhooks.find_event(ctx.db, event_id)
    if before is None:
        raise AdminRefused(f"no webhook event {event_id!r} (give RuStore's notification id or the stored _id, e.g. real:123)")
    try:
        await webhooks.requeue_event(ctx.db, before["_id"], ctx.now())
    except webhooks.WebhookEventBusy as exc:
        raise AdminRefused(str(exc)) from None
    result = await webhook_processor(ctx).process(before["_id"])
    after = await webhooks.find_event(ctx.db, before["_id"]) or {}
    return {"event_id": before["_id"], "type": before.get("type"), "previous_status": before.get("status"),
            "outcome": result.outcome, "status": after.get("status"), "error": result.error,
            "result": after.get("result"), "next_attempt_at": iso(after.get("next_attempt_at"))}


async def dead_letters(db: Any, limit: int) -> list[dict]:
    """Notifications that failed for good, most recent first."""
    return [{"event_id": d["_id"], "type": d.get("type"), "attempts": d.get("attempts"),
             "last_error": d.get("last_error"), "received_at": iso(d.get("received_at")),
             "dead_at": iso(d.get("dead_at"))} for d in await webhooks.list_dead_events(db, limit)]


async def shortfalls(db: Any, limit: int) -> list[dict]:
    """Refund clawbacks that found the points spent: who, how much could not be taken back, for what."""
    rows = []
    for row in await list_shortfalls(db, limit):
        e, user = row["entry"], row["user"] or {}
        meta = e.get("meta") or {}
        rows.append({"user_id": str(e["user_id"]), "email": public_email(user) if user else None,
                     "created_at": iso(e.get("created_at")), "reference": e.get("reference"),
                     "requested": meta.get("requested"), "taken": -int(e["amount"]), "shortfall": meta.get("shortfall"),
                     "balance": int((user.get("points") or {}).get("balance", 0)) if user else None})
    return rows


async def unowned(db: Any, limit: int) -> list[dict]:
    """Purchases no account could be bound to, whose RuStore checks stopped."""
    return [{"invoice_id": p.get("invoice_id"), "sandbox": bool(p.get("sandbox")), "product_id": p.get("product_id"),
             "state": p.get("state"), "rustore_status": p.get("rustore_status"), "checks": p.get("unowned_checks"),
             # Claims are stored whole and bind nothing without evidence (documents.billing.ownership.decide_owner).
             "claimed_by": ", ".join(dict.fromkeys(str(c["user_id"]) for c in p.get("claims") or [])) or None,
             "created_at": iso(p.get("created_at")), "stopped_at": iso(p.get("unowned_stopped_at"))}
            for p in await list_unowned_stopped(db, limit)]


async def delete_user(ctx: Any, who: str) -> dict:
    """Delete an account with the effects of DELETE /api/user: renewals cancelled, sessions ended, data erased."""
    from core.accounts import delete_account

    user = await find_account(ctx.db, who)
    if user.get("deleted_at"):
        raise AdminRefused(f"account {user['_id']} was already deleted")
    return await delete_account(ctx, user["_id"])


def add_admin_commands(sub: Any) -> None:
    """Register the admin subcommands on server.py's subparsers."""
    user = sub.add_parser("user", help="show an account: profile, balance, subscription, last purchases and entries")
    user.add_argument("email", metavar="EMAIL", help="the account's email (or user id for accounts without one)")
    for command, verb in (("grant", "add"), ("debit", "take")):
        p = sub.add_parser(command, help=f"{verb} points (ledger entry admin_{command}); safe to re-run with --key")
        p.add_argument("email", metavar="EMAIL", help="the account's email (or user id for accounts without one)")
        p.add_argument("amount", metavar="AMOUNT", type=parse_amount, help=f"points, 1..{wallet.MAX_AMOUNT}")
        p.add_argument("--reason", required=True, type=parse_reason, help=f"why (stored on the entry, <= {MAX_REASON} chars)")
        p.add_argument("--key", type=parse_key, help="idempotency key; omitted = a new one, printed to re-run safely")
    replay = sub.add_parser("replay-webhook", help="requeue a stored RuStore notification and process it now")
    replay.add_argument("event_id", metavar="ID", help="RuStore's notification id, or the stored _id (real:ID / sandbox:ID)")
    dead = sub.add_parser("dead-letters", help="list RuStore notifications whose processing failed for good")
    dead.add_argument("--limit", type=parse_limit, default=50, help="rows to show (default 50, at most 1000)")
    short = sub.add_parser("shortfalls", help="list refund clawbacks that found the points already spent")
    short.add_argument("--limit", type=parse_limit, default=50, help="rows to show (default 50, at most 1000)")
    lost = sub.add_parser("unowned", help="list unowned purchases whose RuStore checks stopped")
    lost.add_argument("--limit", type=parse_limit, default=50, help="rows to show (default 50, at most 1000)")
    delete = sub.add_parser("delete-user", help="delete an account as DELETE /api/user does (support requests)")
    delete.add_argument("email", metavar="EMAIL", help="the account's email (or user id for accounts without one)")
    for parser in (user, *(sub.choices[c] for c in ("grant", "debit")), replay, dead, short, lost, delete):
        parser.add_argument("--json", action="store_true", help="print JSON for scripts instead of text")


async def run_admin(ctx: Any, args: argparse.Namespace) -> int:
    """Run one admin command with a connected context; print its result; 0 done, 1 refused."""
    if ctx.embedded_mongo:
        print("note: MONGO_URL is not set, so this command sees its own empty in-memory store", file=sys.stderr)
    try:
        if args.command == "user":
            data: Any = await user_report(ctx.db, args.email, ctx.now())
        elif args.command in LEDGER_TYPES:
            await find_account(ctx.db, args.email)  # an unknown user is refused before a key is announced
            key = args.key or new_key()
            if args.key is None:
                # Printed before the write: if this run dies or times out, the same key retries it safely.
                print(f"idempotency key: {key} (re-run with --key {key} to retry this exact command safely)",
                      file=sys.stderr, flush=True)
            data = await adjust_points(ctx.db, args.email, args.command, args.amount, args.reason, key)
        elif args.command == "delete-user":
            data = await delete_user(ctx, args.email)
        elif args.command == "replay-webhook":
            data = await replay_webhook(ctx, args.event_id)
        elif args.command == "shortfalls":
            data = await shortfalls(ctx.db, args.limit)
        elif args.command == "unowned":
            data = await unowned(ctx.db, args.limit)
        else:
            data = await dead_letters(ctx.db, args.limit)
    except AdminRefused as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return EXIT_FAILED
    print(json.dumps(data, indent=2, ensure_ascii=False, default=str) if args.json else render(args.command, data))
    if args.command == "replay-webhook" and data["outcome"] != "processed":
        return EXIT_FAILED
    return 0
