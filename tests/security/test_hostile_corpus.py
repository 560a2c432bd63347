"""Issue 12: what JSON allows and UTF-8 fuzzers never send, on every public route and a sample of authenticated ones.

Each corpus body carries its hostile part in a key no schema has ("zz") or in the body's shape, so the expected
answer is the same on every route: the strict parser refuses it (`400 invalid_json`), or it parses and the schema
refuses the unknown field (`400 validation_failed`), or the webhook cannot authenticate it
(`400 invalid_notification`). Never a 5xx, never a bare answer. Sizes are checked on every route, GETs included.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import uuid

import aiohttp

from core.strict_json import MAX_DEPTH
from tests.handlers.test_conventions import assert_error_shape
from tests.support.openapi import is_public

WEBHOOK = "/api/webhooks/rustore"
PARSER = "invalid_json"
SCHEMA = "validation_failed"


def nested(depth: int) -> bytes:
    """An object whose "zz" array nests so that the whole body is `depth` levels deep."""
    return b'{"zz": ' + b"[" * (depth - 1) + b"]" * (depth - 1) + b"}"


# (name, raw body, what refuses it)
CORPUS: list[tuple[str, bytes, str]] = [
    ("depth at the limit", nested(MAX_DEPTH), SCHEMA),
    ("depth one past the limit", nested(MAX_DEPTH + 1), PARSER),
    ("depth 1000 (the issue's 2 KB body)", b"[" * 1000 + b"]" * 1000, PARSER),
    ("depth 5000 inside a string is not nesting", b'{"zz": "' + b"[" * 5000 + b'"}', SCHEMA),
    ("lone high surrogate", b'{"zz": "r\\ud800"}', PARSER),
    ("lone low surrogate", b'{"zz": "\\udfff"}', PARSER),
    ("lone surrogate in a key", b'{"\\ud800": 1}', PARSER),
    ("reversed surrogate pair", b'{"zz": "\\ude00\\ud83d"}', PARSER),
    ("paired surrogates (one emoji)", b'{"zz": "\\ud83d\\ude00"}', SCHEMA),
    ("escaped NUL", b'{"zz": "a\\u0000b"}', SCHEMA),
    ("raw NUL byte", b'{"zz": "a\x00b"}', PARSER),
    ("UTF-8 BOM", b'\xef\xbb\xbf{"zz": 1}', PARSER),
    ("UTF-16 body", '{"zz": 1}'.encode("utf-16"), PARSER),
    ("invalid UTF-8", b'{"zz": "\xff\xfe"}', PARSER),
    ("overlong UTF-8 for '/'", b'{"zz": "\xc0\xaf"}', PARSER),
    ("5000-digit integer", b'{"zz": 1' + b"0" * 5000 + b"}", PARSER),
    ("30-digit integer", b'{"zz": 123456789012345678901234567890}', SCHEMA),
    ("number overflowing to infinity", b'{"zz": 1e999}', PARSER),
    ("NaN", b'{"zz": NaN}', PARSER),
    ("duplicate keys", b'{"zz": 1, "zz": 2}', PARSER),
    ("bidi override", '{"zz": "\u202eevil\u202c"}'.encode(), SCHEMA),
    ("zero-width space", '{"zz": "\u200b$x"}'.encode(), SCHEMA),
]


async def corpus_server(start_server):
    """The app with every public body route configured (Google, VK ID, webhook key), limits out of the way."""
    service, api = await start_server(rate_limit_per_minute=10**6, auth_rate_limit_per_minute=10**6,
                                      google_client_ids=("web-client",), vk_client_id="51234567",
                                      rustore_notification_key=base64.b64encode(os.urandom(32)).decode())
    user = await api.register()
    doc = (await api.get("/api/openapi.json")).json
    return service, api, doc, user["accessToken"]


def targets(doc: dict) -> list[tuple[str, str, bool]]:
    """(method, path, public) of every public operation with a body plus a sample of authenticated ones."""
    sample = {("post", "/api/points/spend"), ("post", "/api/generation/request"), ("patch", "/api/user/update"),
              ("post", "/api/payments/verify"), ("post", "/api/subscriptions/verify")}
    found = []
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if "requestBody" in op and (is_public(op) or (method, path) in sample):
                found.append((method, path, is_public(op)))
    assert len([t for t in found if t[2]]) >= 6 and len([t for t in found if not t[2]]) == len(sample), found
    return found


def expected(path: str, refused_by: str) -> str:
    return "invalid_notification" if path == WEBHOOK else refused_by


async def test_every_corpus_body_gets_its_exact_answer_on_every_body_route(start_server):
    _, api, doc, token = await corpus_server(start_server)
    problems = []
    for method, path, public in targets(doc):
        for name, body, refused_by in CORPUS:
            headers = {"Content-Type": "application/json", "Idempotency-Key": uuid.uuid4().hex}
            if not public:
                headers["Authorization"] = f"Bearer {token}"
            resp = await api.request(method.upper(), path, data=body, headers=headers)
            reason = expected(path, refused_by)
            if (resp.status, resp.error_reason()) != (400, reason):
                problems.append(f"{method.upper()} {path} [{name}]: {resp.status} {resp.text[:160]} (want 400 {reason})")
            elif refused_by == SCHEMA and path != WEBHOOK and "zz" not in resp.json["details"]["fields"]:
                problems.append(f"{method.upper()} {path} [{name}]: refused for another field: {resp.text[:160]}")
    assert not problems, "\n".join(problems)


async def test_oversized_bodies_get_the_json_413_on_every_route(start_server):
    _, api, doc, token = await corpus_server(start_server)
    limit = 65536  # MAX_BODY_BYTES default
    big = b'{"zz": "' + b"x" * limit + b'"}'

    async def chunks(total: int):
        for _ in range(total // 65536):
            yield b" " * 65536

    async with aiohttp.ClientSession() as session:
        for path, item in doc["paths"].items():
            if "{" in path:
                continue
            for method, op in item.items():
                headers = {"Content-Type": "application/json", "Idempotency-Key": uuid.uuid4().hex}
                if not is_public(op):
                    headers["Authorization"] = f"Bearer {token}"
                declared = await api.request(method.upper(), path, data=big, headers=headers)
                assert_error_shape(declared, 413, "payload_too_large")
                # Chunked, over 1 MiB: Tornado used to answer a bare 400 with no body here.
                async with session.request(method.upper(), api.base_url + path, data=chunks(2 << 20),
                                           headers=headers) as resp:
                    body = await resp.json(content_type=None)
                    assert (resp.status, body["reason"], body["code"]) == (413, "payload_too_large", 413), (path, body)


async def test_a_chunked_body_past_the_drain_limit_is_cut_off_never_answered_with_a_bare_400(start_server):
    # Bodies are drained (unread) up to 16 MiB so that clients which read no answer before they have sent
    # everything (aiohttp, requests) get the JSON 413 (test above); past that the server answers the 413 at once
    # and closes, instead of reading on. A client still sending may see the close as a reset before the answer.
    _, api = await start_server()
    host, port = api.base_url.split("//")[1].split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(b"POST /api/auth/register HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Transfer-Encoding: chunked\r\n\r\n")
    chunk = b"%x\r\n%s\r\n" % (1 << 20, b" " * (1 << 20))
    sent = 0
    with contextlib.suppress(ConnectionError):
        for _ in range(256):
            writer.write(chunk)
            await writer.drain()
            sent += 1
    answer = b""
    with contextlib.suppress(ConnectionError):
        answer = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    assert sent < 64, "the server kept reading far past its drain limit"
    assert not answer.startswith(b"HTTP/1.1 400"), answer[:200]
    if answer:
        assert answer.startswith(b"HTTP/1.1 413") and b'"reason":"payload_too_large"' in answer, answer[:300]
