"""Google ID tokens, verified locally against Google's published signing keys.

Confirmed with the search tool (sources named so the next reader can re-check):

- Keys: ``https://www.googleapis.com/oauth2/v3/certs`` (a JWK set) is the ``jwks_uri`` of Google's OpenID
  discovery document (accounts.google.com/.well-known/openid-configuration, copied in many public repos),
  which also lists ``id_token_signing_alg_values_supported: ["RS256"]``.
- Issuers: ``accounts.google.com`` and ``https://accounts.google.com`` (google-auth-library-python,
  google/oauth2/id_token.py, ``_GOOGLE_ISSUERS``).
- Google's "verify the ID token on your server side" steps (quoted in public threads): signature by one of
  Google's keys, which rotate ("examine the Cache-Control header ... to determine when you should retrieve
  them again"); ``aud`` equal to one of the app's client ids; ``exp`` not passed; ``sub`` is the only stable
  identifier; ``email_verified`` says whether ``email`` is confirmed.

Our rules on top: RS256 only (``alg: none`` and HS256-with-the-public-key are refused before any key is
looked up), a small clock leeway, the cache lifetime clamped so a missing or zero ``max-age`` cannot make us
fetch per request, and at most one refetch per interval for an unknown ``kid`` so a flood of made-up key
ids cannot make us hammer Google. When a fetch fails, keys we already hold keep verifying (up to a day past
their expiry) and further fetches wait a short back-off, so requests queued behind an outage neither each
wait out a timeout nor flood Google; without a usable key the answer is ProviderUnavailable (503).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Iterable

import jwt
from loguru import logger

from oauth.errors import InvalidProviderToken, ProviderUnavailable
from oauth.identity import ProviderIdentity
from oauth.transport import HttpClient

DEFAULT_JWKS_URL = "https://www.googleapis.com/oauth2/v3/certs"
ISSUERS = ("accounts.google.com", "https://accounts.google.com")
ALGORITHM = "RS256"
LEEWAY_S = 30
DEFAULT_LIFETIME_S = 300.0  # no max-age at all: Google always sends one, so this is a fallback only
MIN_LIFETIME_S = 60.0
MAX_LIFETIME_S = 86400.0
REFETCH_INTERVAL_S = 60.0  # at most one refetch per minute for unknown key ids
STALE_GRACE_S = 86400.0  # Google unreachable: keep using known keys this long past their expiry
FAILURE_BACKOFF_S = 5.0  # after a failed fetch, answer from the cache (or 503) this long without retrying
_MAX_AGE = re.compile(r"(?:^|,)\s*max-age\s*=\s*(\d+)\s*(?:,|$)", re.IGNORECASE)


def cache_lifetime(cache_control: str | None) -> float:
    """Seconds the key set may be cached according to Cache-Control, clamped to [1 min, 1 day]."""
    match = _MAX_AGE.search(cache_control or "")
    seconds = float(match.group(1)) if match else DEFAULT_LIFETIME_S
    return min(max(seconds, MIN_LIFETIME_S), MAX_LIFETIME_S)


def parse_jwks(body: object) -> dict[str, jwt.PyJWK]:
    """The usable RSA signing keys of a JWK set, by kid (keys of other types or uses are skipped)."""
    if not isinstance(body, dict) or not isinstance(body.get("keys"), list):
        raise ProviderUnavailable("Google's key set is not a JWK set")
    keys: dict[str, jwt.PyJWK] = {}
    for item in body["keys"]:
        if not isinstance(item, dict) or item.get("kty") != "RSA" or item.get("use", "sig") != "sig":
            continue
        kid = item.get("kid")
        if not isinstance(kid, str) or item.get("alg", ALGORITHM) != ALGORITHM:
            continue
        try:
            keys[kid] = jwt.PyJWK(item, algorithm=ALGORITHM)
        except jwt.PyJWTError:
            continue
    if not keys:
        raise ProviderUnavailable("Google's key set holds no usable RSA key")
    return keys


class GoogleKeys:
    """Google's signing keys by kid, cached by Cache-Control; one fetch at a time (concurrent callers wait)."""

    def __init__(self, http: HttpClient, url: str = DEFAULT_JWKS_URL, *,
                 clock: Callable[[], float] = time.monotonic, refetch_interval_s: float = REFETCH_INTERVAL_S) -> None:
        self._http = http
        self.url = url
        self._clock = clock
        self._refetch_interval_s = refetch_interval_s
        self._keys: dict[str, jwt.PyJWK] = {}
        self._expires_at = float("-inf")
        self._fetched_at = float("-inf")
        self._failing = False
        self._lock = asyncio.Lock()
        self.fetches = 0  # successful and failed fetch attempts, for tests and debugging

    async def get(self, kid: str) -> jwt.PyJWK:
        """The key with this id; fetches when the cache expired or (rate-limited) when the id is new."""
        if kid in self._keys and self._clock() < self._expires_at:
            return self._keys[kid]
        async with self._lock:
            now = self._clock()
            fresh = now < self._expires_at
            if kid in self._keys and fresh:
                return self._keys[kid]  # another request refreshed the keys while we waited
            since = now - self._fetched_at
            if fresh and since < self._refetch_interval_s:
                raise InvalidProviderToken(f"unknown Google key id {kid[:64]!r}")
            if self._failing and since < FAILURE_BACKOFF_S:
                # Requests queued behind a failed fetch must not each wait out their own timeout.
                return self._stale(kid, now)
            try:
                await self._fetch(now)
            except ProviderUnavailable:
                self._failing = True
                return self._stale(kid, now)
            self._failing = False
            if kid not in self._keys:
                raise InvalidProviderToken(f"unknown Google key id {kid[:64]!r}")
            return self._keys[kid]

    def _stale(self, kid: str, now: float) -> jwt.PyJWK:
        if kid in self._keys and now - self._expires_at < STALE_GRACE_S:
            logger.warning("Google signing keys could not be refreshed; using the cached ones")
            return self._keys[kid]
        raise ProviderUnavailable("Google signing keys are unavailable")

    async def _fetch(self, now: float) -> None:
        self.fetches += 1
        self._fetched_at = now
        resp = await self._http.request("GET", self.url)
        if resp.status != 200:
            raise ProviderUnavailable(f"Google keys answered HTTP {resp.status}")
        self._keys = parse_jwks(resp.body)
        self._expires_at = now + cache_lifetime(resp.headers.get("Cache-Control"))


