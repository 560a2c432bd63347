"""Headless Chromium driven over the Chrome DevTools Protocol with aiohttp: no WebDriver, no downloaded browsers.

`headless_chromium()` starts Debian's `chromium` with a throwaway profile, reads the DevTools port the
browser picked from `DevToolsActivePort`, and yields a `Page` connected to its first tab. The browser
is stopped by its process group (the `chromium` wrapper script execs the real binary, which forks helpers).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import shutil
import signal
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp

FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
         "--no-default-browser-check", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--disable-extensions", "--metrics-recording-only", "--mute-audio",
         "--remote-debugging-port=0", "--remote-allow-origins=*")
START_TIMEOUT_S = 15.0


def chromium_path() -> str | None:
    """The Chromium executable (Debian's package installs /usr/bin/chromium), or None."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


class Page:
    """One tab over CDP: commands with replies, events collected, a JS helper to wait for the DOM."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.ids = itertools.count(1)
        self.pending: dict[int, asyncio.Future] = {}
        self.events: list[dict] = []
        self.reader = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        async for message in self.ws:
            if message.type != aiohttp.WSMsgType.TEXT:
                break
            data = json.loads(message.data)
            future = self.pending.pop(data.get("id"), None)
            if future is not None and not future.done():
                future.set_result(data)
            elif "method" in data:
                self.events.append(data)
        for future in self.pending.values():
            if not future.done():
                future.set_exception(ConnectionError("DevTools connection closed"))

    async def send(self, method: str, timeout: float = 10.0, **params: Any) -> dict:
        """Run a CDP command and return its result (raises on a protocol error)."""
        ident = next(self.ids)
        future = asyncio.get_running_loop().create_future()
        self.pending[ident] = future
        await self.ws.send_str(json.dumps({"id": ident, "method": method, "params": params}))
        reply = await asyncio.wait_for(future, timeout)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply.get("result", {})

    async def evaluate(self, expression: str) -> Any:
        """The value of a JS expression in the page (promises awaited)."""
        result = await self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"JS error: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def wait_for(self, expression: str, timeout: float = 10.0, what: str = "") -> Any:
        """Poll a JS expression until it is truthy; its value, or AssertionError naming `what` on timeout."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            value = await self.evaluate(expression)
            if value:
                return value
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"timed out waiting for {what or expression}")
            await asyncio.sleep(0.1)

    def requested_urls(self) -> list[str]:
        """Every URL the page asked for (Network.requestWillBeSent), in order."""
        return [e["params"]["request"]["url"] for e in self.events if e["method"] == "Network.requestWillBeSent"]

    async def close(self) -> None:
        await self.ws.close()
        self.reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.reader


async def _devtools_port(profile: Path, process: asyncio.subprocess.Process) -> int:
    active = profile / "DevToolsActivePort"
    deadline = asyncio.get_running_loop().time() + START_TIMEOUT_S
    while asyncio.get_running_loop().time() < deadline:
        if process.returncode is not None:
            raise RuntimeError(f"chromium exited with {process.returncode} before DevTools was up")
        with contextlib.suppress(FileNotFoundError, ValueError, IndexError):
            return int(active.read_text().splitlines()[0])
        await asyncio.sleep(0.05)
    raise RuntimeError("chromium did not open its DevTools port in time")


@contextlib.asynccontextmanager
async def headless_chromium(executable: str, *extra_flags: str, width: int = 1280, height: int = 1000
                            ) -> AsyncIterator[Page]:
    """A headless Chromium with a fresh profile (plus `extra_flags`); yields its first tab as a Page."""
    profile = Path(tempfile.mkdtemp(prefix="chromium-test-"))
    process = await asyncio.create_subprocess_exec(
        executable, *FLAGS, *extra_flags, f"--user-data-dir={profile}", f"--window-size={width},{height}", "about:blank",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL, start_new_session=True,
    )
    try:
        port = await _devtools_port(profile, process)
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{port}/json/list") as resp:
                targets = await resp.json()
            tab = next(t for t in targets if t["type"] == "page")
            page = Page(await http.ws_connect(tab["webSocketDebuggerUrl"], max_msg_size=0))
            try:
                yield page
            finally:
                await page.close()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # the browser's own process group (start_new_session)
        await process.wait()
        shutil.rmtree(profile, ignore_errors=True)
