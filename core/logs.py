"""Logging: loguru to stdout, JSON lines in production, text in development, secrets scrubbed.

Every record passes through ``scrub`` before any sink sees it, so a password, token or key that
reaches a log call by mistake is replaced with ``[redacted]``; stdlib logging (Tornado, asyncio,
APScheduler) is routed into loguru so the same rules apply to it.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC
from typing import Any

from loguru import logger

REDACTED = "[redacted]"
SENSITIVE_KEY = re.compile(
    r"pass(word)?|secret|token|authorization|api[_-]?key|private[_-]?key|signature|jwe|cookie|"
    r"refresh|notification[_-]?key|dsn",
    re.IGNORECASE,
)
_SECRET_NAMES = (r"password|passwd|secret|token|api[_-]?key|private[_-]?key|refreshToken|accessToken|"
                 r"purchase_token|subscriptionToken|signature|currentPassword")
_TEXT_PATTERNS = (
    # JSON values, plain or backslash-escaped inside a repr: "password": "with spaces"
    re.compile(r'(?i)(\\?"(?:' + _SECRET_NAMES + r')\\?"\s*:\s*)\\?"(?:[^"\\]|\\(?!"))*\\?"'),
    re.compile(r"(?i)('(?:" + _SECRET_NAMES + r")'\s*:\s*)'(?:[^'\\]|\\.)*'"),
    # JWT / JWE-looking strings (three or five base64url segments starting with eyJ).
    re.compile(r"eyJ[\w-]{4,}(?:\.[\w-]{4,}){1,4}"),
    re.compile(r"(?i)(bearer\s+)[\w\-.~+/=]+"),
    re.compile(
        r"(?i)((?:password|passwd|secret|token|api[_-]?key|private[_-]?key|refreshToken|accessToken|"
        r"purchase_token|subscriptionToken|signature)[\"']?\s*[:=]\s*[\"']?)[^\s\"',}&]+"
    ),
    # PEM blocks and long base64 blobs (private keys, payloads).
    re.compile(r"-----BEGIN [A-Z ]+-----[\s\S]+?-----END [A-Z ]+-----"),
    re.compile(r"MII[A-Za-z0-9+/=]{60,}"),
)


def scrub_text(text: str) -> str:
    """Replace anything that looks like a credential inside free text."""
    for pattern in _TEXT_PATTERNS:
        if pattern.groups:
            text = pattern.sub(lambda m: m.group(1) + REDACTED, text)
        else:
            text = pattern.sub(REDACTED, text)
    return text


def scrub_value(key: str, value: Any) -> Any:
    """Redact a structured field by its name, recursing into dicts and lists."""
    if SENSITIVE_KEY.search(key) and value not in (None, "", False):
        return REDACTED
    if isinstance(value, dict):
        return {k: scrub_value(str(k), v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [scrub_value(key, v) for v in value]
    if isinstance(value, str):
        return scrub_text(value)
    return value


def _patch(record: dict) -> None:
    record["message"] = scrub_text(record["message"])
    record["extra"] = {k: scrub_value(k, v) for k, v in record["extra"].items()}


def _json_sink_format(record: dict) -> str:
    payload: dict[str, Any] = {
        "ts": record["time"].astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "level": record["level"].name,
        "logger": record["name"],
        "message": record["message"],
    }
    payload.update(record["extra"])
    if record["exception"] is not None:
        import traceback

        exc = record["exception"]
        payload["exception"] = scrub_text("".join(traceback.format_exception(exc.type, exc.value, exc.traceback)))
    record["extra"]["_json"] = json.dumps(payload, ensure_ascii=False, default=str)
    return "{extra[_json]}\n"


def _text_format(record: dict) -> str:
    extras = " ".join(f"{k}={v}" for k, v in record["extra"].items() if not k.startswith("_"))
    base = "<green>{time:HH:mm:ss.SSS}</green> <level>{level: <7}</level> {name}: {message}"
    return base + (" <dim>" + extras.replace("{", "{{").replace("}", "}}") + "</dim>" if extras else "") + "\n{exception}"


class _InterceptHandler(logging.Handler):
    """Send stdlib logging records (Tornado, asyncio, APScheduler) to loguru."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            level: str | int = logger.level(record.levelname).name
        except ValueError:
            level = record.levelno
        logger.bind(logger_name=record.name).opt(depth=6, exception=record.exc_info).log(
            level, record.getMessage()
        )


def configure_logging(level: str = "INFO", json_lines: bool = False, sink: Any = None) -> None:
    """Install the one loguru sink of this process (stdout unless a sink is given, e.g. in tests)."""
    logger.remove()
    logger.configure(patcher=_patch)
    target = sink if sink is not None else sys.stdout
    if json_lines:
        logger.add(target, level=level.upper(), format=_json_sink_format, backtrace=False, diagnose=False)
    else:
        logger.add(
            target,
            level=level.upper(),
            format=_text_format,
            colorize=sink is None and sys.stdout.isatty(),
            backtrace=False,
            diagnose=False,
        )
    logging.basicConfig(handlers=[_InterceptHandler()], level=logging.INFO, force=True)
    # Tornado logs each request itself; our access log replaces it.
    logging.getLogger("tornado.access").setLevel(logging.WARNING)
    # APScheduler says "Added job ..." per job at start-up and two lines per run; the start-up summary
    # (core.startup) and the job runner's one line per run (jobs.runner) say it better. Its warnings stay.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
