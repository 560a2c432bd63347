"""Points wallet over HTTP: balance, idempotent spends and cursor-paginated history.

Spends need an `Idempotency-Key` header (1..255 printable ASCII characters).  The ledger entry
is keyed `spend:<client key>` and carries a hash of the canonical body, so a replay answers the
original entry and balance without charging again, and the same key with another body is
`422 idempotency_key_mismatch`.  The ledger keeps idempotency keys permanently (a unique index
on the entries), which is stronger than the usual 24-hour minimum: a key is never reusable.
History cursors are opaque (urlsafe base64 of the ledger's per-user `seq`), so pages stay
stable while new entries land.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from typing import Any

from marshmallow import fields, validate

from documents import wallet as wallet_doc
from documents.wallet import ENTRY_TYPES
from handlers.base import ApiError, APIHandler
from handlers.docs import IDEMPOTENCY_KEY_PATTERN, api
from handlers.schemas import CamelSchema, Int, Text, iso

KEY_PATTERN = re.compile(IDEMPOTENCY_KEY_PATTERN)
CURSOR_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,96}$")
# The ledger takes keys of up to 256 characters; longer namespaced keys are stored as a digest.
LEDGER_KEY_MAX = 256
MAX_SPEND = 100_000


def idempotency_key(handler: APIHandler) -> str:
    """The request's Idempotency-Key header; 400 when missing or malformed."""
    raw = handler.request.headers.get("Idempotency-Key")
    if raw is None:
        raise ApiError(400, "idempotency_key_required", "Send an Idempotency-Key header with this request.")
    if not KEY_PATTERN.match(raw):
        raise ApiError(400, "invalid_idempotency_key", "Idempotency-Key must be 1 to 255 printable ASCII characters.")
    return raw


def ledger_key(namespace: str, client_key: str) -> str:
    """A client key namespaced for the ledger, hashed only when it would not fit."""
    key = f"{namespace}:{client_key}"
    if len(key) <= LEDGER_KEY_MAX:
        return key
    return f"{namespace}:sha256:{hashlib.sha256(client_key.encode()).hexdigest()}"


def body_hash(body: dict[str, Any]) -> str:
    """A stable hash of a validated request body (detects a key reused with another body)."""
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def encode_cursor(kind: str, value: Any) -> str:
    """An opaque page cursor for `value`."""
    return base64.urlsafe_b64encode(f"{kind}:{value}".encode()).decode().rstrip("=")


def decode_cursor(kind: str, raw: str) -> str:
    """The value inside a cursor made by `encode_cursor(kind, ...)`; 400 invalid_cursor otherwise."""
    try:
        if not CURSOR_PATTERN.match(raw):
            raise ValueError(raw)
        decoded = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode("ascii")
        prefix, _, value = decoded.partition(":")
        if prefix != kind or not value:
            raise ValueError(raw)
        return value
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise ApiError(400, "invalid_cursor", "The cursor is not one this API returned.") from None


