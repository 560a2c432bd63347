"""The customer snapshot (entitlements, subscriptions, non-consumables, balance) for the app and for the app's servers."""

from __future__ import annotations

from marshmallow import fields

from documents.accounts import parse_id
from documents.entitlements import customer_snapshot, request_date, snapshot_etag
from handlers.base import ApiError, APIHandler, server_api_key
from handlers.docs import api
from handlers.schemas import CamelSchema

PERIODS = ["trial", "normal", "grace"]
SUB_STATUSES = ["active", "grace", "paused", "cancelled", "expired", "refunded"]


class EntitlementSchema(CamelSchema):
    """One declared entitlement as it stands now (active false when not held)."""

    active = fields.Boolean(required=True)
    product_id = fields.String(required=True, allow_none=True)
    expires_at = fields.String(required=True, allow_none=True, metadata={"description": "null: never (non-consumable)"})
    will_renew = fields.Boolean(required=True)
    period = fields.String(required=True, allow_none=True, metadata={"enum": [*PERIODS, None]})
    sandbox = fields.Boolean(required=True)


class CustomerSubscriptionSchema(CamelSchema):
    """A subscription of the customer."""

    product_id = fields.String(required=True)
    purchase_id = fields.String(required=True)
    status = fields.String(required=True, metadata={"enum": SUB_STATUSES})
    started_at = fields.String(required=True, allow_none=True)
    expires_at = fields.String(required=True, allow_none=True)
    will_renew = fields.Boolean(required=True)


class NonConsumableSchema(CamelSchema):
    """A non-consumable product the customer owns."""

    product_id = fields.String(required=True)
    invoice_id = fields.String(required=True)
    purchased_at = fields.String(required=True, allow_none=True)


class CustomerSchema(CamelSchema):
    """The customer snapshot: every declared entitlement, subscriptions, non-consumables, balance."""

    user_id = fields.String(required=True)
    balance = fields.Integer(required=True)
    entitlements = fields.Dict(keys=fields.String(), values=fields.Nested(EntitlementSchema), required=True)
    subscriptions = fields.List(fields.Nested(CustomerSubscriptionSchema), required=True)
    non_consumables = fields.List(fields.Nested(NonConsumableSchema), required=True)
    request_date = fields.String(required=True)


class EntitlementStateSchema(CamelSchema):
    """Whether the user holds one entitlement now, and until when (null: forever or not held)."""

    active = fields.Boolean(required=True)
    expires_at = fields.String(required=True, allow_none=True)


ETAG = ("The answer carries an `ETag` (a hash of everything except `requestDate`); send it back as "
        "`If-None-Match` and an unchanged customer answers `304` with no body.")


class CustomerBase(APIHandler):
    """Reads the snapshot of one user."""

    async def snapshot(self, user_id: str) -> dict:
        oid = parse_id(user_id)
        found = None if oid is None else await customer_snapshot(self.db, oid, self.ctx.entitlements, self.ctx.now())
        if found is None:
            raise ApiError(404, "user_not_found", "No such user.")
        return found

    def write_snapshot(self, snapshot: dict) -> None:
        """Answer the snapshot, or 304 when the client's If-None-Match already names this state."""
        etag = snapshot_etag(snapshot)
        self.set_header("ETag", etag)
        self.set_header("Cache-Control", "private, no-cache")
        wanted = [t.strip().removeprefix("W/") for t in self.request.headers.get("If-None-Match", "").split(",")]
        if etag in wanted or "*" in wanted:
            self.set_status(304)
            self.clear_header("Content-Type")
            self.finish()
            return
        self.write_json(snapshot | {"requestDate": request_date(self.ctx.now())})


class CustomerHandler(CustomerBase):
    """GET /api/customer."""

    @api("Your entitlements, subscriptions, non-consumables and balance in one snapshot (ETag / If-None-Match)",
         responses={200: CustomerSchema, 304: None}, errors={404: ["user_not_found"]}, description=ETAG)
    async def get(self) -> None:
        self.write_snapshot(await self.snapshot(self.user_id))


class ServerCustomerHandler(CustomerBase):
    """GET /api/server/customers/{userId}."""

    @api("A user's snapshot for the app team's own services (server API key)",
         responses={200: CustomerSchema, 304: None}, errors={401: ["invalid_api_key"], 404: ["user_not_found"]},
         description=ETAG)
    @server_api_key
    async def get(self, user_id: str) -> None:
        self.write_snapshot(await self.snapshot(user_id))


class ServerEntitlementHandler(CustomerBase):
    """GET /api/server/customers/{userId}/entitlements/{name}."""

    @api("Whether a user holds one entitlement now (server API key)", responses={200: EntitlementStateSchema},
         errors={401: ["invalid_api_key"], 404: ["user_not_found", "entitlement_not_found"]})
    @server_api_key
    async def get(self, user_id: str, name: str) -> None:
        snapshot = await self.snapshot(user_id)
        entitlement = snapshot["entitlements"].get(name)
        if entitlement is None:
            raise ApiError(404, "entitlement_not_found", "No entitlement with this name is declared.")
        self.write_json({"active": entitlement["active"], "expiresAt": entitlement["expiresAt"]})


ID = r"[A-Za-z0-9._:-]{1,64}"
default_handlers = [
    (r"/api/customer", CustomerHandler),
    (rf"/api/server/customers/({ID})", ServerCustomerHandler),
    (rf"/api/server/customers/({ID})/entitlements/([a-z][a-z0-9_]{{0,63}})", ServerEntitlementHandler),
]
