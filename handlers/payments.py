"""One-time purchases: server orders, verification (and its points-pack flavour), purchase history."""

from __future__ import annotations

import base64

from bson import ObjectId
from bson.errors import InvalidId
from marshmallow import fields, validate

from documents import billing, purchases, wallet
from documents.accounts import parse_id
from documents.billing import Claim, purchase_credited_by
from documents.purchases import verify_invoice
from handlers.base import ApiError, APIHandler
from handlers.docs import api
from handlers.schemas import Bool, CamelSchema, Identifier, Int, Text, iso
from handlers.verify_limit import verify_limited

INVOICE_ID = validate.Regexp(r"^[0-9]{1,32}$", error="invoiceId is RuStore's numeric invoice number, as a string.")


class OrderSchema(CamelSchema):
    """POST /api/payments/orders body."""

    product_id = Identifier(required=True)


class VerifySchema(CamelSchema):
    """What the app got from the Pay SDK after a purchase."""

    invoice_id = Text(required=True, min_length=1, max_length=32, validate=[INVOICE_ID])
    purchase_id = Identifier(load_default=None, max_length=64, metadata={
        "description": "The Pay SDK result's purchaseId. Confirms two-step purchases and, for purchases made "
                       "without a server order, proves possession (the purchase stays pending until RuStore "
                       "reports the same purchaseId)."})
    product_id = Identifier(required=True)
    order_id = Identifier(load_default=None, max_length=150)
    sandbox = Bool(load_default=False)


class HistoryQuerySchema(CamelSchema):
    """GET /api/payments/history query."""

    limit = fields.Integer(load_default=20, validate=validate.Range(1, 100))
    cursor = Identifier(load_default=None, max_length=64)


class PurchaseViewSchema(CamelSchema):
    """A purchase as its owner sees it."""

    invoice_id = fields.String(required=True)
    purchase_id = fields.String(allow_none=True)
    product_id = fields.String(allow_none=True)
    status = fields.String(required=True)
    points_granted = Int(required=True, metadata={
        "description": "Points this purchase credited (by any path); 0 before it is credited"})
    credited_by = fields.String(required=True, allow_none=True, metadata={
        "enum": ["verify", "webhook", "job", None],
        "description": "Who credited it first: the app's verify call, RuStore's webhook or a background job; "
                       "null while not credited (and for purchases credited before this field existed, when unknown)"})
    sandbox = fields.Boolean(required=True)
    created_at = fields.String()


class OrderResultSchema(CamelSchema):
    """What the app passes to the Pay SDK purchase call."""

    order_id = fields.String(required=True)
    developer_payload = fields.String(required=True)
    product_id = fields.String(required=True)
    app_user_id = fields.String(required=True)


class VerifyResultSchema(CamelSchema):
    """The outcome of a verification."""

    status = fields.String(required=True, metadata={
        "enum": ["credited", "already_credited", "pending"],
        "description": "credited: this call credited it; already_credited: an earlier call, the webhook or a job did "
                       "(see creditedBy); pending: RuStore has not settled it yet"})
    purchase = fields.Nested(PurchaseViewSchema, required=True)
    points_granted = Int(required=True, metadata={"description": "What this purchase granted, whichever path credited it"})
    credited_by = fields.String(required=True, allow_none=True, metadata={
        "enum": ["verify", "webhook", "job", None], "description": "Who credited it first (null while pending)"})
    balance = Int(required=True, metadata={"description": "The wallet's current balance, read after this call"})


class PurchaseListSchema(CamelSchema):
    """A page of the caller's purchases."""

    items = fields.List(fields.Nested(PurchaseViewSchema), required=True)
    next_cursor = fields.String(allow_none=True, required=True)


VERIFY_ERRORS = {
    400: ["purchase_not_found", "purchase_not_paid", "purchase_refunded", "product_mismatch", "purchase_mismatch",
          "unknown_product", "app_mismatch", "sandbox_not_allowed", "order_required"],
    409: ["purchase_belongs_to_another_user"],
    502: ["rustore_rejected"],
    503: ["rustore_unavailable", "rustore_misconfigured", "rustore_not_configured"],
}


def purchase_view(doc: dict) -> dict:
    """The public shape of a purchase document."""
    return {
        "invoiceId": doc["invoice_id"], "purchaseId": doc.get("purchase_id"), "productId": doc.get("product_id"),
        "status": doc["state"], "pointsGranted": int(doc.get("points") or 0) if doc.get("credit_entry_id") else 0,
        "creditedBy": purchase_credited_by(doc), "sandbox": bool(doc.get("sandbox")),
        "createdAt": iso(doc.get("created_at")),
    }


def claimed_view(doc: dict, body: dict) -> dict:
    """A claim still waiting for evidence: what the app sent, nothing learned from RuStore."""
    return {"invoiceId": doc["invoice_id"], "purchaseId": body["purchase_id"], "productId": body["product_id"],
            "status": "pending", "pointsGranted": 0, "creditedBy": None, "sandbox": bool(doc.get("sandbox")),
            "createdAt": iso(doc.get("created_at"))}


