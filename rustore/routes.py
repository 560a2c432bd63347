"""Path templates of every RuStore operation the client calls (API.md §0), real and sandbox."""

from __future__ import annotations

from rustore.transport import Route

_SB = "{sb}"


def _route(method: str, template: str, idempotent: bool = True) -> tuple[Route, Route]:
    """(real, sandbox) pair: the sandbox twin inserts `/sandbox` right after `/public`."""
    real = Route(method, template.replace(_SB, ""), idempotent)
    sandbox = Route(method, template.replace(_SB, "/sandbox"), idempotent)
    return real, sandbox


AUTH = Route("POST", "/public/auth/", idempotent=True)
PAYMENT_V2 = _route("GET", "/public{sb}/v2/purchase/{invoiceId}")
PAYMENTS_LIST = _route("GET", "/public{sb}/applications/{appId}/invoices")
PURCHASES_BY_USER = _route("GET", "/public{sb}/applications/{appId}/purchases")
CONFIRM = _route("PUT", "/public{sb}/applications/{appId}/purchases/{purchaseId}:confirm", False)
CANCEL = _route("PUT", "/public{sb}/applications/{appId}/purchases/{purchaseId}:cancel", False)
REFUND = _route("PATCH", "/public{sb}/applications/{appId}/invoices/{invoiceId}", False)
SUBSCRIPTION_V4 = _route("GET", "/public{sb}/v4/subscription/{packageName}/{subscriptionId}/{purchaseId}")
SUBSCRIPTION_ACK = _route(
    "POST", "/public{sb}/v2/subscription/{packageName}/{subscriptionId}/{purchaseId}:acknowledge", False
)
SUBSCRIPTION_CANCEL = _route("PATCH", "/public{sb}/v1/applications/{appId}/subscriptions/{purchaseId}:cancel", False)
CATALOG_PRODUCTS = Route("GET", "/public/applications/{appId}/catalog/products")
CATALOG_SUBSCRIPTIONS = Route("GET", "/public/applications/{appId}/catalog/subscriptions")
LEGACY_PAYMENT = _route("GET", "/public{sb}/purchase/{purchaseToken}")
LEGACY_SUBSCRIPTION_V1 = _route("GET", "/public{sb}/subscription/{subscriptionToken}")
LEGACY_SUBSCRIPTION_V3 = _route("GET", "/public{sb}/v3/subscription/{packageName}/{subscriptionId}/{subscriptionToken}")
