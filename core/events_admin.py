"""`python server.py events ...`: list deliveries per endpoint, show an event, replay dead ones, verify a signature."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from core.events_signature import SignatureError, verify
from documents import events as events_doc

STATUSES = ("pending", "delivered", "dead")


def add_events_commands(sub: Any) -> None:
    """Register `events` and its subcommands on server.py's subparsers."""
    parser = sub.add_parser("events", help="outbound events to the app's backend: deliveries, replay, signatures")
    verbs = parser.add_subparsers(dest="events_command", required=True)
    ls = verbs.add_parser("deliveries", help="list deliveries, newest first")
    ls.add_argument("--endpoint", help="only this receiver URL (one of EVENTS_WEBHOOK_URLS)")
    ls.add_argument("--status", choices=STATUSES)
    ls.add_argument("--limit", type=int, default=50)
    show = verbs.add_parser("show", help="show one event: envelope and per-endpoint delivery state")
    show.add_argument("event_id", metavar="EVENT_ID")
    replay = verbs.add_parser("replay", help="send dead events again from the start of the retry schedule")
    which = replay.add_mutually_exclusive_group(required=True)
    which.add_argument("event_id", nargs="?", metavar="EVENT_ID")
    which.add_argument("--all-dead", action="store_true")
    check = verbs.add_parser("verify-signature", help="verify a received delivery (secret from EVENTS_WEBHOOK_SECRET)")
    check.add_argument("--signature", required=True, help="the Signature header value: t=...,v1=...")
    check.add_argument("--body-file", required=True, help="file holding the exact raw body received")
    check.add_argument("--tolerance-s", type=int, default=300)


def verify_signature_command(args: argparse.Namespace) -> int:
    """Exit 0 and print the timestamp when the signature is valid; exit 1 with the reason otherwise."""
    secret = os.environ.get("EVENTS_WEBHOOK_SECRET", "")
    if not secret:
        print("EVENTS_WEBHOOK_SECRET is not set", file=sys.stderr)
        return 2
    try:
        t = verify(secret, args.signature, Path(args.body_file).read_bytes(), tolerance_s=args.tolerance_s)
    except (SignatureError, OSError) as exc:
        print(f"invalid: {exc}", file=sys.stderr)
        return 1
    print(json.dumps({"valid": True, "timestamp": t}))
    return 0


def _show(doc: dict) -> dict:
    return {"event": events_doc.envelope(doc), "deliveries": [
        {"endpoint": s.get("url"), "status": s.get("status"), "attempts": s.get("attempts"),
         "lastStatus": s.get("last_status"), "lastError": s.get("last_error"), "nextAt": str(s.get("next_at")),
         "deliveredAt": str(s.get("delivered_at")) if s.get("delivered_at") else None}
        for s in (doc.get("deliveries") or {}).values()]}


async def events_data(ctx: Any, args: argparse.Namespace) -> tuple[int, Any]:
    """The command's exit code and result (tests call this in-process)."""
    if args.events_command == "deliveries":
        return 0, await events_doc.list_deliveries(ctx.db, args.endpoint, args.status, max(1, min(args.limit, 1000)))
    if args.events_command == "show":
        doc = await events_doc.find_event(ctx.db, args.event_id)
        return (0, _show(doc)) if doc else (1, {"error": f"no event {args.event_id!r}"})
    revived = await events_doc.replay(ctx.db, None if args.all_dead else args.event_id, ctx.now())
    return (0 if revived or args.all_dead else 1), {"revived": revived}


async def run_events(ctx: Any, args: argparse.Namespace) -> int:
    """Run one `events` subcommand with a connected context and print JSON."""
    code, data = await events_data(ctx, args)
    print(json.dumps(data, indent=2, ensure_ascii=False, default=str))
    return code
