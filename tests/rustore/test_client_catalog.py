"""Catalog listing (C1, C2) follows continuationToken to the last page."""

from __future__ import annotations

from rustore import ProductType, RuStoreClient
from rustore.emulator import Emulator, EmulatorProduct
from tests.rustore.conftest import APP_ID, ClientFactory


async def test_products_are_listed_across_all_pages(emulator: Emulator, make_client: ClientFactory) -> None:
    for n in range(5):
        emulator.add_product(APP_ID, EmulatorProduct(f"pack_{n}", "consumable", 100 * (n + 1), title=f"Pack {n}"))
    items = await make_client().list_catalog_products(page_size=2)
    assert [i.product_id for i in items] == ["coins_100", "no_ads"] + [f"pack_{n}" for n in range(5)]
    assert emulator.stats["catalog_products"] == 4
    pack = items[3]
    assert (pack.type, pack.title, pack.price, pack.currency, pack.status) == (
        ProductType.CONSUMABLE, "Pack 1", 200, "RUB", "active")
    assert items[1].type is ProductType.NON_CONSUMABLE and pack.raw["productType"] == "consumable"


async def test_product_filters_are_passed_through(emulator: Emulator, client: RuStoreClient) -> None:
    emulator.add_product(APP_ID, EmulatorProduct("old_pack", "consumable", 100, status="inactive"))
    active = await client.list_catalog_products(product_types=["consumable"], statuses=["active"])
    assert [i.product_id for i in active] == ["coins_100"]


async def test_subscriptions_are_listed_with_their_type(client: RuStoreClient) -> None:
    items = await client.list_catalog_subscriptions(page_size=1)
    assert [(i.product_id, i.type) for i in items] == [
        ("premium_month", ProductType.SUBSCRIPTION), ("basic_month", ProductType.SUBSCRIPTION)]
    assert items[0].price == 29900 and items[0].title == "Premium"
