"""Entitlement, server API and event settings: defaults, environment overrides, and what start-up refuses."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from core.entitlements import load_entitlements
from core.products import load_products
from core.settings import SettingsError, load_settings

ROOT = Path(__file__).resolve().parents[2]
BASE = {"SETTINGS_FILE": str(ROOT / "settings.toml")}


def entitlements(env: dict) -> dict:
    settings = load_settings({**BASE, **env})
    return load_entitlements(settings, load_products(settings))


def test_premium_is_granted_by_both_premium_plans_by_default():
    assert entitlements({}) == {"premium": ("premium_monthly", "premium_yearly")}


def test_the_environment_replaces_the_declared_entitlements():
    assert entitlements({"ENTITLEMENTS": "premium=premium_yearly; gold=premium_monthly|premium_yearly"}) == {
        "premium": ("premium_yearly",), "gold": ("premium_monthly", "premium_yearly")}


@pytest.mark.parametrize("spec, message", [
    ("premium=premium_weekly", "unknown product 'premium_weekly'"),
    ("premium=points_100", "consumable"),
    ("Premium!=premium_monthly", "names are lowercase"),
    ("premium", "expected name=product"),
])
def test_an_entitlement_naming_an_unknown_or_consumable_product_is_refused(spec, message):
    with pytest.raises(SettingsError, match=message):
        entitlements({"ENTITLEMENTS": spec})


def test_the_server_refuses_to_start_with_an_unknown_entitlement_product():
    done = subprocess.run([sys.executable, "server.py"], cwd=ROOT, capture_output=True, text=True, timeout=60,
                          env={**BASE, "APP_ENV": "test", "ENTITLEMENTS": "premium=premium_weekly", "PATH": ""})
    assert done.returncode == 2 and "unknown product 'premium_weekly'" in done.stderr


def test_event_and_server_api_settings_are_checked():
    s = load_settings({**BASE, "SERVER_API_KEYS": "sk_" + "a" * 30 + ", sk_" + "b" * 30,
                       "EVENTS_WEBHOOK_URLS": "http://127.0.0.1:9/h", "EVENTS_WEBHOOK_SECRET": "x" * 16,
                       "EVENTS_RETRY_SCHEDULE_S": "1, 2.5"})
    assert len(s.server_api_keys) == 2 and s.events_retry_schedule == (1.0, 2.5)
    assert load_settings(BASE).events_retry_schedule == (60, 300, 1800, 7200, 21600, 86400, 172800)
    for env, message in (({"SERVER_API_KEYS": "sk_short"}, "SERVER_API_KEYS"),
                         ({"SERVER_API_KEYS": "pk_" + "a" * 30}, "SERVER_API_KEYS"),
                         ({"EVENTS_WEBHOOK_URLS": "ftp://x"}, "EVENTS_WEBHOOK_URLS"),
                         ({"EVENTS_WEBHOOK_URLS": "http://x", "APP_ENV": "production", "EVENTS_WEBHOOK_SECRET": "y" * 20},
                          "EVENTS_WEBHOOK_URLS"),
                         ({"EVENTS_WEBHOOK_URLS": "https://x"}, "EVENTS_WEBHOOK_SECRET"),
                         ({"EVENTS_RETRY_SCHEDULE_S": "1,soon"}, "EVENTS_RETRY_SCHEDULE_S"),
                         ({"EVENTS_RETRY_SCHEDULE_S": "-1"}, "EVENTS_RETRY_SCHEDULE_S")):
        with pytest.raises(SettingsError, match=message):
            load_settings({**BASE, **env})
