"""The test side of `tests.support.crash_harness`: start, SIGKILL and restart server processes on one durable store."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
from pathlib import Path
from typing import Any

from tests.support.durable_store import read_state
from tests.support.http import ApiClient

REPO = Path(__file__).resolve().parents[2]
MODULE = "tests.support.crash_harness"
INHERITED = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "VIRTUAL_ENV")


class CrashHarness:
    """Processes of the real server sharing the store file in `folder`; `close()` reaps whatever still runs."""

    def __init__(self, folder: Path, environ: dict[str, str], inherited: dict[str, str]) -> None:
        self.folder = folder
        self.state = folder / "store.bson"
        self.paused = folder / "paused"
        # Only what Python needs from the outside: no MONGO_URL/REDIS_URL of the machine may leak in.
        self.env = {**{k: v for k, v in inherited.items() if k in INHERITED}, **environ}
        self.server: asyncio.subprocess.Process | None = None
        self.clients: list[ApiClient] = []
        self.started = 0

    def _log(self, name: str) -> Any:
        return open(self.folder / f"{name}-{self.started}.log", "wb")  # noqa: SIM115 - handed to the child

    async def serve(self, pause_before_entry: str | None = None, timeout_s: float = 20.0) -> ApiClient:
        """Start a server process on the stored state; returns a client for it once it listens."""
        assert self.server is None, "one server at a time"
        self.started += 1
        ready = self.folder / f"ready-{self.started}.json"
        args = [str(self.state), "serve", "--ready", str(ready)]
        if pause_before_entry:
            args += ["--pause-before-entry", pause_before_entry, "--paused", str(self.paused)]
        with self._log("server") as log:
            self.server = await asyncio.create_subprocess_exec(sys.executable, "-m", MODULE, *args, cwd=REPO,
                                                               env=self.env, stdout=log, stderr=log)
        deadline = time.monotonic() + timeout_s
        while not ready.exists():
            if self.server.returncode is not None or time.monotonic() > deadline:
                raise RuntimeError(f"server did not start:\n{self.log_tail()}")
            await asyncio.sleep(0.02)
        client = ApiClient(f"http://127.0.0.1:{json.loads(ready.read_text())['port']}")
        self.clients.append(client)
        return client

    async def wait_paused(self, timeout_s: float = 10.0) -> str:
        """Wait until the server parked a request at its pause point; the idempotency key it holds."""
        deadline = time.monotonic() + timeout_s
        while not self.paused.exists():
            if time.monotonic() > deadline:
                raise TimeoutError(f"the server never reached its pause point:\n{self.log_tail()}")
            await asyncio.sleep(0.01)
        return self.paused.read_text()

    async def kill(self) -> None:
        """SIGKILL the server: no shutdown code runs, only what the store already holds survives."""
        assert self.server is not None
        self.server.send_signal(signal.SIGKILL)
        assert await self.server.wait() == -signal.SIGKILL
        self.server = None

    async def stop(self) -> None:
        """SIGTERM the server and wait for its clean exit."""
        assert self.server is not None
        self.server.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(self.server.wait(), 15) == 0, self.log_tail()
        self.server = None

    async def run(self, *args: str) -> tuple[int, Any]:
        """Run a harness command (`run-job NAME`, `audit-ledger`) to completion; exit code and its JSON output."""
        self.started += 1
        with self._log(args[0]) as log:
            proc = await asyncio.create_subprocess_exec(sys.executable, "-m", MODULE, str(self.state), *args, cwd=REPO,
                                                        env=self.env, stdout=asyncio.subprocess.PIPE, stderr=log)
        out, _ = await asyncio.wait_for(proc.communicate(), 30)
        return proc.returncode, json.loads(out) if out.strip() else None

    def stored(self) -> dict[str, list[dict]]:
        """The store as the last write left it on disk."""
        return read_state(self.state)

    def log_tail(self, chars: int = 3000) -> str:
        """The end of the newest process log, for failure messages."""
        logs = sorted(self.folder.glob("*.log"), key=lambda p: p.stat().st_mtime)
        return logs[-1].read_text(errors="replace")[-chars:] if logs else ""

    async def close(self) -> None:
        """Close the clients and kill a server still running (also when the test failed)."""
        for client in self.clients:
            await client.close()
        if self.server is not None and self.server.returncode is None:
            self.server.send_signal(signal.SIGKILL)
            await self.server.wait()
        self.server = None
