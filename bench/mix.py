"""The request mix of the load benchmark: endpoint weights and one request builder per endpoint.

Weights (percent of all requests) model a 10k-user app: mostly reads, some spending, few
payments, token refreshes every quarter hour of use, and password logins rare (sessions last
30 days). Login is kept at 0.5% on purpose: bcrypt at cost 12 costs ~0.3-0.5 s of CPU here and
one CPU worker serves 2-3 logins/s, so 0.5% of 200 req/s (1 login/s) stays within what the
pool serves while it already takes a third to half of a core; a larger share would measure the
bcrypt pool's queue instead of the API (`python -m bench.login_storm` measures that).

Each request also carries X-Bench-User / X-Bench-Session / X-Bench-Vars (ignored by our server)
so the bare baseline can replay our store calls for the same user and strings.
"""

from __future__ import annotations

import json
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from bench.seed import PASSWORD, bench_user
from core.tokens import TokenService
from documents.accounts.sessions import hash_token
from rustore.emulator import encrypt_payload

WEIGHTS = {"profile": 25, "balance": 20, "history": 10, "products": 12, "spend": 10, "generation": 5,
           "verify": 5, "webhook": 5, "refresh": 7.5, "login": 0.5}
PUBLIC = frozenset({"products", "webhook", "login", "refresh"})
REDELIVERY_SHARE = 0.1  # webhook requests that resend an already delivered notification


@dataclass
class Req:
    """One request to send: endpoint name, method, path, JSON body, headers, strings for the bare replay."""

    endpoint: str
    method: str
    path: str
    body: bytes | None
    headers: dict[str, str]
    strings: dict[str, str] = field(default_factory=dict)
    on_answer: Callable[[int, bytes], None] | None = None  # told the status and body once answered


@dataclass
class Purchases:
    """Purchases made through the emulator for one server: SDK answers to verify, notifications to deliver."""

    sdk: deque = field(default_factory=deque)  # (user index, Pay SDK result)
    notes: deque = field(default_factory=deque)  # (user index, notification from /_emulator/notifications)
    verified: list = field(default_factory=list)
    delivered: list = field(default_factory=list)


