"""The distinct-request breaker on its own clock: counting, the rate rule, the window, half open, outage edges."""

from __future__ import annotations

import pytest

from rustore.breaker import BreakerOpenError, DistinctBreaker


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make(clock: Clock, **overrides) -> tuple[DistinctBreaker, list[str]]:
    options = {"min_failures": 3, "failure_rate": 0.5, "window_s": 10.0, "reset_s": 5.0, **overrides}
    breaker = DistinctBreaker(clock=clock, **options)
    events: list[str] = []
    breaker.add_listener(lambda event: events.append(event) if event != "call" else None)
    return breaker, events


def test_one_request_failing_any_number_of_times_is_one_failure():
    breaker, events = make(Clock())
    for _ in range(50):
        assert breaker.record("GET p|invoiceId=1|", "GET p", failed=True) is False
    assert breaker.current_state() == "closed" and events == []
    assert breaker.failure_rates() == {"GET p": 1.0}


def test_opens_on_enough_distinct_failures_at_the_failure_rate_only():
    clock = Clock()
    breaker, events = make(clock)
    for i in range(4):  # healthy traffic dilutes: 3 failures of 7 distinct requests is below 50%
        breaker.record(f"ok{i}", "GET q", failed=False)
    for i in range(3):
        breaker.record(f"bad{i}", "GET p", failed=True)
    assert breaker.current_state() == "closed"
    breaker.record("bad3", "GET p", failed=True)  # 4 of 8
    assert breaker.current_state() == "open" and breaker.opens == 1 and events == ["outage", "open"]
    with pytest.raises(BreakerOpenError) as refused:
        breaker.before_call()
    assert refused.value.remaining_s == pytest.approx(5.0)


def test_failures_leave_the_window_and_stop_counting():
    clock = Clock()
    breaker, _ = make(clock)
    breaker.record("a", "GET p", failed=True)
    breaker.record("b", "GET p", failed=True)
    clock.now += 11
    breaker.record("c", "GET p", failed=True)
    assert breaker.current_state() == "closed" and breaker.failure_rates() == {"GET p": 1.0}


def test_half_open_admits_one_trial_whose_answer_closes_or_reopens():
    clock = Clock()
    breaker, events = make(clock, min_failures=2)
    breaker.record("a", "GET p", failed=True)
    breaker.record("b", "GET p", failed=True)
    clock.now += 5
    assert breaker.current_state() == "half_open"
    assert breaker.before_call() is True
    with pytest.raises(BreakerOpenError):
        breaker.before_call()  # the trial is in flight
    breaker.record("c", "GET p", failed=True, trial=True)
    assert breaker.current_state() == "open" and breaker.opens == 2
    clock.now += 5
    assert breaker.before_call() is True
    breaker.record("a", "GET p", failed=False, trial=True)
    assert breaker.current_state() == "closed" and breaker.outage_since is None
    assert events == ["outage", "open", "half_open", "open", "half_open", "closed", "recovered"]


def test_a_connection_refused_is_an_outage_even_alone_and_the_next_success_is_the_recovery():
    breaker, events = make(Clock())
    assert breaker.record("a", "GET p", failed=True, outage=True) is True
    assert breaker.current_state() == "closed" and events == ["outage"]
    breaker.record("b", "GET q", failed=False)
    assert events == ["outage", "recovered"] and breaker.outage_since is None
