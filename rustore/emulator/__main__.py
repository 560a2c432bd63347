"""Run the emulator standalone: `python -m rustore.emulator --port 8080 --app-id 1 --package-name com.example`."""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import signal
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

from rustore.emulator.clock import FakeClock
from rustore.emulator.config import EmulatorApp
from rustore.emulator.core import Emulator
from rustore.signing import generate_key_pair


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(prog="python -m rustore.emulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--config", type=Path, help='JSON: {"apps": [...], "products": [{"appId": ..., ...}]}')
    parser.add_argument("--app-id", type=int)
    parser.add_argument("--package-name")
    parser.add_argument("--key-id", default="1")
    parser.add_argument("--public-key-file", type=Path, help="PEM; omitted = generate a pair and print the private key")
    parser.add_argument("--notification-url")
    parser.add_argument("--notification-key", help="Base64 AES-256 key; omitted with a URL = generated and printed")
    parser.add_argument("--sandbox-notification-url")
    parser.add_argument("--sandbox-notification-key")
    parser.add_argument("--fake-clock", action="store_true", help="time moves only via /_emulator/clock")
    parser.add_argument("--hold-timeout-s", type=float, default=6 * 3600)
    parser.add_argument("--retry-scale", type=float, default=1.0, help="compress the 36 h webhook retry schedule")
    parser.add_argument("--record-shape", choices=("minimal", "rich"), default="minimal",
                        help="P3/P4 bodies: RuStore's published schema (default) or with purchaseId, quantity, appUserId")
    parser.add_argument("--control-token", help="require X-Emulator-Token on /_emulator/ calls")
    return parser.parse_args(argv)


def _aes_key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def build(args: argparse.Namespace) -> tuple[Emulator, list[str]]:
    """The emulator described by the options, plus lines telling the developer generated secrets."""
    notes: list[str] = []
    config: dict[str, Any] = json.loads(args.config.read_text()) if args.config else {}
    apps = [EmulatorApp(
        app_id=int(a["appId"]), package_name=a["packageName"], key_id=a.get("keyId"), public_key=a.get("publicKey"),
        notification_url=a.get("notificationUrl"), notification_key_b64=a.get("notificationKey"),
        sandbox_notification_url=a.get("sandboxNotificationUrl"),
        sandbox_notification_key_b64=a.get("sandboxNotificationKey"),
    ) for a in config.get("apps", [])]
    if args.app_id is not None:
        apps.append(EmulatorApp(app_id=args.app_id, package_name=args.package_name or "com.example.app",
                                key_id=args.key_id,
                                public_key=args.public_key_file.read_text() if args.public_key_file else None,
                                notification_url=args.notification_url, notification_key_b64=args.notification_key,
                                sandbox_notification_url=args.sandbox_notification_url,
                                sandbox_notification_key_b64=args.sandbox_notification_key))
    for app in apps:
        if app.key_id and not app.public_key:
            pair = generate_key_pair()
            app.public_key = pair.public_key_pem
            notes.append(f"app {app.app_id}: RUSTORE_KEY_ID={app.key_id} RUSTORE_PRIVATE_KEY={pair.private_key_b64}")
        for attr, url in (("notification_key_b64", app.notification_url),
                          ("sandbox_notification_key_b64", app.sandbox_notification_url)):
            if url and not getattr(app, attr):
                setattr(app, attr, _aes_key())
                env = "RUSTORE_SANDBOX_NOTIFICATION_KEY" if attr.startswith("sandbox") else "RUSTORE_NOTIFICATION_KEY"
                notes.append(f"app {app.app_id}: {env}={getattr(app, attr)}")
    emulator = Emulator(apps, clock=FakeClock() if args.fake_clock else None,
                        hold_timeout=timedelta(seconds=args.hold_timeout_s), retry_scale=args.retry_scale,
                        control_token=args.control_token, record_shape=args.record_shape)
    for product in config.get("products", []):
        emulator.add_product(int(product["appId"]), product)
    return emulator, notes


async def serve(args: argparse.Namespace) -> None:
    """Start, print the base URL and generated secrets, run until SIGINT/SIGTERM."""
    emulator, notes = build(args)
    url = await emulator.start(args.port, args.host)
    print(f"RuStore emulator listening on {url} (control API: {url}/_emulator/state)", flush=True)
    for line in notes:
        print(line, flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await emulator.stop()


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    asyncio.run(serve(parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
