"""One shape of data for every recommender, baseline and evaluation protocol.

Retail files (catalog + events) and public datasets (MovieLens-100K) both become an
`InteractionLog`: integer-coded events with times and kinds, plus what is known of the
items. Fields a dataset lacks are None (MovieLens has no prices, stock or views), and
the ranker simply leaves the matching features out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from retail.events import EVENT_TYPES, EventTable, type_code
from retail.types import Event, EventType, Product

#: Event kinds as small integers, in funnel order. A click in a campaign email on a
#: product is interest like a view: that is how the next campaign learns from this one.
KIND_CODES: dict[EventType, int] = {
    EventType.view: 0,
    EventType.click: 0,
    EventType.cart: 1,
    EventType.purchase: 2,
}


@dataclass(frozen=True, eq=False)
class InteractionLog:
    """Events as parallel arrays, sorted by time, over fixed user and item id spaces."""

    user_ids: tuple[str, ...]
    item_ids: tuple[str, ...]
    #: one entry per event
    user: np.ndarray  # int32, index into user_ids
    item: np.ndarray  # int32, index into item_ids
    kind: np.ndarray  # int8, KIND_CODES values (0 view, 1 cart, 2 purchase)
    time: np.ndarray  # float64, seconds since the epoch
    #: one entry per item; None when the dataset does not know it
    item_category: np.ndarray | None = None  # int32 codes into categories
    categories: tuple[str, ...] = ()
    item_brand: np.ndarray | None = None  # int32 codes into brands
    brands: tuple[str, ...] = ()
    item_price: np.ndarray | None = None  # float64
    item_in_stock: np.ndarray | None = None  # bool
    item_text: tuple[str, ...] | None = None  # title / description, for content similarity
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def n_users(self) -> int:
        """Size of the user id space (users without events included)."""
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        """Size of the item id space (items without events included)."""
        return len(self.item_ids)

    def subset(self, mask: np.ndarray) -> InteractionLog:
        """The same id spaces and item facts with only the events where `mask` is True."""
        return replace(
            self,
            user=self.user[mask],
            item=self.item[mask],
            kind=self.kind[mask],
            time=self.time[mask],
        )


def from_retail(
    products: Sequence[Product], events: Sequence[Event], customer_ids: Sequence[str] = ()
) -> InteractionLog:
    """Code a retailer's catalog and view/cart/purchase events as an InteractionLog.

    Users are every customer in `customer_ids` plus everyone with an event, sorted by
    id; items are the catalog sorted by id. Events about unknown products and events
    that are not product interest (exposure, open, unsubscribe, a click without a
    product) are left out; a product click counts as a view.
    """
    items = sorted(products, key=lambda p: p.id)
    table = EventTable.of(events)
    # Per code (and one more entry for code -1, no product): the item index, -1 if none.
    item_of = np.full(len(table.product_ids) + 1, -1, dtype=np.int32)
    for j, p in enumerate(items):
        code = table.product_ids.find(p.id)
        if code is not None:
            item_of[code] = j
    kind_of = np.full(len(EVENT_TYPES), -1, dtype=np.int8)
    for event_type, code in KIND_CODES.items():
        kind_of[type_code(event_type)] = code
    item = item_of[table.product]
    kind = kind_of[table.type]
    kept = np.flatnonzero((item >= 0) & (kind >= 0))
    # By time, then customer id; stable, so equal keys keep the events' order.
    customer_rank = table.customer_ids.ranks()
    customer = table.customer[kept]
    kept = kept[np.lexsort((customer_rank[customer], table.micros[kept]))]
    customer = table.customer[kept]
    # Users: everyone in `customer_ids` and everyone with a kept event, sorted by id.
    seen = np.unique(customer).tolist()
    users = sorted(set(customer_ids) | {table.customer_ids.ids[c] for c in seen})
    user_of = np.zeros(len(table.customer_ids) + 1, dtype=np.int32)
    user_index = {u: i for i, u in enumerate(users)}
    for c in seen:
        user_of[c] = user_index[table.customer_ids.ids[c]]
    categories = sorted({p.category for p in items})
    brands = sorted({p.brand for p in items})
    cat_index = {c: i for i, c in enumerate(categories)}
    brand_index = {b: i for i, b in enumerate(brands)}
    return InteractionLog(
        user_ids=tuple(users),
        item_ids=tuple(p.id for p in items),
        user=user_of[customer],
        item=item[kept],
        kind=kind[kept],
        time=table.micros[kept] / 1e6,
        item_category=np.array([cat_index[p.category] for p in items], dtype=np.int32),
        categories=tuple(categories),
        item_brand=np.array([brand_index[p.brand] for p in items], dtype=np.int32),
        brands=tuple(brands),
        item_price=np.array([float(p.price) for p in items], dtype=np.float64),
        item_in_stock=np.array([p.in_stock for p in items], dtype=bool),
        item_text=tuple(f"{p.title} {p.brand} {p.category}" for p in items),
    )
