"""The public product list the app shows before a purchase."""

from __future__ import annotations

from marshmallow import fields

from core.catalog import Catalog
from handlers.base import APIHandler, public
from handlers.docs import api
from handlers.schemas import CamelSchema


class ProductSchema(CamelSchema):
    """One sellable product."""

    product_id = fields.String(required=True)
    type = fields.String(required=True, metadata={"enum": ["consumable", "non_consumable", "subscription"]})
    title = fields.String(required=True)
    description = fields.String(required=True)
    price = fields.Integer(allow_none=True, metadata={"description": "Kopecks"})
    currency = fields.String(required=True)
    price_label = fields.String(allow_none=True)
    points = fields.Integer()
    plan = fields.String()
    points_per_period = fields.Integer()


class ProductListSchema(CamelSchema):
    """GET /api/products answer."""

    products = fields.List(fields.Nested(ProductSchema), required=True)
    updated_at = fields.String(allow_none=True, required=True)
    source = fields.String(required=True, metadata={"enum": ["rustore", "cache", "settings"]})


class ProductsHandler(APIHandler):
    """GET /api/products — titles and prices from RuStore's catalog, cached."""

    @public
    @api("The products on sale, with RuStore's titles and prices", responses={200: ProductListSchema})
    async def get(self) -> None:
        catalog: Catalog = self.application.settings["catalog"]
        payload = await catalog.get()
        self.set_header("Cache-Control", "public, max-age=60")
        self.write_json(payload)


default_handlers = [
    (r"/api/products", ProductsHandler),
]
