"""Client authorization against the emulator: token cache, single-flight refresh, typed auth errors."""

from __future__ import annotations

from datetime import timedelta

import pytest

from rustore import AuthErrorKind, RuStoreAuthError
from rustore.emulator import Emulator, EmulatorApp, FakeClock
from rustore.signing import KeyPair
from tests.rustore.conftest import ClientFactory
from tests.support.overlap import InFlight


async def test_token_is_fetched_once_and_reused(emulator: Emulator, make_client: ClientFactory) -> None:
    client = make_client()
    for _ in range(5):
        await client.list_catalog_subscriptions()
    assert emulator.auth_calls == 1


async def test_fifty_concurrent_callers_share_exactly_one_auth_call(
    emulator: Emulator, make_client: ClientFactory
) -> None:
    client = make_client()
    emulator.set_fault("auth", "slow", delay_s=0.1)  # keeps the refresh in flight while everyone arrives
    results = await (callers := InFlight()).gather(*(client.list_catalog_subscriptions() for _ in range(50)))
    assert callers.peak == 50  # every caller was waiting before the first one got its answer
    assert len(results) == 50
    assert emulator.auth_calls == 1


async def test_fifty_concurrent_callers_after_expiry_refresh_exactly_once(
    emulator: Emulator, make_client: ClientFactory
) -> None:
    # A generous timeout: on a loaded machine the 0.5 s default let the auth call time out and be retried,
    # which counts a second auth call at RuStore without a second refresh.
    client = make_client(timeout_s=10.0, retry_deadline_s=20.0)
    await client.list_catalog_subscriptions()
    emulator.expire_tokens()
    await (callers := InFlight()).gather(*(client.list_catalog_subscriptions() for _ in range(50)))
    assert callers.peak == 50
    assert emulator.auth_calls == 2


async def test_token_is_refreshed_before_its_ttl_runs_out(
    emulator: Emulator, make_client: ClientFactory
) -> None:
    client = make_client()
    await client.list_catalog_subscriptions()
    emulator.advance_clock(timedelta(seconds=800))
    await client.list_catalog_subscriptions()
    assert emulator.auth_calls == 1
    emulator.advance_clock(timedelta(seconds=41))  # 841 s: inside the 60 s refresh margin
    await client.list_catalog_subscriptions()
    assert emulator.auth_calls == 2
    assert emulator.stats["catalog_subscriptions"] == 3  # no call was wasted on a dying token


async def test_expired_token_answer_refreshes_once_and_retries(
    emulator: Emulator, make_client: ClientFactory
) -> None:
    client = make_client()
    await client.list_catalog_subscriptions()
    emulator.set_fault("catalog_subscriptions", "expired_token", count=1)
    await client.list_catalog_subscriptions()
    assert emulator.auth_calls == 2
    assert emulator.stats["catalog_subscriptions"] == 3


async def test_token_rejected_twice_is_an_auth_error_not_a_loop(
    emulator: Emulator, make_client: ClientFactory
) -> None:
    client = make_client()
    emulator.set_fault("catalog_subscriptions", "expired_token")
    with pytest.raises(RuStoreAuthError) as info:
        await client.list_catalog_subscriptions()
    assert info.value.kind is AuthErrorKind.TOKEN_REJECTED
    assert emulator.stats["catalog_subscriptions"] == 2
    assert emulator.auth_calls == 2


async def test_wrong_private_key_is_reported_as_bad_signature(
    emulator: Emulator, make_client: ClientFactory, stranger_key_pair: KeyPair
) -> None:
    client = make_client(private_key_b64=stranger_key_pair.private_key_b64)
    with pytest.raises(RuStoreAuthError) as info:
        await client.list_catalog_subscriptions()
    assert info.value.kind is AuthErrorKind.BAD_SIGNATURE
    assert info.value.http_status == 400
    assert "Signature encode error" in str(info.value)
    assert emulator.auth_calls == 1  # 4xx is never retried


async def test_unknown_and_disabled_keys_are_told_apart(emulator: Emulator, make_client: ClientFactory) -> None:
    with pytest.raises(RuStoreAuthError) as info:
        await make_client(key_id="404").list_catalog_subscriptions()
    assert info.value.kind is AuthErrorKind.UNKNOWN_KEY
    emulator.disable_key("123")
    with pytest.raises(RuStoreAuthError) as info:
        await make_client().list_catalog_subscriptions()
    assert info.value.kind is AuthErrorKind.DISABLED_KEY


async def test_clock_skew_is_reported_as_such(make_client: ClientFactory, clock: FakeClock) -> None:
    client = make_client(clock_fn=lambda: clock.now() + timedelta(minutes=5))
    with pytest.raises(RuStoreAuthError) as info:
        await client.list_catalog_subscriptions()
    assert info.value.kind is AuthErrorKind.CLOCK_SKEW
    assert "NTP" in str(info.value)


async def test_error_messages_never_contain_token_or_key(
    emulator: Emulator, make_client: ClientFactory, key_pair: KeyPair
) -> None:
    client = make_client()
    await client.list_catalog_subscriptions()
    tokens = list(emulator.keys.tokens)
    emulator.set_fault("catalog_subscriptions", "expired_token")
    with pytest.raises(RuStoreAuthError) as info:
        await client.list_catalog_subscriptions()
    text = str(info.value) + repr(info.value) + repr(client.config)
    assert not any(token in text for token in emulator.keys.tokens) and tokens
    assert key_pair.private_key_b64[:40] not in text


async def test_key_not_covering_the_app_is_forbidden(
    emulator: Emulator, make_client: ClientFactory
) -> None:
    emulator.add_app(EmulatorApp(app_id=7, package_name="com.other"))
    with pytest.raises(RuStoreAuthError) as info:
        await make_client(app_id=7).list_catalog_products()
    assert info.value.kind is AuthErrorKind.FORBIDDEN