class GoogleVerifier:
    """Checks a Google ID token (signature, alg, iss, aud, exp, iat) and returns who it names."""

    name = "google"

    def __init__(self, client_ids: Iterable[str], keys: GoogleKeys, *, leeway_s: float = LEEWAY_S) -> None:
        self.client_ids = tuple(c for c in client_ids if c)
        if not self.client_ids:
            raise ValueError("at least one Google client id is required")
        self.keys = keys
        self._leeway_s = leeway_s

    async def verify(self, id_token: str) -> ProviderIdentity:
        """The identity an ID token names; InvalidProviderToken for anything we must not trust."""
        try:
            header = jwt.get_unverified_header(id_token)
        except jwt.PyJWTError:
            raise InvalidProviderToken("not a JWT") from None
        # Pinned before any key lookup: `none` and HS256 signed with our public key never get further.
        if header.get("alg") != ALGORITHM:
            raise InvalidProviderToken(f"algorithm {str(header.get('alg'))[:16]!r} refused")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise InvalidProviderToken("no key id")
        key = await self.keys.get(kid)
        try:
            claims = jwt.decode(
                id_token, key.key, algorithms=[ALGORITHM], audience=self.client_ids, issuer=ISSUERS,
                leeway=self._leeway_s, options={"require": ["iss", "aud", "exp", "iat", "sub"]},
            )
        except jwt.PyJWTError as exc:
            raise InvalidProviderToken(f"{type(exc).__name__}: {exc}") from None
        subject = claims["sub"]
        if not isinstance(subject, str) or not 0 < len(subject) <= 255:
            raise InvalidProviderToken("unusable sub")
        email = claims.get("email")
        # Google has sent email_verified both as a boolean and as the string "true".
        verified = claims.get("email_verified") in (True, "true")
        usable = isinstance(email, str) and verified and 0 < len(email) <= 254
        return ProviderIdentity(self.name, subject, email.strip().lower() if usable else None)