class Mix:
    """Builds the requests of one target server; `rng` makes a run reproducible."""

    def __init__(self, users: int, secret: str, key_b64: str, rng: random.Random, run_id: str,
                 purchases: Purchases | None = None, first_refresh: int = 0,
                 weights: dict[str, float] | None = None, refresh_once: bool = False) -> None:
        self.users, self.rng, self.run_id, self.key = users, rng, run_id, key_b64
        self.tokens = TokenService(secret, 3600)
        self.purchases = purchases or Purchases()
        self.next_refresh = first_refresh  # users take turns; each uses the refresh token it was last given
        self.refresh_tokens: dict[int, str] = {}
        self.refreshing: set[int] = set()
        self.burned: set[int] = set()  # a refresh failed: its token's state is unknown, never present it again
        # Several processes with separate stores: a token one rotated is unknown to the other, so each
        # seeded token is used once (refreshes become profile reads once every user refreshed).
        self.refresh_once = refresh_once
        self._bearer: dict[int, str] = {}
        weights = weights or WEIGHTS
        self._names, self._weights = list(weights), list(weights.values())
        self.n = 0

    def pick(self) -> str:
        """An endpoint drawn by weight."""
        return self.rng.choices(self._names, self._weights)[0]

    def bearer(self, i: int) -> str:
        """A (cached) access token of seeded user i."""
        if i not in self._bearer:
            u = bench_user(i)
            self._bearer[i] = self.tokens.issue(u.user_id, u.session_id)[0]
        return self._bearer[i]

    def build(self, endpoint: str, user: int | None = None) -> Req:
        """The next request for endpoint (for a random user unless given)."""
        self.n += 1
        i = self.rng.randrange(self.users) if user is None else user
        req = getattr(self, "_" + endpoint)(i)
        u = bench_user(int(req.headers.pop("_user", i)))
        if req.endpoint not in PUBLIC:  # not `endpoint`: a refresh with no user left to refresh became a profile read
            req.headers["Authorization"] = "Bearer " + self.bearer(u.index)
        req.strings.setdefault("session", u.session_id)
        req.headers.update({"X-Bench-User": u.user_id, "X-Bench-Session": u.session_id,
                            "X-Bench-Vars": json.dumps(req.strings, separators=(",", ":"))})
        if req.body is not None:
            req.headers["Content-Type"] = "application/json"
        return req

    def _key(self) -> str:
        return f"{self.run_id}-{self.n}"

    def _profile(self, i: int) -> Req:
        return Req("profile", "GET", "/api/user/profile", None, {})

    def _balance(self, i: int) -> Req:
        return Req("balance", "GET", "/api/points/balance", None, {})

    def _history(self, i: int) -> Req:
        return Req("history", "GET", "/api/points/history?limit=20", None, {})

    def _products(self, i: int) -> Req:
        return Req("products", "GET", "/api/products", None, {})

    def _spend(self, i: int) -> Req:
        key = self._key()
        return Req("spend", "POST", "/api/points/spend", _json({"amount": 1, "reason": "sticker"}),
                   {"Idempotency-Key": key}, {"key": key})

    def _generation(self, i: int) -> Req:
        key = self._key()
        body = {"kind": "greeting", "occasion": "birthday", "recipientName": "Anna", "tone": "warm", "language": "en"}
        return Req("generation", "POST", "/api/generation/request", _json(body), {"Idempotency-Key": key}, {"key": key})

    def _verify(self, i: int) -> Req:
        p = self.purchases
        if p.sdk:
            owner, sdk = p.sdk.popleft()
            p.verified.append((owner, sdk))
        elif p.verified:  # all used: a client retrying an earlier verification (answered "already_credited")
            owner, sdk = self.rng.choice(p.verified)
        else:
            owner, sdk = i, {"invoiceId": str(10**9 + self.n), "purchaseId": f"bare-{self.n}", "orderId": f"o-{self.n}"}
        body = {"invoiceId": sdk["invoiceId"], "purchaseId": sdk["purchaseId"], "productId": "points_100",
                "orderId": sdk["orderId"], "sandbox": False}
        return Req("verify", "POST", "/api/payments/verify", _json(body), {"_user": str(owner)},
                   {"invoice": str(sdk["invoiceId"]), "purchase": sdk["purchaseId"], "order": sdk["orderId"]})

    def _webhook(self, i: int) -> Req:
        p = self.purchases
        if p.delivered and (not p.notes or self.rng.random() < REDELIVERY_SHARE):
            owner, note = self.rng.choice(p.delivered)
        elif p.notes:
            owner, note = p.notes.pop()  # from the back: early deliveries are of purchases not verified yet
            p.delivered.append((owner, note))
        else:
            return self._products(i)  # nothing to deliver (the bare server without purchases never gets here)
        data = json.loads(note["content"]["data"])
        envelope = {"id": note["id"], "timestamp": note["createdAt"], "payload": encrypt_payload(note["content"], self.key)}
        return Req("webhook", "POST", "/api/webhooks/rustore", _json(envelope), {"_user": str(owner)},
                   {"notification": str(note["id"]), "invoice": str(data["invoice_id"]), "purchase": data["purchase_id"],
                    "order": data["order_id"], "token": str(data.get("purchase_token") or "")})

    def _refresh(self, i: int) -> Req:
        for _ in range(self.users):
            j = self.next_refresh % self.users
            self.next_refresh += 1
            if j not in self.refreshing and j not in self.burned:
                break
        else:
            return self._profile(i)
        u = bench_user(j)
        token = self.refresh_tokens.get(j, u.refresh_token)
        self.refreshing.add(j)

        def answered(status: int, body: bytes) -> None:
            self.refreshing.discard(j)
            if status == 200 and not self.refresh_once:
                self.refresh_tokens[j] = json.loads(body)["refreshToken"]
            else:
                self.burned.add(j)
        return Req("refresh", "POST", "/api/auth/refresh", _json({"refreshToken": token}), {"_user": str(j)},
                   {"refresh": hash_token(token)}, on_answer=answered)

    def _login(self, i: int) -> Req:
        u = bench_user(i)
        return Req("login", "POST", "/api/auth/login", _json({"email": u.email, "password": PASSWORD}), {},
                   {"email": u.email})


def _json(value: dict) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()
