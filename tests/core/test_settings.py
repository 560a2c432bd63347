"""Settings: TOML defaults, environment overrides, and the production safety gate."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from pathlib import Path

import aiohttp
import pytest

from core.settings import SettingsError, load_settings

ROOT = Path(__file__).resolve().parents[2]
BASE = {"SETTINGS_FILE": str(ROOT / "settings.toml")}
STRONG_SECRET = "4f9c1e7a2b8d6c3e5f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c"
RUSTORE_ENV = {"RUSTORE_KEY_ID": "123", "RUSTORE_PRIVATE_KEY_FILE": "/run/secrets/rustore.pem",
               "RUSTORE_APP_ID": "3399750", "RUSTORE_PACKAGE_NAME": "com.example.app",
               "RUSTORE_NOTIFICATION_KEY": "bm90LWEtcmVhbC1rZXk="}


def test_defaults_come_from_settings_toml():
    s = load_settings(BASE)
    assert (s.app_env, s.port, s.rate_limit_per_minute, s.max_body_bytes) == ("development", 8000, 100, 65536)
    assert s.mongo_url is None and s.redis_url is None


def test_sandbox_purchases_count_by_default_only_outside_production():
    assert load_settings(BASE).allow_sandbox is True
    assert load_settings({**BASE, "APP_ENV": "production"}).allow_sandbox is False
    assert load_settings({**BASE, "APP_ENV": "production", "RUSTORE_ALLOW_SANDBOX": "true"}).allow_sandbox is True
    assert load_settings({**BASE, "RUSTORE_APP_ID": "3399750"}).rustore_app_id == 3399750
    assert load_settings({**BASE, "RUSTORE_APP_ID": ""}).rustore_app_id is None


def test_environment_overrides_toml_with_typed_values():
    s = load_settings({**BASE, "PORT": "9001", "CORS_ORIGINS": "https://a.example, https://b.example",
                       "JOBS_ENABLED": "false", "RATE_LIMIT_PER_MINUTE": "250", "LOG_LEVEL": "DEBUG"})
    assert s.port == 9001
    assert s.cors_origins == ("https://a.example", "https://b.example")
    assert s.jobs_enabled is False and s.rate_limit_per_minute == 250 and s.log_level == "DEBUG"


def test_settings_file_can_be_replaced(tmp_path):
    alt = tmp_path / "alt.toml"
    alt.write_text('[server]\nport = 7123\n[mongo]\ndb = "other"\n')
    s = load_settings({"SETTINGS_FILE": str(alt)})
    assert s.port == 7123 and s.mongo_db == "other" and s.rate_limit_per_minute == 100


@pytest.mark.parametrize("env", [{"PORT": "eighty"}, {"JOBS_ENABLED": "maybe"}, {"APP_ENV": "staging"},
                                 {"TRUSTED_PROXIES": "not-a-cidr"}])
def test_unparseable_settings_are_refused(env):
    with pytest.raises(SettingsError):
        load_settings({**BASE, **env})


def test_production_lists_every_unsafe_default():
    problems = load_settings({**BASE, "APP_ENV": "production"}).problems()
    text = "\n".join(problems)
    for name in ("MONGO_URL", "REDIS_URL", "JWT_SECRET", "HTTPS", "RUSTORE_KEY_ID", "RUSTORE_NOTIFICATION_KEY"):
        assert name in text
    assert len(problems) == 5


def test_production_rejects_placeholder_and_short_secrets():
    env = {**BASE, "APP_ENV": "production", "MONGO_URL": "mongodb://db", "REDIS_URL": "redis://r",
           "TRUSTED_PROXIES": "10.0.0.0/8", **RUSTORE_ENV}
    assert load_settings({**env, "JWT_SECRET": "short"}).problems() == ["JWT_SECRET must be at least 32 bytes"]
    placeholder = load_settings({**env, "JWT_SECRET": "change-me-change-me-change-me-change-me"}).problems()
    assert len(placeholder) == 1 and "placeholder" in placeholder[0]
    assert load_settings({**env, "JWT_SECRET": STRONG_SECRET}).problems() == []


def _clean_env(**extra: str) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "VIRTUAL_ENV", "PYTHONPATH")}
    return {**keep, **extra}


async def test_server_refuses_unsafe_production_start_with_exit_code_2():
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "server.py", cwd=ROOT, env=_clean_env(APP_ENV="production", JWT_SECRET="secret"),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 2
    text = err.decode()
    for name in ("MONGO_URL", "REDIS_URL", "JWT_SECRET", "HTTPS"):
        assert name in text
    assert "secret" not in text.replace("JWT_SECRET", "")  # the value itself is never echoed


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_development_runs_with_nothing_set_and_stops_cleanly_on_sigterm():
    port = _free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "server.py", cwd=ROOT, env=_clean_env(PORT=str(port), HOST="127.0.0.1"),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(200):
                try:
                    async with session.get(f"http://127.0.0.1:{port}/api/ready") as resp:
                        assert resp.status == 200
                        break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.1)
            else:
                pytest.fail("server did not come up")
            async with session.post(f"http://127.0.0.1:{port}/api/auth/register",
                                    json={"email": "dev@example.com", "password": "long enough"}) as resp:
                assert resp.status == 201
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0
    text = out.decode()
    assert "NOTHING IS PERSISTED" in text and "MONGO_URL" in text and "REDIS_URL" in text
    assert "shutting down" in text
