"""The public product list: settings' products with titles and prices from RuStore's catalog, cached in Redis.

Freshness, in order: the Redis copy (PRODUCTS_CACHE_TTL_S); else one process (a Redis lock
prevents a stampede) asks RuStore (C1 + C2) and refreshes the copy; while RuStore is down the
last good copy is served (`source: "cache"`); if RuStore was never reached, the settings-only
list (`source: "settings"`). Products RuStore does not list keep their settings title and price.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from loguru import logger

from core.metrics import REDIS_ERRORS
from rustore import RuStoreError

LOCK_S = 15


def price_label(kopecks: int | None, currency: str) -> str | None:
    """A price as shoppers read it: '99 ₽', '2 499,90 ₽'."""
    if kopecks is None:
        return None
    rubles, kop = divmod(kopecks, 100)
    whole = f"{rubles:,}".replace(",", "\u00a0")
    amount = f"{whole},{kop:02d}" if kop else whole
    return f"{amount}\u00a0₽" if currency == "RUB" else f"{amount} {currency}"


def _item(product: Any, remote: Any | None) -> dict:
    price = remote.price if remote is not None and remote.price is not None else product.price
    currency = (remote.currency if remote is not None and remote.currency else None) or product.currency
    item = {
        "productId": product.id,
        "type": product.type,
        "title": (remote.title if remote is not None and remote.title else None) or product.title,
        "description": (remote.description if remote is not None and remote.description else None)
        or product.description,
        "price": price,
        "currency": currency,
        "priceLabel": price_label(price, currency),
    }
    if product.points:
        item["points"] = product.points
    if product.plan:
        item["plan"] = product.plan
        item["pointsPerPeriod"] = product.points_per_period
    return item


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Catalog:
    """Builds and caches the product list for GET /api/products."""

    def __init__(self, ctx: Any) -> None:
        self._ctx = ctx
        self._fresh_key = ctx.key("catalog", "fresh")
        self._last_key = ctx.key("catalog", "last_good")
        self._lock_key = ctx.key("catalog", "lock")
        self._memo: dict | None = None  # last good copy in this process, for when Redis is down too

    def settings_only(self) -> dict:
        """The list from settings alone."""
        items = [_item(p, None) for p in self._ctx.products.values()]
        return {"products": items, "updatedAt": None, "source": "settings"}

    async def _redis(self, *args: Any) -> Any:
        health = self._ctx.redis_health
        if not health.available():
            return None
        try:
            return await self._ctx.redis.execute_command(*args)
        except Exception as exc:  # noqa: BLE001 - the catalog degrades, it never fails the request
            health.failed()
            REDIS_ERRORS.labels("catalog").inc()
            logger.warning("catalog cache unavailable", error=type(exc).__name__)
            return None

    async def get(self) -> dict:
        """The product list with its source: rustore (fresh), cache (last good), or settings."""
        fresh = await self._redis("GET", self._fresh_key)
        if fresh:
            return json.loads(fresh)
        if self._ctx.rustore is not None and await self._redis("SET", self._lock_key, "1", "NX", "EX", LOCK_S):
            try:
                return await self._refresh()
            except RuStoreError as exc:
                logger.warning("RuStore catalog unavailable, serving last good copy", error=type(exc).__name__)
            finally:
                await self._redis("DEL", self._lock_key)
        last = await self._redis("GET", self._last_key)
        if last:
            return {**json.loads(last), "source": "cache"}
        return {**self._memo, "source": "cache"} if self._memo else self.settings_only()

    async def _refresh(self) -> dict:
        client = self._ctx.rustore
        remote = {item.product_id: item for item in await client.list_catalog_products()}
        remote |= {item.product_id: item for item in await client.list_catalog_subscriptions()}
        items = [_item(p, remote.get(p.id)) for p in self._ctx.products.values()]
        payload = {"products": items, "updatedAt": _iso(self._ctx.now()), "source": "rustore"}
        text = json.dumps(payload, ensure_ascii=False)
        await self._redis("SET", self._fresh_key, text, "EX", max(1, self._ctx.settings.products_cache_ttl_s))
        await self._redis("SET", self._last_key, text)
        self._memo = payload
        return payload
