"""A tiny local TCP load balancer: each new client connection goes to the next backend, round robin.

Run: `python -m bench.balancer --port 9000 --backend 127.0.0.1:8001 --backend 127.0.0.1:8002`.
Layer 4 like nginx's `stream` or HAProxy in TCP mode: bytes are copied both ways with asyncio
protocols (no parsing), so a kept-alive HTTP connection stays on one backend and many client
connections spread evenly. `GET /api/health` on the balancer reaches a backend, which is how the
bench knows it is ready. The bench measures its CPU time so it can tell it is not the bottleneck.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import signal


class _Pipe(asyncio.Protocol):
    """One side of a proxied connection: what arrives is written to the peer transport."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.peer: _Pipe | None = None
        self.pending: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Keep the transport to write the peer's bytes to."""
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        """Copy to the peer, or hold until the backend connection is open."""
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.write(data)
        else:
            self.pending.append(data)  # the backend connection is still being opened

    def connection_lost(self, exc: Exception | None) -> None:
        """One side closed: close the other."""
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.close()


class Balancer:
    """Accepts client connections and pairs each with a new connection to the next backend."""

    def __init__(self, backends: list[tuple[str, int]]) -> None:
        self.backends = itertools.cycle(backends)

    def client(self) -> _Pipe:
        """A new client connection: open one to the next backend."""
        front = _Pipe()
        asyncio.get_running_loop().create_task(self._connect(front, *next(self.backends)))
        return front

    async def _connect(self, front: _Pipe, host: str, port: int) -> None:
        loop = asyncio.get_running_loop()
        try:
            _, back = await loop.create_connection(_Pipe, host, port)
        except OSError:
            if front.transport is not None:
                front.transport.close()
            return
        back.peer, front.peer = front, back
        assert back.transport is not None
        for chunk in front.pending:
            back.transport.write(chunk)
        front.pending.clear()
        if front.transport is None or front.transport.is_closing():
            back.transport.close()


async def serve(port: int, backends: list[tuple[str, int]], host: str = "127.0.0.1") -> None:
    """Balance until SIGTERM or SIGINT."""
    balancer = Balancer(backends)
    server = await asyncio.get_running_loop().create_server(balancer.client, host, port, backlog=1024)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    await stop.wait()
    server.close()


def main() -> None:
    """Command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--backend", action="append", required=True, help="host:port, repeat per backend")
    args = parser.parse_args()
    backends = [(b.rsplit(":", 1)[0], int(b.rsplit(":", 1)[1])) for b in args.backend]
    asyncio.run(serve(args.port, backends, args.host))


if __name__ == "__main__":
    main()
