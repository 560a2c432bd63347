"""The outage benchmark's machinery, briefly: a small scripted outage with short settings, so it does not rot.

No timing assertion beyond the issue's own bound (60 s): every user is credited exactly once after the
fault is lifted, both phases report, and the server's outage-to-settled histogram saw the settlements.
"""

from __future__ import annotations

from bench.outage import parse, run
from tests.conftest import TEST_REDIS_URL


async def test_outage_benchmark_credits_every_pending_user_once_and_reports_outage_to_settled(redis_client):
    args = parse(["--pending", "8", "--outage-s", "0.5", "--reset-s", "0.5", "--probe-s", "0.2", "--rate", "50",
                  "--limit-s", "60", "--redis", TEST_REDIS_URL])
    result = await run(args)

    assert result["baseline_pay_to_credited"]["credited_once"] == 8
    outage = result["outage"]
    assert outage["credited_once"] == 8 and outage["credited_twice"] == 0 and outage["not_credited"] == 0
    assert set(outage["verify_statuses"]) == {503}  # every payment was made while RuStore was down
    assert outage["server_outage_to_settled"]["count"] >= 1
    assert result["targets_met"]["outage_to_credited_p99_lt_60s"]
