"""New arrivals: products added to the catalog after the served model was trained.

A model knows only the items of its training data; until the nightly retraining, a product
added today would never be picked. `new_arrivals` gives each customer the in-stock product
the model does not know that is most like what they viewed, carted and bought: of a
category in their history, within their price band, scored by the mean of three shares
(their history's weight in its category, in its brand, and the TF-IDF cosine of its title,
brand and category words with their history's, as `recs.coldstart` does for unsold items).
`recs.training.serve_current` shows it in one slot, with the reason `new(sim=0.42)`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from recs.coldstart import tfidf
from recs.matrix import row_normalize
from retail.events import EventTable, type_code
from retail.types import EventType, Product

#: a new product is shown to a customer whose history's median price is within this factor
#: of its price (a €15 T-shirt buyer is not shown a €900 watch, however similar the words)
PRICE_BAND = 3.0
#: the kinds of events a customer's profile is made of, and their weights
_KIND_WEIGHTS = {EventType.view: 1.0, EventType.cart: 3.0, EventType.purchase: 5.0}


@dataclass(frozen=True)
class Arrival:
    """The new product shown to one customer, and how like their history it is (cosine)."""

    product_id: str
    similarity: float

    @property
    def reason(self) -> str:
        """The Pick reason of its slot: `new(sim=0.42)`."""
        return f"new(sim={self.similarity:.2f})"


def product_text(product: Product) -> str:
    """The words a product is compared by (as `recs.dataset` gives the model's items)."""
    return f"{product.title} {product.brand} {product.category}"


def new_arrivals(
    known: Sequence[str],
    products: Sequence[Product],
    events: EventTable,
    customer_ids: Sequence[str],
    *,
    min_similarity: float,
) -> dict[str, Arrival]:
    """Per customer with history, the most similar in-stock product not among `known` (the
    model's item ids), when its cosine is at least `min_similarity` and its price is in
    the customer's band; customers without such a product are left out.

    Products the customer already bought are not offered.
    """
    known_ids = set(known)
    new = [i for i, p in enumerate(products) if p.in_stock and p.id not in known_ids]
    if not new or not customer_ids:
        return {}
    index = {p.id: i for i, p in enumerate(products)}
    mine = events.for_customers(customer_ids)
    rows, cols, weights = _interactions(mine, customer_ids, index)
    if not len(rows):
        return {}
    history = sp.csr_matrix(
        (weights, (rows, cols)), shape=(len(customer_ids), len(products)), dtype=np.float32
    )
    history.sum_duplicates()
    vectors = tfidf([product_text(p) for p in products])
    profile = row_normalize(history) @ vectors
    norms = np.sqrt(np.asarray(profile.multiply(profile).sum(axis=1)).ravel())
    text = np.asarray((profile @ vectors[new].T).todense())
    text = np.divide(text, norms[:, None], out=np.zeros_like(text), where=norms[:, None] > 0)
    category = _shares(history, [p.category for p in products], new)
    brand = _shares(history, [p.brand for p in products], new)
    sims = (text + category + brand) / 3

    prices = np.array([float(p.price) for p in products])
    median = _median_prices(history, prices)
    new_prices = prices[new]
    in_band = (new_prices[None, :] <= median[:, None] * PRICE_BAND) & (
        new_prices[None, :] >= median[:, None] / PRICE_BAND
    )
    bought = _bought(mine, customer_ids, index, len(products))[:, new].toarray()
    sims[~in_band | bought | (category <= 0)] = -1.0

    best = np.argmax(sims, axis=1)
    found: dict[str, Arrival] = {}
    rows = np.flatnonzero(sims[np.arange(len(customer_ids)), best] >= min_similarity)
    for row in rows.tolist():
        column = int(best[row])
        found[customer_ids[row]] = Arrival(products[new[column]].id, float(sims[row, column]))
    return found


def _interactions(
    table: EventTable, customer_ids: Sequence[str], index: dict[str, int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(customer row, product column, weight) of each view, cart and purchase of a product
    in today's catalog."""
    row_of = {c: r for r, c in enumerate(customer_ids)}
    customer_row = np.array([row_of.get(c, -1) for c in table.customer_ids.ids] + [-1])
    product_col = np.array([index.get(p, -1) for p in table.product_ids.ids] + [-1])
    weight_of = np.zeros(len(EventType), dtype=np.float32)
    for kind, weight in _KIND_WEIGHTS.items():
        weight_of[type_code(kind)] = weight
    rows = customer_row[table.customer]
    cols = product_col[table.product]
    weights = weight_of[table.type]
    keep = (rows >= 0) & (cols >= 0) & (weights > 0)
    return rows[keep], cols[keep], weights[keep]


def _shares(history: sp.csr_matrix, labels: Sequence[str], columns: Sequence[int]) -> np.ndarray:
    """(customers, `columns`): the share of each customer's history weight on products with
    the same label (category, brand) as each product of `columns`."""
    names = {name: i for i, name in enumerate(dict.fromkeys(labels))}
    codes = np.array([names[label] for label in labels])
    one_hot = sp.csr_matrix(
        (np.ones(len(codes), dtype=np.float32), (np.arange(len(codes)), codes)),
        shape=(len(codes), len(names)),
    )
    per_label = np.asarray((row_normalize(history) @ one_hot).todense())
    return per_label[:, codes[np.asarray(columns)]]


def _median_prices(history: sp.csr_matrix, prices: np.ndarray) -> np.ndarray:
    """Per customer, the median price of the products in their history."""
    median = np.zeros(history.shape[0])
    for row in range(history.shape[0]):
        start, end = history.indptr[row], history.indptr[row + 1]
        if end > start:
            median[row] = float(np.median(prices[history.indices[start:end]]))
    return median


def _bought(
    table: EventTable, customer_ids: Sequence[str], index: dict[str, int], n_products: int
) -> sp.csc_matrix:
    """(customers, products), nonzero where the customer bought the product."""
    rows, cols, weights = _interactions(
        table.where(table.type_mask(EventType.purchase)), customer_ids, index
    )
    return sp.csc_matrix((weights, (rows, cols)), shape=(len(customer_ids), n_products)) > 0
