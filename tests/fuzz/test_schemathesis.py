"""Schemathesis against the live server's own OpenAPI document, authenticated, every operation, bounded in time.

Checks (tests/fuzz/schemathesis.toml): no 5xx, answers match their documented status codes, content types,
headers and schemas, schema-invalid requests are refused, auth is not ignored, unsupported methods get 405,
no answer takes over 5 s, and every 4xx/5xx has the shared error shape (tests/fuzz/hooks.py). The seed is fixed;
a failure replays with `python -m tests.fuzz.run --seed <seed>` (tests/fuzz/README.md).
"""

from __future__ import annotations

import re
import time

import pytest

from tests.fuzz.harness import SEED, WALL_CLOCK_S, fuzz_target, run_schemathesis
from tests.support.http import ApiClient


def report(output: str) -> str:
    """The part of Schemathesis' output worth reading on a failure."""
    start = output.find("FAILURES")
    return output[start if start >= 0 else -6000:][:20000]


@pytest.mark.timeout(WALL_CLOCK_S + 30)
async def test_schemathesis_finds_no_server_error_schema_violation_or_stray_error_shape():
    async with fuzz_target() as target:
        client = ApiClient(target.base_url)
        try:
            doc = (await client.get("/api/openapi.json")).json
        finally:
            await client.close()
        started = time.monotonic()
        code, output = await run_schemathesis(target)
        elapsed = time.monotonic() - started
    assert code == 0, f"Schemathesis failed (seed {SEED}, {elapsed:.0f} s):\n{report(output)}"
    operations = sum(len(item) for item in doc["paths"].values())
    tested = re.search(r"Tested: (\d+)", output)
    assert tested and int(tested.group(1)) == operations, report(output)
    for phase in ("Coverage", "Fuzzing", "Stateful"):
        assert re.search(rf"✅ {phase}", output), f"phase {phase} did not pass:\n{report(output)}"
    assert elapsed < WALL_CLOCK_S
