"""Settings: non-secret defaults from settings.toml, overridden by environment variables.

Every setting has one TOML key (``section.key``) and one environment variable name; the
environment names are a public contract used by deployments and external test harnesses.
Secrets (JWT_SECRET, RuStore keys, AI keys) have no TOML default and come only from the
environment. ``Settings.problems()`` lists what makes a production start unsafe.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SETTINGS_FILE = ROOT / "settings.toml"
ENVIRONMENTS = ("development", "production", "test")
EVENTS_RETRY_DEFAULT = (60, 300, 1800, 7200, 21600, 86400, 172800)
PLACEHOLDER_SECRETS = ("change-me", "changeme", "secret", "placeholder", "example", "dev-secret", "xxx")


class SettingsError(ValueError):
    """A setting has a value that cannot be parsed."""


def _env(name: str, toml: str, **kw: Any) -> Any:
    """Declare a setting field with its environment variable and TOML key."""
    meta = {"env": name, "toml": toml}
    if "default_factory" in kw:
        return field(default_factory=kw["default_factory"], metadata=meta)
    return field(default=kw.get("default"), metadata=meta)


@dataclass(frozen=True)
class Settings:
    """All runtime settings of one process (immutable once loaded)."""

    app_env: str = _env("APP_ENV", "app.env", default="development")
    host: str = _env("HOST", "server.host", default="0.0.0.0")
    port: int = _env("PORT", "server.port", default=8000)
    public_url: str | None = _env("PUBLIC_URL", "server.public_url")
    max_body_bytes: int = _env("MAX_BODY_BYTES", "server.max_body_bytes", default=65536)
    tls_cert_file: str | None = _env("TLS_CERT_FILE", "server.tls_cert_file")
    tls_key_file: str | None = _env("TLS_KEY_FILE", "server.tls_key_file")
    trusted_proxies: tuple[str, ...] = _env("TRUSTED_PROXIES", "server.trusted_proxies", default=())
    cors_origins: tuple[str, ...] = _env("CORS_ORIGINS", "server.cors_origins", default=())
    cpu_workers: int = _env("CPU_WORKERS", "server.cpu_workers", default=1)
    cpu_queue_max: int = _env("CPU_QUEUE_MAX", "server.cpu_queue_max", default=64)

    mongo_url: str | None = _env("MONGO_URL", "mongo.url")
    mongo_db: str = _env("MONGO_DB", "mongo.db", default="rustore_backend")
    mongo_startup_timeout_s: float = _env("MONGO_STARTUP_TIMEOUT_S", "mongo.startup_timeout_s", default=60.0)
    mongo_server_selection_timeout_ms: int = _env(
        "MONGO_SERVER_SELECTION_TIMEOUT_MS", "mongo.server_selection_timeout_ms", default=3000
    )
    mongo_operation_timeout_ms: int = _env("MONGO_OPERATION_TIMEOUT_MS", "mongo.operation_timeout_ms", default=5000)
    redis_url: str | None = _env("REDIS_URL", "redis.url")
    redis_prefix: str = _env("REDIS_PREFIX", "redis.prefix", default="rsb:")

    log_level: str = _env("LOG_LEVEL", "logging.level", default="INFO")
    log_format: str = _env("LOG_FORMAT", "logging.format", default="auto")

    jwt_secret: str | None = _env("JWT_SECRET", "auth.jwt_secret")
    access_token_ttl_s: int = _env("ACCESS_TOKEN_TTL_S", "auth.access_token_ttl_s", default=900)
    refresh_idle_ttl_s: int = _env("REFRESH_IDLE_TTL_S", "auth.refresh_idle_ttl_s", default=30 * 86400)
    refresh_absolute_ttl_s: int = _env(
        "REFRESH_ABSOLUTE_TTL_S", "auth.refresh_absolute_ttl_s", default=365 * 86400
    )
    refresh_reuse_grace_s: int = _env("REFRESH_REUSE_GRACE_S", "auth.refresh_reuse_grace_s", default=10)
    device_token_ttl_s: int = _env("DEVICE_TOKEN_TTL_S", "auth.device_token_ttl_s", default=365 * 86400)
    session_cache_ttl_s: int = _env("SESSION_CACHE_TTL_S", "auth.session_cache_ttl_s", default=60)
    bcrypt_rounds: int = _env("BCRYPT_ROUNDS", "auth.bcrypt_rounds", default=12)

    rate_limit_per_minute: int = _env("RATE_LIMIT_PER_MINUTE", "rate_limit.per_minute", default=100)
    auth_rate_limit_per_minute: int = _env(
        "AUTH_RATE_LIMIT_PER_MINUTE", "rate_limit.auth_per_minute", default=20
    )
    login_failures_per_pair: int = _env(
        "LOGIN_FAILURES_PER_PAIR", "rate_limit.login_failures_per_pair", default=5
    )
    login_failures_per_email: int = _env(
        "LOGIN_FAILURES_PER_EMAIL", "rate_limit.login_failures_per_email", default=50
    )
    login_failure_window_s: int = _env(
        "LOGIN_FAILURE_WINDOW_S", "rate_limit.login_failure_window_s", default=900
    )
    verify_rate_limit_per_minute: int = _env(
        "VERIFY_RATE_LIMIT_PER_MINUTE", "rate_limit.verify_per_minute", default=30
    )

    metrics_token: str | None = _env("METRICS_TOKEN", "metrics.token")
    metrics_port: int | None = _env("METRICS_PORT", "metrics.port")
    metrics_host: str = _env("METRICS_HOST", "metrics.host", default="127.0.0.1")
    sentry_dsn: str | None = _env("SENTRY_DSN", "sentry.dsn")
    sentry_traces_sample_rate: float = _env("SENTRY_TRACES_SAMPLE_RATE", "sentry.traces_sample_rate", default=0.0)

    jobs_enabled: bool = _env("JOBS_ENABLED", "jobs.enabled", default=True)
    ledger_audit_interval_s: int = _env("LEDGER_AUDIT_INTERVAL_S", "jobs.ledger_audit_interval_s", default=21600)
    ledger_repair_interval_s: int = _env("LEDGER_REPAIR_INTERVAL_S", "jobs.ledger_repair_interval_s", default=60)
    generation_repair_interval_s: int = _env(
        "GENERATION_REPAIR_INTERVAL_S", "jobs.generation_repair_interval_s", default=60
    )

    ai_api_url: str | None = _env("AI_API_URL", "ai.api_url")
    ai_api_key: str | None = _env("AI_API_KEY", "ai.api_key")
    ai_model: str | None = _env("AI_MODEL", "ai.model")
    ai_timeout_s: float = _env("AI_TIMEOUT_S", "ai.timeout_s", default=20.0)
    generation_cost_greeting: int = _env("GENERATION_COST_GREETING", "ai.cost_greeting", default=1)
    generation_cost_card: int = _env("GENERATION_COST_CARD", "ai.cost_card", default=3)
    image_url_ttl_s: int = _env("IMAGE_URL_TTL_S", "ai.image_url_ttl_s", default=3600)

    clawback_allow_negative: bool = _env("CLAWBACK_ALLOW_NEGATIVE", "points.clawback_allow_negative", default=False)

    emulator_port: int = _env("EMULATOR_PORT", "rustore.emulator_port", default=8001)
    rustore_api_url: str = _env("RUSTORE_API_URL", "rustore.api_url", default="https://public-api.rustore.ru")
    rustore_key_id: str | None = _env("RUSTORE_KEY_ID", "rustore.key_id")
    rustore_private_key: str | None = _env("RUSTORE_PRIVATE_KEY", "rustore.private_key")
    rustore_private_key_file: str | None = _env("RUSTORE_PRIVATE_KEY_FILE", "rustore.private_key_file")
    rustore_app_id: int | None = _env("RUSTORE_APP_ID", "rustore.app_id")
    rustore_package_name: str | None = _env("RUSTORE_PACKAGE_NAME", "rustore.package_name")
    rustore_timeout_s: float = _env("RUSTORE_TIMEOUT_S", "rustore.timeout_s", default=30.0)
    rustore_retry_deadline_s: float = _env("RUSTORE_RETRY_DEADLINE_S", "rustore.retry_deadline_s", default=20.0)
    rustore_breaker_threshold: int = _env("RUSTORE_BREAKER_THRESHOLD", "rustore.breaker_threshold", default=5)
    rustore_breaker_reset_s: float = _env("RUSTORE_BREAKER_RESET_S", "rustore.breaker_reset_s", default=30.0)
    rustore_breaker_failure_rate: float = _env("RUSTORE_BREAKER_FAILURE_RATE", "rustore.breaker_failure_rate", default=0.5)
    rustore_breaker_window_s: float = _env("RUSTORE_BREAKER_WINDOW_S", "rustore.breaker_window_s", default=30.0)
    rustore_recovery_rate_per_s: float = _env("RUSTORE_RECOVERY_RATE_PER_S", "rustore.recovery_rate_per_s", default=20.0)
    rustore_recovery_probe_s: float = _env("RUSTORE_RECOVERY_PROBE_S", "rustore.recovery_probe_s", default=10.0)
    purchase_check_backoff_max_s: float = _env(
        "PURCHASE_CHECK_BACKOFF_MAX_S", "purchases.check_backoff_max_s", default=1800.0
    )
    rustore_ca_bundle: str | None = _env("RUSTORE_CA_BUNDLE", "rustore.ca_bundle")
    rustore_notification_key: str | None = _env("RUSTORE_NOTIFICATION_KEY", "rustore.notification_key")
    rustore_sandbox_notification_key: str | None = _env(
        "RUSTORE_SANDBOX_NOTIFICATION_KEY", "rustore.sandbox_notification_key"
    )
    rustore_allow_sandbox: bool | None = _env("RUSTORE_ALLOW_SANDBOX", "rustore.allow_sandbox")
    rustore_webhook_allowed_ips: tuple[str, ...] = _env(
        "RUSTORE_WEBHOOK_ALLOWED_IPS", "rustore.webhook_allowed_ips", default=()
    )
    require_orders: bool = _env("REQUIRE_ORDERS", "purchases.require_orders", default=False)
    products_cache_ttl_s: int = _env("PRODUCTS_CACHE_TTL_S", "purchases.products_cache_ttl_s", default=600)
    webhook_max_attempts: int = _env("WEBHOOK_MAX_ATTEMPTS", "webhooks.max_attempts", default=10)
    purchase_reconcile_interval_s: int = _env(
        "PURCHASE_RECONCILE_INTERVAL_S", "jobs.purchase_reconcile_interval_s", default=60
    )
    subscription_reconcile_interval_s: int = _env(
        "SUBSCRIPTION_RECONCILE_INTERVAL_S", "jobs.subscription_reconcile_interval_s", default=300
    )
    webhook_retry_interval_s: int = _env("WEBHOOK_RETRY_INTERVAL_S", "jobs.webhook_retry_interval_s", default=30)
    refund_sweep_interval_s: int = _env("REFUND_SWEEP_INTERVAL_S", "jobs.refund_sweep_interval_s", default=900)
    refund_sweep_days: int = _env("REFUND_SWEEP_DAYS", "jobs.refund_sweep_days", default=14)
    refund_slow_pass_per_run: int = _env("REFUND_SLOW_PASS_PER_RUN", "jobs.refund_slow_pass_per_run", default=20)
    refund_slow_pass_max_days: int = _env("REFUND_SLOW_PASS_MAX_DAYS", "jobs.refund_slow_pass_max_days", default=400)
    unowned_purchase_max_checks: int = _env(
        "UNOWNED_PURCHASE_MAX_CHECKS", "purchases.unowned_max_checks", default=12
    )

    google_client_ids: tuple[str, ...] = _env("GOOGLE_CLIENT_IDS", "oauth.google_client_ids", default=())
    google_jwks_url: str = _env(
        "GOOGLE_JWKS_URL", "oauth.google_jwks_url", default="https://www.googleapis.com/oauth2/v3/certs"
    )
    vk_client_id: str | None = _env("VK_CLIENT_ID", "oauth.vk_client_id")
    vk_redirect_uris: tuple[str, ...] = _env("VK_REDIRECT_URIS", "oauth.vk_redirect_uris", default=())
    vk_service_token: str | None = _env("VK_SERVICE_TOKEN", "oauth.vk_service_token")
    vk_id_api_url: str = _env("VK_ID_API_URL", "oauth.vk_id_api_url", default="https://id.vk.ru")
    vk_api_url: str = _env("VK_API_URL", "oauth.vk_api_url", default="https://api.vk.ru")
    vk_api_version: str = _env("VK_API_VERSION", "oauth.vk_api_version", default="5.199")
    oauth_timeout_s: float = _env("OAUTH_TIMEOUT_S", "oauth.timeout_s", default=10.0)
    smtp_url: str | None = _env("SMTP_URL", "mail.smtp_url")
    mail_from: str = _env("MAIL_FROM", "mail.from", default="no-reply@localhost")
    smtp_timeout_s: float = _env("SMTP_TIMEOUT_S", "mail.timeout_s", default=15.0)
    mail_max_attempts: int = _env("MAIL_MAX_ATTEMPTS", "mail.max_attempts", default=12)
    mail_retry_interval_s: int = _env("MAIL_RETRY_INTERVAL_S", "jobs.mail_retry_interval_s", default=30)
    public_base_url: str | None = _env("PUBLIC_BASE_URL", "mail.public_base_url")
    password_reset_ttl_s: int = _env("PASSWORD_RESET_TTL_S", "accounts.password_reset_ttl_s", default=3600)
    password_reset_url: str | None = _env("PASSWORD_RESET_URL", "accounts.password_reset_url")
    email_verify_ttl_s: int = _env("EMAIL_VERIFY_TTL_S", "accounts.email_verify_ttl_s", default=3 * 86400)
    email_verify_url: str | None = _env("EMAIL_VERIFY_URL", "accounts.email_verify_url")
    account_mail_per_email: int = _env("ACCOUNT_MAIL_PER_EMAIL", "accounts.mail_per_email", default=5)
    account_mail_per_ip: int = _env("ACCOUNT_MAIL_PER_IP", "accounts.mail_per_ip", default=30)
    account_mail_window_s: int = _env("ACCOUNT_MAIL_WINDOW_S", "accounts.mail_window_s", default=3600)
    backup_enabled: bool = _env("BACKUP_ENABLED", "backup.enabled", default=True)
    backup_dir: str = _env("BACKUP_DIR", "backup.dir", default="./backups")
    backup_time_utc: str = _env("BACKUP_TIME_UTC", "backup.time_utc", default="03:00")
    backup_keep: int = _env("BACKUP_KEEP", "backup.keep", default=7)

    entitlements_override: str | None = _env("ENTITLEMENTS", "entitlements_env")
    server_api_keys: tuple[str, ...] = _env("SERVER_API_KEYS", "server_api.keys", default=())
    events_webhook_urls: tuple[str, ...] = _env("EVENTS_WEBHOOK_URLS", "events.webhook_urls", default=())
    events_webhook_secret: str | None = _env("EVENTS_WEBHOOK_SECRET", "events.webhook_secret")
    events_retry_schedule_s: tuple[str, ...] = _env(
        "EVENTS_RETRY_SCHEDULE_S", "events.retry_schedule_s", default=tuple(str(s) for s in EVENTS_RETRY_DEFAULT)
    )
    events_delivery_interval_s: int = _env("EVENTS_DELIVERY_INTERVAL_S", "events.delivery_interval_s", default=10)

    extra: Mapping[str, Any] = field(default_factory=dict, metadata={})

    @property
    def is_production(self) -> bool:
        """True when running with APP_ENV=production."""
        return self.app_env == "production"

    @property
    def is_development(self) -> bool:
        """True when running with APP_ENV=development."""
        return self.app_env == "development"

    @property
    def json_logs(self) -> bool:
        """JSON lines in production (ELK), readable text elsewhere unless forced."""
        if self.log_format in ("json", "text"):
            return self.log_format == "json"
        return self.is_production

    @property
    def trusted_networks(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        """TRUSTED_PROXIES parsed into networks."""
        return tuple(ipaddress.ip_network(c, strict=False) for c in self.trusted_proxies)

    @property
    def allow_sandbox(self) -> bool:
        """Sandbox (test) purchases count: explicit setting, else on outside production."""
        if self.rustore_allow_sandbox is not None:
            return self.rustore_allow_sandbox
        return not self.is_production

    @property
    def rustore_configured(self) -> bool:
        """True when real RuStore credentials are set (else development runs the emulator)."""
        return bool(self.rustore_key_id and (self.rustore_private_key or self.rustore_private_key_file))

    @property
    def webhook_networks(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        """RUSTORE_WEBHOOK_ALLOWED_IPS parsed into networks (empty = any source)."""
        return tuple(ipaddress.ip_network(c, strict=False) for c in self.rustore_webhook_allowed_ips)

    @property
    def mail_base_url(self) -> str | None:
        """Where links in e-mails point: PUBLIC_BASE_URL, else PUBLIC_URL (None: the request's own origin, not in production)."""
        url = self.public_base_url or self.public_url
        return url.rstrip("/") if url else None

    @property
    def tls_enabled(self) -> bool:
        """True when the server terminates TLS itself."""
        return bool(self.tls_cert_file and self.tls_key_file)

    @property
    def events_retry_schedule(self) -> tuple[float, ...]:
        """EVENTS_RETRY_SCHEDULE_S parsed: seconds to wait before each retry of an event delivery."""
        return tuple(float(v) for v in self.events_retry_schedule_s)

    def problems(self) -> list[str]:
        """Every reason this configuration must not serve production traffic."""
        if not self.is_production:
            return []
        found = []
        if not self.mongo_url:
            found.append("MONGO_URL is not set (the in-memory store loses all data on restart)")
        if not self.redis_url:
            found.append("REDIS_URL is not set (rate limits and sessions need a shared Redis)")
        secret = self.jwt_secret or ""
        if len(secret.encode()) < 32:
            found.append("JWT_SECRET must be at least 32 bytes")
        elif any(p in secret.lower() for p in PLACEHOLDER_SECRETS):
            found.append("JWT_SECRET looks like a placeholder; generate one with `openssl rand -hex 32`")
        if not self.tls_enabled and not self.trusted_proxies:
            found.append(
                "HTTPS is not configured: set TLS_CERT_FILE and TLS_KEY_FILE, or TRUSTED_PROXIES "
                "for the TLS-terminating proxy"
            )
        if bool(self.tls_cert_file) != bool(self.tls_key_file):
            found.append("TLS_CERT_FILE and TLS_KEY_FILE must be set together")
        missing = [name for name, value in (
            ("RUSTORE_KEY_ID", self.rustore_key_id),
            ("RUSTORE_PRIVATE_KEY or RUSTORE_PRIVATE_KEY_FILE", self.rustore_private_key or self.rustore_private_key_file),
            ("RUSTORE_APP_ID", self.rustore_app_id),
            ("RUSTORE_PACKAGE_NAME", self.rustore_package_name),
            ("RUSTORE_NOTIFICATION_KEY", self.rustore_notification_key),
        ) if not value]
        if self.smtp_url and not self.mail_base_url:
            found.append("SMTP_URL is set but PUBLIC_BASE_URL (or PUBLIC_URL) is not: links in e-mails need it")
        if missing:
            found.append("RuStore is not configured (purchases cannot be verified): set " + ", ".join(missing))
        return found


def _convert(value: Any, annotation: str, name: str) -> Any:
    """Coerce a TOML or environment value to the field's declared type ('' means unset for optionals)."""
    optional = annotation.endswith(" | None")
    kind = annotation.removesuffix(" | None")
    if optional and isinstance(value, str) and not value.strip():
        return None
    try:
        if kind in ("int", "float"):
            if isinstance(value, bool):
                raise ValueError("boolean given")
            return int(value) if kind == "int" else float(value)
        if kind == "bool":
            if isinstance(value, bool):
                return value
            lowered = str(value).strip().lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off", ""):
                return False
            raise ValueError(f"not a boolean: {value!r}")
        if kind.startswith("tuple"):
            items = value if isinstance(value, (list, tuple)) else str(value).split(",")
            return tuple(str(i).strip() for i in items if str(i).strip())
        if kind == "str":
            return str(value)
    except ValueError as exc:
        raise SettingsError(f"{name}: {exc}") from None
    return value


def _lookup(table: Mapping[str, Any], dotted: str) -> Any:
    node: Any = table
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def load_settings(environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Read SETTINGS_FILE (default settings.toml), then apply environment variables, then overrides."""
    env = os.environ if environ is None else environ
    path = Path(env.get("SETTINGS_FILE") or DEFAULT_SETTINGS_FILE)
    with open(path, "rb") as fh:
        table = tomllib.load(fh)
    values: dict[str, Any] = {}
    for f in dataclasses.fields(Settings):
        if not f.metadata:
            continue
        raw = _lookup(table, f.metadata["toml"])
        if f.metadata["env"] in env:
            raw = env[f.metadata["env"]]
        if raw is not None:
            values[f.name] = _convert(raw, str(f.type), f.metadata["env"])
    values.update(overrides)
    values["extra"] = {**table, **dict(values.get("extra") or {})}
    settings = Settings(**values)
    if settings.app_env not in ENVIRONMENTS:
        raise SettingsError(f"APP_ENV must be one of {', '.join(ENVIRONMENTS)}")
    for cidr in (*settings.trusted_proxies, *settings.rustore_webhook_allowed_ips):
        try:
            ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            raise SettingsError(f"TRUSTED_PROXIES: not a CIDR: {cidr!r}") from None
    if not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", settings.backup_time_utc):
        raise SettingsError(f"BACKUP_TIME_UTC: expected HH:MM (UTC), got {settings.backup_time_utc!r}")
    if settings.smtp_url:
        from core.mail import parse_smtp_url  # core.mail needs this module's SettingsError

        parse_smtp_url(settings.smtp_url)
    if settings.backup_keep < 1:
        raise SettingsError("BACKUP_KEEP: must be at least 1")
    if not 1 <= settings.image_url_ttl_s <= 7 * 86400:
        raise SettingsError("IMAGE_URL_TTL_S: between 1 second and 7 days")
    _check_server_api(settings)
    return settings


def _check_server_api(settings: Settings) -> None:
    """Refuse weak server API keys and event settings that could not be delivered or signed."""
    for key in settings.server_api_keys:
        if not key.startswith("sk_") or len(key) < 24:
            raise SettingsError("SERVER_API_KEYS: every key must start with sk_ and be at least 24 characters")
    for url in settings.events_webhook_urls:
        allowed = ("https://",) if settings.is_production else ("https://", "http://")
        if not url.startswith(allowed) or len(url) > 2000:
            raise SettingsError(f"EVENTS_WEBHOOK_URLS: not an {'https' if settings.is_production else 'http(s)'} URL: "
                                f"{url[:100]!r}")
    if settings.events_webhook_urls and len((settings.events_webhook_secret or "").encode()) < 16:
        raise SettingsError("EVENTS_WEBHOOK_SECRET: at least 16 bytes are needed when EVENTS_WEBHOOK_URLS is set")
    try:
        schedule = settings.events_retry_schedule
    except ValueError:
        raise SettingsError("EVENTS_RETRY_SCHEDULE_S: comma-separated numbers of seconds") from None
    if not schedule or any(s < 0 for s in schedule):
        raise SettingsError("EVENTS_RETRY_SCHEDULE_S: at least one delay, none negative")
