"""The entitlements declared in settings.toml (or ENTITLEMENTS): each name and the products that grant it."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from core.products import Product
from core.settings import Settings, SettingsError

NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


def _parse_override(text: str) -> dict[str, list[str]]:
    """`premium=premium_monthly|premium_yearly;no_ads=no_ads` -> {name: [product ids]}."""
    table: dict[str, list[str]] = {}
    for part in filter(None, (p.strip() for p in text.split(";"))):
        name, sep, products = part.partition("=")
        if not sep:
            raise SettingsError(f"ENTITLEMENTS: expected name=product|product, got {part!r}")
        table[name.strip()] = [p.strip() for p in products.split("|") if p.strip()]
    return table


def load_entitlements(settings: Settings, products: Mapping[str, Product]) -> dict[str, tuple[str, ...]]:
    """Entitlement name -> granting product ids; refuses unknown or consumable products (start-up check)."""
    raw: Any = settings.extra.get("entitlements") or {}
    if settings.entitlements_override is not None:
        raw = _parse_override(settings.entitlements_override)
    if not isinstance(raw, Mapping):
        raise SettingsError("[entitlements] must be a table of name = [product ids]")
    declared: dict[str, tuple[str, ...]] = {}
    for name, granted in raw.items():
        if not NAME.match(str(name)):
            raise SettingsError(f"entitlement {name!r}: names are lowercase letters, digits and _")
        ids = [granted] if isinstance(granted, str) else list(granted or [])
        if not ids:
            raise SettingsError(f"entitlement {name!r}: no product grants it")
        for pid in ids:
            product = products.get(str(pid))
            if product is None:
                raise SettingsError(f"entitlement {name!r} names unknown product {pid!r}")
            if product.type == "consumable":
                raise SettingsError(f"entitlement {name!r}: {pid!r} is consumable; only subscriptions and "
                                    "non-consumables grant entitlements")
        declared[str(name)] = tuple(str(p) for p in ids)
    return declared
