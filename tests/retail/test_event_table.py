"""EventTable: events as columns give back the same events, and its vectorized answers agree
with the plain-Python computation over `Event`s."""

from __future__ import annotations

import hashlib
import tracemalloc
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from delivery.sendtime import activity_hours, local_hours
from recs.dataset import KIND_CODES, from_retail
from recs.training import as_of, snapshot_hash
from retail import event_files
from retail.events import EventTable, from_micros, to_micros
from retail.loaders import LoadedEvents, load_events
from retail.types import Event, EventType, Product

START = datetime(2026, 3, 1, tzinfo=UTC)
CUSTOMERS = [f"C{n}" for n in range(6)]
PRODUCTS = [f"P{n}" for n in range(5)]


@st.composite
def events(draw: st.DrawFn) -> Event:
    kind = draw(st.sampled_from(list(EventType)))
    product = draw(st.sampled_from([None, *PRODUCTS]))
    # Offsets other than UTC too: the table keeps the instant, in UTC.
    offset = timezone(timedelta(minutes=draw(st.sampled_from([0, 120, -300, 345]))))
    at = START + timedelta(seconds=draw(st.integers(0, 90 * 86_400)))
    return Event(
        customer_id=draw(st.sampled_from(CUSTOMERS)),
        product_id=product,
        type=kind,
        timestamp=at.astimezone(offset) + timedelta(microseconds=draw(st.integers(0, 999_999))),
    )


event_lists = st.lists(events(), max_size=40)


@given(event_lists)
def test_events_come_back_the_same_in_order_and_in_utc(given_events: list[Event]) -> None:
    table = EventTable.of(given_events)
    assert len(table) == len(given_events)
    assert list(table) == given_events
    assert [table[i] for i in range(-len(table), 0)] == given_events
    assert all(e.timestamp.tzinfo is UTC for e in table)
    assert list(table[1::2]) == given_events[1::2]


@given(event_lists, event_lists, event_lists)
def test_append_and_extend_keep_order_across_tables(
    first: list[Event], second: list[Event], third: list[Event]
) -> None:
    table = EventTable()
    for event in first:
        table.append(event)
    other = EventTable.of(reversed(second))  # its own id codes, in another order
    table.extend(other)
    table.extend(iter(third))  # a plain iterator, no length
    table.extend(table[: len(first)])  # a subset sharing the codes
    assert list(table) == first + second[::-1] + third + first
    table.trim()
    assert list(table) == first + second[::-1] + third + first


@given(event_lists, st.sets(st.sampled_from(CUSTOMERS)), st.integers(0, 90))
def test_fast_answers_agree_with_plain_python(
    given_events: list[Event], chosen: set[str], day: int
) -> None:
    table = EventTable.of(given_events)
    moment = START + timedelta(days=day)
    assert table.latest() == max((e.timestamp for e in given_events), default=None)
    for kind in EventType:
        assert table.customers_with(kind) == {e.customer_id for e in given_events if e.type is kind}
    assert list(table.for_customers(chosen)) == [e for e in given_events if e.customer_id in chosen]
    assert list(table.until(moment)) == [e for e in given_events if e.timestamp <= moment]
    assert list(table.where(table.product_mask(PRODUCTS[:2]))) == [
        e for e in given_events if e.product_id in PRODUCTS[:2]
    ]
    bought: dict[tuple[str, str], datetime] = {}
    for e in given_events:
        if e.type is EventType.purchase and e.product_id and e.timestamp <= moment:
            key = (e.customer_id, e.product_id)
            bought[key] = max(bought.get(key, e.timestamp), e.timestamp)
    last = table.last_purchases(until=moment)
    assert dict(last) == bought
    assert len(last) == len(bought)
    assert last.get(("nobody", "P0")) is None and last.get(("C0", "nothing")) is None


