"""Builds the RuStore client and notification decoder from settings, with metrics hooks attached."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from core.metrics import (
    RUSTORE_BREAKER_OPEN,
    RUSTORE_BREAKER_OPENS,
    RUSTORE_BREAKER_STATE,
    RUSTORE_CALLS,
    RUSTORE_FAILURE_RATE,
    RUSTORE_LATENCY,
)
from core.settings import Settings
from rustore import NotificationDecoder, RuStoreClient, RuStoreConfig


def rustore_config(settings: Settings) -> RuStoreConfig:
    """The client configuration: the RUSTORE_* settings mapped onto rustore's own config object."""
    return RuStoreConfig(
        key_id=str(settings.rustore_key_id or ""),
        private_key_b64=settings.rustore_private_key,
        private_key_file=settings.rustore_private_key_file,
        app_id=settings.rustore_app_id,
        package_name=settings.rustore_package_name,
        api_url=settings.rustore_api_url,
        ca_bundle=settings.rustore_ca_bundle,
        timeout_s=settings.rustore_timeout_s,
        retry_deadline_s=settings.rustore_retry_deadline_s,
        breaker_threshold=settings.rustore_breaker_threshold,
        breaker_reset_s=settings.rustore_breaker_reset_s,
        breaker_failure_rate=settings.rustore_breaker_failure_rate,
        breaker_window_s=settings.rustore_breaker_window_s,
        notification_key_b64=settings.rustore_notification_key,
        sandbox_notification_key_b64=settings.rustore_sandbox_notification_key,
    )


def _on_call(endpoint: str, outcome: str, status: int | None, duration_s: float) -> None:
    RUSTORE_CALLS.labels(endpoint, outcome).inc()
    RUSTORE_LATENCY.labels(endpoint).observe(duration_s)


_STATE_VALUES = {"closed": 0, "open": 1, "half_open": 2}


def _on_breaker_change(state: str) -> None:
    RUSTORE_BREAKER_OPEN.set(1 if state == "open" else 0)
    RUSTORE_BREAKER_STATE.set(_STATE_VALUES.get(state, 0))
    if state == "open":
        RUSTORE_BREAKER_OPENS.inc()


def _export_failure_rates(client: RuStoreClient) -> None:
    """Per-endpoint failure rates over the breaker's window, refreshed after every finished call."""
    rates = client.breaker.failure_rates()
    _EXPORTED.update(rates)
    for endpoint in _EXPORTED:  # an endpoint with no call left in the window reads 0
        RUSTORE_FAILURE_RATE.labels(endpoint).set(rates.get(endpoint, 0.0))


_EXPORTED: set[str] = set()


def create_rustore_client(settings: Settings, clock: Callable[[], datetime] | None = None) -> RuStoreClient | None:
    """One client per process, or None when RuStore is not configured."""
    if not settings.rustore_configured:
        return None
    client = RuStoreClient(rustore_config(settings), on_call=_on_call, on_breaker_change=_on_breaker_change,
                           clock=clock)
    client.breaker.add_listener(lambda event: _export_failure_rates(client) if event == "call" else None)
    return client


def create_notification_decoder(settings: Settings) -> NotificationDecoder | None:
    """The webhook decoder holding the console notification keys, or None when no key is set."""
    if not settings.rustore_notification_key and not settings.rustore_sandbox_notification_key:
        return None
    return NotificationDecoder(settings.rustore_notification_key, settings.rustore_sandbox_notification_key,
                               expected_app_id=settings.rustore_app_id)


def attach_outage_recovery(ctx: Any) -> Any:
    """The coordinator that re-checks everything an outage recorded as soon as RuStore answers again."""
    from jobs.outage_recovery import OutageRecovery  # jobs import the documents layer, which needs a built context

    return OutageRecovery(ctx)
