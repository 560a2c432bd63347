"""The container health probe against a real server, over HTTP and over the server's own TLS."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from core.healthcheck import probe
from tests.core.test_settings import ROOT, _free_port


def self_signed(folder: Path) -> tuple[str, str]:
    """A throwaway certificate for api.example.com (not 127.0.0.1: the probe must not insist on the name)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "api.example.com")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=1))
            .not_valid_after(now + dt.timedelta(days=1)).sign(key, hashes.SHA256()))
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_file), str(key_file)


def environ(port: int, **extra: str) -> dict[str, str]:
    return {"SETTINGS_FILE": str(ROOT / "settings.toml"), "APP_ENV": "test", "PORT": str(port), **extra}


async def test_probe_is_healthy_only_when_the_path_answers_2xx(served):
    service, _ = served
    env = environ(service.port)
    assert await asyncio.to_thread(probe, "/api/health", env) == 0
    assert await asyncio.to_thread(probe, "/api/no-such-route", env) == 1
    assert await asyncio.to_thread(probe, "/api/health", environ(_free_port())) == 1  # nothing listening


async def test_probe_speaks_https_to_a_server_terminating_tls_itself(start_server, tmp_path, capsys):
    cert, key = self_signed(tmp_path)
    service, _ = await start_server(tls_cert_file=cert, tls_key_file=key)
    tls = environ(service.port, TLS_CERT_FILE=cert, TLS_KEY_FILE=key)
    assert await asyncio.to_thread(probe, "/api/health", tls) == 0
    # Plain HTTP to a TLS port is what the old inline probe did: it never became healthy.
    assert await asyncio.to_thread(probe, "/api/health", environ(service.port)) == 1
    assert "unhealthy: http://127.0.0.1:" in capsys.readouterr().err
