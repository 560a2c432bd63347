"""A private redis-server process that a test can kill with SIGKILL and start again on the same port."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RedisServer:
    """One redis-server without persistence in its own folder; `kill()` is a crash, `start()` a restart."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.binary = shutil.which("redis-server")

    @property
    def url(self) -> str:
        """The redis:// URL of this server."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout_s: float = 5.0) -> None:
        """Start (or restart) the server and wait until it answers PING."""
        assert self.proc is None or self.proc.poll() is not None, "already running"
        if self.binary is None:
            raise RuntimeError("redis-server is not installed (bash .ci/run installs it)")
        log = open(self.folder / "redis.log", "ab")  # noqa: SIM115 - the child owns it; closed right after Popen
        with log:
            self.proc = subprocess.Popen(
                [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                 "--dir", str(self.folder)],
                stdout=log, stderr=subprocess.STDOUT, cwd=self.folder)
        deadline = time.monotonic() + timeout_s
        while not self._answers():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start: {(self.folder / 'redis.log').read_text()[-500:]}")
            time.sleep(0.02)

    def kill(self) -> None:
        """SIGKILL the server (no shutdown, no save) and reap it."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)  # a frozen process must be able to die
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=5)

    def freeze(self) -> None:
        """SIGSTOP the server: connections stay open but nothing answers (a hung Redis)."""
        assert self.proc is not None and self.proc.poll() is None
        self.proc.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        """SIGCONT a frozen server."""
        assert self.proc is not None and self.proc.poll() is None
        self.proc.send_signal(signal.SIGCONT)

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False
