"""Child processes of the load benchmark: start, wait until ready, account their CPU time, wait until idle, stop."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import aiohttp

from bench.common import ROOT, free_port

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process (all its threads), 0 once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK


def load_average() -> list[float]:
    """The 1, 5 and 15 minute load averages, rounded."""
    return [round(x, 2) for x in os.getloadavg()]


@dataclass
class Child:
    """A started child: its pid, port and base URL."""

    name: str
    proc: asyncio.subprocess.Process
    port: int
    base: str
    extra: dict = field(default_factory=dict)

    @property
    def pid(self) -> int:
        """The child's process id."""
        return self.proc.pid

    def cpu(self) -> float:
        """CPU seconds used so far."""
        return cpu_seconds(self.pid)


async def wait_ready(url: str, proc: asyncio.subprocess.Process, timeout_s: float) -> None:
    """Poll url until it answers 200; fail if the process exits or time runs out."""
    deadline = time.monotonic() + timeout_s
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            if proc.returncode is not None:
                raise RuntimeError(f"{url}: process exited with {proc.returncode}")
            try:
                async with session.get(url, timeout=aiohttp.ClientTimeout(total=2)) as resp:
                    if resp.status == 200:
                        return
            except (aiohttp.ClientError, TimeoutError):
                pass
            await asyncio.sleep(0.2)
    raise RuntimeError(f"{url} did not become ready in {timeout_s} s")


@asynccontextmanager
async def child(name: str, argv: list[str], env: dict[str, str], ready_path: str | None = "/api/health",
                timeout_s: float = 300, port: int | None = None) -> AsyncIterator[Child]:
    """Run `python argv...` with PORT/HOST set; yield it once ready_path answers; SIGTERM and wait at the end."""
    port = port or free_port()
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), "HOST": "127.0.0.1", "PORT": str(port), **env}
    (ROOT / "artifacts").mkdir(exist_ok=True)
    log = open(ROOT / "artifacts" / f"bench-{name}.log", "ab")  # noqa: SIM115 - closed below
    proc = await asyncio.create_subprocess_exec(sys.executable, *argv, cwd=ROOT, env=full_env,
                                                stdout=log, stderr=log)
    started = Child(name, proc, port, f"http://127.0.0.1:{port}")
    try:
        if ready_path is not None:
            await wait_ready(started.base + ready_path, proc, timeout_s)
        yield started
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), 300)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        log.close()


async def wait_idle(children: list[Child], busy_below: float = 0.05, window_s: float = 0.5,
                    timeout_s: float = 180) -> float:
    """Wait until every child uses under busy_below of a core over window_s; return the seconds waited."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        before = [c.cpu() for c in children]
        await asyncio.sleep(window_s)
        if all(c.cpu() - b < busy_below * window_s for c, b in zip(children, before, strict=True)):
            break
    return round(time.monotonic() - started, 1)
