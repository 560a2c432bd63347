"""Google ID token verification against a fake JWKS server: claims, algorithms, key cache and rotation, outages."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from oauth import GoogleKeys, GoogleVerifier, HttpClient, InvalidProviderToken, ProviderUnavailable
from oauth.google import cache_lifetime
from tests.oauth.fakes import GOOGLE_CLIENT, closed_port_url, rsa_key, running_google


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def google():
    async with running_google() as fake:
        yield fake


@pytest.fixture
async def http():
    client = HttpClient(timeout_s=2.0)
    yield client
    await client.close()


def make_verifier(http, url, clock=None) -> GoogleVerifier:
    return GoogleVerifier([GOOGLE_CLIENT, "second-client"], GoogleKeys(http, url, clock=clock or time.monotonic))


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


async def test_valid_token_names_the_subject_and_verified_email(google, http):
    identity = await make_verifier(http, google.jwks_url).verify(google.id_token(email="Ann@Gmail.com"))
    assert (identity.provider, identity.subject, identity.email) == ("google", "110169484474386276334", "ann@gmail.com")


async def test_email_is_used_only_when_verified(google, http):
    verifier = make_verifier(http, google.jwks_url)
    assert (await verifier.verify(google.id_token(email_verified=False))).email is None
    assert (await verifier.verify(google.id_token(email_verified=None))).email is None
    assert (await verifier.verify(google.id_token(email_verified="true"))).email == "ann@gmail.com"
    assert (await verifier.verify(google.id_token(email=None))).email is None


async def test_both_google_issuers_and_every_configured_audience_are_accepted(google, http):
    verifier = make_verifier(http, google.jwks_url)
    for token in (google.id_token(iss="accounts.google.com"), google.id_token(aud="second-client")):
        identity = await verifier.verify(token)
        assert (identity.provider, identity.subject, identity.email) == ("google", "110169484474386276334", "ann@gmail.com")


@pytest.mark.parametrize("claims", [
    {"exp": int(time.time()) - 120},  # expired beyond the leeway
    {"aud": "someone-elses-client"},
    {"iss": "https://evil.example.com"},
    {"iat": int(time.time()) + 3600},  # issued in the future
    {"sub": None},
    {"exp": None},
])
async def test_bad_claims_are_refused(google, http, claims):
    with pytest.raises(InvalidProviderToken):
        await make_verifier(http, google.jwks_url).verify(google.id_token(**claims))


async def test_expiry_has_a_small_leeway(google, http):
    identity = await make_verifier(http, google.jwks_url).verify(google.id_token(exp=int(time.time()) - 10))
    assert (identity.provider, identity.subject) == ("google", "110169484474386276334")


async def test_forged_signature_is_refused(google, http):
    forged = google.id_token("k1", key=rsa_key("attacker"))  # right kid, someone else's key
    with pytest.raises(InvalidProviderToken, match="Signature"):
        await make_verifier(http, google.jwks_url).verify(forged)


async def test_alg_none_is_refused_before_any_key_lookup(google, http):
    with pytest.raises(InvalidProviderToken, match="algorithm"):
        await make_verifier(http, google.jwks_url).verify(google.id_token(alg="none"))
    assert google.fetches == 0


async def test_hs256_signed_with_the_public_key_is_refused(google, http):
    pem = rsa_key("k1").public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    now = int(time.time())
    header = b64(json.dumps({"alg": "HS256", "kid": "k1", "typ": "JWT"}).encode())
    payload = b64(json.dumps({"iss": "https://accounts.google.com", "aud": GOOGLE_CLIENT, "sub": "1",
                              "iat": now, "exp": now + 600}).encode())
    signature = b64(hmac.new(pem, f"{header}.{payload}".encode(), hashlib.sha256).digest())
    with pytest.raises(InvalidProviderToken, match="algorithm"):
        await make_verifier(http, google.jwks_url).verify(f"{header}.{payload}.{signature}")


async def test_garbage_and_tokens_without_kid_are_refused(google, http):
    verifier = make_verifier(http, google.jwks_url)
    with pytest.raises(InvalidProviderToken):
        await verifier.verify("not-a-jwt")
    no_kid = jwt.encode({"sub": "1"}, rsa_key("k1"), algorithm="RS256")
    with pytest.raises(InvalidProviderToken, match="key id"):
        await verifier.verify(no_kid)


async def test_keys_are_cached_for_max_age_then_refetched(google, http):
    clock = Clock()
    google.max_age = 600
    verifier = make_verifier(http, google.jwks_url, clock)
    for _ in range(3):
        await verifier.verify(google.id_token())
    assert google.fetches == 1
    clock.now += 599
    await verifier.verify(google.id_token())
    assert google.fetches == 1
    clock.now += 2
    await verifier.verify(google.id_token())
    assert google.fetches == 2


def test_cache_lifetime_follows_max_age_within_bounds():
    assert cache_lifetime("public, max-age=19742, must-revalidate, no-transform") == 19742
    assert cache_lifetime("max-age=0") == 60  # never per request
    assert cache_lifetime("max-age=99999999") == 86400
    assert cache_lifetime(None) == 300
    assert cache_lifetime("no-store") == 300


async def test_key_rotation_triggers_exactly_one_refetch(google, http):
    clock = Clock()
    verifier = make_verifier(http, google.jwks_url, clock)
    await verifier.verify(google.id_token("k1"))
    google.kids = ["k1", "k2"]  # Google publishes the new key before signing with it
    clock.now += 61
    await verifier.verify(google.id_token("k2"))
    await verifier.verify(google.id_token("k2"))
    await verifier.verify(google.id_token("k1"))
    assert google.fetches == 2


async def test_a_flood_of_unknown_kids_causes_at_most_one_refetch_per_interval(google, http):
    clock = Clock()
    verifier = make_verifier(http, google.jwks_url, clock)
    await verifier.verify(google.id_token("k1"))
    clock.now += 61
    for i in range(20):
        with pytest.raises(InvalidProviderToken, match="unknown Google key id"):
            await verifier.verify(google.id_token(f"random-{i}", key=rsa_key("attacker")))
    assert google.fetches == 2
    clock.now += 61
    with pytest.raises(InvalidProviderToken):
        await verifier.verify(google.id_token("random-x", key=rsa_key("attacker")))
    assert google.fetches == 3


@pytest.mark.parametrize("mode", ["500", "html"])
async def test_google_failing_is_unavailable(google, http, mode):
    google.mode = mode
    with pytest.raises(ProviderUnavailable):
        await make_verifier(http, google.jwks_url).verify(google.id_token())


async def test_google_unreachable_is_unavailable(google, http):
    with pytest.raises(ProviderUnavailable):
        await make_verifier(http, closed_port_url() + "/oauth2/v3/certs").verify(google.id_token())


async def test_google_timeout_is_unavailable(google):
    google.mode = "slow"
    client = HttpClient(timeout_s=0.2)
    try:
        with pytest.raises(ProviderUnavailable):
            await make_verifier(client, google.jwks_url).verify(google.id_token())
    finally:
        await client.close()


async def test_cached_keys_keep_working_while_google_is_down_and_failures_back_off(google, http):
    clock = Clock()
    verifier = make_verifier(http, google.jwks_url, clock)
    await verifier.verify(google.id_token())
    google.mode = "500"
    clock.now += 3601  # keys expired, refresh fails: the cached key still verifies
    await verifier.verify(google.id_token())
    await verifier.verify(google.id_token())
    assert google.fetches == 2  # the second request did not retry inside the back-off
    with pytest.raises(ProviderUnavailable):
        await verifier.verify(google.id_token("k9", key=rsa_key("k9")))  # unknown kid while down
