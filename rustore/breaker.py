"""Circuit breaker over DISTINCT RuStore requests: one invoice failing again and again never opens it.

Every logical call (all its retries together) is recorded once, under a key naming the request
(`GET /public/v2/purchase/{invoiceId}` + the invoice id). Within a sliding window of `window_s`
seconds only each key's latest outcome counts. The breaker opens when at least `min_failures`
distinct requests failed AND they are at least `failure_rate` of the distinct requests made: a lone
bad invoice is one failing key, however often it is retried, and is backed off by its owner alone.
Open: calls fail at once for `reset_s`; then one trial call (half open) closes it or re-opens it.

Outage bookkeeping for recovery: a failure counts as part of an outage when the breaker is not
closed, when the request never reached RuStore (connection refused), or when another distinct request
failed in the window too. The first success after such failures is the "recovered" event.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from loguru import logger

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"
Listener = Callable[[str], None]  # events: "open", "half_open", "closed", "outage", "recovered", "call" (any record)


@dataclass
class _Entry:
    at: float
    failed: bool
    endpoint: str


class BreakerOpenError(Exception):
    """Raised by `before_call` while calls are refused; `remaining_s` says for how long."""

    def __init__(self, remaining_s: float) -> None:
        super().__init__(f"breaker open for another {remaining_s:.1f} s")
        self.remaining_s = remaining_s


class DistinctBreaker:
    """Failure-rate breaker over distinct request keys in a sliding window (single event loop, no locks)."""

    def __init__(self, *, min_failures: int, failure_rate: float, window_s: float, reset_s: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.min_failures = max(1, int(min_failures))
        self.failure_rate = float(failure_rate)
        self.window_s = float(window_s)
        self.reset_s = float(reset_s)
        self._clock = clock
        self._entries: OrderedDict[str, _Entry] = OrderedDict()  # oldest first
        self._failed = 0
        self._per_endpoint: dict[str, list[int]] = {}  # endpoint -> [calls, failed] in the window
        self.state = CLOSED
        self.opened_at = 0.0
        self.opens = 0
        self._probing = False
        self.outage_since: float | None = None  # monotonic time of the first outage failure not yet recovered
        self._listeners: list[Listener] = []

    def add_listener(self, listener: Listener) -> None:
        """Call `listener(event)` on state changes and on outage/recovered edges."""
        self._listeners.append(listener)

    def _emit(self, event: str) -> None:
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:  # a broken metrics or recovery hook must never break a payment call
                logger.exception("RuStore breaker listener failed", event=event)

    # --- the window -------------------------------------------------------------------------

    def _drop(self, key: str) -> None:
        entry = self._entries.pop(key, None)
        if entry is None:
            return
        self._failed -= int(entry.failed)
        counts = self._per_endpoint[entry.endpoint]
        counts[0] -= 1
        counts[1] -= int(entry.failed)
        if counts[0] == 0:
            del self._per_endpoint[entry.endpoint]

    def _prune(self, now: float) -> None:
        while self._entries:
            key, entry = next(iter(self._entries.items()))
            if now - entry.at <= self.window_s:
                return
            self._drop(key)

    def _put(self, key: str, endpoint: str, failed: bool, now: float) -> None:
        self._drop(key)  # only the latest outcome of a request counts: its retries are one call
        self._entries[key] = _Entry(now, failed, endpoint)
        self._failed += int(failed)
        counts = self._per_endpoint.setdefault(endpoint, [0, 0])
        counts[0] += 1
        counts[1] += int(failed)

    def failure_rates(self) -> dict[str, float]:
        """Per endpoint: the share of distinct requests in the window whose latest outcome failed."""
        self._prune(self._clock())
        return {endpoint: failed / calls for endpoint, (calls, failed) in self._per_endpoint.items() if calls}

    # --- state --------------------------------------------------------------------------------

    def remaining_s(self) -> float:
        """Seconds until an open breaker lets a trial call through (0 when closed or due for a trial)."""
        if self.state == CLOSED:
            return 0.0
        return max(0.0, self.opened_at + self.reset_s - self._clock())

    def current_state(self) -> str:
        """`closed`, `open`, or `half_open` (open past its reset time, waiting for a trial call)."""
        if self.state == OPEN and self.remaining_s() <= 0:
            return HALF_OPEN
        return self.state

    def before_call(self) -> bool:
        """Admit a call (True when it is the half-open trial) or raise BreakerOpenError."""
        if self.state == CLOSED:
            return False
        if self.remaining_s() > 0:
            raise BreakerOpenError(self.remaining_s())
        if self._probing:
            raise BreakerOpenError(1.0)  # a trial call is in flight; its answer decides
        if self.state != HALF_OPEN:
            self.state = HALF_OPEN
            self._emit(HALF_OPEN)
        self._probing = True
        return True

    def widespread(self, key: str) -> bool:
        """Whether a failure of `key` now looks like an outage: breaker not closed or another request failing too."""
        if self.state != CLOSED:
            return True
        self._prune(self._clock())
        own = self._entries.get(key)
        return self._failed - int(bool(own and own.failed)) > 0

    def record(self, key: str, endpoint: str, *, failed: bool, trial: bool = False, outage: bool = False) -> bool:
        """Record a finished call; returns whether the failure counts as part of an outage."""
        try:
            return self._record(key, endpoint, failed, trial, outage)
        finally:
            self._emit("call")

    def _record(self, key: str, endpoint: str, failed: bool, trial: bool, outage: bool) -> bool:
        now = self._clock()
        self._prune(now)
        outage = failed and (outage or self.widespread(key))
        self._put(key, endpoint, failed, now)
        if trial:
            self._probing = False
        if failed:
            if outage and self.outage_since is None:
                self.outage_since = now
                self._emit("outage")
            if trial or (self.state == HALF_OPEN and not self._probing):
                self._open(now)
            elif self.state == CLOSED and self._should_open():
                self._open(now)
            return outage
        if self.state != CLOSED:  # the trial, or a call begun before the breaker opened: RuStore answers
            self.state = CLOSED
            self._probing = False
            self._emit(CLOSED)
        if self.outage_since is not None and self.state == CLOSED:
            self.outage_since = None
            self._emit("recovered")
        return False

    def abandon_trial(self) -> None:
        """A trial call was cancelled: let the next call try."""
        self._probing = False

    def _should_open(self) -> bool:
        calls = len(self._entries)
        return self._failed >= self.min_failures and calls > 0 and self._failed / calls >= self.failure_rate

    def _open(self, now: float) -> None:
        self.state = OPEN
        self.opened_at = now
        self.opens += 1
        self._emit(OPEN)
