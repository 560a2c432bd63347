"""Webhook delivery by the emulator: retries on non-200 with growing gaps, attempt log, clean shutdown."""

from __future__ import annotations

import asyncio
import itertools

from rustore.emulator import Emulator, EmulatorApp, FakeClock, default_retry_schedule
from tests.rustore.conftest import APP_ID, WebhookSink


def test_default_schedule_has_16_growing_gaps_over_36_hours() -> None:
    gaps = default_retry_schedule()
    assert len(gaps) == 16
    assert all(later > earlier for earlier, later in itertools.pairwise(gaps))
    assert abs(sum(gaps) - 36 * 3600) < 1


async def test_non_200_is_retried_until_accepted_and_every_attempt_is_logged(
    emulator: Emulator, sink: WebhookSink
) -> None:
    sink.fail_remaining, sink.fail_status = 3, 503
    emulator.send_test_notification(APP_ID)
    await emulator.drain_notifications(include_retries=True)
    attempts = emulator.deliveries()
    assert [(a["attempt"], a["status"], a["ok"]) for a in attempts] == [
        (0, 503, False), (1, 503, False), (2, 503, False), (3, 200, True)]
    assert len(sink.received) == 1
    note = emulator.notifications()[0]
    assert note["delivered"] and note["attempts"] == 4 and not note["givenUp"]


async def test_notification_is_dropped_after_sixteen_retries(emulator: Emulator, sink: WebhookSink) -> None:
    sink.fail_remaining = 1000
    emulator.send_test_notification(APP_ID)
    await emulator.drain_notifications(timeout_s=20, include_retries=True)
    assert len(emulator.deliveries()) == 17
    assert emulator.notifications()[0]["givenUp"] is True


async def test_unreachable_url_is_logged_as_connection_error(clock: FakeClock) -> None:
    app = EmulatorApp(app_id=1, package_name="p", notification_url="http://127.0.0.1:9/hook",
                      notification_key_b64="A" * 43 + "=")
    emulator = Emulator([app], clock=clock, retry_schedule=[0.01], tick_interval_s=None)
    await emulator.start_background()
    emulator.send_test_notification(1)
    await emulator.drain_notifications(include_retries=True)
    await emulator.stop()
    assert [(a["status"], a["ok"]) for a in emulator.deliveries()] == [(None, False), (None, False)]
    assert all("Connect" in (a["error"] or "") for a in emulator.deliveries())


async def test_stop_cancels_pending_retries_without_leaking_tasks(clock: FakeClock, sink: WebhookSink) -> None:
    app = EmulatorApp(app_id=1, package_name="p", notification_url=f"{sink.url}/real",
                      notification_key_b64="A" * 43 + "=")
    emulator = Emulator([app], clock=clock, retry_schedule=[60.0] * 16, tick_interval_s=0.01)
    await emulator.start()
    sink.fail_remaining = 1
    emulator.send_test_notification(1)
    await emulator.drain_notifications()
    def name(task: asyncio.Task[object]) -> str:
        return str(getattr(task.get_coro(), "__qualname__", ""))

    ours = [t for t in asyncio.all_tasks() if name(t).startswith(("Notifier.", "Emulator."))]
    assert {name(t) for t in ours} == {"Notifier._run", "Notifier._retry_later", "Emulator._tick"}
    await emulator.stop()
    assert all(t.done() for t in ours)
    assert len(emulator.deliveries()) == 1


async def test_notifications_without_url_are_recorded_but_not_sent(clock: FakeClock) -> None:
    emulator = Emulator([EmulatorApp(app_id=1, package_name="p")], clock=clock, tick_interval_s=None)
    emulator.send_test_notification(1, sandbox=True)
    assert emulator.notifications()[0]["notificationType"] == "TEST_EVENT_SANDBOX"
    assert emulator.notifications()[0]["url"] is None and emulator.deliveries() == []
