"""Behaviour events as a customer × item matrix of time-decayed interest."""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import scipy.sparse as sp

from recs.config import DEFAULT_EVENT_WEIGHTS
from recs.errors import RecsError
from retail.types import Event, EventType, Product

_SECONDS_PER_DAY = 86_400.0


@dataclass(frozen=True, eq=False)
class Interactions:
    """Who showed interest in what, as of one moment.

    Rows are customers with at least one counted event, columns are catalog products;
    both are sorted by id so the same data always gives the same matrix.
    """

    #: customers × items, summed `weight × 0.5 ** (age / half_life)` over counted events.
    weights: sp.csr_matrix
    #: customers × items, True where the customer bought the item at any time before `now`.
    purchased: sp.csr_matrix
    customer_ids: tuple[str, ...]
    item_ids: tuple[str, ...]
    customer_index: Mapping[str, int]
    item_index: Mapping[str, int]
    #: Events that named a product missing from the catalog (the loader reports them).
    unknown_product_events: int
    #: Events stamped after `now`: not yet known at that moment, so not counted.
    future_events: int


def item_index(products: Sequence[Product]) -> dict[str, int]:
    """Map each product id to its column: position in the id-sorted catalog.

    Raises RecsError if an id occurs twice, since two products cannot share a column.
    """
    ids = sorted(p.id for p in products)
    for a, b in itertools.pairwise(ids):
        if a == b:
            raise RecsError(f"product id {a!r} occurs twice in the catalog; ids must be unique")
    return {pid: j for j, pid in enumerate(ids)}


def build_interactions(
    products: Sequence[Product],
    events: Sequence[Event],
    *,
    now: datetime,
    half_life_days: float = 30.0,
    event_weights: Mapping[EventType, float] = DEFAULT_EVENT_WEIGHTS,
) -> Interactions:
    """Turn events into decayed interest per (customer, product) as of `now`.

    Only event types in `event_weights` add interest. Purchases are always recorded in
    `purchased`, whatever their age or weight. Events for products not in the catalog and
    events after `now` are skipped and counted, so a backtest at a past `now` sees no
    future.
    """
    if now.tzinfo is None:
        raise RecsError("now needs a time zone, e.g. datetime.now(UTC)")
    columns = item_index(products)
    # Purchases are kept even at weight 0: they still decide what must not be offered again.
    weight_of = {kind: float(event_weights.get(kind, 0.0)) for kind in EventType}
    wanted = set(event_weights) | {EventType.purchase}
    now_ts = now.timestamp()
    customers: list[str] = []
    cols_list: list[int] = []
    base_list: list[float] = []
    ages_list: list[float] = []
    unknown = 0
    # The one pass over Python objects (millions of events at scale); the rest is numpy.
    for e in events:
        if e.product_id is None or e.type not in wanted:
            continue
        column = columns.get(e.product_id)
        if column is None:
            unknown += 1
            continue
        customers.append(e.customer_id)
        cols_list.append(column)
        base_list.append(weight_of[e.type] if e.type is not EventType.purchase else -1.0)
        ages_list.append((now_ts - e.timestamp.timestamp()) / _SECONDS_PER_DAY)
    ages = np.array(ages_list, dtype=np.float64)
    cols = np.array(cols_list, dtype=np.int64)
    # Purchases travel as -1 so one float array carries both the weight and the flag.
    base = np.array(base_list, dtype=np.float64)
    is_purchase = base < 0
    base[is_purchase] = weight_of[EventType.purchase]
    known = ages >= 0
    future = int((~known).sum())
    if future:
        customers = [c for c, k in zip(customers, known.tolist(), strict=True) if k]
        ages, cols, base, is_purchase = ages[known], cols[known], base[known], is_purchase[known]

    customer_ids = tuple(sorted(set(customers)))
    rows_of = {cid: i for i, cid in enumerate(customer_ids)}
    rows = np.array([rows_of[c] for c in customers], dtype=np.int64)
    decay = np.ones_like(ages) if math.isinf(half_life_days) else 0.5 ** (ages / half_life_days)

    # Summing duplicates in a fixed order keeps the floats (and the model version)
    # identical however the caller ordered the events.
    order = np.lexsort((base, ages, cols, rows))
    shape = (len(customer_ids), len(columns))
    weights = sp.csr_matrix(
        (base[order] * decay[order], (rows[order], cols[order])), shape=shape, dtype=np.float64
    )
    weights.sum_duplicates()
    weights.eliminate_zeros()
    purchased = sp.csr_matrix(
        (np.ones(int(is_purchase.sum()), dtype=bool), (rows[is_purchase], cols[is_purchase])),
        shape=shape,
    )
    purchased.sum_duplicates()
    return Interactions(
        weights=weights,
        purchased=purchased,
        customer_ids=customer_ids,
        item_ids=tuple(columns),
        customer_index=rows_of,
        item_index=columns,
        unknown_product_events=unknown,
        future_events=future,
    )
