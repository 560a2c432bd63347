"""Plain-text rendering of the admin commands' results (the `--json` output is the data itself)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

CELL = 60  # longer cells (errors) are cut in tables; --json has them whole


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Left-aligned columns sized to their widest cell; `-` for missing values."""
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(line.rstrip() for line in lines)


def _cell(value: Any) -> str:
    text = "-" if value is None or value == "" else str(value).replace("\n", " ")
    return text if len(text) <= CELL else text[: CELL - 1] + "…"


def _subscription(sub: dict | None) -> str:
    if sub is None:
        return "none"
    renew = "auto-renewing" if sub["auto_renewing"] else "not renewing"
    sandbox = " [sandbox]" if sub["sandbox"] else ""
    return (f"{sub['status']} — {sub['product_id']} ({sub['plan']}) until {sub['end_date']}, {renew}"
            f" (RuStore: {sub['rustore_status']}){sandbox}")


def render_user(d: dict) -> str:
    """The `user` report."""
    methods = (["password"] if d["sign_in"]["password"] else []) + d["sign_in"]["providers"]
    owned = ", ".join(f"{o['product_id']} (invoice {o['invoice_id']}, {o['acquired_at']})" for o in d["owned_products"])
    head = [
        f"user          {d['user_id']}",
        f"email         {d['email'] or '- (none: signed up through a provider)'}",
        f"created       {d['created_at']}",
        f"sign-in       {', '.join(methods) or 'none'}",
        f"devices       {', '.join(d['device_ids']) or 'none'}",
        f"balance       {d['balance']} points",
        f"subscription  {_subscription(d['subscription'])}",
        f"owned         {owned or 'none'}",
    ]
    purchases = table(["created", "invoice", "product", "state", "points", "amount", "sandbox"],
                      [[p["created_at"], p["invoice_id"], p["product_id"], p["state"], p["points"],
                        f"{p['amount']} {p['currency'] or ''}".strip() if p["amount"] is not None else None,
                        "yes" if p["sandbox"] else ""] for p in d["purchases"]])
    entries = table(["seq", "created", "type", "amount", "balance", "reason / reference"],
                    [[e["seq"], e["created_at"], e["type"], f"{e['amount']:+d}", e["balance_after"],
                      e["reason"] or e["reference"]] for e in d["ledger"]])
    return "\n".join([*head, "", f"last purchases ({len(d['purchases'])}, newest first)",
                      purchases if d["purchases"] else "  none", "",
                      f"last ledger entries ({len(d['ledger'])}, newest first)",
                      entries if d["ledger"] else "  none"])


def render_adjust(d: dict) -> str:
    """A grant or debit."""
    e = d["entry"]
    who = d["email"] or d["user_id"]
    if d["replayed"]:
        return (f"already done: --key {d['key']} was applied to {who} at {e['created_at']} ({e['type']} {e['amount']:+d}, "
                f"entry {e['id']}); nothing changed. Balance now {d['balance']} points.")
    return (f"{e['type']} {e['amount']:+d} points for {who}: entry {e['id']} (seq {e['seq']}), "
            f"balance {e['balance_after']} points. Reason: {e['reason']}. Key: {d['key']}")


def render_replay(d: dict) -> str:
    """A replayed webhook event."""
    line = f"event {d['event_id']} ({d['type']}), was {d['previous_status']}: {d['outcome']}, now {d['status']}"
    if d["error"]:
        line += f"\nerror: {d['error']}"
    if d["outcome"] == "failed":
        line += f"\nthe webhook-retry job tries again at {d['next_attempt_at']}"
    if d["result"]:
        line += "\nresult: " + ", ".join(f"{k}={v}" for k, v in d["result"].items())
    return line


def render_dead(rows: list[dict]) -> str:
    """The dead-letter table."""
    if not rows:
        return "no dead letters"
    return table(["id", "type", "attempts", "last error", "received at"],
                 [[r["event_id"], r["type"], r["attempts"], r["last_error"], r["received_at"]] for r in rows])


def render_shortfalls(rows: list[dict]) -> str:
    """Clawbacks that found the points spent."""
    if not rows:
        return "no clawback shortfalls"
    return table(["when", "account", "for", "granted", "taken back", "shortfall", "balance now"],
                 [[r["created_at"], r["email"] or r["user_id"], r["reference"], r["requested"], r["taken"],
                   r["shortfall"], r["balance"]] for r in rows])


def render_unowned(rows: list[dict]) -> str:
    """Unowned purchases whose checks stopped."""
    if not rows:
        return "no unowned purchases left unchecked"
    return table(["invoice", "sandbox", "product", "state", "RuStore", "checks", "claimed by", "created", "stopped"],
                 [[r["invoice_id"], "yes" if r["sandbox"] else "", r["product_id"], r["state"], r["rustore_status"],
                   r["checks"], r["claimed_by"], r["created_at"], r["stopped_at"]] for r in rows])


def render(command: str, data: Any) -> str:
    """The text output of an admin command."""
    if command == "user":
        return render_user(data)
    if command in ("grant", "debit"):
        return render_adjust(data)
    if command == "replay-webhook":
        return render_replay(data)
    if command == "shortfalls":
        return render_shortfalls(data)
    if command == "unowned":
        return render_unowned(data)
    if command == "delete-user":
        return (f"deleted account {data['user_id']}: subscriptions cancelled at RuStore: "
                f"{', '.join(data['subscriptions_cancelled']) or 'none'}; sessions ended: {data['sessions_ended']}; "
                f"generations erased: {data['generations']}, images: {data['images']}")
    return render_dead(data)
