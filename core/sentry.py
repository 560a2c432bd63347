"""Optional error reporting to Sentry (SENTRY_DSN); without a DSN nothing is initialised."""

from __future__ import annotations

from typing import Any

from core.logs import scrub_text, scrub_value
from core.settings import Settings


def scrub_event(event: dict, hint: Any = None) -> dict:
    """Remove tokens, passwords and keys from an event before it leaves the process."""
    request = event.get("request") or {}
    for part in ("headers", "data", "cookies", "env"):
        if part in request:
            request[part] = scrub_value(part, request[part])
    if isinstance(request.get("query_string"), str):
        request["query_string"] = scrub_text(request["query_string"])
    for exc in (event.get("exception") or {}).get("values") or []:
        if isinstance(exc.get("value"), str):
            exc["value"] = scrub_text(exc["value"])
        for frame in (exc.get("stacktrace") or {}).get("frames") or []:
            if "vars" in frame:
                frame["vars"] = scrub_value("vars", frame["vars"])
    for crumb in (event.get("breadcrumbs") or {}).get("values") or []:
        if isinstance(crumb.get("message"), str):
            crumb["message"] = scrub_text(crumb["message"])
        if "data" in crumb:
            crumb["data"] = scrub_value("data", crumb["data"])
    if isinstance(event.get("message"), str):
        event["message"] = scrub_text(event["message"])
    return event


def init_sentry(settings: Settings) -> bool:
    """Start the Sentry SDK with the Tornado integration when SENTRY_DSN is set; True if started."""
    if not settings.sentry_dsn:
        return False
    import sentry_sdk
    from sentry_sdk.integrations.loguru import LoguruIntegration
    from sentry_sdk.integrations.tornado import TornadoIntegration

    sentry_sdk.init(
        dsn=settings.sentry_dsn,
        environment=settings.app_env,
        integrations=[TornadoIntegration()],
        # The Tornado integration reports each failure once; loguru's copy would repeat it as text.
        disabled_integrations=[LoguruIntegration],
        traces_sample_rate=settings.sentry_traces_sample_rate,
        before_send=scrub_event,
        max_request_body_size="never",  # bodies carry passwords and purchase data
        include_local_variables=False,  # locals hold request bodies, tokens and keys
    )
    return True