class OrdersHandler(APIHandler):
    """POST /api/payments/orders — an order the app passes to the Pay SDK purchase call."""

    @api("Create an order for the Pay SDK purchase call", body=OrderSchema, responses={201: OrderResultSchema},
         errors={400: ["unknown_product", "not_a_one_time_product"]})
    async def post(self) -> None:
        body = self.load()
        product = self.ctx.products.get(body["product_id"])
        if product is None:
            raise ApiError(400, "unknown_product", "No such product.")
        if product.is_subscription:
            raise ApiError(400, "not_a_one_time_product", "Use /api/subscriptions/create for subscriptions.")
        order = await billing.create_order(self.db, parse_id(self.user_id), product.id, "purchase", self.ctx.now())
        self.write_json({"orderId": order["_id"], "developerPayload": order["developer_payload"],
                         "productId": product.id, "appUserId": self.user_id}, 201)


class VerifyHandler(APIHandler):
    """POST /api/payments/verify — the server asks RuStore and credits exactly once."""

    points_only = False

    @verify_limited
    @api("Verify a one-time purchase with RuStore and credit it exactly once", body=VerifySchema,
         responses={200: VerifyResultSchema, 202: VerifyResultSchema}, errors=VERIFY_ERRORS)
    async def post(self) -> None:
        body = self.load()
        product = self.ctx.products.get(body["product_id"])
        if self.points_only and (product is None or not product.is_points_pack):
            raise ApiError(400, "not_a_points_product", "Only points packs can be bought here.")
        if self.ctx.rustore is None:
            raise ApiError(503, "rustore_not_configured", "RuStore is not configured on this server.")
        claim = Claim(user_id=parse_id(self.user_id), product_id=body["product_id"], purchase_id=body["purchase_id"],
                      invoice_id=body["invoice_id"], order_id=body["order_id"])
        outcome = await self.run(verify_invoice(
            self.db, self.ctx.rustore, body["invoice_id"], sandbox=body["sandbox"], claim=claim,
            products=self.ctx.products, policy=self.ctx.purchase_policy, now=self.ctx.now(), source="verify",
        ))
        doc = outcome.purchase
        state = doc["state"]
        if doc.get("user_id") is None:
            # Order-less and no evidence of possession yet: the claim is stored and completed when a
            # notification or the purchase list confirms its purchaseId. Show only what the app sent.
            balance = (await wallet.get_balance(self.db, self.user_id)).balance
            self.write_json({"status": "pending", "purchase": claimed_view(doc, body), "pointsGranted": 0,
                             "creditedBy": None, "balance": balance}, 202)
            return
        if state == "pending":
            self.write_json(await self.answer("pending", doc), 202)
            return
        if state == "refunded":
            raise ApiError(400, "purchase_refunded", "This purchase was refunded.")
        if state in ("failed", "reversed"):
            raise ApiError(400, "purchase_not_paid", "This purchase was not paid.",
                           details={"rustoreStatus": doc.get("rustore_status")})
        if not (doc.get("credit_entry_id") or doc.get("granted")):
            # Granted by this call after the copy the outcome carries was read (no state change re-read it).
            doc = await purchases.find_purchase(self.db, doc["invoice_id"], doc["sandbox"]) or doc
        # This call's own credit answers the balance it wrote; anything else reads the wallet now (never the
        # balance right after an older credit, which a replayed grant would report).
        balance = outcome.balance if outcome.credited_now else None
        self.write_json(await self.answer("credited" if outcome.credited_now else "already_credited", doc, balance))

    async def answer(self, status: str, doc: dict, balance: int | None = None) -> dict:
        """The verify answer: the purchase, what it granted and who credited it, and the wallet's balance now."""
        view = purchase_view(doc)
        if balance is None:
            balance = (await wallet.get_balance(self.db, self.user_id)).balance
        return {"status": status, "purchase": view, "pointsGranted": view["pointsGranted"],
                "creditedBy": view["creditedBy"], "balance": balance}


class BuyPointsHandler(VerifyHandler):
    """POST /api/points/buy — verification limited to points packs."""

    points_only = True

    @verify_limited
    @api("Buy a points pack: verify its purchase and credit the points", body=VerifySchema,
         responses={200: VerifyResultSchema, 202: VerifyResultSchema},
         errors={**VERIFY_ERRORS, 400: [*VERIFY_ERRORS[400], "not_a_points_product"]})
    async def post(self) -> None:
        await super().post()


class PurchaseHistoryHandler(APIHandler):
    """GET /api/payments/history — the caller's purchases, newest first."""

    @api("Your purchases, newest first", query=HistoryQuerySchema, responses={200: PurchaseListSchema},
         errors={400: ["invalid_cursor"]})
    async def get(self) -> None:
        query = self.load_query()
        before = _decode_cursor(query["cursor"])
        docs = await purchases.list_user_purchases(self.db, parse_id(self.user_id), limit=query["limit"] + 1,
                                                       before=before)
        page = docs[: query["limit"]]
        next_cursor = _encode_cursor(page[-1]["_id"]) if len(docs) > query["limit"] else None
        self.write_json({"items": [purchase_view(d) for d in page], "nextCursor": next_cursor})


def _encode_cursor(oid: ObjectId) -> str:
    return base64.urlsafe_b64encode(oid.binary).decode().rstrip("=")


def _decode_cursor(cursor: str | None) -> ObjectId | None:
    if cursor is None:
        return None
    try:
        return ObjectId(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, InvalidId, TypeError):
        raise ApiError(400, "invalid_cursor", "The cursor is not valid.") from None


default_handlers = [
    (r"/api/payments/orders", OrdersHandler),
    (r"/api/payments/verify", VerifyHandler),
    (r"/api/payments/history", PurchaseHistoryHandler),
    (r"/api/points/buy", BuyPointsHandler),
]
