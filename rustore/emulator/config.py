"""Configuration objects of the emulator: apps, products and the notification retry schedule."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

PRODUCT_TYPES = ("consumable", "non-consumable", "subscription")
RETRIES = 16
RETRY_WINDOW_S = 36 * 3600.0


def default_retry_schedule(retries: int = RETRIES, window_s: float = RETRY_WINDOW_S, growth: float = 1.5) -> list[float]:
    """Gaps (seconds) between notification re-sends: geometric, summing to the documented 36 h.

    UNCONFIRMED: RuStore documents only "16 further attempts over 36 hours, growing intervals".
    """
    first = window_s * (growth - 1) / (growth**retries - 1)
    return [first * growth**i for i in range(retries)]


@dataclass
class EmulatorApp:
    """One RuStore console application the emulator serves, with its API key and webhook settings."""

    app_id: int
    package_name: str
    key_id: str | None = None
    public_key: str | bytes | None = None
    notification_url: str | None = None
    notification_key_b64: str | None = field(default=None, repr=False)
    sandbox_notification_url: str | None = None
    sandbox_notification_key_b64: str | None = field(default=None, repr=False)
    name: str = "Emulated app"
    owner_code: int = 4384191
    owner_name: str = "Emulated developer"

    def public_view(self) -> dict[str, Any]:
        """What the control API shows (no keys)."""
        return {
            "appId": self.app_id,
            "packageName": self.package_name,
            "keyId": self.key_id,
            "notificationUrl": self.notification_url,
            "sandboxNotificationUrl": self.sandbox_notification_url,
        }


@dataclass
class EmulatorProduct:
    """A console product; subscriptions carry their period, optional trial, grace and hold lengths."""

    product_id: str
    product_type: str
    price: int
    title: str = ""
    description: str = ""
    currency: str = "RUB"
    status: str = "active"
    period: timedelta = timedelta(days=30)
    trial: timedelta | None = None
    grace: timedelta | None = None
    hold: timedelta | None = None

    def __post_init__(self) -> None:
        self.product_type = self.product_type.lower().replace("_", "-")
        if self.product_type not in PRODUCT_TYPES:
            raise ValueError(f"productType must be one of {PRODUCT_TYPES}")
        if self.price < 0:
            raise ValueError("price must be >= 0 kopecks")
        durations = (self.period, self.trial, self.grace, self.hold)
        if any(d is not None and d <= timedelta(0) for d in durations):
            raise ValueError("period, trial, grace and hold must be positive")
        self.title = self.title or self.product_id

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> EmulatorProduct:
        """Build from control-API JSON (`periodSeconds`, `trialSeconds`, `graceSeconds`, `holdSeconds`)."""

        def seconds(name: str) -> timedelta | None:
            value = data.get(name)
            return None if value in (None, 0) else timedelta(seconds=float(value))

        return cls(
            product_id=str(data["productId"]),
            product_type=str(data.get("productType", "consumable")),
            price=int(data.get("price", 0)),
            title=str(data.get("title") or data.get("name") or ""),
            description=str(data.get("description") or ""),
            currency=str(data.get("currency", "RUB")),
            status=str(data.get("status", "active")).lower(),
            period=seconds("periodSeconds") or timedelta(days=float(data.get("periodDays", 30))),
            trial=seconds("trialSeconds"),
            grace=seconds("graceSeconds"),
            hold=seconds("holdSeconds"),
        )

    def view(self) -> dict[str, Any]:
        """Control-API JSON of the product."""
        view: dict[str, Any] = {
            "productId": self.product_id,
            "productType": self.product_type,
            "price": self.price,
            "currency": self.currency,
            "title": self.title,
            "description": self.description,
            "status": self.status,
        }
        if self.product_type == "subscription":
            view |= {
                "periodSeconds": self.period.total_seconds(),
                "trialSeconds": self.trial.total_seconds() if self.trial else None,
                "graceSeconds": self.grace.total_seconds() if self.grace else None,
                "holdSeconds": self.hold.total_seconds() if self.hold else None,
            }
        return view
