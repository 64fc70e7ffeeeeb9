"""When each email goes out: the customer's own good hour, never in quiet hours, rate limited.

Pure functions over values: events, time zones and `now` in, UTC instants out.

Local wall-clock times are turned into instants with `zoneinfo`, which handles the two
daylight-saving traps the usual way (the same as `dateutil.tz.resolve_imaginary` and PEP 495
with fold=0): a local time that does not exist (spring forward, 02:30 in Berlin on the last
Sunday of March) moves forward by the gap (to 03:30); a local time that happens twice (fall
back) means its first occurrence.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from delivery.errors import DeliveryError
from retail.events import EventTable, from_micros
from retail.types import Event, EventType

# Our own sends and opt-outs say nothing about when the customer likes to shop.
_NOT_ACTIVITY = frozenset({EventType.exposure, EventType.unsubscribe})
_MICROSECOND = timedelta(microseconds=1)
_HOUR_US = 3_600_000_000
_LAST_MICROSECOND = timedelta(hours=1) - _MICROSECOND


@dataclass(frozen=True)
class QuietHours:
    """Local hours in which nobody is mailed: [start, end), wrapping past midnight.

    `start == end` means no quiet hours at all.
    """

    start: time = time(21)
    end: time = time(8)

    def __contains__(self, moment: time) -> bool:
        moment = moment.replace(tzinfo=None)
        if self.start == self.end:
            return False
        if self.start < self.end:
            return self.start <= moment < self.end
        return moment >= self.start or moment < self.end


@dataclass(frozen=True)
class SendPolicy:
    """The campaign's rules for send times.

    `default_hour`: local hour for customers without (enough) history, at least
    `min_events` activity events. `quiet`: local hours never used. `per_minute`: the
    provider's rate limit; sends are spaced at least 60/per_minute seconds apart.
    """

    default_hour: int = 10
    quiet: QuietHours = field(default_factory=QuietHours)
    per_minute: int = 600
    min_events: int = 1

    def __post_init__(self) -> None:
        if not 0 <= self.default_hour <= 23:
            raise DeliveryError(f"default send hour must be 0–23, got {self.default_hour}")
        if time(self.default_hour) in self.quiet:
            raise DeliveryError(
                f"default send hour {self.default_hour}:00 lies in the quiet hours "
                f"{self.quiet.start:%H:%M}–{self.quiet.end:%H:%M}"
            )
        if self.per_minute < 1:
            raise DeliveryError("the send rate must be at least 1 per minute")

    @property
    def spacing(self) -> timedelta:
        """The smallest gap between two sends."""
        return timedelta(minutes=1) / self.per_minute


@dataclass(frozen=True)
class SendRequest:
    """One customer to schedule: a key (e.g. the customer id), their zone and their events."""

    key: str
    timezone: str
    events: tuple[Event, ...] = ()


def local_instant(day: date, at: time, tz: ZoneInfo) -> datetime:
    """The UTC instant of wall-clock `at` on `day` in `tz`.

    A time skipped by a spring-forward transition moves forward by the gap; one repeated
    by a fall-back transition is its first occurrence.
    """
    naive = datetime.combine(day, at.replace(tzinfo=None))
    # fold=0 picks the first of two ambiguous instants; for a time in the gap it applies
    # the offset from before the transition, which lands after the gap: forward.
    return naive.replace(tzinfo=tz, fold=0).astimezone(UTC)


def activity_hour(events: Iterable[Event], tz: ZoneInfo, *, min_events: int = 1) -> int | None:
    """The local hour (0–23) in which this customer was most active, or None.

    Counts the customer's own activity (views, carts, purchases, opens, clicks) at the
    local hour it happened in `tz`, so a 10:00 habit is 10 both in winter and summer time.
    Ties go to the earlier hour. None with fewer than `min_events` events.
    """
    table = EventTable.of(events)
    hours = local_hours(table.micros[_is_activity(table)], tz)
    return _busiest(np.bincount(hours, minlength=24), min_events)


def activity_hours(
    customers: Iterable[tuple[str, str]], events: Iterable[Event], *, min_events: int = 1
) -> dict[tuple[str, str], int | None]:
    """`activity_hour` of every (customer_id, timezone) pair, each customer's own events
    picked out of `events` (everyone's) in one pass per time zone."""
    table = EventTable.of(events)
    activity = _is_activity(table)
    zones: dict[str, dict[str, None]] = {}  # zone → its customers, each once, in order
    for customer_id, timezone in customers:
        zones.setdefault(timezone, {})[customer_id] = None
    result: dict[tuple[str, str], int | None] = {}
    for timezone, once in zones.items():
        ids = list(once)
        position = table.positions(ids)
        mine = activity & (position >= 0)
        hours = local_hours(table.micros[mine], ZoneInfo(timezone))
        counts = np.bincount(position[mine] * 24 + hours, minlength=len(ids) * 24)
        for customer_id, row in zip(ids, counts.reshape(len(ids), 24), strict=True):
            result[(customer_id, timezone)] = _busiest(row, min_events)
    return result


def local_hours(micros: npt.NDArray[np.int64], tz: ZoneInfo) -> npt.NDArray[np.int64]:
    """The local hour in `tz` of each instant (microseconds since the epoch, UTC), as
    `datetime.astimezone(tz).hour` gives it."""
    # The offset is asked of zoneinfo once per UTC hour the instants fall in; an hour with
    # a transition in it (the offset differs at its two ends) is asked per instant.
    buckets, inverse = np.unique(micros // _HOUR_US, return_inverse=True)
    offsets = np.zeros(len(buckets), dtype=np.int64)
    steady = np.ones(len(buckets), dtype=bool)
    for at, bucket in enumerate(buckets.tolist()):
        start = from_micros(bucket * _HOUR_US)
        first = start.astimezone(tz).utcoffset() or timedelta(0)
        last = (start + _LAST_MICROSECOND).astimezone(tz).utcoffset() or timedelta(0)
        offsets[at] = first // _MICROSECOND
        steady[at] = first == last
    hours = (micros + offsets[inverse]) // _HOUR_US % 24
    for at in np.flatnonzero(~steady[inverse]).tolist():
        hours[at] = from_micros(int(micros[at])).astimezone(tz).hour
    return hours


def _is_activity(table: EventTable) -> npt.NDArray[np.bool_]:
    return ~table.type_mask(*_NOT_ACTIVITY)


def _busiest(counts: npt.NDArray[np.int64], min_events: int) -> int | None:
    """The hour with the most events (the earliest of equals), or None with too few."""
    if int(counts.sum()) < max(min_events, 1):
        return None
    return int(np.argmax(counts))  # the first of the largest: ties go to the earlier hour


def is_quiet(moment: datetime, tz: ZoneInfo, quiet: QuietHours) -> bool:
    """True if the instant `moment` falls in the quiet hours of zone `tz`."""
    return moment.astimezone(tz).time() in quiet


def next_allowed(moment: datetime, tz: ZoneInfo, quiet: QuietHours) -> datetime:
    """`moment` itself if it is outside the quiet hours in `tz`, else when they end (UTC)."""
    moment = moment.astimezone(UTC)
    if not is_quiet(moment, tz, quiet):
        return moment
    local = moment.astimezone(tz)
    day = local.date()
    if local.time() >= quiet.end and quiet.start > quiet.end:
        day += timedelta(days=1)  # evening part of an overnight window: ends tomorrow
    end = local_instant(day, quiet.end, tz)
    return end


def preferred_send_time(
    hour: int, tz: ZoneInfo, now: datetime, quiet: QuietHours | None = None
) -> datetime:
    """The first moment on or after `now` in local hour `hour` of `tz` that is not quiet (UTC).

    If `now` is already inside that local hour, it is `now`; otherwise the next day that
    has the hour (on a spring-forward day a skipped hour moves forward by the gap).
    """
    quiet = quiet or QuietHours(time(0), time(0))
    if time(hour) in quiet:
        raise DeliveryError(f"send hour {hour}:00 lies in the quiet hours")
    now = now.astimezone(UTC)
    local_now = now.astimezone(tz)
    if local_now.hour == hour and not is_quiet(now, tz, quiet):
        return now
    day = local_now.date()
    for offset in range(3):
        slot = local_instant(day + timedelta(days=offset), time(hour), tz)
        if slot >= now and not is_quiet(slot, tz, quiet):
            return slot
    raise AssertionError("unreachable: a local hour recurs within three days")


def due_time(
    events: Iterable[Event], timezone: str, now: datetime, policy: SendPolicy | None = None
) -> datetime:
    """When one customer's email should go out (UTC), before any rate limiting.

    The local hour of most past activity, unless it lies in the quiet hours or the
    customer has no history: then the policy's default hour.
    """
    policy = policy or SendPolicy()
    tz = ZoneInfo(timezone)
    return _due_at(activity_hour(events, tz, min_events=policy.min_events), tz, now, policy)


def _due_at(hour: int | None, tz: ZoneInfo, now: datetime, policy: SendPolicy) -> datetime:
    if hour is None or time(hour) in policy.quiet:
        hour = policy.default_hour
    return preferred_send_time(hour, tz, now, policy.quiet)


def schedule(
    requests: Iterable[SendRequest], now: datetime, policy: SendPolicy | None = None
) -> dict[str, datetime]:
    """A due time (UTC, on or after `now`) for every request, honouring the rate limit.

    Each customer gets `due_time`; then sends are laid out in time order at least
    `policy.spacing` apart (one global queue: the provider's limit is for the account).
    A send that the spacing pushes into its recipient's quiet hours waits until they end
    there. Deterministic: ties are broken by key.
    """
    policy = policy or SendPolicy()
    return _lay_out(
        ((r.key, r.timezone, due_time(r.events, r.timezone, now, policy)) for r in requests),
        now,
        policy,
    )


def _lay_out(
    wanted: Iterable[tuple[str, str, datetime]], now: datetime, policy: SendPolicy
) -> dict[str, datetime]:
    """`schedule`'s rate limit over (key, timezone, due time) triples."""
    spacing = policy.spacing
    heap: list[tuple[datetime, str, int, ZoneInfo]] = []
    for n, (key, timezone, due) in enumerate(wanted):
        heapq.heappush(heap, (due, key, n, ZoneInfo(timezone)))
    result: dict[str, datetime] = {}
    free_from = now.astimezone(UTC)
    while heap:
        due, key, n, tz = heapq.heappop(heap)
        slot = max(due, free_from)
        allowed = next_allowed(slot, tz, policy.quiet)
        if allowed != slot:
            heapq.heappush(heap, (allowed, key, n, tz))  # its turn comes again in the morning
            continue
        result[key] = slot
        free_from = slot + spacing
    return result


def schedule_customers(
    customers: Iterable[tuple[str, str]],
    events: Iterable[Event],
    now: datetime,
    policy: SendPolicy | None = None,
) -> dict[str, datetime]:
    """`schedule` for (customer_id, timezone) pairs, with everyone's events in one iterable
    (an `EventTable` is read as columns: no `Event` is made)."""
    policy = policy or SendPolicy()
    pairs = list(customers)
    hours = activity_hours(pairs, events, min_events=policy.min_events)
    return _lay_out(
        (
            (cid, timezone, _due_at(hours[(cid, timezone)], ZoneInfo(timezone), now, policy))
            for cid, timezone in pairs
        ),
        now,
        policy,
    )
