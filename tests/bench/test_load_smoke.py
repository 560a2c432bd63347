"""The load benchmark's machinery for a few seconds at a low rate on a small data set, so it does not rot.

No timing assertions: only that every endpoint of the mix was sent to both servers and answered
without a 5xx, that the purchases were credited once and the audit is clean, and that the loop-lag
probe and the login storm reported.
"""

from __future__ import annotations

import os

from bench.load import parse, run
from bench.mix import WEIGHTS
from tests.conftest import TEST_REDIS_URL, _delete_prefix


async def test_load_benchmark_runs_every_endpoint_against_both_servers(tmp_path, redis_client):
    args = parse(["--rates", "30", "--seconds", "4", "--users", "50", "--entries", "500", "--uniform-mix",
                  "--storm-seconds", "1", "--storm-clients", "2", "--storm-users", "50", "--redis", TEST_REDIS_URL,
                  "--out", str(tmp_path / "load.json")])
    prefix = f"bench:load:{os.getpid()}:"  # bench/stack.py's per-run prefix, under this process's id
    try:
        result = await run(args)
    finally:
        # The servers keep a few keys without expiry (the catalog's last good copy): not left behind.
        await _delete_prefix(redis_client, prefix)
    assert [k async for k in redis_client.scan_iter(match=prefix + "*")] == []

    assert set(result["store_calls"]) == set(WEIGHTS)
    [rate] = result["rates"]
    for role in ("ours", "bare"):
        assert set(WEIGHTS) <= set(rate[role]), role
        assert all(row["5xx"] == 0 for row in rate[role].values()), rate[role]
        assert rate[role]["all"]["ok"] > 0
    [check] = rate["checks_per_process"]
    assert check["purchases"] > 0 and check["invoices_credited_more_than_once"] == [] and check["audit_ok"]
    assert rate["lag_per_process"][0]["samples"] > 0
    assert rate["seed"][0]["audit"]["ok"]
    [storm] = result["storm"]
    assert storm["lag"]["samples"] > 0 and storm["login_statuses"]
    assert (tmp_path / "load.json").exists()
