"""`python server.py demo`: the whole flow a real app does, against a development server and its RuStore emulator.

Each step prints its request and the answer briefly, and checks the answer is what the README documents;
the first step that is not ends the run with exit status 1. The purchase steps follow the documented
flow: a server order first (`POST /api/payments/orders` or `/api/subscriptions/create`), then the Pay
SDK purchase (here the emulator's control API, `/_emulator/apps/{appId}/purchases`) carrying the
order's orderId, developerPayload and appUserId, then verify. Tokens and signatures are shortened in
the printout. `--start` runs a server and emulator in this process on free ports (in-memory stores).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp

SECRET_FIELDS = ("accessToken", "refreshToken", "deviceToken", "developerPayload", "subscriptionToken")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
BRIEF_CHARS = 200


class DemoFailed(Exception):
    """A step did not behave as documented."""


def brief(value: Any) -> str:
    """A short, secret-free rendering of a request or answer body."""
    def clean(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: (f"{str(x)[:6]}…" if k in SECRET_FIELDS and x else clean(x)) for k, x in v.items()}
        if isinstance(v, list):
            return [clean(x) for x in v[:3]] + ([f"… {len(v) - 3} more"] if len(v) > 3 else [])
        if isinstance(v, str) and "&s=" in v:
            return v.split("&s=")[0] + "&s=…"
        return v
    value = clean(value)
    if isinstance(value, dict):  # the answer's own fields (status, pointsGranted, balance) before nested objects
        value = dict(sorted(value.items(), key=lambda kv: isinstance(kv[1], (dict, list))))
    text = json.dumps(value, ensure_ascii=False, separators=(", ", ": "), default=str)
    return text if len(text) <= BRIEF_CHARS else text[:BRIEF_CHARS] + "…"


class Demo:
    """One run: an HTTP session, the server and emulator URLs, where the postcard goes, and what was learned."""

    def __init__(self, session: aiohttp.ClientSession, api: str, emulator: str, out_dir: Path,
                 say: Callable[[str], None] = print) -> None:
        self.session, self.out_dir, self.say = session, out_dir, say
        self.api, self.emulator = api.rstrip("/"), emulator.rstrip("/")
        self.token = ""
        self.app_id: int | None = None
        self.invoices: list[str] = []
        self.step = ""

    async def call(self, method: str, url: str, body: Any = None, *, auth: bool = True, expect: tuple[int, ...] = (200,),
                   headers: dict[str, str] | None = None) -> Any:
        """One HTTP call, printed as `-> METHOD path body` and `<- status answer`; an unexpected status fails the step."""
        hdrs = dict(headers or {})
        if auth and self.token:
            hdrs["Authorization"] = f"Bearer {self.token}"
        shown = url.replace(self.api, "").replace(self.emulator, "[emulator]").split("&s=")[0]
        self.say(f"  -> {method} {shown}" + (f" {brief(body)}" if body is not None else ""))
        async with self.session.request(method, url, json=body, headers=hdrs) as resp:
            raw = await resp.read()
            answer: Any = json.loads(raw) if raw and resp.content_type.endswith("json") else raw
            self.say(f"  <- {resp.status} " + (brief(answer) if not isinstance(answer, bytes) else f"{len(answer)} bytes"))
            if resp.status not in expect:
                raise DemoFailed(f"{method} {shown} answered {resp.status}, expected {' or '.join(map(str, expect))}")
            return answer

    def check(self, condition: bool, what: str) -> None:
        """Fail the step unless `condition` holds."""
        if not condition:
            raise DemoFailed(what)

    async def balance(self) -> int:
        return (await self.call("GET", f"{self.api}/api/points/balance"))["balance"]

    # ---- the steps ------------------------------------------------------------------------
    async def register(self) -> None:
        await self.call("GET", f"{self.api}/api/health", auth=False)
        answer = await self.call("POST", f"{self.api}/api/auth/register", auth=False, expect=(201,),
                                 body={"email": f"demo-{uuid.uuid4().hex[:8]}@example.com", "password": "demo password 1"})
        self.token = answer["accessToken"]
        state = await self.call("GET", f"{self.emulator}/_emulator/state", auth=False)
        apps = state.get("apps") or []
        ours = [a for a in apps if str(a.get("notificationUrl") or "").startswith(self.api)] or apps
        self.check(bool(ours), "the emulator knows no app")
        self.app_id = int(ours[0]["appId"])

    async def products(self) -> None:
        answer = await self.call("GET", f"{self.api}/api/products", auth=False)
        ids = {p["productId"] for p in answer["products"]}
        self.check({"points_100", "points_500", "premium_monthly"} <= ids, f"products missing from {sorted(ids)}")

    async def buy(self, product_id: str, **sdk: Any) -> dict:
        """Order, pay in the emulator (as the Pay SDK), verify; returns the verify answer."""
        order = await self.call("POST", f"{self.api}/api/payments/orders", {"productId": product_id}, expect=(201,))
        paid = await self.call("POST", f"{self.emulator}/_emulator/apps/{self.app_id}/purchases", auth=False,
                               expect=(200, 201), body={
            "productId": product_id, "orderId": order["orderId"], "developerPayload": order["developerPayload"],
            "appUserId": order["appUserId"], **sdk})
        self.invoices.append(paid["invoiceId"])
        body = {"invoiceId": paid["invoiceId"], "purchaseId": paid["purchaseId"], "productId": product_id,
                "orderId": order["orderId"]}
        for _ in range(20):  # 202 pending: RuStore has not settled it; ask again shortly
            answer = await self.call("POST", f"{self.api}/api/payments/verify", body, expect=(200, 202))
            if answer["status"] != "pending":
                return answer
            await asyncio.sleep(0.25)
        raise DemoFailed("the purchase stayed pending")

    async def one_step_purchase(self) -> None:
        before = await self.balance()
        answer = await self.buy("points_100")
        self.check(answer["status"] in ("credited", "already_credited"), f"status {answer['status']}")
        self.check(answer["pointsGranted"] == 100 and answer["creditedBy"] in ("verify", "webhook", "job"),
                   "pointsGranted/creditedBy")
        self.check(answer["balance"] == before + 100, f"balance {answer['balance']}, expected {before + 100}")

    async def two_step_purchase(self) -> None:
        before = await self.balance()
        answer = await self.buy("points_500", purchaseType="TWO_STEP")
        self.check(answer["pointsGranted"] == 500 and answer["balance"] == before + 500, "two-step credit")
        invoice = await self.call("GET", f"{self.emulator}/_emulator/invoices/{self.invoices[-1]}", auth=False)
        self.check(answer["purchase"]["status"] == "confirmed" and str(invoice["status"]).upper() == "CONFIRMED",
                   f"two-step purchase not confirmed (ours {answer['purchase']['status']}, RuStore {invoice['status']})")

    async def subscription(self) -> None:
        before = await self.balance()
        order = await self.call("POST", f"{self.api}/api/subscriptions/create", {"productId": "premium_monthly"},
                                expect=(201,))
        sub = await self.call("POST", f"{self.emulator}/_emulator/apps/{self.app_id}/subscriptions", auth=False,
                              expect=(200, 201), body={
            "productId": "premium_monthly", "orderId": order["orderId"], "developerPayload": order["developerPayload"],
            "appUserId": order["appUserId"]})
        answer = await self.call("POST", f"{self.api}/api/subscriptions/verify", {
            "purchaseId": sub["purchaseId"], "productId": "premium_monthly", "orderId": order["orderId"]})
        self.check(answer["status"] == "active", f"subscription {answer['status']}")
        self.check(answer["balance"] == before + answer["pointsGranted"], "subscription balance")

    async def profile(self) -> None:
        answer = await self.call("GET", f"{self.api}/api/user/profile")
        self.check(answer["points"]["balance"] == await self.balance(), "profile balance")
        self.check((answer.get("subscription") or {}).get("status") == "active", "profile subscription")

    async def generate(self, body: dict) -> dict:
        before = await self.balance()
        answer = await self.call("POST", f"{self.api}/api/generation/request", body,
                                 headers={"Idempotency-Key": f"demo-{uuid.uuid4().hex}"})
        self.check(bool(answer["text"]) and answer["balance"] == before - answer["cost"], "generation charge")
        return answer

    async def greeting(self) -> None:
        await self.generate({"kind": "greeting", "occasion": "день рождения", "recipientName": "Анна"})

    async def postcard(self) -> None:
        answer = await self.generate({"kind": "card", "occasion": "Новый год", "language": "ru"})
        self.check(str(answer["imageUrl"]).startswith(("http://", "https://")), "imageUrl is not absolute")
        png = await self.call("GET", answer["signedImageUrl"], auth=False)  # as an image loader: no header
        self.check(isinstance(png, bytes) and png.startswith(PNG_MAGIC), "signedImageUrl did not load a PNG")
        self.out_dir.mkdir(parents=True, exist_ok=True)
        path = self.out_dir / f"postcard-{answer['generationId']}.png"
        path.write_bytes(png)
        self.say(f"  saved the postcard to {path}")

    async def histories(self) -> None:
        points = await self.call("GET", f"{self.api}/api/points/history?limit=20")
        purchases = await self.call("GET", f"{self.api}/api/payments/history")
        generations = await self.call("GET", f"{self.api}/api/generation/history")
        kinds = [i["type"] for i in points["items"]]
        self.check({"buy", "subscription_grant", "spend"} <= set(kinds), f"points history {kinds}")
        self.check(len(purchases["items"]) == 2 and len(generations["items"]) == 2, "purchase/generation history")

    async def refund(self) -> None:
        before = await self.balance()
        await self.call("POST", f"{self.emulator}/_emulator/invoices/{self.invoices[0]}/refund", auth=False,
                        expect=(200, 201))
        for _ in range(40):  # RuStore's notification reaches the webhook, which claws the points back
            await asyncio.sleep(0.25)
            if await self.balance() == before - 100:
                break
        else:
            raise DemoFailed("the refund's 100 points were not taken back")
        points = await self.call("GET", f"{self.api}/api/points/history?type=clawback")
        self.check([i["amount"] for i in points["items"]] == [-100], "clawback entry")
        purchases = await self.call("GET", f"{self.api}/api/payments/history")
        self.check(purchases["items"][-1]["status"] == "refunded", "purchase not shown refunded")

    STEPS = (("register (and find the emulator's app)", "register"), ("products", "products"),
             ("order, purchase in the emulator, verify", "one_step_purchase"),
             ("two-step purchase, confirmed", "two_step_purchase"), ("subscription", "subscription"),
             ("profile", "profile"), ("greeting", "greeting"), ("postcard saved to a file", "postcard"),
             ("histories", "histories"), ("refund in the emulator and the clawback", "refund"))

    async def run(self) -> int:
        """Every step in order; 0 when all behaved as documented, else 1 after the first that did not."""
        for number, (title, method) in enumerate(self.STEPS, 1):
            self.step = title
            self.say(f"[{number}/{len(self.STEPS)}] {title}")
            try:
                await getattr(self, method)()
            except DemoFailed as exc:
                self.say(f"demo FAILED at step {number} ({title}): {exc}")
                return 1
            except (aiohttp.ClientError, KeyError, TypeError, ValueError) as exc:
                self.say(f"demo FAILED at step {number} ({title}): {type(exc).__name__}: {exc}")
                return 1
        self.say(f"demo OK: all {len(self.STEPS)} steps behaved as documented")
        return 0


async def run_demo(api: str, emulator: str, out_dir: Path, say: Callable[[str], None] = print) -> int:
    """Run the demo against a server at `api` whose RuStore is the emulator at `emulator`."""
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        try:
            return await Demo(session, api, emulator, out_dir, say).run()
        except aiohttp.ClientConnectionError as exc:  # pragma: no cover - run() reports these per step
            say(f"demo FAILED: cannot reach {api} or {emulator}: {exc}")
            return 1
