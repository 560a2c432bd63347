"""Frozen settings of the RuStore client, buildable from `RUSTORE_*` environment variables."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rustore.errors import RuStoreConfigError

DEFAULT_API_URL = "https://public-api.rustore.ru"


@dataclass(frozen=True)
class RuStoreConfig:
    """Everything the client and the notification decoder need; secrets are hidden from repr."""

    key_id: str
    private_key_b64: str | None = field(default=None, repr=False)
    private_key_file: str | None = None
    app_id: int | None = None
    package_name: str | None = None
    api_url: str = DEFAULT_API_URL
    ca_bundle: str | None = None
    # One HTTP attempt; RuStore allows up to 30 s for confirm calls, so do not go much lower.
    timeout_s: float = 30.0
    retry_deadline_s: float = 60.0
    retry_max_attempts: int = 5
    retry_initial_backoff_s: float = 0.5
    retry_max_backoff_s: float = 10.0
    token_refresh_margin_s: float = 60.0
    # Breaker: opens when >= breaker_threshold DISTINCT requests failed within breaker_window_s and they are
    # >= breaker_failure_rate of the distinct requests made then (see rustore/breaker.py); stays open breaker_reset_s.
    breaker_threshold: int = 5
    breaker_reset_s: float = 30.0
    breaker_failure_rate: float = 0.5
    breaker_window_s: float = 30.0
    # P4 case of `invoiceStatuses` values: API.md shows both `created` and `CONFIRMED` (UNCONFIRMED).
    invoice_status_case: str = "lower"
    notification_key_b64: str | None = field(default=None, repr=False)
    sandbox_notification_key_b64: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not str(self.key_id).strip():
            raise RuStoreConfigError("RUSTORE_KEY_ID is empty")
        if not self.private_key_b64 and not self.private_key_file:
            raise RuStoreConfigError("set RUSTORE_PRIVATE_KEY or RUSTORE_PRIVATE_KEY_FILE")
        if self.invoice_status_case not in ("lower", "upper"):
            raise RuStoreConfigError("invoice_status_case must be 'lower' or 'upper'")
        if not 0 < self.breaker_failure_rate <= 1 or self.breaker_window_s <= 0:
            raise RuStoreConfigError("breaker_failure_rate must be in (0, 1] and breaker_window_s positive")
        if self.timeout_s <= 0 or self.retry_deadline_s <= 0:
            raise RuStoreConfigError("timeouts must be positive")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> RuStoreConfig:
        """Build from `RUSTORE_*` names (the public contract); unset optional names keep defaults."""
        env = os.environ if env is None else env

        def get(name: str) -> str | None:
            value = env.get(name)
            return value.strip() if value and value.strip() else None

        def number(name: str, kind: type) -> dict[str, float | int]:
            raw = get(name)
            if raw is None:
                return {}
            try:
                return {_ENV_FIELDS[name]: kind(raw)}
            except ValueError as exc:
                raise RuStoreConfigError(f"{name} must be a number, got {raw!r}") from exc

        app_id = number("RUSTORE_APP_ID", int).get("app_id")
        kwargs: dict[str, Any] = {
            "key_id": get("RUSTORE_KEY_ID") or "",
            "private_key_b64": get("RUSTORE_PRIVATE_KEY"),
            "private_key_file": get("RUSTORE_PRIVATE_KEY_FILE"),
            "app_id": app_id,
            "package_name": get("RUSTORE_PACKAGE_NAME"),
            "api_url": get("RUSTORE_API_URL") or DEFAULT_API_URL,
            "ca_bundle": get("RUSTORE_CA_BUNDLE"),
            "notification_key_b64": get("RUSTORE_NOTIFICATION_KEY"),
            "sandbox_notification_key_b64": get("RUSTORE_SANDBOX_NOTIFICATION_KEY"),
        }
        for name, kind in _ENV_NUMBERS.items():
            kwargs.update(number(name, kind))
        return cls(**kwargs)

    def require_app_id(self) -> int:
        """Return the console app id or explain that the calling method needs it."""
        if self.app_id is None:
            raise RuStoreConfigError("RUSTORE_APP_ID is required for this call")
        return self.app_id

    def require_package_name(self) -> str:
        """Return the Android package name or explain that the calling method needs it."""
        if not self.package_name:
            raise RuStoreConfigError("RUSTORE_PACKAGE_NAME is required for this call")
        return self.package_name


_ENV_FIELDS = {
    "RUSTORE_APP_ID": "app_id",
    "RUSTORE_TIMEOUT_S": "timeout_s",
    "RUSTORE_RETRY_DEADLINE_S": "retry_deadline_s",
    "RUSTORE_BREAKER_THRESHOLD": "breaker_threshold",
    "RUSTORE_BREAKER_RESET_S": "breaker_reset_s",
    "RUSTORE_BREAKER_FAILURE_RATE": "breaker_failure_rate",
    "RUSTORE_BREAKER_WINDOW_S": "breaker_window_s",
}
_ENV_NUMBERS: dict[str, type] = {
    "RUSTORE_TIMEOUT_S": float,
    "RUSTORE_RETRY_DEADLINE_S": float,
    "RUSTORE_BREAKER_THRESHOLD": int,
    "RUSTORE_BREAKER_RESET_S": float,
    "RUSTORE_BREAKER_FAILURE_RATE": float,
    "RUSTORE_BREAKER_WINDOW_S": float,
}
