"""GET /metrics: Prometheus text behind a token or on an internal port, with the numbers operators need."""

from __future__ import annotations

import re

import aiohttp

from jobs import find_job
from jobs.runner import run_job
from tests.handlers.test_conventions import assert_error_shape
from tests.handlers.test_payments import verify_body

TOKEN = "scrape-token-for-tests-0123456789"


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one metric sample in Prometheus text (0 when absent)."""
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line.rsplit(" ", 1)[0]))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def scrape(api) -> str:
    resp = await api.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert resp.status == 200, resp.text
    assert resp.headers["Content-Type"].startswith("text/plain")
    return resp.text


async def test_metrics_need_the_scrape_token(start_server):
    _, api = await start_server(metrics_token=TOKEN)
    assert_error_shape(await api.get("/metrics"), 401, "invalid_metrics_token")
    assert_error_shape(await api.get("/metrics", headers={"Authorization": "Bearer wrong"}), 401,
                       "invalid_metrics_token")
    assert "http_requests_total" in await scrape(api)


async def test_metrics_are_off_without_token_or_port_outside_development(api):
    assert_error_shape(await api.get("/metrics"), 404, "metrics_disabled")


async def test_metrics_can_be_served_on_a_separate_internal_port(start_server):
    service, _ = await start_server(metrics_port=0)
    async with aiohttp.ClientSession() as session:
        async with session.get(f"http://127.0.0.1:{service.metrics_port}/metrics") as resp:
            assert resp.status == 200
            assert "http_request_duration_seconds_bucket" in await resp.text()


async def test_requests_are_counted_by_route_template_not_by_id(start_server):
    _, api = await start_server(metrics_token=TOKEN)
    user = await api.register()
    before = sample(await scrape(api), "http_requests_total", route=r"/api/auth/sessions/([A-Za-z0-9_]{1,64})",
                    method="DELETE", status="404")
    for sid in ("s_one", "s_two"):
        await api.delete(f"/api/auth/sessions/{sid}", token=user["accessToken"])
    text = await scrape(api)
    after = sample(text, "http_requests_total", route=r"/api/auth/sessions/([A-Za-z0-9_]{1,64})",
                   method="DELETE", status="404")
    assert after - before == 2
    assert "s_one" not in text


async def test_rustore_calls_jobs_and_ledger_audit_are_exported(emulated):
    env = await emulated(metrics_token=TOKEN, webhooks=False)
    user = await env.api.register()
    bought_before = sample(await scrape(env.api), "points_total", type="buy")
    await env.api.post("/api/payments/verify", verify_body(env.buy("points_100", user=user)), token=user["accessToken"])
    await env.api.post("/api/payments/verify", verify_body(env.buy("points_100", user=user)), token=user["accessToken"])
    await run_job(env.service.ctx, find_job("ledger-audit"))
    text = await scrape(env.api)
    assert sample(text, "rustore_calls_total", endpoint="GET /public/v2/purchase/{invoiceId}", outcome="ok") >= 1
    assert sample(text, "job_runs_total", job="ledger-audit", outcome="ok") >= 1
    assert "ledger_audit_drift_users 0.0" in text
    assert sample(text, "rustore_circuit_open") == 0
    assert sample(text, "points_total", type="buy") - bought_before == 200  # counted once per credit, by the ledger
