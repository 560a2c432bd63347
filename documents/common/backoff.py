"""The one retry schedule: a delay that doubles with every failure, capped, with optional jitter.

Purchases and subscriptions re-checked at RuStore, webhook retries and e-mail retries all use it,
each with its own first delay and cap (see the callers' constants)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

MAX_DOUBLINGS = 10  # 2**10 first delays is beyond every cap in use; keeps the multiplication small


def backoff(failures: int, *, first: timedelta, cap: timedelta, jitter: Callable[[], float] | None = None) -> timedelta:
    """`first` * 2**failures, at most `cap`; with `jitter` (a 0..1 source) spread by +-25%."""
    delay = min(cap, first * 2 ** min(max(failures, 0), MAX_DOUBLINGS))
    # Jitter spreads a burst that failed together (one RuStore outage) over time.
    return delay if jitter is None else delay * (0.75 + 0.5 * jitter())
