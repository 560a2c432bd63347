"""Container health probe: `python -m core.healthcheck /api/health` asks this host's API, over HTTPS when it serves TLS.

Used by the Dockerfile's HEALTHCHECK and docker-compose.yml. It reads the same settings as the server
(PORT, TLS_CERT_FILE/TLS_KEY_FILE, SETTINGS_FILE), so a server that terminates TLS itself is probed over
HTTPS; the certificate is not verified because it names the public host, not 127.0.0.1.
"""

from __future__ import annotations

import os
import ssl
import sys
import urllib.request
from collections.abc import Mapping

from core.settings import SettingsError, load_settings

TIMEOUT_S = 2.0


def probe(path: str, environ: Mapping[str, str] | None = None) -> int:
    """GET `path` on 127.0.0.1 at the configured port; 0 when it answers 2xx, else 1 (with the reason on stderr)."""
    try:
        settings = load_settings(os.environ if environ is None else environ)
    except (SettingsError, OSError) as exc:
        print(f"unhealthy: settings: {exc}", file=sys.stderr)
        return 1
    context = None
    if settings.tls_enabled:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    url = f"{'https' if context else 'http'}://127.0.0.1:{settings.port}{path}"
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S, context=context) as resp:  # noqa: S310 - fixed local URL
            return 0 if 200 <= resp.status < 300 else 1
    except (OSError, ValueError) as exc:  # URLError, HTTPError (non-2xx), timeouts and refused connections
        print(f"unhealthy: {url}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(probe(sys.argv[1] if len(sys.argv) > 1 else "/api/health"))
