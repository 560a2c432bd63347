"""Benchmark plumbing: start the server in its own process, drive load, summarise latencies."""

from __future__ import annotations

import asyncio
import os
import socket
import statistics
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from bench.store import drop_database, server_env

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_REDIS = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")


def free_port() -> int:
    """An unused TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def redis_reachable(url: str) -> bool:
    """True when a Redis server answers at url."""
    import redis.asyncio as redis

    client = redis.Redis.from_url(url, socket_connect_timeout=0.5)
    try:
        await client.ping()
        return True
    except Exception:  # noqa: BLE001
        return False
    finally:
        await client.aclose()


@asynccontextmanager
async def running_child(argv: list[str], ready_url: str, env: dict[str, str] | None = None,
                        attempts: int = 300) -> AsyncIterator[None]:
    """Run a child process until the block ends (SIGTERM); wait until `ready_url` answers 200 first."""
    proc = await asyncio.create_subprocess_exec(
        *argv, cwd=ROOT, env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(attempts):
                try:
                    async with session.get(ready_url) as resp:
                        if resp.status == 200:
                            break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.1)
            else:
                raise RuntimeError(f"{argv[1:]} did not start")
        yield
    finally:
        proc.terminate()
        await proc.wait()


@asynccontextmanager
async def running_server(env: dict[str, str], script: str = "server.py") -> AsyncIterator[str]:
    """Run `python server.py` with env in a child process; yield its base URL; stop it with SIGTERM."""
    port = free_port()
    full_env = {**os.environ, "PORT": str(port), "HOST": "127.0.0.1", "LOG_LEVEL": "WARNING", **env}
    # On a real MongoDB each server gets a database of its own, dropped afterwards (bench/store.py).
    own = server_env(port, Path(script).stem, full_env) if "MONGO_DB" not in env else {}
    full_env.update(own)
    base = f"http://127.0.0.1:{port}"
    try:
        async with running_child([sys.executable, script], base + "/api/health", full_env):
            yield base
    finally:
        if own:
            await drop_database(own["MONGO_URL"], own["MONGO_DB"])


@dataclass
class Samples:
    """Latencies (seconds) and status counts of one kind of request."""

    name: str
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    wall_s: float = 0.0

    def add(self, latency: float, status: int) -> None:
        self.latencies.append(latency)
        self.statuses[status] = self.statuses.get(status, 0) + 1

    def pct(self, p: float) -> float:
        """The p-th percentile in milliseconds."""
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        idx = min(len(ordered) - 1, max(0, int(round(p / 100 * len(ordered) + 0.5)) - 1))
        return ordered[idx] * 1000

    @property
    def rate(self) -> float:
        """Completed requests per second."""
        return len(self.latencies) / self.wall_s if self.wall_s else float("nan")

    def row(self) -> str:
        errors = sum(n for s, n in self.statuses.items() if s >= 400 or s == 0)
        return (f"{self.name:<34} n={len(self.latencies):>6}  req/s={self.rate:>8.1f}  p50={self.pct(50):7.2f}ms  "
                f"p95={self.pct(95):7.2f}ms  p99={self.pct(99):7.2f}ms  max={max(self.latencies, default=0)*1000:7.1f}ms"
                f"  errors={errors} {dict(sorted(self.statuses.items()))}")

    def mean_ms(self) -> float:
        return statistics.fmean(self.latencies) * 1000 if self.latencies else float("nan")


async def closed_loop(
    name: str, concurrency: int, duration_s: float, make_request: Callable[[aiohttp.ClientSession, int], Awaitable[int]],
) -> Samples:
    """`concurrency` workers each send requests back to back for duration_s."""
    samples = Samples(name)
    deadline = time.perf_counter() + duration_s
    connector = aiohttp.TCPConnector(limit=concurrency * 2)
    async with aiohttp.ClientSession(connector=connector) as session:
        async def worker(i: int) -> None:
            n = 0
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                try:
                    status = await make_request(session, i * 1_000_000 + n)
                except aiohttp.ClientError:
                    status = 0
                samples.add(time.perf_counter() - started, status)
                n += 1
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(i) for i in range(concurrency)))
        samples.wall_s = time.perf_counter() - t0
    return samples
