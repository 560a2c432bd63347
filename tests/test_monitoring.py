"""deploy/prometheus and deploy/grafana: the alert rules pass promtool and their unit tests, and a real Prometheus
scraping the running server finds every metric the alerts and the dashboard use, and parses every query."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import socket
import subprocess
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from jobs import ALL_JOBS
from jobs.runner import run_job
from tests.handlers.test_payments import verify_body

ROOT = Path(__file__).resolve().parent.parent
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
ALERT_TESTS = ROOT / "deploy" / "prometheus" / "alerts_test.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "rustore-backend.json"
TOKEN = "prometheus-scrape-token-0123456789"

# PromQL words that are not metric names.
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless", "offset",
            "inf", "nan", "e"}


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is missing: bash .ci/run installs Debian's prometheus package")
    return path


def alert_rules() -> list[dict]:
    return [rule for group in yaml.safe_load(ALERTS.read_text())["groups"] for rule in group["rules"]]


def dashboard_queries() -> list[str]:
    return [t["expr"] for panel in json.loads(DASHBOARD.read_text())["panels"] for t in panel["targets"]]


def metric_names(expr: str) -> set[str]:
    """The metric names an expression reads (label matchers, grouping labels, strings and functions left out)."""
    text = re.sub(r'"[^"]*"', '""', expr)
    text = re.sub(r"\{[^}]*\}", "", text)
    text = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", text)
    text = re.sub(r"\[[^\]]*\]", "", text)
    names = set()
    for match in re.finditer(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\b(\s*\()?", text):
        word, call = match.group(1), match.group(2)
        if call or word.lower() in KEYWORDS:
            continue
        names.add(word)
    return names


def test_alert_rules_pass_promtool_and_every_alert_has_a_firing_and_a_quiet_unit_test():
    checked = subprocess.run([tool("promtool"), "check", "rules", str(ALERTS)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = subprocess.run([tool("promtool"), "test", "rules", str(ALERT_TESTS)], capture_output=True, text=True,
                            cwd=ALERT_TESTS.parent)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    cases = yaml.safe_load(ALERT_TESTS.read_text())["tests"]
    for rule in alert_rules():
        runs = [case["alert_rule_test"][0] for case in cases if case["alert_rule_test"][0]["alertname"] == rule["alert"]]
        assert any(run["exp_alerts"] for run in runs), f"{rule['alert']}: no test where it fires"
        assert any(not run["exp_alerts"] for run in runs), f"{rule['alert']}: no test where it stays quiet"
        assert rule["annotations"].get("runbook") and rule["labels"].get("severity"), rule["alert"]


def test_the_compose_prometheus_config_is_valid(tmp_path):
    config = (ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text()
    (tmp_path / "prometheus.yml").write_text(config.replace("/etc/prometheus/alerts.yml", str(ALERTS)))
    checked = subprocess.run([tool("promtool"), "check", "config", str(tmp_path / "prometheus.yml")],
                             capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_dashboard_is_provisioned_from_the_compose_file():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    grafana = compose["services"]["grafana"]
    assert "./deploy/grafana/dashboards:/var/lib/grafana/dashboards:ro" in grafana["volumes"]
    assert "./deploy/prometheus/alerts.yml:/etc/prometheus/alerts.yml:ro" in compose["services"]["prometheus"]["volumes"]
    board = json.loads(DASHBOARD.read_text())
    assert board["uid"] == "rustore-backend" and len(board["panels"]) >= 20
    assert all(t["datasource"]["uid"] == "prometheus" for p in board["panels"] for t in p["targets"])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _get(session: aiohttp.ClientSession, url: str, **params: Any) -> dict:
    async with session.get(url, params=params) as resp:
        return await resp.json()


async def test_a_real_prometheus_scrapes_the_server_and_finds_every_metric_the_alerts_and_dashboard_use(
        emulated, tmp_path):
    env = await emulated(metrics_token=TOKEN, backup_dir=str(tmp_path / "backups"))
    api = env.api
    # Traffic and one run of each job, so the labelled series exist as they would in production.
    user = await api.register()
    await api.get("/api/ready")
    assert (await api.post("/api/payments/verify", verify_body(env.buy("points_100", user=user)),
                           token=user["accessToken"])).status == 200
    await env.settle()
    for job in ALL_JOBS:
        await run_job(env.service.ctx, job)

    port = _free_port()
    host, api_port = api.base_url.rsplit("/", 1)[-1].split(":")
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(ALERTS)],
        "scrape_configs": [{"job_name": "rustore-backend", "metrics_path": "/metrics",
                            "authorization": {"type": "Bearer", "credentials": TOKEN},
                            "static_configs": [{"targets": [f"{host}:{api_port}"]}]}],
    }
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    proc = await asyncio.create_subprocess_exec(
        tool("prometheus"), f"--config.file={tmp_path / 'prometheus.yml'}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
        f"--web.listen-address=127.0.0.1:{port}", stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    base = f"http://127.0.0.1:{port}/api/v1"
    try:
        async with aiohttp.ClientSession() as session:
            names: set[str] = set()
            for _ in range(200):  # up to 20 s: start, first scrapes
                await asyncio.sleep(0.1)
                try:
                    targets = await _get(session, f"{base}/targets")
                except aiohttp.ClientError:
                    continue
                active = targets["data"]["activeTargets"]
                if active and active[0]["health"] == "up":
                    names = set((await _get(session, f"{base}/label/__name__/values"))["data"])
                    metadata = (await _get(session, f"{base}/metadata"))["data"]
                    if "http_requests_total" in names and metadata:
                        break
            assert active and active[0]["health"] == "up", active
            # A family exists when the scrape declared it (HELP/TYPE) even before its first labelled sample.
            declared = names | set(metadata)
            declared |= {n + suffix for n in metadata for suffix in ("_bucket", "_sum", "_count", "_total")}
            queries = [rule["expr"] for rule in alert_rules()] + dashboard_queries()
            used = set().union(*(metric_names(q) for q in queries)) - {"up"}  # `up` is Prometheus's own
            missing = sorted(used - declared)
            assert not missing, f"metrics the alerts or the dashboard use but the server does not expose: {missing}"
            for query in queries:
                answer = await _get(session, f"{base}/query", query=query)
                assert answer["status"] == "success", (query, answer)
            rules = await _get(session, f"{base}/rules")
            loaded = {r["name"] for g in rules["data"]["groups"] for r in g["rules"]}
            assert loaded == {rule["alert"] for rule in alert_rules()}
    finally:
        proc.terminate()
        await proc.wait()
