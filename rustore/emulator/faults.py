"""Fault modes switchable at runtime per endpoint (or `*` for all RuStore endpoints)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rustore.emulator.errors import bad_request

MODES = ("slow", "timeout", "error", "malformed", "expired_token", "lowercase")
ENDPOINTS = (
    "auth", "payment_v2", "payments_list", "purchase_confirm", "purchase_cancel", "invoice_refund",
    "subscription_v4", "subscription_ack", "subscription_cancel", "catalog_products",
    "catalog_subscriptions", "legacy_payment", "legacy_subscription_v1", "legacy_subscription_v3",
    "purchases_by_user",
)


@dataclass
class Fault:
    """One fault: `slow` waits `delay_s` then answers normally; `timeout` never answers in time;
    `error` answers `status` (default 503) with a non-JSON gateway page; `malformed` answers 200 with
    broken JSON; `expired_token` answers RuStore's 401; `lowercase` sends legacy lowercase statuses.
    `remaining` limits how many requests are affected (None = until cleared). `match` limits the fault
    to requests naming that id in their path (one invoice, one purchase); None = every request.
    """

    endpoint: str
    mode: str
    delay_s: float = 0.0
    status: int = 503
    remaining: int | None = None
    match: str | None = None

    @property
    def slot(self) -> str:
        """Where it is kept: the endpoint, or `endpoint@id` for a fault on one id."""
        return self.endpoint if self.match is None else f"{self.endpoint}@{self.match}"

    def view(self) -> dict[str, Any]:
        """Control-API JSON."""
        return {"endpoint": self.endpoint, "mode": self.mode, "delaySeconds": self.delay_s,
                "status": self.status, "remaining": self.remaining, "match": self.match}


class Faults:
    """Active faults keyed by endpoint name."""

    def __init__(self) -> None:
        self._faults: dict[str, Fault] = {}

    def set(self, endpoint: str, mode: str, *, delay_s: float | None = None, status: int | None = None,
            count: int | None = None, match: str | int | None = None) -> Fault:
        """Install (or replace) the fault of an endpoint."""
        if endpoint != "*" and endpoint not in ENDPOINTS:
            raise bad_request(f"unknown endpoint {endpoint!r}; known: *, {', '.join(ENDPOINTS)}")
        if mode not in MODES:
            raise bad_request(f"unknown fault mode {mode!r}; known: {', '.join(MODES)}")
        default_delay = 30.0 if mode == "timeout" else 1.0 if mode == "slow" else 0.0
        fault = Fault(endpoint, mode, default_delay if delay_s is None else float(delay_s),
                      503 if status is None else int(status), count, None if match is None else str(match))
        self._faults[fault.slot] = fault
        return fault

    def clear(self, endpoint: str | None = None) -> None:
        """Remove one endpoint's fault, or all of them."""
        if endpoint is None:
            self._faults.clear()
        else:
            for slot in [s for s, f in self._faults.items() if s == endpoint or f.endpoint == endpoint]:
                self._faults.pop(slot, None)

    def take(self, endpoint: str, ids: tuple[str, ...] = ()) -> Fault | None:
        """The fault applying to this request (one on an id in its path first), counting it down."""
        fault = next((self._faults[f"{endpoint}@{i}"] for i in ids if f"{endpoint}@{i}" in self._faults), None)
        fault = fault or self._faults.get(endpoint) or self._faults.get("*")
        if fault is None:
            return None
        if fault.remaining is not None:
            fault.remaining -= 1
            if fault.remaining <= 0:
                self._faults.pop(fault.slot, None)
        return fault

    def list(self) -> list[dict[str, Any]]:
        """All active faults."""
        return [f.view() for f in self._faults.values()]


def lowercase_statuses(value: Any) -> Any:
    """Copy of a body with status-like string fields lowercased (the legacy spelling)."""
    if isinstance(value, dict):
        return {k: (v.lower() if k in _STATUS_KEYS and isinstance(v, str) else lowercase_statuses(v))
                for k, v in value.items()}
    if isinstance(value, list):
        return [lowercase_statuses(v) for v in value]
    return value


_STATUS_KEYS = {"invoiceStatus", "invoice_status", "status", "state"}
