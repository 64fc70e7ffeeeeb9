"""Property: for any zone, history and moment, a send time is due, soon, and never quiet."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from delivery.sendtime import (
    QuietHours,
    SendPolicy,
    SendRequest,
    due_time,
    is_quiet,
    schedule,
)
from retail.types import Event, EventType

ZONES = st.timezone_keys(allow_prefix=False)
MOMENTS = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2037, 12, 31), timezones=st.just(UTC)
)
EVENTS = st.lists(
    st.builds(
        lambda at, kind: Event(customer_id="c", product_id="p", type=kind, timestamp=at),
        MOMENTS,
        st.sampled_from(list(EventType)),
    ),
    max_size=12,
)
POLICIES = st.builds(
    lambda hour, quiet: SendPolicy(default_hour=hour, quiet=quiet),
    st.integers(min_value=8, max_value=20),
    st.sampled_from([QuietHours(), QuietHours(time(22), time(7)), QuietHours(time(0), time(0))]),
)
# "On or after now, in the next local occurrence of the chosen hour": at most two days
# ahead, plus a daylight-saving gap or a zone's day-long calendar jump (Samoa 2011).
WINDOW = timedelta(days=3)


@settings(max_examples=150, deadline=None)
@given(zone=ZONES, events=EVENTS, now=MOMENTS, policy=POLICIES)
def test_due_time_is_now_or_later_within_the_window_and_outside_quiet_hours(
    zone: str, events: list[Event], now: datetime, policy: SendPolicy
) -> None:
    due = due_time(events, zone, now, policy)
    assert due.tzinfo is not None
    assert now <= due < now + WINDOW
    assert not is_quiet(due, ZoneInfo(zone), policy.quiet)


@settings(max_examples=60, deadline=None)
@given(
    zones=st.lists(ZONES, min_size=1, max_size=8),
    now=MOMENTS,
    policy=POLICIES,
    per_minute=st.integers(min_value=1, max_value=600),
)
def test_a_schedule_is_due_spaced_by_the_rate_limit_and_never_quiet(
    zones: list[str], now: datetime, policy: SendPolicy, per_minute: int
) -> None:
    policy = SendPolicy(policy.default_hour, policy.quiet, per_minute=per_minute)
    requests = [SendRequest(f"c{n}", zone) for n, zone in enumerate(zones)]
    slots = schedule(requests, now, policy)
    assert sorted(slots) == sorted(r.key for r in requests)
    times = sorted(slots.values())
    assert all(later - earlier >= policy.spacing for earlier, later in itertools.pairwise(times))
    for request in requests:
        slot = slots[request.key]
        assert now <= slot < now + WINDOW + len(requests) * policy.spacing
        assert not is_quiet(slot, ZoneInfo(request.timezone), policy.quiet)
