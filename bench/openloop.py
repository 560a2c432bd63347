"""Open-model load: requests leave on a fixed-rate schedule whatever the server does, latency counted from the schedule.

A closed loop (N clients, each waiting for its answer) slows down with the server and under-reports
its stalls ("coordinated omission"). Here arrivals follow a Poisson process (or constant gaps) at
the target rate; each request is timed from its scheduled send time, so time spent waiting for a
free connection or behind a slow loop counts. At most `cap` requests are in flight: one arriving
beyond that is not sent and counts as an error (DROPPED), as does a request unanswered after
`timeout_s` (TIMEOUT) or a connection failure (FAILED).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from typing import Any

import aiohttp

from bench.common import Samples
from bench.mix import Req

FAILED, DROPPED, TIMEOUT = 0, -1, -2
STATUS_NAMES = {FAILED: "failed", DROPPED: "dropped", TIMEOUT: "timeout"}


async def open_loop(base: str, next_request: Callable[[], Req], rate: float, seconds: float, *, cap: int = 100,
                    timeout_s: float = 10.0, rng: random.Random | None = None, poisson: bool = True,
                    samples: dict[str, Samples] | None = None) -> dict[str, Samples]:
    """Send next_request() at `rate` per second for `seconds`; return Samples per endpoint."""
    rng = rng or random.Random()
    samples = {} if samples is None else samples
    loop = asyncio.get_running_loop()
    in_flight = 0
    tasks: set[asyncio.Task] = set()
    connector = aiohttp.TCPConnector(limit=cap, limit_per_host=cap)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=timeout_s)) as http:
        async def one(req: Req, scheduled: float, into: Samples) -> None:
            nonlocal in_flight
            try:
                async with http.request(req.method, base + req.path, data=req.body, headers=req.headers) as resp:
                    body = await resp.read()
                    status = resp.status
            except TimeoutError:
                status, body = TIMEOUT, b""
            except aiohttp.ClientError:
                status, body = FAILED, b""
            in_flight -= 1
            if req.on_answer is not None:
                req.on_answer(status, body)
            into.add(loop.time() - scheduled, status)

        start = loop.time() + 0.05
        at = start
        while True:
            at += rng.expovariate(rate) if poisson else 1.0 / rate
            if at >= start + seconds:
                break
            delay = at - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            req = next_request()
            into = samples.setdefault(req.endpoint, Samples(req.endpoint))
            if in_flight >= cap:
                into.statuses[DROPPED] = into.statuses.get(DROPPED, 0) + 1
                continue
            in_flight += 1
            task = asyncio.ensure_future(one(req, at, into))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        if tasks:
            await asyncio.wait(set(tasks))
    for s in samples.values():
        s.wall_s += seconds
    return samples


def merge(parts: list[dict[str, Samples]]) -> dict[str, Samples]:
    """Samples of several runs added up per endpoint."""
    out: dict[str, Samples] = {}
    for part in parts:
        for name, s in part.items():
            into = out.setdefault(name, Samples(name))
            into.latencies.extend(s.latencies)
            for status, n in s.statuses.items():
                into.statuses[status] = into.statuses.get(status, 0) + n
            into.wall_s = max(into.wall_s, s.wall_s)
    return out


def summarize(s: Samples) -> dict[str, Any]:
    """sent, ok, errors (4xx/5xx/failed/dropped/timeout) and latency percentiles in ms over the answered ones."""
    sent = sum(s.statuses.values())
    ok = sum(n for status, n in s.statuses.items() if 200 <= status < 400)
    return {"sent": sent, "ok": ok, "errors": sent - ok,
            "5xx": sum(n for status, n in s.statuses.items() if status >= 500),
            "p50_ms": _r(s.pct(50)), "p95_ms": _r(s.pct(95)), "p99_ms": _r(s.pct(99)),
            "max_ms": _r(max(s.latencies) * 1000) if s.latencies else None,
            "statuses": {STATUS_NAMES.get(k, str(k)): v for k, v in sorted(s.statuses.items())}}


def _r(value: float) -> float | None:
    return None if value != value else round(value, 1)  # NaN (nothing answered) -> None
