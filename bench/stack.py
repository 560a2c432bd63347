"""The processes of one load-benchmark setup: RuStore emulator, our seeded servers or the bare ones, the balancer."""

from __future__ import annotations

import asyncio
import base64
import os
import secrets
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from bench.common import ROOT, free_port
from bench.procs import Child, child
from bench.store import drop_database, server_env
from rustore.emulator import generate_key_pair

APP_ID, PACKAGE, KEY_ID, PRODUCT = 3399750, "com.example.bench", "1001", "points_100"


@dataclass
class Setup:
    """Secrets and URLs shared by every server of one run."""

    emulator: str
    emulator_child: Child
    env: dict[str, str]
    secret: str
    key_b64: str
    redis_url: str
    work: Path
    runs: int = 0


@dataclass
class Role:
    """Our server or the bare one, in one or more processes; `base` is where requests go."""

    name: str
    servers: list[Child]
    base: str
    balancer: Child | None = None
    outputs: list[Path] = field(default_factory=list)

    @property
    def children(self) -> list[Child]:
        """The servers and the balancer, if any."""
        return self.servers + ([self.balancer] if self.balancer else [])


async def start_emulator(stack: AsyncExitStack, work: Path, redis_url: str) -> Setup:
    """The RuStore emulator in its own process (records notifications, delivers none) and the servers' environment."""
    pair, key = generate_key_pair(), base64.b64encode(os.urandom(32)).decode()
    pem = pair.public_key_pem if isinstance(pair.public_key_pem, str) else pair.public_key_pem.decode()
    (work / "public.pem").write_text(pem)
    port = free_port()
    emu = await stack.enter_async_context(child(
        "emulator", ["-m", "rustore.emulator", "--port", str(port), "--app-id", str(APP_ID), "--package-name", PACKAGE,
                     "--key-id", KEY_ID, "--public-key-file", str(work / "public.pem"), "--notification-key", key],
        {}, ready_path="/_emulator/state", port=port))
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{emu.base}/_emulator/apps/{APP_ID}/products",
                             json={"productId": PRODUCT, "productType": "consumable", "price": 9900}) as resp:
            assert resp.status == 201, await resp.text()
    secret = secrets.token_hex(32)
    env = {"APP_ENV": "development", "LOG_LEVEL": "WARNING", "JOBS_ENABLED": "false", "JWT_SECRET": secret,
           "ACCESS_TOKEN_TTL_S": "3600", "RATE_LIMIT_PER_MINUTE": "100000000", "AUTH_RATE_LIMIT_PER_MINUTE": "100000000",
           "BCRYPT_ROUNDS": "12", "REDIS_URL": redis_url, "RUSTORE_API_URL": emu.base, "RUSTORE_KEY_ID": KEY_ID,
           "RUSTORE_PRIVATE_KEY": pair.private_key_b64, "RUSTORE_APP_ID": str(APP_ID), "RUSTORE_PACKAGE_NAME": PACKAGE,
           "RUSTORE_NOTIFICATION_KEY": key, "RUSTORE_WEBHOOK_ALLOWED_IPS": "127.0.0.0/8",
           "VERIFY_RATE_LIMIT_PER_MINUTE": "100000000", "SETTINGS_FILE": str(ROOT / "settings.toml")}
    return Setup(emu.base, emu, env, secret, key, redis_url, work)


async def start_role(stack: AsyncExitStack, setup: Setup, name: str, processes: int, users: int, entries: int,
                     templates: Path | None = None) -> Role:
    """Seed and start `processes` servers of kind name ("ours" or "bare"), behind a balancer when more than one."""
    setup.runs += 1
    prefix = f"bench:load:{os.getpid()}:{setup.runs}:{name}:"
    script = "bench/seeded_server.py" if name.startswith("ours") else "bench/bare.py"
    store = server_env(setup.runs, name)
    if store:  # registered first, so it runs after the servers stopped
        stack.push_async_callback(drop_database, store["MONGO_URL"], store["MONGO_DB"])
    specs, outputs = [], []
    for i in range(processes):
        out = setup.work / f"{name}-{setup.runs}-{i}.json"
        outputs.append(out)
        # On a shared MongoDB the first process seeds and the others serve the same data.
        env = {**setup.env, **store, "REDIS_PREFIX": prefix, "BENCH_USERS": str(users), "BENCH_ENTRIES": str(entries),
               "BENCH_OUT": str(out), "BENCH_TEMPLATES": str(templates or ""),
               "BENCH_SEED": "1" if not store or i == 0 else "0"}
        specs.append(child(f"{name}-{i}", [script], env))
    if store:  # one after another: the first is ready only once it has seeded
        servers = [await stack.enter_async_context(spec) for spec in specs]
    else:
        servers = list(await asyncio.gather(*(stack.enter_async_context(spec) for spec in specs)))
    if processes == 1:
        return Role(name, servers, servers[0].base, outputs=outputs)
    port = free_port()
    argv = ["-m", "bench.balancer", "--port", str(port), *(f"--backend=127.0.0.1:{s.port}" for s in servers)]
    balancer = await stack.enter_async_context(child(f"{name}-balancer", argv, {}, port=port))
    return Role(name, servers, balancer.base, balancer, outputs)
