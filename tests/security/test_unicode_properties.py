"""Property: arbitrary Unicode in a free-text field is stored and read back intact (as normalised), or refused with a 400.

Values come from Hypothesis: any code point including lone surrogates (sent escaped, as JSON allows), plus the
characters issue 12 is about. The server runs in the test's event loop; Hypothesis drives it over HTTP from a worker
thread (plain urllib), so failing examples shrink as usual. Nothing may answer 5xx, a refusal changes nothing,
and the ledger audit is clean at the end.
"""

from __future__ import annotations

import asyncio
import json
import unicodedata
import urllib.error
import urllib.request
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from documents import wallet

TRICKY = ["\u200b", "\u202e", "\u202c", "\ufeff", "\u0000", "$", "＄", "﹩", "e\u0301", "ﬁ", "\ud800", "\udfff",
          "\U0001f600", " ", "\u3000", "\u00a0", "\u2028", "İ", "ß", "\U000e0041"]
ANY_CHAR = st.characters(exclude_categories=())  # surrogates included
TEXT = st.one_of(st.text(max_size=12), st.text(ANY_CHAR, max_size=12),
                 st.lists(st.sampled_from(TRICKY) | st.text(max_size=3), max_size=6).map("".join))
PROPERTY = settings(max_examples=40, deadline=None, database=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
REFUSALS = {"invalid_json", "validation_failed"}


def stored(value: str) -> str:
    """What a Text field keeps: NFC, trimmed."""
    return unicodedata.normalize("NFC", value).strip()


class Http:
    """A blocking JSON client for the worker thread."""

    def __init__(self, base_url: str, token: str) -> None:
        self.base_url, self.token = base_url, token

    def __call__(self, method: str, path: str, body: Any = None, key: str | None = None) -> tuple[int, Any]:
        # ensure_ascii: a lone surrogate goes out as the escape "\\ud800", valid JSON the server must refuse.
        data = None if body is None else json.dumps(body, ensure_ascii=True).encode("ascii")
        headers = {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"}
        if key:
            headers["Idempotency-Key"] = key
        request = urllib.request.Request(self.base_url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=10) as resp:
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read() or b"null")


def refused_cleanly(status: int, body: Any) -> bool:
    return status == 400 and body.get("reason") in REFUSALS


async def test_free_text_of_spend_generation_and_profile_is_kept_intact_or_refused(start_server):
    service, api = await start_server(rate_limit_per_minute=10**6, auth_rate_limit_per_minute=10**6)
    user = await api.register()
    await wallet.credit(service.ctx.db, user["userId"], 10**6, "admin_grant", "grant")
    http = Http(api.base_url, user["accessToken"])
    counter = iter(range(10**6))

    def balance() -> int:
        return http("GET", "/api/points/balance")[1]["balance"]

    @PROPERTY
    @given(reason=TEXT)
    def spend_reason(reason: str) -> None:
        before = balance()
        status, body = http("POST", "/api/points/spend", {"amount": 1, "reason": reason}, f"s{next(counter)}")
        if status == 200:
            expected = stored(reason) or None
            assert body["transaction"]["reference"] == expected, (reason, body)
            latest = http("GET", "/api/points/history?limit=1")[1]["items"][0]
            assert latest["reference"] == expected and balance() == before - 1
        else:
            assert refused_cleanly(status, body), (reason, status, body)
            assert balance() == before

    @settings(PROPERTY, max_examples=12)
    @given(occasion=TEXT, name=TEXT, tone=TEXT, details=TEXT)
    def generation_fields(occasion: str, name: str, tone: str, details: str) -> None:
        before = balance()
        request = {"kind": "greeting", "occasion": occasion, "recipientName": name, "tone": tone, "details": details}
        status, body = http("POST", "/api/generation/request", request, f"g{next(counter)}")
        if status == 200:
            view = http("GET", f"/api/generation/{body['generationId']}")[1]
            assert view["occasion"] == stored(occasion), (occasion, view)
            for field, value in (("recipientName", name), ("tone", tone), ("details", details)):
                assert view[field] in {stored(value), stored(value) or None}, (field, value, view)  # "" may be null
        else:
            assert refused_cleanly(status, body), (request, status, body)
            assert balance() == before

    @settings(PROPERTY, max_examples=15)
    @given(local=TEXT)
    def profile_email(local: str) -> None:
        email = local + "@example.com"
        status, body = http("PATCH", "/api/user/update", {"currentPassword": user["password"], "email": email})
        if status == 200:
            expected = unicodedata.normalize("NFKC", email).strip().lower()
            # A new address waits for its verification link (docs/accounts.md); the same one changes nothing.
            shown = body["pendingEmail"] or body["email"]
            assert shown == expected and http("GET", "/api/user/profile")[1]["pendingEmail"] in (expected, None)
        else:
            assert refused_cleanly(status, body) or (status == 409 and body["reason"] == "email_taken"), (email, body)

    await asyncio.to_thread(spend_reason)
    await asyncio.to_thread(generation_fields)
    await asyncio.to_thread(profile_email)
    assert (await wallet.verify_ledger(service.ctx.db)).ok