class QueryInt(fields.Integer):
    """An integer query argument: decimal digits only (no sign, no fraction, no spaces)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        if not isinstance(value, str) or not value.isascii() or not value.isdigit() or len(value) > 9:
            raise self.make_error("invalid", input=value)
        return int(value)


class PageQuery(CamelSchema):
    """limit and cursor of a history page."""

    limit = QueryInt(load_default=20, validate=validate.Range(1, 100))
    cursor = Text(max_length=96, load_default=None)


class PointsHistoryQuery(PageQuery):
    """GET /api/points/history query arguments."""

    type = fields.String(load_default=None, validate=validate.OneOf(sorted(ENTRY_TYPES)))


class SpendSchema(CamelSchema):
    """POST /api/points/spend body."""

    amount = Int(required=True, validate=validate.Range(1, MAX_SPEND))
    reason = Text(max_length=200, load_default=None)


class BalanceSchema(CamelSchema):
    """GET /api/points/balance answer."""

    balance = fields.Integer(required=True)
    updated_at = fields.String(required=True, allow_none=True,
                               metadata={"description": "When the balance last changed; null before the first change."})


class EntrySchema(CamelSchema):
    """One ledger entry as its owner sees it."""

    id = fields.String(required=True)
    type = fields.String(required=True, metadata={"enum": sorted(ENTRY_TYPES)})
    amount = fields.Integer(required=True, metadata={"description": "Signed: credits positive, spends and clawbacks negative."})
    balance_after = fields.Integer(required=True)
    reference = fields.String(required=True, allow_none=True)
    created_at = fields.String(required=True)


class SpendResultSchema(CamelSchema):
    """POST /api/points/spend answer (identical on a replay of the same Idempotency-Key)."""

    balance = fields.Integer(required=True)
    transaction = fields.Nested(EntrySchema, required=True)


class EntryPageSchema(CamelSchema):
    """A page of ledger entries, newest first."""

    items = fields.List(fields.Nested(EntrySchema), required=True)
    next_cursor = fields.String(required=True, allow_none=True)


# What ledger_error can answer for a charge (spends here, generations in handlers.generation).
CHARGE_ERRORS = {402: ["insufficient_points"], 404: ["user_not_found"], 422: ["idempotency_key_mismatch"],
                 503: ["points_busy"]}


def ledger_error(exc: wallet_doc.LedgerError, required: int | None = None) -> ApiError:
    """Map a ledger exception to its API error."""
    if isinstance(exc, wallet_doc.InsufficientPoints):
        return ApiError(402, "insufficient_points", "Not enough points for this.",
                        details={"balance": exc.balance, "required": required})
    if isinstance(exc, wallet_doc.IdempotencyKeyMismatch):
        return ApiError(422, "idempotency_key_mismatch", "This Idempotency-Key was already used for a different request.")
    if isinstance(exc, wallet_doc.UserNotFound):
        return ApiError(404, "user_not_found", "User not found.")
    return ApiError(503, "points_busy", "The wallet is busy; retry with the same Idempotency-Key.",
                    headers={"Retry-After": "1"})


class BalanceHandler(APIHandler):
    """GET /api/points/balance — the caller's current balance."""

    @api("Your points balance", responses={200: BalanceSchema}, errors={404: ["user_not_found"]})
    async def get(self) -> None:
        try:
            wallet = await wallet_doc.get_balance(self.db, self.user_id)
        except wallet_doc.LedgerError as exc:
            raise ledger_error(exc) from None
        self.write_json({"balance": wallet.balance, "updatedAt": iso(wallet.updated_at)})


class SpendHandler(APIHandler):
    """POST /api/points/spend — take points once per Idempotency-Key."""

    @api("Spend points, once per Idempotency-Key", body=SpendSchema, responses={200: SpendResultSchema},
         errors=CHARGE_ERRORS, idempotency_key=True)
    async def post(self) -> None:
        key = idempotency_key(self)
        body = self.load()
        reason = body["reason"] or None
        try:
            result = await wallet_doc.debit(self.db, self.user_id, body["amount"], "spend", ledger_key("spend", key),
                                        reference=reason, request_hash=body_hash({"amount": body["amount"], "reason": reason}),
                                        now=self.ctx.now())
        except wallet_doc.LedgerError as exc:
            raise ledger_error(exc, body["amount"]) from None
        self.write_json({"balance": result.balance, "transaction": result.entry.to_api()})


class PointsHistoryHandler(APIHandler):
    """GET /api/points/history — ledger entries newest first, cursor-paginated."""

    @api("Your points history, newest first", query=PointsHistoryQuery, responses={200: EntryPageSchema},
         errors={400: ["invalid_cursor"]})
    async def get(self) -> None:
        query = self.load_query()
        before = None
        if query["cursor"] is not None:
            value = decode_cursor("seq", query["cursor"])
            if not value.isdigit() or int(value) < 1:
                raise ApiError(400, "invalid_cursor", "The cursor is not one this API returned.")
            before = int(value)
        limit = query["limit"]
        # One extra row tells whether another page exists without a count query.
        entries = await wallet_doc.list_entries(self.db, self.user_id, limit=limit + 1,
                                            before_seq=before, type=query["type"])
        page = entries[:limit]
        self.write_json({"items": [entry.to_api() for entry in page],
                         "nextCursor": encode_cursor("seq", page[-1].seq) if len(entries) > limit else None})


default_handlers = [
    (r"/api/points/balance", BalanceHandler),
    (r"/api/points/spend", SpendHandler),
    (r"/api/points/history", PointsHistoryHandler),
]
