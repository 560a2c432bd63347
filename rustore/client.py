"""Async RuStore Public API client: Pay SDK endpoints first, legacy token lookups kept for old purchases.

Choices where API.md says UNCONFIRMED (all overridable or tolerant):
* Base URL and CA bundle come from config (`public-api-m.rustore.ru` may need the Минцифры root CA).
* Auth timestamp: milliseconds with `+00:00` offset; keyId sent as a JSON string.
* Expired token: any answer with 401, a message mentioning an expired token, or 403 mentioning the
  token invalidates the cache and retries the call once; a second rejection is `RuStoreAuthError`.
* Errors: JSON is parsed whatever the HTTP status; `code != "OK"` is a failure; 404, `NOT_FOUND` or
  a "not found" message -> `RuStoreNotFound`; 403/"Forbidden" -> auth error `forbidden`;
  5xx/429/timeouts/connection errors/malformed JSON -> `RuStoreUnavailable`.
* Retries: reads are retried on any `RuStoreUnavailable`; mutations (confirm, cancel, refund,
  acknowledge, cancel subscription) only when the request provably did not reach RuStore
  (connect error) or a gateway answered 429/502/503/504, because a blind retry of an applied
  confirm would turn success into "Purchase status must be PAID".
* Sandbox paths for P4, C1/C2 and S7 follow the `/public/sandbox/...` pattern (P4/S7 only; catalog
  has no sandbox flag because products are shared between environments).
* P4 `invoiceStatuses` are sent as a repeated parameter, lowercase by default
  (`RuStoreConfig.invoice_status_case`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any

import aiohttp

from rustore.auth import TokenCache
from rustore.breaker import DistinctBreaker
from rustore.config import RuStoreConfig
from rustore.errors import AuthErrorKind, RuStoreAuthError, RuStoreNotFound, RuStoreUnavailable
from rustore.models import CatalogItem, InvoiceStatus, Payment, PaymentsPage, Subscription
from rustore.parsing import ListedPurchase, parse_catalog_item, parse_payment, parse_purchase_list, parse_subscription
from rustore.responses import TokenExpired
from rustore.routes import (
    AUTH,
    CANCEL,
    CATALOG_PRODUCTS,
    CATALOG_SUBSCRIPTIONS,
    CONFIRM,
    LEGACY_PAYMENT,
    LEGACY_SUBSCRIPTION_V1,
    LEGACY_SUBSCRIPTION_V3,
    PAYMENT_V2,
    PAYMENTS_LIST,
    PURCHASES_BY_USER,
    REFUND,
    SUBSCRIPTION_ACK,
    SUBSCRIPTION_CANCEL,
    SUBSCRIPTION_V4,
)
from rustore.signing import AuthSigner, load_private_key
from rustore.transport import OnBreaker, OnCall, Route, Transport
from rustore.values import pick, to_int, to_str

Clock = Callable[[], datetime]


class RuStoreClient:
    """Typed access to RuStore's server API sharing one session, one token and one breaker."""

    def __init__(
        self,
        config: RuStoreConfig,
        session: aiohttp.ClientSession | None = None,
        *,
        on_call: OnCall | None = None,
        on_breaker_change: OnBreaker | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.config = config
        self._clock: Clock = clock or (lambda: datetime.now(UTC))
        # Parsed once here so a broken key fails at startup, not on the first payment.
        self._signer = AuthSigner(
            str(config.key_id), load_private_key(config.private_key_b64, config.private_key_file)
        )
        self._transport = Transport(config, session, on_call, on_breaker_change)
        self._tokens = TokenCache(self._fetch_token, self._clock, config.token_refresh_margin_s)

    @property
    def breaker_state(self) -> str:
        """Circuit breaker state: `closed`, `open` or `half_open`."""
        return self._transport.breaker_state

    @property
    def breaker(self) -> DistinctBreaker:
        """The circuit breaker itself: listeners (open/closed/outage/recovered), remaining time, failure rates."""
        return self._transport.breaker

    @property
    def outage_active(self) -> bool:
        """True from a failure that looked like an outage until the first call that succeeds after it."""
        return self._transport.breaker.outage_since is not None

    async def close(self) -> None:
        """Stop any token refresh in flight and close the session this client created."""
        await self._tokens.close()
        await self._transport.close()

    async def __aenter__(self) -> RuStoreClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def _fetch_token(self) -> tuple[str, float]:
        body = await self._transport.call(AUTH, json_body=lambda: self._signer.auth_body(self._clock()))
        token, ttl = to_str(pick(body, "jwe")), pick(body, "ttl")
        if token is None:
            raise RuStoreUnavailable("RuStore auth answer has no `jwe` token")
        return token, float(to_int(ttl) or 900)

    async def _call(self, route: Route, params: dict[str, Any], query: list[tuple[str, str]] | None = None) -> Any:
        for attempt in range(2):
            try:
                token = await self._tokens.get()
            except RuStoreUnavailable as exc:
                # All requests share one token: count the failed fetch against this request too, so a
                # cold start into an outage is seen as many failing requests, not one failing auth call.
                self._transport.note_unavailable(route, params, query, exc)
                raise
            try:
                return await self._transport.call(route, params, query=query, token=token)
            except TokenExpired as exc:
                self._tokens.invalidate(token)
                if attempt == 1:
                    raise RuStoreAuthError(AuthErrorKind.TOKEN_REJECTED, str(exc)) from None
        raise AssertionError("unreachable")

    # --- one-time payments (Pay SDK) -------------------------------------------------------

    async def get_payment(self, invoice_id: str | int, *, sandbox: bool = False) -> Payment:
        """P3: invoice by id (`/public/v2/purchase/{invoiceId}` or its sandbox twin)."""
        body = await self._call(PAYMENT_V2[sandbox], {"invoiceId": invoice_id})
        return parse_payment(_object(body, "payment"), sandbox=sandbox)

    async def list_payments_page(
        self,
        invoice_date: date,
        statuses: Iterable[InvoiceStatus | str],
        *,
        page_number: int = 0,
        page_size: int = 20,
        sandbox: bool = False,
    ) -> PaymentsPage:
        """P4: one page of the app's invoices for a date and set of statuses."""
        app_id = self.config.require_app_id()
        query = [("invoiceStatuses", self._status_param(s)) for s in statuses]
        query += [("invoiceDate", invoice_date.isoformat()), ("pageNumber", str(page_number)),
                  ("pageSize", str(page_size))]
        body = _object(await self._call(PAYMENTS_LIST[sandbox], {"appId": app_id}, query), "payments page")
        items = tuple(parse_payment(item, sandbox=sandbox) for item in body.get("content") or [] if isinstance(item, dict))
        return PaymentsPage(
            items=items,
            page_number=to_int(body.get("pageNumber")) or page_number,
            page_size=to_int(body.get("pageSize")) or page_size,
            total_elements=to_int(body.get("totalElements")),
            total_pages=to_int(body.get("totalPages")),
        )

    async def list_payments(
        self,
        invoice_date: date,
        statuses: Iterable[InvoiceStatus | str],
        *,
        page_size: int = 20,
        sandbox: bool = False,
    ) -> AsyncIterator[Payment]:
        """P4: every invoice of the date across all pages."""
        statuses = list(statuses)
        page_number = 0
        while True:
            page = await self.list_payments_page(
                invoice_date, statuses, page_number=page_number, page_size=page_size, sandbox=sandbox
            )
            for item in page.items:
                yield item
            # Without totalPages, a short page is the last one.
            if page.total_pages is None:
                last = len(page.items) < page_size
            else:
                last = page_number + 1 >= page.total_pages
            if last or not page.items:
                return
            page_number += 1

    def _status_param(self, status: InvoiceStatus | str) -> str:
        value = InvoiceStatus.parse(status).value if isinstance(status, str) else status.value
        return value.lower() if self.config.invoice_status_case == "lower" else value.upper()

    async def list_user_purchases(self, app_user_id: str, *, sandbox: bool = False) -> list[ListedPurchase]:
        """Purchases made with this appUserId (API.md §13); 404 or an unknown shape is no evidence: []."""
        query = [("appUserId", app_user_id)]
        try:
            body = await self._call(PURCHASES_BY_USER[sandbox], {"appId": self.config.require_app_id()}, query)
        except RuStoreNotFound:
            return []
        return parse_purchase_list(body)

    async def confirm_purchase(self, purchase_id: str, *, sandbox: bool = False) -> None:
        """P5: charge a two-stage purchase held in PAID."""
        await self._call(CONFIRM[sandbox], {"appId": self.config.require_app_id(), "purchaseId": purchase_id})

    async def cancel_purchase(self, purchase_id: str, *, sandbox: bool = False) -> None:
        """P6: release the hold of a two-stage purchase in PAID (it becomes REVERSED)."""
        await self._call(CANCEL[sandbox], {"appId": self.config.require_app_id(), "purchaseId": purchase_id})

    async def refund_payment(self, invoice_id: str | int, *, sandbox: bool = False) -> None:
        """P7: full refund of a CONFIRMED invoice (does not revoke anything by itself)."""
        await self._call(REFUND[sandbox], {"appId": self.config.require_app_id(), "invoiceId": invoice_id})

    # --- subscriptions (Pay SDK) ------------------------------------------------------------

    async def get_subscription(self, product_id: str, purchase_id: str, *, sandbox: bool = False) -> Subscription:
        """S5: subscription by its purchaseId (`/public/v4/subscription/...`)."""
        params = {"packageName": self.config.require_package_name(), "subscriptionId": product_id,
                  "purchaseId": purchase_id}
        body = _object(await self._call(SUBSCRIPTION_V4[sandbox], params), "subscription")
        return parse_subscription(body, now=self._clock(), sandbox=sandbox, product_id=product_id,
                                  purchase_id=purchase_id)

    async def acknowledge_subscription(self, product_id: str, purchase_id: str, *, sandbox: bool = False) -> None:
        """S7: tell RuStore the user received the subscription content (optional)."""
        params = {"packageName": self.config.require_package_name(), "subscriptionId": product_id,
                  "purchaseId": purchase_id}
        await self._call(SUBSCRIPTION_ACK[sandbox], params)

    async def cancel_subscription(self, purchase_id: str, *, sandbox: bool = False) -> None:
        """S8: stop renewals; access lasts until the end of the paid period; not a refund."""
        params = {"appId": self.config.require_app_id(), "purchaseId": purchase_id}
        await self._call(SUBSCRIPTION_CANCEL[sandbox], params)

    # --- catalog ----------------------------------------------------------------------------

    async def list_catalog_products(
        self, *, product_types: Iterable[str] = ("consumable", "non-consumable"),
        statuses: Iterable[str] = (), page_size: int = 500,
    ) -> list[CatalogItem]:
        """C1: all one-time products, following `continuationToken` to the last page."""
        query = [("productType", t) for t in product_types] + [("status", s) for s in statuses]
        return await self._catalog(CATALOG_PRODUCTS, query, page_size)

    async def list_catalog_subscriptions(
        self, *, statuses: Iterable[str] = (), page_size: int = 500
    ) -> list[CatalogItem]:
        """C2: all subscription products, following `continuationToken` to the last page."""
        return await self._catalog(CATALOG_SUBSCRIPTIONS, [("status", s) for s in statuses], page_size)

    async def _catalog(self, route: Route, query: list[tuple[str, str]], page_size: int) -> list[CatalogItem]:
        params = {"appId": self.config.require_app_id()}
        items: list[CatalogItem] = []
        seen: set[str] = set()
        token: str | None = None
        while True:
            page_query = query + [("limit", str(page_size))] + ([("continuationToken", token)] if token else [])
            body = _object(await self._call(route, params, page_query), "catalog page")
            items += [parse_catalog_item(e) for e in body.get("elements") or [] if isinstance(e, dict)]
            token = to_str(body.get("continuationToken"))
            if token is None:
                return items
            if token in seen:
                raise RuStoreUnavailable("RuStore catalog repeated a continuationToken; paging aborted")
            seen.add(token)

    # --- legacy BillingClient lookups ---------------------------------------------------------

    async def get_legacy_payment(self, purchase_token: str, *, sandbox: bool = False) -> Payment:
        """P1: BillingClient payment by `subscriptionToken`/`purchaseToken` (`invoiceId.userId`)."""
        body = await self._call(LEGACY_PAYMENT[sandbox], {"purchaseToken": purchase_token})
        payment = parse_payment(_object(body, "payment"), sandbox=sandbox)
        if payment.purchase_token is None:
            payment = replace(payment, purchase_token=purchase_token)
        return payment

    async def get_legacy_subscription(
        self, subscription_token: str, product_id: str | None = None, *, sandbox: bool = False
    ) -> Subscription:
        """S4 (V3) when the product code is known, else S1 (v1, doubly wrapped)."""
        now = self._clock()
        if product_id is not None:
            params = {"packageName": self.config.require_package_name(), "subscriptionId": product_id,
                      "subscriptionToken": subscription_token}
            body = _object(await self._call(LEGACY_SUBSCRIPTION_V3[sandbox], params), "subscription")
            return parse_subscription(body, now=now, sandbox=sandbox, product_id=product_id,
                                      subscription_token=subscription_token)
        outer = _object(await self._call(LEGACY_SUBSCRIPTION_V1[sandbox], {"subscriptionToken": subscription_token}),
                        "subscription")
        # S1 wraps twice; the inner code/success are informational (API.md §3.2).
        nested = outer.get("body")
        inner: dict[str, Any] = nested if isinstance(nested, dict) else outer
        return parse_subscription(inner, now=now, sandbox=sandbox, subscription_token=subscription_token)


def _object(body: Any, what: str) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise RuStoreUnavailable(f"RuStore {what} answer has no JSON object body")
    return body
