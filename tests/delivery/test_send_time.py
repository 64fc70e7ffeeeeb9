"""Send times: the customer's own hour, quiet hours, the rate limit, and DST transition days."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest

from delivery.errors import DeliveryError
from delivery.sendtime import (
    QuietHours,
    SendPolicy,
    SendRequest,
    activity_hour,
    due_time,
    local_instant,
    preferred_send_time,
    schedule,
    schedule_customers,
)
from retail.types import Event, EventType

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
NO_QUIET = QuietHours(time(0), time(0))


def event(at: datetime, kind: EventType = EventType.view, who: str = "c1") -> Event:
    return Event(customer_id=who, product_id="p1", type=kind, timestamp=at)


def local(tz: ZoneInfo, *args: int) -> datetime:
    return datetime(*args, tzinfo=tz)  # type: ignore[misc]


# -- the customer's hour -----------------------------------------------------------------


def test_activity_hour_is_counted_in_local_time_across_summer_and_winter() -> None:
    # 10:00 in Berlin is 09:00 UTC in winter and 08:00 UTC in summer: one habit, one hour.
    events = [
        event(datetime(2026, 1, 12, 9, 5, tzinfo=UTC)),
        event(datetime(2026, 7, 14, 8, 40, tzinfo=UTC)),
        event(datetime(2026, 7, 15, 8, 10, tzinfo=UTC), EventType.purchase),
        event(datetime(2026, 7, 15, 18, 0, tzinfo=UTC)),
    ]
    assert activity_hour(events, BERLIN) == 10


def test_our_own_exposures_and_unsubscribes_are_not_activity() -> None:
    events = [
        event(datetime(2026, 5, 1, 14, tzinfo=UTC)),
        *(event(datetime(2026, 5, d, 6, tzinfo=UTC), EventType.exposure) for d in range(2, 6)),
    ]
    assert activity_hour(events, ZoneInfo("UTC")) == 14
    assert activity_hour([], ZoneInfo("UTC")) is None
    assert activity_hour(events, ZoneInfo("UTC"), min_events=2) is None


def test_ties_go_to_the_earlier_hour() -> None:
    events = [event(datetime(2026, 5, 1, h, tzinfo=UTC)) for h in (15, 11, 15, 11)]
    assert activity_hour(events, ZoneInfo("UTC")) == 11


def test_due_time_uses_the_active_hour_else_the_default_and_never_quiet_hours() -> None:
    now = datetime(2026, 5, 4, 6, 0, tzinfo=UTC)  # 08:00 in Berlin
    evening = [event(datetime(2026, 4, d, 17, 30, tzinfo=UTC)) for d in (1, 2, 3)]  # 19:30
    assert due_time(evening, "Europe/Berlin", now) == local(BERLIN, 2026, 5, 4, 19).astimezone(UTC)
    late = [event(datetime(2026, 4, d, 21, 30, tzinfo=UTC)) for d in (1, 2, 3)]  # 23:30: quiet
    assert due_time(late, "Europe/Berlin", now) == local(BERLIN, 2026, 5, 4, 10).astimezone(UTC)
    assert due_time([], "Europe/Berlin", now) == local(BERLIN, 2026, 5, 4, 10).astimezone(UTC)


def test_an_hour_already_past_today_means_tomorrow_and_inside_it_means_now() -> None:
    now = local(NEW_YORK, 2026, 5, 4, 10, 30)
    assert preferred_send_time(10, NEW_YORK, now) == now.astimezone(UTC)
    assert preferred_send_time(9, NEW_YORK, now) == local(NEW_YORK, 2026, 5, 5, 9).astimezone(UTC)
    assert preferred_send_time(11, NEW_YORK, now) == local(NEW_YORK, 2026, 5, 4, 11).astimezone(UTC)


def test_quiet_hours_are_local_and_wrap_midnight() -> None:
    quiet = QuietHours(time(21), time(8))
    assert time(22) in quiet and time(3) in quiet and time(7, 59) in quiet
    assert time(8) not in quiet and time(20, 59) not in quiet
    assert time(12) not in NO_QUIET
    with pytest.raises(DeliveryError, match="quiet hours"):
        SendPolicy(default_hour=22)


# -- daylight saving ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tz", "day", "expected_utc"),
    [
        # Spring forward: 02:30 does not exist, it moves forward by the gap (to 03:30).
        (BERLIN, datetime(2026, 3, 29), datetime(2026, 3, 29, 1, 30, tzinfo=UTC)),
        (NEW_YORK, datetime(2026, 3, 8), datetime(2026, 3, 8, 7, 30, tzinfo=UTC)),
        # Fall back: 01:30 / 02:30 happens twice; the first one counts (summer offset).
        (BERLIN, datetime(2026, 10, 25), datetime(2026, 10, 25, 0, 30, tzinfo=UTC)),
        (NEW_YORK, datetime(2026, 11, 1), datetime(2026, 11, 1, 5, 30, tzinfo=UTC)),
    ],
)
def test_nonexistent_times_move_forward_and_ambiguous_times_take_the_first(
    tz: ZoneInfo, day: datetime, expected_utc: datetime
) -> None:
    at = time(2, 30) if tz is BERLIN else time(1, 30) if day.month == 11 else time(2, 30)
    instant = local_instant(day.date(), at, tz)
    assert instant == expected_utc
    if day.month == 3:
        assert instant.astimezone(tz).time() == time(3, 30)  # forward, by the gap
    else:
        assert instant.astimezone(tz).fold == 0  # the first of the two


@pytest.mark.parametrize(
    ("tz", "spring", "fall"),
    [
        (BERLIN, (2026, 3, 29), (2026, 10, 25)),
        (NEW_YORK, (2026, 3, 8), (2026, 11, 1)),
    ],
)
def test_the_local_hour_holds_on_transition_days(
    tz: ZoneInfo, spring: tuple[int, int, int], fall: tuple[int, int, int]
) -> None:
    policy = SendPolicy(default_hour=10)
    for y, m, d in (spring, fall):
        before = local(tz, y, m, d, 0, 5).astimezone(UTC)  # just after midnight, pre-switch
        due = due_time([], str(tz), before, policy)
        assert due.astimezone(tz).replace(tzinfo=None) == datetime(y, m, d, 10)
        # The UTC instant differs from the day before by the switch: 23 h or 25 h later.
        day_before = due_time([], str(tz), before - timedelta(days=1), policy)
        expected = timedelta(hours=23) if m == spring[1] else timedelta(hours=25)
        assert due - day_before == expected


def test_a_skipped_send_hour_moves_forward_on_the_spring_day() -> None:
    now = local(BERLIN, 2026, 3, 29, 0, 30).astimezone(UTC)
    due = preferred_send_time(2, BERLIN, now, NO_QUIET)  # 02:00 does not exist that day
    assert due.astimezone(BERLIN).replace(tzinfo=None) == datetime(2026, 3, 29, 3, 0)
    assert due >= now


def test_an_ambiguous_send_hour_is_its_first_occurrence_on_the_fall_day() -> None:
    now = local(NEW_YORK, 2026, 11, 1, 0, 10).astimezone(UTC)
    due = preferred_send_time(1, NEW_YORK, now, NO_QUIET)
    assert due == datetime(2026, 11, 1, 5, 0, tzinfo=UTC)  # 01:00 EDT, not 01:00 EST
    # Inside the first 01:00 hour it goes at once; a dispatcher at the second 01:00 hour
    # (EST) is also inside local hour 1 and does not wait a day.
    second = datetime(2026, 11, 1, 6, 15, tzinfo=UTC)
    assert preferred_send_time(1, NEW_YORK, second, NO_QUIET) == second


def test_quiet_hours_follow_local_time_across_the_switch() -> None:
    quiet = QuietHours(time(21), time(8))
    policy = SendPolicy(default_hour=8, quiet=quiet)
    # 21:30 local on the eve of fall-back in Berlin: already quiet, so 08:00 next morning,
    # which is in winter time (UTC+1), not at the summer-time instant.
    now = local(BERLIN, 2026, 10, 24, 21, 30).astimezone(UTC)
    due = due_time([], "Europe/Berlin", now, policy)
    assert due == datetime(2026, 10, 25, 7, 0, tzinfo=UTC)


# -- the rate limit ---------------------------------------------------------------------------


def test_schedule_spreads_sends_to_the_rate_limit_and_stays_on_or_after_now() -> None:
    now = datetime(2026, 5, 4, 8, 0, tzinfo=UTC)  # 10:00 Berlin
    policy = SendPolicy(default_hour=10, per_minute=60)
    requests = [SendRequest(f"c{n:03d}", "Europe/Berlin") for n in range(180)]
    due = schedule(requests, now, policy)
    times = sorted(due.values())
    assert len(due) == 180 and times[0] == now
    assert all(b - a >= timedelta(seconds=1) for a, b in pairwise(times))
    for start in times:  # no sliding minute holds more than the limit
        assert sum(start <= t < start + timedelta(minutes=1) for t in times) <= 60
    assert times[-1] == now + timedelta(seconds=179)
    assert schedule(reversed(requests), now, policy) == due  # deterministic


def test_spreading_never_pushes_a_send_into_quiet_hours() -> None:
    # 20:58 in Berlin, 3 per minute, 12 customers: the rest wait until 08:00 tomorrow.
    now = local(BERLIN, 2026, 5, 4, 20, 58).astimezone(UTC)
    policy = SendPolicy(default_hour=20, per_minute=3)
    due = schedule([SendRequest(f"c{n:02d}", "Europe/Berlin") for n in range(12)], now, policy)
    local_times = sorted(t.astimezone(BERLIN) for t in due.values())
    evening = [t for t in local_times if t.day == 4]
    assert len(evening) == 6 and all(t.time() < time(21) for t in evening)
    morning = [t for t in local_times if t.day == 5]
    assert len(morning) == 6 and morning[0].time() == time(8)
    assert all(t.time() < time(8, 3) for t in morning)


def test_schedule_customers_groups_events_per_customer() -> None:
    now = datetime(2026, 5, 4, 4, 0, tzinfo=UTC)
    events = [
        event(datetime(2026, 4, 20, 16, 0, tzinfo=UTC), who="early-bird"),  # 12:00 New York
        event(datetime(2026, 4, 21, 16, 0, tzinfo=UTC), who="early-bird"),
    ]
    due = schedule_customers(
        [("early-bird", "America/New_York"), ("new", "Europe/Berlin")], events, now
    )
    assert due["early-bird"].astimezone(NEW_YORK).hour == 12
    assert due["new"].astimezone(BERLIN).hour == 10
