"""HTTP attempts against RuStore with retries (tenacity), a circuit breaker (purgatory), logs and metrics."""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp
from loguru import logger
from purgatory import AsyncCircuitBreakerFactory
from purgatory.domain.model import OpenedState
from tenacity import (
    AsyncRetrying,
    retry_if_exception,
    stop_after_attempt,
    stop_before_delay,
    wait_random_exponential,
)

from rustore.config import RuStoreConfig
from rustore.errors import RuStoreBreakerOpen, RuStoreError, RuStoreUnavailable
from rustore.responses import interpret, outcome_of, retry_safe

OnCall = Callable[[str, str, int | None, float], None]
OnBreaker = Callable[[str], None]
_CIRCUIT = "rustore"
_STATE_NAMES = {"closed": "closed", "opened": "open", "half-opened": "half_open"}


@dataclass(frozen=True)
class Route:
    """One RuStore operation: HTTP method, path template, and whether repeating it is harmless."""

    method: str
    template: str
    idempotent: bool = True

    @property
    def label(self) -> str:
        """Stable metrics/log label, e.g. `GET /public/v2/purchase/{invoiceId}`."""
        return f"{self.method} {self.template}"

    def path(self, params: Mapping[str, Any]) -> str:
        """Template with every placeholder percent-encoded."""
        return self.template.format(**{k: quote(str(v), safe="") for k, v in params.items()})


class Transport:
    """Owns the aiohttp session (unless given one) and runs every RuStore HTTP attempt."""

    def __init__(
        self,
        config: RuStoreConfig,
        session: aiohttp.ClientSession | None,
        on_call: OnCall | None,
        on_breaker: OnBreaker | None,
    ) -> None:
        self._config = config
        self._session = session
        self._owns_session = session is None
        self._on_call = on_call
        self._on_breaker = on_breaker
        self._base = config.api_url.rstrip("/")
        self._ssl: ssl.SSLContext | bool = (
            ssl.create_default_context(cafile=config.ca_bundle) if config.ca_bundle else True
        )
        self._breakers = AsyncCircuitBreakerFactory(
            default_threshold=config.breaker_threshold,
            default_ttl=config.breaker_reset_s,
            # Only "RuStore is down" counts against the breaker; a 404 or a refusal proves it is up.
            exclude=[
                asyncio.CancelledError,
                (RuStoreError, lambda exc: not isinstance(exc, RuStoreUnavailable)),
            ],
        )
        self._breakers.add_listener(self._breaker_event)
        self._breaker_context: Any = None

    @property
    def breaker_state(self) -> str:
        """`closed`, `open` or `half_open` (an open breaker past its reset time reports half_open)."""
        context = self._breaker_context
        if context is None:
            return "closed"
        state = _STATE_NAMES.get(str(context.state), str(context.state))
        if state == "open" and time.time() > (context.opened_at or 0) + context.ttl:
            return "half_open"
        return state

    def _breaker_event(self, name: str, event_type: str, event: Any) -> None:
        if event_type != "state_changed":
            return
        state = _STATE_NAMES.get(event.state, event.state)
        log = logger.warning if state == "open" else logger.info
        log("RuStore circuit breaker is now {state}", state=state)
        if self._on_breaker is not None:
            try:
                self._on_breaker(state)
            except Exception:  # like on_call: observability must not break payments
                logger.exception("RuStore on_breaker_change hook failed")

    def _session_for_call(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(headers={"Accept": "application/json"})
        return self._session

    async def close(self) -> None:
        """Close the session if this transport created it."""
        if self._owns_session and self._session is not None:
            await self._session.close()
        self._session = None

    async def call(
        self,
        route: Route,
        params: Mapping[str, Any] | None = None,
        *,
        query: Sequence[tuple[str, str]] | None = None,
        token: str | None = None,
        json_body: Callable[[], dict[str, Any]] | None = None,
    ) -> Any:
        """Run the route with bounded retries; `json_body` is rebuilt per attempt (fresh auth timestamps)."""
        url = self._base + route.path(params or {})
        config = self._config
        started = time.monotonic()
        retrying = AsyncRetrying(
            stop=stop_after_attempt(config.retry_max_attempts) | stop_before_delay(config.retry_deadline_s),
            wait=wait_random_exponential(multiplier=config.retry_initial_backoff_s, max=config.retry_max_backoff_s),
            retry=retry_if_exception(lambda exc: retry_safe(exc, idempotent=route.idempotent)),
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                remaining = config.retry_deadline_s - (time.monotonic() - started)
                timeout = max(min(config.timeout_s, remaining), 0.05)
                body = json_body() if json_body is not None else None
                return await self._attempt(route, url, query, token, body, timeout)
        raise AssertionError("unreachable: tenacity either returns or re-raises")

    async def _attempt(
        self,
        route: Route,
        url: str,
        query: Sequence[tuple[str, str]] | None,
        token: str | None,
        body: dict[str, Any] | None,
        timeout: float,
    ) -> Any:
        started = time.monotonic()
        status: int | None = None
        error: BaseException | None = None
        try:
            breaker = await self._breakers.get_breaker(_CIRCUIT)
            self._breaker_context = breaker.context
            async with breaker:
                status, raw = await self._send(route.method, url, query, token, body, timeout)
                return interpret(status, raw, is_auth=token is None)
        except OpenedState:
            error = RuStoreBreakerOpen(
                f"RuStore circuit breaker is open after repeated failures; retrying after "
                f"{self._config.breaker_reset_s:g} s"
            )
            raise error from None
        except BaseException as exc:
            error = exc
            raise
        finally:
            self._report(route, status, time.monotonic() - started, error)

    async def _send(
        self,
        method: str,
        url: str,
        query: Sequence[tuple[str, str]] | None,
        token: str | None,
        body: dict[str, Any] | None,
        timeout: float,
    ) -> tuple[int, bytes]:
        headers = {"Public-Token": token} if token is not None else {}
        try:
            async with self._session_for_call().request(
                method,
                url,
                params=list(query) if query else None,
                json=body,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=timeout),
                ssl=self._ssl,
            ) as response:
                return response.status, await response.read()
        except TimeoutError:
            raise RuStoreUnavailable(f"RuStore did not answer within {timeout:.2f} s") from None
        except aiohttp.ClientConnectorError as exc:
            raise RuStoreUnavailable(f"cannot connect to RuStore: {exc.os_error}", request_sent=False) from None
        except aiohttp.ClientError as exc:
            raise RuStoreUnavailable(f"connection to RuStore failed: {type(exc).__name__}") from None

    def _report(self, route: Route, status: int | None, duration: float, error: BaseException | None) -> None:
        if isinstance(error, asyncio.CancelledError):
            return
        outcome = outcome_of(error)
        # Messages carry RuStore's text and our own hints only; tokens and keys never reach them.
        log = logger.info if error is None else logger.warning
        log(
            "RuStore {method} {path} -> {status} in {duration:.3f}s ({outcome}){detail}",
            method=route.method,
            path=route.template,
            status=status,
            duration=duration,
            outcome=outcome,
            detail="" if error is None else f": {error}",
        )
        if self._on_call is not None:
            try:
                self._on_call(route.label, outcome, status, duration)
            except Exception:  # a broken metrics hook must never break payments
                logger.exception("RuStore on_call hook failed")
