"""GET /api/products: RuStore's titles and prices, cached, with graceful fallbacks."""

from __future__ import annotations

from core.catalog import price_label
from rustore.emulator import EmulatorProduct


def catalog_calls(env) -> int:
    return env.emulator.stats["catalog_products"] + env.emulator.stats["catalog_subscriptions"]


async def test_products_are_public_and_use_rustores_titles_and_prices(emulated):
    env = await emulated()
    env.emulator.add_product(env.app_id, EmulatorProduct("points_100", "consumable", 12900, title="Сто баллов",
                                                         description="Пакет из 100 баллов"))
    resp = await env.api.get("/api/products")
    assert resp.status == 200 and resp.json["source"] == "rustore"
    by_id = {p["productId"]: p for p in resp.json["products"]}
    assert set(by_id) == {"points_100", "points_500", "premium_monthly", "premium_yearly"}
    assert by_id["points_100"] == {"productId": "points_100", "type": "consumable", "title": "Сто баллов",
                                   "description": "Пакет из 100 баллов", "price": 12900, "currency": "RUB",
                                   "priceLabel": "129\u00a0₽", "points": 100}
    assert by_id["premium_monthly"]["plan"] == "monthly" and by_id["premium_monthly"]["pointsPerPeriod"] == 300
    assert resp.json["updatedAt"].endswith("Z")


async def test_catalog_is_cached_and_not_refetched_within_the_ttl(emulated):
    env = await emulated()
    first = (await env.api.get("/api/products")).json
    calls = catalog_calls(env)
    for _ in range(3):
        assert (await env.api.get("/api/products")).json == first
    assert catalog_calls(env) == calls


async def test_last_good_copy_is_served_while_rustore_is_down(emulated):
    env = await emulated(products_cache_ttl_s=1)
    env.emulator.add_product(env.app_id, EmulatorProduct("points_500", "consumable", 45000, title="Пятьсот"))
    good = (await env.api.get("/api/products")).json
    env.emulator.set_fault("*", "error", status=500)
    await env.service.ctx.redis.delete(env.service.ctx.key("catalog", "fresh"))  # the TTL ran out
    stale = await env.api.get("/api/products")
    assert stale.status == 200 and stale.json["source"] == "cache"
    assert stale.json["products"] == good["products"] and stale.json["updatedAt"] == good["updatedAt"]


async def test_settings_list_is_served_when_rustore_was_never_reached(emulated):
    env = await emulated()
    env.emulator.set_fault("*", "error", status=500)
    resp = await env.api.get("/api/products")
    assert resp.status == 200 and resp.json["source"] == "settings" and resp.json["updatedAt"] is None
    pack = next(p for p in resp.json["products"] if p["productId"] == "points_100")
    assert pack["title"] == "100 points" and pack["price"] == 9900


def test_price_labels_read_like_russian_prices():
    assert price_label(9900, "RUB") == "99\u00a0₽"
    assert price_label(249990, "RUB") == "2\u00a0499,90\u00a0₽"
    assert price_label(None, "RUB") is None
