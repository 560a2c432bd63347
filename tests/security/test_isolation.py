"""No endpoint hands one user another user's data when given that user's ids (generations, sessions, purchases,
subscriptions, points); "exists but not yours" answers exactly like "does not exist" wherever the API promises it."""

from __future__ import annotations

from bson import ObjectId

from tests.handlers.test_conventions import assert_error_shape
from tests.handlers.test_payments import verify_body
from tests.handlers.test_points import funded_user

CARD = {"kind": "card", "occasion": "Birthday", "recipientName": "Alice's mother"}


class Observer:
    """Bob's side: every answer he gets is kept, to check none of them mentions Alice."""

    def __init__(self, api, user: dict) -> None:
        self.api, self.user, self.seen = api, user, []

    async def call(self, method: str, path: str, **kw):
        resp = await self.api.request(method, path, token=self.user["accessToken"], **kw)
        self.seen.append(resp)
        return resp

    def assert_same(self, first, second) -> None:
        """Two answers a client cannot tell apart (status, body; the request id differs by design)."""
        assert (first.status, first.json) == (second.status, second.json), (first.text, second.text)


async def test_another_users_ids_get_nothing_and_look_like_ids_that_do_not_exist(emulated):
    env = await emulated()
    api = env.api
    alice = await funded_user(env.service, api, 50)
    bob = Observer(api, await funded_user(env.service, api, 50))
    alice_auth = {"token": alice["accessToken"]}

    # Generations: Alice's card, its image, and her Idempotency-Key.
    card = await api.post("/api/generation/request", CARD, headers={"Idempotency-Key": "card-1"}, **alice_auth)
    assert card.status == 200, card.text
    gid, missing = card.json["generationId"], str(ObjectId())
    bob.assert_same(await bob.call("GET", f"/api/generation/{gid}"), await bob.call("GET", f"/api/generation/{missing}"))
    bob.assert_same(await bob.call("GET", f"/api/generation/{gid}/image"),
                    await bob.call("GET", f"/api/generation/{missing}/image"))
    assert_error_shape(bob.seen[-1], 404, "generation_not_found")
    own = await bob.call("POST", "/api/generation/request", json_body={**CARD, "recipientName": "Bob's dad"},
                         headers={"Idempotency-Key": "card-1"})
    assert own.status == 200 and own.json["generationId"] != gid  # keys are per user: no replay of her answer
    history = (await bob.call("GET", "/api/generation/history")).json["items"]
    assert [g["generationId"] for g in history] == [own.json["generationId"]]

    # Sessions: ending hers is "not found", exactly like ending one that never existed; hers keeps working.
    sid = (await api.get("/api/auth/sessions", **alice_auth)).json["sessions"][0]["id"]
    bob.assert_same(await bob.call("DELETE", f"/api/auth/sessions/{sid}"),
                    await bob.call("DELETE", "/api/auth/sessions/s_no_such_session"))
    assert_error_shape(bob.seen[-1], 404, "session_not_found")
    assert sid not in {s["id"] for s in (await bob.call("GET", "/api/auth/sessions")).json["sessions"]}
    assert_error_shape(await bob.call("POST", "/api/auth/logout", json_body={"refreshToken": alice["refreshToken"]}),
                       400, "invalid_refresh_token")
    assert (await api.get("/api/user/profile", **alice_auth)).status == 200

    # Purchases: her invoice cannot be claimed (409, as documented), credits nobody twice, and is not listed to him.
    bought = env.buy("points_100", user=alice)
    assert (await api.post("/api/payments/verify", verify_body(bought), **alice_auth)).json["status"] == "credited"
    for path in ("/api/payments/verify", "/api/points/buy"):
        assert_error_shape(await bob.call("POST", path, json_body=verify_body(bought)), 409, "purchase_belongs_to_another_user")
    assert (await bob.call("GET", "/api/payments/history")).json["items"] == []
    assert (await api.get("/api/points/balance", **alice_auth)).json["balance"] == 50 - card.json["cost"] + 100

    # Subscriptions: cancelling hers is "not found", exactly like an unknown purchaseId; verifying it is refused.
    order = (await api.post("/api/subscriptions/create", {"productId": "premium_monthly"}, **alice_auth)).json
    sub = env.subscribe("premium_monthly", order_id=order["orderId"], developer_payload=order["developerPayload"],
                        app_user_id=order["appUserId"])
    claim = {"purchaseId": sub["purchaseId"], "productId": "premium_monthly", "orderId": sub["orderId"]}
    assert (await api.post("/api/subscriptions/verify", claim, **alice_auth)).status == 200
    bob.assert_same(await bob.call("POST", "/api/subscriptions/cancel", json_body={"purchaseId": sub["purchaseId"]}),
                    await bob.call("POST", "/api/subscriptions/cancel", json_body={"purchaseId": "no-such-purchase-1"}))
    assert_error_shape(bob.seen[-1], 404, "subscription_not_found")
    for path in ("/api/subscriptions/verify", "/api/subscriptions/renew"):
        assert_error_shape(await bob.call("POST", path, json_body=claim), 409, "purchase_belongs_to_another_user")
    status = (await api.get("/api/subscriptions/status", **alice_auth)).json
    assert status["status"] == "active" and status["autoRenewing"] is True
    assert (await bob.call("GET", "/api/subscriptions/status")).json["status"] == "none"

    # Points: his history holds only his own entries, even when paged with a cursor taken from hers.
    her_page = (await api.get("/api/points/history", params={"limit": 1}, **alice_auth)).json
    assert her_page["nextCursor"]
    for params in ({}, {"cursor": her_page["nextCursor"]}):
        items = (await bob.call("GET", "/api/points/history", params=params)).json["items"]
        assert [(i["type"], i["amount"]) for i in items] == [("spend", -own.json["cost"]), ("admin_grant", 50)], params
    profile = (await bob.call("GET", "/api/user/profile")).json
    assert profile["email"] == bob.user["email"] and profile["ownedProducts"] == [] and profile["subscription"] is None

    # Nothing Bob was answered names Alice, her email, her card or her invoice.
    secrets = (alice["userId"], alice["email"], gid, "Alice's mother", bought["invoiceId"], sid)
    leaked = [(s, r.text[:200]) for r in bob.seen for s in secrets if s in r.text]
    assert not leaked, leaked
