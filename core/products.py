"""The product catalog declared in settings.toml: what each RuStore product id grants."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from core.settings import Settings, SettingsError

TYPES = ("consumable", "non_consumable", "subscription")


@dataclass(frozen=True)
class Product:
    """One sellable product: its RuStore id, type and grant (points, plan, points per period)."""

    id: str
    type: str
    title: str
    description: str
    price: int | None = None
    currency: str = "RUB"
    points: int = 0
    plan: str | None = None
    period_days: int | None = None
    points_per_period: int = 0

    @property
    def is_subscription(self) -> bool:
        """True for subscription products."""
        return self.type == "subscription"

    @property
    def is_points_pack(self) -> bool:
        """True for one-time products that grant points."""
        return not self.is_subscription and self.points > 0


def _product(raw: Mapping[str, Any]) -> Product:
    pid = str(raw.get("id") or "").strip()
    kind = str(raw.get("type") or "").strip()
    if not pid or kind not in TYPES:
        raise SettingsError(f"[[products]] needs an id and a type in {TYPES}: {dict(raw)!r}")
    numbers = {k: raw[k] for k in ("price", "points", "period_days", "points_per_period") if k in raw}
    for key, value in numbers.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise SettingsError(f"product {pid}: {key} must be a non-negative integer")
    if kind == "subscription" and not raw.get("plan"):
        raise SettingsError(f"product {pid}: subscriptions need a plan")
    return Product(
        id=pid, type=kind, title=str(raw.get("title") or pid), description=str(raw.get("description") or ""),
        currency=str(raw.get("currency") or "RUB"), plan=raw.get("plan"), **numbers,
    )


def load_products(settings: Settings) -> dict[str, Product]:
    """The products from settings (`[[products]]`), keyed by product id."""
    products = [_product(raw) for raw in settings.extra.get("products", [])]
    by_id = {p.id: p for p in products}
    if len(by_id) != len(products):
        raise SettingsError("[[products]] ids must be unique")
    return by_id
