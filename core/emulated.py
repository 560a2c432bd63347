"""Wires an in-process RuStore emulator to this backend: development mode and end-to-end tests.

The emulator gets the app's products from settings, a freshly generated API key pair and
notification keys; the returned settings point the RuStore client at it and the emulator's
notifications at this server's webhook.
"""

from __future__ import annotations

import base64
import dataclasses
import os
from datetime import timedelta
from typing import Any

from core.products import load_products
from core.settings import Settings
from rustore.emulator import Emulator, EmulatorApp, EmulatorProduct, generate_key_pair

DEV_APP_ID = 1000001
DEV_PACKAGE = "com.example.rustoreapp"
DEV_KEY_ID = "1001"
WEBHOOK_PATH = "/api/webhooks/rustore"


def _emulator_products(settings: Settings) -> list[EmulatorProduct]:
    products = []
    for product in load_products(settings).values():
        kind = {"consumable": "consumable", "non_consumable": "non-consumable"}.get(product.type, "subscription")
        extra: dict[str, Any] = {}
        if product.is_subscription:
            extra["period"] = timedelta(days=product.period_days or 30)
        products.append(EmulatorProduct(product.id, kind, product.price or 0, title=product.title,
                                        description=product.description, currency=product.currency, **extra))
    return products


def build_emulator(settings: Settings, **emulator_options: Any) -> tuple[Emulator, EmulatorApp, Settings]:
    """An emulator serving this app's products, and settings that make the client use it.

    The returned settings still need `rustore_api_url` (known once the emulator listens) and the
    app's `notification_url` (known once this server listens): see `attach`.
    """
    pair = generate_key_pair()
    real_key = base64.b64encode(os.urandom(32)).decode()
    sandbox_key = base64.b64encode(os.urandom(32)).decode()
    app = EmulatorApp(
        app_id=settings.rustore_app_id or DEV_APP_ID,
        package_name=settings.rustore_package_name or DEV_PACKAGE,
        key_id=DEV_KEY_ID,
        public_key=pair.public_key_pem,
        notification_key_b64=real_key,
        sandbox_notification_key_b64=sandbox_key,
    )
    emulator = Emulator([app], **emulator_options)
    for product in _emulator_products(settings):
        emulator.add_product(app.app_id, product)
    configured = dataclasses.replace(
        settings,
        rustore_key_id=DEV_KEY_ID,
        rustore_private_key=pair.private_key_b64,
        rustore_private_key_file=None,
        rustore_app_id=app.app_id,
        rustore_package_name=app.package_name,
        rustore_notification_key=real_key,
        rustore_sandbox_notification_key=sandbox_key,
    )
    return emulator, app, configured


def attach(app: EmulatorApp, server_base_url: str) -> None:
    """Send the emulator's notifications (real and sandbox) to this server's webhook."""
    url = server_base_url.rstrip("/") + WEBHOOK_PATH
    app.notification_url = url
    app.sandbox_notification_url = url
