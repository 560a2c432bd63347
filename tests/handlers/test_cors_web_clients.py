"""What a web front-end on another origin needs from CORS: conditional GET /api/customer works across origins."""

from __future__ import annotations

ORIGIN = "https://app.example.com"


async def test_a_listed_origin_can_send_if_none_match_and_read_the_etag(start_server):
    _, api = await start_server(cors_origins=(ORIGIN,))
    user = await api.register()
    pre = await api.request("OPTIONS", "/api/customer", headers={
        "Origin": ORIGIN, "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "authorization, if-none-match"})
    assert pre.status == 204
    allowed = {h.strip().lower() for h in pre.headers["Access-Control-Allow-Headers"].split(",")}
    assert {"authorization", "if-none-match", "idempotency-key", "content-type"} <= allowed
    assert "Access-Control-Allow-Credentials" not in pre.headers  # tokens travel in a header, never cookies

    first = await api.get("/api/customer", token=user["accessToken"], headers={"Origin": ORIGIN})
    assert first.headers["Access-Control-Allow-Origin"] == ORIGIN
    exposed = {h.strip() for h in first.headers["Access-Control-Expose-Headers"].split(",")}
    assert {"ETag", "Retry-After", "X-Request-ID"} <= exposed
    again = await api.get("/api/customer", token=user["accessToken"],
                          headers={"Origin": ORIGIN, "If-None-Match": first.headers["ETag"]})
    assert again.status == 304
