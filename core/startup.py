"""The one start-up summary a server prints: mode, stores, RuStore target, emulator, URLs, jobs, and what to try next.

In text logging it is a short block on stdout; with JSON logs (LOG_FORMAT=json, the production default) it is one `started` record
(a block of text would break a JSON-lines collector).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from loguru import logger


@dataclass(frozen=True)
class StartupInfo:
    """What the summary shows, gathered by `server.serve` once everything listens."""

    mode: str
    api_url: str
    mongo: str
    redis: str
    rustore: str
    emulator_url: str | None
    app_id: int | None
    jobs: int
    metrics_url: str | None


def describe_stores(settings: Any) -> tuple[str, str]:
    """Where data lives, without credentials (hosts only)."""
    mongo = f"MongoDB {_host(settings.mongo_url)} db={settings.mongo_db}" if settings.mongo_url \
        else "in-memory (MONGO_URL unset: nothing persists)"
    redis = f"Redis {_host(settings.redis_url)}" if settings.redis_url else "in-memory (REDIS_URL unset)"
    return mongo, redis


def _host(url: str) -> str:
    # Never print a password: keep scheme and host part only.
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.rsplit('@', 1)[-1].split('/', 1)[0].split('?', 1)[0]}"


def render(info: StartupInfo) -> str:
    """The text block (about ten lines)."""
    rustore = (f"RuStore emulator (development, no RuStore credentials): {info.emulator_url}"
               f"  [app {info.app_id}; control API {info.emulator_url}/_emulator/]"
               if info.emulator_url else f"RuStore API: {info.rustore}")
    lines = [
        f"rustore-backend started ({info.mode})",
        f"  API        {info.api_url}   docs {info.api_url}/api/docs   OpenAPI {info.api_url}/api/openapi.json",
        f"  MongoDB    {info.mongo}",
        f"  Redis      {info.redis}",
        f"  {rustore}",
        f"  Jobs       {info.jobs} scheduled (one log line per run)" if info.jobs else "  Jobs       off (JOBS_ENABLED)",
    ]
    if info.metrics_url:
        lines.append(f"  Metrics    {info.metrics_url}")
    if info.emulator_url:
        lines.append(f"  Web demo   {info.api_url}/demo/   (the web reference client, development only)")
        lines.append(f"  Try it     python server.py demo --url {info.api_url} --emulator {info.emulator_url}"
                     "   (the whole app flow, step by step)")
    return "\n".join(lines)


def announce(info: StartupInfo, json_logs: bool) -> None:
    """Print the block (text logs) or log one `started` record (JSON logs)."""
    if json_logs:
        logger.info("started", **{k: v for k, v in info.__dict__.items() if v is not None})
    else:
        print(render(info), flush=True)


def startup_info(settings: Any, service: Any, *, emulator_app: Any, jobs: int) -> StartupInfo:
    """Gather the summary from the settings and the running service."""
    scheme = "https" if settings.tls_enabled else "http"
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    mongo, redis = describe_stores(settings)
    metrics = f"http://{settings.metrics_host}:{service.metrics_port}/metrics" if service.metrics_port else None
    return StartupInfo(
        mode=settings.app_env, api_url=settings.public_url or f"{scheme}://{host}:{service.port}", mongo=mongo,
        redis=redis, rustore=settings.rustore_api_url, emulator_url=settings.rustore_api_url if emulator_app else None,
        app_id=emulator_app.app_id if emulator_app else None, jobs=jobs, metrics_url=metrics)
