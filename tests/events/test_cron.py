"""When a cron binding fires, with the time passed in (no waiting)."""

from __future__ import annotations

import datetime

from fless.events._cron import plan

UTC = datetime.UTC


def at(text: str) -> float:
    return datetime.datetime.fromisoformat(text).timestamp()


def test_a_new_binding_waits_for_its_next_tick() -> None:
    p = plan("*/5 * * * *", "UTC", None, at("2026-12-07T10:02:30+00:00"))
    assert p.catch_up is None
    assert p.next_tick.timestamp() == at("2026-12-07T10:05:00+00:00")


def test_after_a_tick_fired_the_next_is_the_following_one() -> None:
    last = at("2026-12-07T10:05:00+00:00")
    p = plan("*/5 * * * *", "UTC", last, last + 0.001)
    assert p.catch_up is None
    assert p.next_tick.timestamp() == at("2026-12-07T10:10:00+00:00")


def test_ticks_missed_while_down_are_made_up_with_one_run_the_latest() -> None:
    last = at("2026-12-07T10:05:00+00:00")
    p = plan("*/5 * * * *", "UTC", last, at("2026-12-07T11:02:00+00:00"))
    assert p.catch_up is not None
    assert p.catch_up.timestamp() == at("2026-12-07T11:00:00+00:00")
    assert p.next_tick.timestamp() == at("2026-12-07T11:05:00+00:00")
    # Once that one is fired, nothing more is owed.
    again = plan("*/5 * * * *", "UTC", p.catch_up.timestamp(), at("2026-12-07T11:02:01+00:00"))
    assert again.catch_up is None


def test_a_schedule_is_read_in_its_time_zone() -> None:
    # 08:00 in Rome is 07:00 UTC in winter.
    p = plan("0 8 * * *", "Europe/Rome", None, at("2026-12-07T06:30:00+00:00"))
    assert p.next_tick.timestamp() == at("2026-12-07T07:00:00+00:00")
    # and 06:00 UTC in summer.
    p = plan("0 8 * * *", "Europe/Rome", None, at("2026-07-07T05:30:00+00:00"))
    assert p.next_tick.timestamp() == at("2026-07-07T06:00:00+00:00")
