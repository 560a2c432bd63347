"""Who is really calling: client address and scheme, trusting forwarded headers only from proxies."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from tornado.httputil import HTTPServerRequest

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _is_trusted(address: str, networks: Iterable[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return False
    return any(ip in net for net in networks)


def _peer(request: HTTPServerRequest) -> str:
    # remote_ip is the socket peer because the server runs with xheaders=False.
    return request.remote_ip or "unknown"


def is_trusted_peer(request: HTTPServerRequest, networks: tuple[Network, ...]) -> bool:
    """True when the socket peer is one of the trusted proxies (its forwarded headers may be believed)."""
    return bool(networks) and _is_trusted(_peer(request), networks)


def client_address(request: HTTPServerRequest, networks: tuple[Network, ...]) -> str:
    """The first untrusted address walking X-Forwarded-For right to left from a trusted peer."""
    peer = _peer(request)
    if not networks or not _is_trusted(peer, networks):
        return peer
    hops = [h.strip() for h in request.headers.get("X-Forwarded-For", "").split(",") if h.strip()]
    for hop in reversed(hops):
        if not _is_trusted(hop, networks):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return peer  # garbage in the header: fall back to what we can see
    return hops[0] if hops else peer


def request_scheme(request: HTTPServerRequest, networks: tuple[Network, ...]) -> str:
    """'https' when this process terminated TLS, or a trusted proxy says it did."""
    if request.protocol == "https":
        return "https"
    if networks and _is_trusted(_peer(request), networks):
        proto = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
        if proto in ("http", "https"):
            return proto
    return request.protocol