def test_timestamps_are_exact_to_the_microsecond() -> None:
    for moment in (
        datetime(1969, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
        datetime(2026, 5, 1, 10, 0, 0, 1, tzinfo=timezone(timedelta(hours=-7))),
        datetime(9999, 12, 31, 23, 59, tzinfo=UTC),
    ):
        assert from_micros(to_micros(moment)) == moment


def test_an_empty_table() -> None:
    table = EventTable()
    assert list(table) == [] and not table and table.latest() is None
    assert table.customers_with(EventType.unsubscribe) == set()
    assert len(table.last_purchases()) == 0
    with pytest.raises(IndexError):
        table[0]


# -- the consumers: the same answers as the Event-by-Event code they replaced -------------


def _old_snapshot_hash(products: Sequence[Product], events: Sequence[Event]) -> str:
    digest = hashlib.sha256()
    for p in sorted(products, key=lambda p: p.id):
        digest.update(
            f"P\x1f{p.id}\x1f{p.category}\x1f{p.brand}\x1f{p.price}\x1f{p.in_stock}\n".encode()
        )
    for e in sorted(events, key=lambda e: (e.timestamp, e.customer_id, e.product_id or "")):
        digest.update(
            f"E\x1f{e.customer_id}\x1f{e.product_id or ''}\x1f{e.type}\x1f"
            f"{e.timestamp.timestamp():.0f}\n".encode()
        )
    return digest.hexdigest()[:16]


def _product(pid: str) -> Product:
    return Product(
        id=pid,
        title=f"Item {pid}",
        brand="B",
        category="C",
        price="9.99",  # type: ignore[arg-type]
        currency="EUR",
        image="x.png",
        url="https://shop.example/p",
    )


@settings(max_examples=50)
@given(event_lists)
def test_snapshot_hash_is_the_value_the_event_list_gave(given_events: list[Event]) -> None:
    products = [_product(p) for p in PRODUCTS[:3]]
    expected = _old_snapshot_hash(products, given_events)
    assert snapshot_hash(products, given_events) == expected
    assert snapshot_hash(products, EventTable.of(given_events)) == expected


@settings(max_examples=50)
@given(event_lists, st.lists(st.sampled_from([*CUSTOMERS, "Z9"]), max_size=3))
def test_from_retail_codes_the_events_as_the_event_list_did(
    given_events: list[Event], extra_customers: list[str]
) -> None:
    products = [_product(p) for p in PRODUCTS[1:4]]
    log = from_retail(products, EventTable.of(given_events), extra_customers)
    known = {p.id for p in products}
    kept = sorted(
        (
            e
            for e in given_events
            if e.type in KIND_CODES and e.product_id is not None and e.product_id in known
        ),
        key=lambda e: (e.timestamp, e.customer_id),
    )
    users = sorted(set(extra_customers) | {e.customer_id for e in kept})
    items = sorted(known)
    assert log.user_ids == tuple(users) and log.item_ids == tuple(items)
    assert log.user.tolist() == [users.index(e.customer_id) for e in kept]
    assert log.item.tolist() == [items.index(e.product_id or "") for e in kept]
    assert log.kind.tolist() == [KIND_CODES[e.type] for e in kept]
    assert log.time.tolist() == [e.timestamp.timestamp() for e in kept]
    assert log.user.dtype == np.int32 and log.item.dtype == np.int32
    assert log.kind.dtype == np.int8 and log.time.dtype == np.float64


def test_as_of_is_the_latest_event() -> None:
    late = Event(customer_id="C1", type=EventType.view, timestamp=START + timedelta(days=3))
    early = Event(customer_id="C2", type=EventType.view, timestamp=START)
    assert as_of(EventTable.of([late, early])) == as_of([late, early]) == late.timestamp


ZONES = ["Europe/Berlin", "America/New_York", "Asia/Kathmandu", "Australia/Lord_Howe", "UTC"]


@settings(max_examples=60)
@given(
    st.lists(st.integers(-3 * 3600, 3 * 3600), max_size=30),
    st.sampled_from(ZONES),
)
def test_local_hours_around_daylight_saving_changes(seconds: list[int], zone: str) -> None:
    tz = ZoneInfo(zone)
    # Around the spring-forward and fall-back instants of the zones above, in 2026.
    transitions = [
        datetime(2026, 3, 29, 1, tzinfo=UTC),  # Berlin
        datetime(2026, 3, 8, 7, tzinfo=UTC),  # New York
        datetime(2026, 4, 4, 15, tzinfo=UTC),  # Lord Howe, half an hour back
        datetime(2026, 10, 3, 15, 30, tzinfo=UTC),  # Lord Howe, half an hour forward
    ]
    moments = [t + timedelta(seconds=s) for t in transitions for s in seconds]
    micros = np.array([to_micros(m) for m in moments], dtype=np.int64)
    assert local_hours(micros, tz).tolist() == [m.astimezone(tz).hour for m in moments]


@settings(max_examples=50)
@given(event_lists, st.lists(st.tuples(st.sampled_from(CUSTOMERS), st.sampled_from(ZONES))))
def test_activity_hours_agree_with_counting_each_customers_events(
    given_events: list[Event], customers: list[tuple[str, str]]
) -> None:
    hours = activity_hours(customers, EventTable.of(given_events), min_events=2)
    for customer_id, zone in customers:
        counted = Counter(
            e.timestamp.astimezone(ZoneInfo(zone)).hour
            for e in given_events
            if e.customer_id == customer_id
            and e.type not in (EventType.exposure, EventType.unsubscribe)
        )
        expected = (
            None if sum(counted.values()) < 2 else min(counted, key=lambda h: (-counted[h], h))
        )
        assert hours[(customer_id, zone)] == expected


# -- memory ---------------------------------------------------------------------------------


def _generated(n: int) -> list[tuple[int, int, int]]:
    """(customer, product, second) of `n` events: 20 events a customer, 2,000 products."""
    rng = np.random.default_rng(3)
    columns = (rng.integers(0, n // 20, n), rng.integers(0, 2_000, n), rng.integers(0, 2**21, n))
    return list(zip(*(c.tolist() for c in columns), strict=True))


def _event(customer: int, product: int, second: int) -> Event:
    # Fresh id strings per event, as the loader's rows give them.
    return Event.model_construct(
        customer_id=f"C{customer:06d}",
        product_id=f"P{product:05d}",
        type=EventType.view,
        timestamp=START + timedelta(seconds=second),
    )


def _bytes_held(build: Callable[[], object]) -> int:
    """Bytes still allocated once `build` has returned, what it returns included."""
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        held = build()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    del held
    return after - before


def test_a_table_holds_an_event_in_under_60_bytes_where_a_model_takes_hundreds() -> None:
    rows = _generated(100_000)

    def table() -> EventTable:
        held = EventTable()
        for row in rows:  # row by row, as the loader fills it; the ids are counted too
            held.append(_event(*row))
        return held

    assert _bytes_held(table) / len(rows) < 60
    # The list of pydantic Events it replaces (measured on fewer: it is slow to build).
    sample = rows[:10_000]
    assert _bytes_held(lambda: [_event(*row) for row in sample]) / len(sample) > 300


def test_loading_events_keeps_columns_not_models(tmp_path: Path) -> None:
    rows = _generated(20_000)
    path = tmp_path / "events.csv"
    path.write_text(
        "customer_id,product_id,type,timestamp\n"
        + "".join(
            f"C{c:06d},P{p:05d},view,{(START + timedelta(seconds=s)).isoformat()}\n"
            for c, p, s in rows
        )
    )
    loaded = load_events(path)
    assert isinstance(loaded.events, EventTable) and len(loaded.events) == len(rows)
    assert loaded.lines.tolist() == list(range(2, len(rows) + 2))
    assert loaded.events[0] == _event(*rows[0])
    # Read in blocks far smaller than the file (load_events reads 16 MiB at a time).
    block = 64 * 1024
    assert path.stat().st_size > 10 * block
    held: list[LoadedEvents] = []
    tracemalloc.start()
    try:
        held.append(event_files.read_events(path, block_size=block))
        kept, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert held[0].lines.tolist() == loaded.lines.tolist()
    # Kept: the columns, the line numbers and the ids. At its peak the reader holds the
    # table while it grows (old and new arrays at once) and a few blocks besides: memory
    # follows the table, not the file.
    assert kept / len(rows) < 60
    assert peak - kept < kept + 8 * block
