"""HTTP attempts against RuStore with retries (tenacity), a distinct-request circuit breaker, logs and metrics."""

from __future__ import annotations

import asyncio
import math
import ssl
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp
from loguru import logger
from tenacity import (
    AsyncRetrying,
    retry_if_exception,
    stop_after_attempt,
    stop_before_delay,
    wait_random_exponential,
)

from rustore.breaker import CLOSED, HALF_OPEN, OPEN, BreakerOpenError, DistinctBreaker
from rustore.config import RuStoreConfig
from rustore.errors import RuStoreBreakerOpen, RuStoreError, RuStoreUnavailable
from rustore.responses import interpret, outcome_of, retry_safe

OnCall = Callable[[str, str, int | None, float], None]
OnBreaker = Callable[[str], None]
_STATES = (CLOSED, OPEN, HALF_OPEN)


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


def request_key(route: Route, params: Mapping[str, Any] | None, query: Sequence[tuple[str, str]] | None) -> str:
    """What makes two calls "the same request" for the breaker: the route, its path values and its query."""
    values = ",".join(f"{k}={v}" for k, v in sorted((params or {}).items()))
    return f"{route.label}|{values}|{'&'.join(f'{k}={v}' for k, v in query or ())}"


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
        self.breaker = DistinctBreaker(
            min_failures=config.breaker_threshold, failure_rate=config.breaker_failure_rate,
            window_s=config.breaker_window_s, reset_s=config.breaker_reset_s,
        )
        self.breaker.add_listener(self._breaker_event)

    @property
    def breaker_state(self) -> str:
        """`closed`, `open` or `half_open` (an open breaker past its reset time reports half_open)."""
        return self.breaker.current_state()

    def _breaker_event(self, event: str) -> None:
        if event not in _STATES:
            return
        log = logger.warning if event == OPEN else logger.info
        log("RuStore circuit breaker is now {state}", state=event)
        if self._on_breaker is not None:
            try:
                self._on_breaker(event)
            except Exception:  # like on_call: observability must not break payments
                logger.exception("RuStore on_breaker_change hook failed")

    def _refused(self, remaining_s: float) -> RuStoreBreakerOpen:
        error = RuStoreBreakerOpen(
            f"RuStore circuit breaker is open after failures across many requests; retrying after {math.ceil(remaining_s)} s"
        )
        error.outage = True
        error.retry_after_s = remaining_s
        return error

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
        """Run the route with bounded retries; `json_body` is rebuilt per attempt (fresh auth timestamps).

        The breaker sees the whole call once, under its request key, whatever the number of attempts.
        """
        url = self._base + route.path(params or {})
        config = self._config
        key = request_key(route, params, query)
        try:
            trial = self.breaker.before_call()
        except BreakerOpenError as exc:
            error = self._refused(exc.remaining_s)
            self._report(route, None, 0.0, error)
            raise error from None
        started = time.monotonic()
        retrying = AsyncRetrying(
            stop=stop_after_attempt(config.retry_max_attempts) | stop_before_delay(config.retry_deadline_s),
            wait=wait_random_exponential(multiplier=config.retry_initial_backoff_s, max=config.retry_max_backoff_s),
            retry=retry_if_exception(lambda exc: retry_safe(exc, idempotent=route.idempotent)),
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    if attempt.retry_state.attempt_number > 1 and not trial and self.breaker.state != CLOSED:
                        # Other requests opened the breaker meanwhile: stop retrying into an outage.
                        raise self._refused(self.breaker.remaining_s())
                    remaining = config.retry_deadline_s - (time.monotonic() - started)
                    timeout = max(min(config.timeout_s, remaining), 0.05)
                    body = json_body() if json_body is not None else None
                    result = await self._attempt(route, url, query, token, body, timeout)
        except RuStoreBreakerOpen:
            if trial:
                self.breaker.abandon_trial()
            raise
        except RuStoreUnavailable as exc:
            # Connection refused means nobody answers at all: an outage even for a single request.
            exc.outage = self.breaker.record(key, route.label, failed=True, trial=trial, outage=not exc.request_sent)
            if self.breaker.state != CLOSED:
                exc.retry_after_s = max(self.breaker.remaining_s(), 1.0)
            raise
        except RuStoreError:
            self.breaker.record(key, route.label, failed=False, trial=trial)  # RuStore answered (404, refusal...)
            raise
        except BaseException:
            if trial:
                self.breaker.abandon_trial()
            raise
        self.breaker.record(key, route.label, failed=False, trial=trial)
        return result

    def note_unavailable(self, route: Route, params: Mapping[str, Any] | None, query: Sequence[tuple[str, str]] | None,
                         exc: RuStoreUnavailable) -> None:
        """Count a request that failed before its own call (its token could not be fetched) against the breaker."""
        if isinstance(exc, RuStoreBreakerOpen):
            return
        outage = self.breaker.record(request_key(route, params, query), route.label, failed=True)
        exc.outage = exc.outage or outage
        if self.breaker.state != CLOSED:
            exc.retry_after_s = max(self.breaker.remaining_s(), 1.0)

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
            status, raw = await self._send(route.method, url, query, token, body, timeout)
            return interpret(status, raw, is_auth=token is None)
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
