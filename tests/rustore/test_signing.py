"""Auth signing: interoperability with an independent verifier written from API.md §1.3, key loading, config."""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from rustore import RuStoreConfig, RuStoreConfigError
from rustore.signing import AuthSigner, KeyPair, format_timestamp, load_private_key


def independent_verify(body: dict[str, str], public_key_pem: str) -> None:
    """API.md §1.3 restated with plain `cryptography` calls: SHA-512, PKCS#1 v1.5, standard Base64."""
    public_key = serialization.load_pem_public_key(public_key_pem.encode())
    assert isinstance(public_key, rsa.RSAPublicKey)
    signature = base64.b64decode(body["signature"], validate=True)
    message = (body["keyId"] + body["timestamp"]).encode("utf-8")
    public_key.verify(signature, message, padding.PKCS1v15(), hashes.SHA512())


def test_client_auth_body_verifies_with_independent_verifier(key_pair: KeyPair) -> None:
    signer = AuthSigner("123", load_private_key(key_pair.private_key_b64))
    body = signer.auth_body(datetime(2024, 6, 18, 8, 49, 8, 290000, tzinfo=UTC))
    assert set(body) == {"keyId", "timestamp", "signature"}
    assert body["keyId"] == "123"
    assert body["timestamp"] == "2024-06-18T08:49:08.290+00:00"
    independent_verify(body, key_pair.public_key_pem)


def test_signature_does_not_verify_with_another_key(key_pair: KeyPair, stranger_key_pair: KeyPair) -> None:
    body = AuthSigner("123", load_private_key(key_pair.private_key_b64)).auth_body(datetime.now(UTC))
    with pytest.raises(InvalidSignature):
        independent_verify(body, stranger_key_pair.public_key_pem)


def test_signature_covers_key_id_and_timestamp_exactly(key_pair: KeyPair) -> None:
    body = AuthSigner("123", load_private_key(key_pair.private_key_b64)).auth_body(datetime.now(UTC))
    with pytest.raises(InvalidSignature):
        independent_verify({**body, "keyId": "1234"}, key_pair.public_key_pem)


def test_timestamp_has_milliseconds_and_offset_whatever_the_input_zone() -> None:
    moscow = timezone(timedelta(hours=3))
    stamp = format_timestamp(datetime(2024, 6, 18, 11, 49, 8, 290512, tzinfo=moscow))
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d", stamp)
    assert stamp == "2024-06-18T08:49:08.290+00:00"
    with pytest.raises(ValueError):
        format_timestamp(datetime(2024, 6, 18))


def test_private_key_loads_from_pem_file(tmp_path: Path, key_pair: KeyPair) -> None:
    der = base64.b64decode(key_pair.private_key_b64)
    pem = serialization.load_der_private_key(der, None).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path = tmp_path / "rustore.pem"
    path.write_bytes(pem)
    key = load_private_key(private_key_file=str(path))
    independent_verify(AuthSigner("9", key).auth_body(datetime.now(UTC)), key_pair.public_key_pem)


def test_console_key_with_line_breaks_is_accepted(key_pair: KeyPair) -> None:
    wrapped = "\n".join(key_pair.private_key_b64[i:i + 64] for i in range(0, len(key_pair.private_key_b64), 64))
    assert load_private_key(wrapped).key_size == 2048


def test_broken_private_key_is_a_config_error_that_does_not_echo_the_key() -> None:
    secret = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC" + "A" * 40
    with pytest.raises(RuStoreConfigError) as info:
        load_private_key(secret)
    assert secret not in str(info.value)
    with pytest.raises(RuStoreConfigError, match="cannot read"):
        load_private_key(private_key_file="/nonexistent/key.pem")


def test_config_from_env_reads_public_names_and_hides_secrets(key_pair: KeyPair) -> None:
    config = RuStoreConfig.from_env({
        "RUSTORE_KEY_ID": "77", "RUSTORE_PRIVATE_KEY": key_pair.private_key_b64, "RUSTORE_APP_ID": "3399750",
        "RUSTORE_PACKAGE_NAME": "com.example", "RUSTORE_TIMEOUT_S": "12.5",
        "RUSTORE_API_URL": "https://public-api-m.rustore.ru", "RUSTORE_NOTIFICATION_KEY": "c2VjcmV0",
    })
    assert (config.key_id, config.app_id, config.package_name, config.timeout_s) == ("77", 3399750, "com.example", 12.5)
    assert config.api_url == "https://public-api-m.rustore.ru"
    assert key_pair.private_key_b64 not in repr(config) and "c2VjcmV0" not in repr(config)


def test_config_from_env_defaults_and_validation() -> None:
    config = RuStoreConfig.from_env({"RUSTORE_KEY_ID": "1", "RUSTORE_PRIVATE_KEY_FILE": "/k.pem"})
    assert config.api_url == "https://public-api.rustore.ru" and config.app_id is None
    with pytest.raises(RuStoreConfigError, match="RUSTORE_PRIVATE_KEY"):
        RuStoreConfig.from_env({"RUSTORE_KEY_ID": "1"})
    with pytest.raises(RuStoreConfigError, match="RUSTORE_APP_ID"):
        RuStoreConfig.from_env({"RUSTORE_KEY_ID": "1", "RUSTORE_PRIVATE_KEY": "x", "RUSTORE_APP_ID": "abc"})
    with pytest.raises(RuStoreConfigError, match="RUSTORE_APP_ID is required"):
        config.require_app_id()
