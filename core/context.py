"""The shared objects of one process, built once by server.py and handed to handlers and jobs."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from loguru import logger

from core.clients import create_mongo, create_redis
from core.cpu import CpuPool
from core.entitlements import load_entitlements
from core.events_wiring import configure_events
from core.gate import RequestGate
from core.mail import Mailer
from core.oauth_wiring import create_oauth_providers
from core.products import Product, load_products
from core.ratelimit import RateLimiter
from core.redis_health import RedisHealth
from core.rustore_wiring import attach_outage_recovery, create_notification_decoder, create_rustore_client
from core.session_state import SessionState
from core.settings import Settings
from core.tokens import TokenService
from documents.accounts import PasswordHasher
from documents.billing import PurchasePolicy
from generation import make_provider


def utcnow() -> datetime:
    """The current time as an aware UTC datetime."""
    return datetime.now(UTC)


@dataclass
class AppContext:
    """Everything a handler or job needs; created by `create_context`, closed by `close`."""

    settings: Settings
    mongo: Any
    db: Any
    redis: Any
    cpu: CpuPool
    limiter: RateLimiter
    tokens: TokenService
    passwords: PasswordHasher
    sessions: SessionState
    gate: RequestGate
    redis_health: RedisHealth
    products: dict[str, Product] = field(default_factory=dict)
    rustore: Any = None  # rustore.RuStoreClient, None when RuStore is not configured
    notifications: Any = None  # rustore.NotificationDecoder, None without notification keys
    emulator: Any = None  # the in-process RuStore emulator in development mode
    background: set = field(default_factory=set)  # tasks to finish or cancel at shutdown
    embedded_mongo: bool = False
    embedded_redis: bool = False
    clock: Callable[[], datetime] = utcnow
    closers: list[Callable[[], Any]] = field(default_factory=list)
    generator: Any = None  # the process's greeting provider (generation.Provider), shared by all requests
    oauth: Any = None  # oauth.OAuthProviders: Google and VK ID sign-in over one shared HTTP session
    entitlements: dict[str, tuple[str, ...]] = field(default_factory=dict)  # name -> granting product ids
    mailer: Any = None  # core.mail.Mailer: account e-mails over SMTP (or the development log)
    recovery: Any = None  # jobs.outage_recovery.OutageRecovery: re-checks what a RuStore outage recorded

    def now(self) -> datetime:
        """The current time (injectable for tests)."""
        return self.clock()

    @property
    def purchase_policy(self) -> PurchasePolicy:
        """The deployment's rules for RuStore records (app id, sandbox, orders, clawback)."""
        s = self.settings
        return PurchasePolicy(app_id=s.rustore_app_id, allow_sandbox=s.allow_sandbox, require_orders=s.require_orders,
                              allow_negative_clawback=s.clawback_allow_negative)

    def key(self, *parts: str) -> str:
        """A Redis key inside this deployment's namespace."""
        return self.settings.redis_prefix + ":".join(parts)

    def spawn(self, coro: Any) -> asyncio.Task:
        """Run work in the background (e.g. webhook processing); shutdown waits for it briefly."""
        task = asyncio.ensure_future(coro)
        self.background.add(task)
        task.add_done_callback(self.background.discard)
        return task

    async def close(self, drain_s: float = 5.0) -> None:
        """Finish background work (then cancel what remains), then release clients in reverse order."""
        if self.background:
            _, pending = await asyncio.wait(set(self.background), timeout=drain_s)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        for closer in reversed(self.closers):
            try:
                result = closer()
                if hasattr(result, "__await__"):
                    await result
            except Exception:  # noqa: BLE001 - shutdown must go on
                logger.exception("error while closing a resource")
        self.closers.clear()


def create_context(settings: Settings, *, mongo: tuple[Any, Any, bool] | None = None,
                   redis: tuple[Any, bool] | None = None, clock: Callable[[], datetime] | None = None) -> AppContext:
    """Build the process's clients from settings (tests may inject a store, Redis or a clock)."""
    mongo_client, db, embedded_mongo = mongo or create_mongo(settings)
    redis_client, embedded_redis = redis or create_redis(settings)
    secret = settings.jwt_secret
    if not secret:
        # Development only (production refuses to start without one): tokens die with the process.
        secret = secrets.token_hex(32)
        if settings.app_env != "test":
            logger.warning("JWT_SECRET is not set: using a random secret, tokens end when the process stops")
    cpu = CpuPool(settings.cpu_workers, settings.cpu_queue_max)
    health = RedisHealth()
    ctx = AppContext(
        settings=settings,
        mongo=mongo_client,
        db=db,
        redis=redis_client,
        cpu=cpu,
        limiter=RateLimiter(settings, None if embedded_redis else redis_client, health),
        gate=RequestGate(redis_client, settings.redis_prefix, settings.rate_limit_per_minute, embedded=embedded_redis,
                         health=health),
        redis_health=health,
        tokens=TokenService(secret, settings.access_token_ttl_s, device_ttl_s=settings.device_token_ttl_s),
        passwords=PasswordHasher(cpu, settings.bcrypt_rounds),
        sessions=SessionState(
            redis_client, db, settings.redis_prefix, settings.session_cache_ttl_s, settings.access_token_ttl_s + 60,
            health,
        ),
        products=load_products(settings),
        rustore=create_rustore_client(settings, clock),
        notifications=create_notification_decoder(settings),
        embedded_mongo=embedded_mongo,
        embedded_redis=embedded_redis,
        clock=clock or utcnow,
    )
    ctx.entitlements = load_entitlements(settings, ctx.products)  # refuses unknown products before anything runs
    configure_events(ctx)
    ctx.closers.append(cpu.shutdown)
    if ctx.rustore is not None:
        ctx.closers.append(ctx.rustore.close)
        ctx.recovery = attach_outage_recovery(ctx)
        ctx.closers.append(ctx.recovery.close)
    ctx.generator = make_provider(settings.ai_api_url, settings.ai_api_key, settings.ai_model, settings.ai_timeout_s)
    ctx.closers.append(ctx.generator.close)
    ctx.oauth = create_oauth_providers(settings)
    ctx.mailer = Mailer(settings, secret)
    ctx.closers.append(ctx.oauth.close)
    if mongo is None:
        ctx.closers.append(mongo_client.close)
    if redis is None:
        ctx.closers.append(redis_client.aclose)
    return ctx
