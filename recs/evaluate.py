"""Offline evaluation: pure metrics, a time-based holdout and a popularity baseline.

No model imports this module. Run `python -m recs.evaluate` for a sanity check on
synthetic data: the recommender against recent popularity on a later holdout.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime, timedelta

import numpy as np

from recs.config import RecConfig
from recs.interactions import build_interactions
from recs.model import fit
from recs.popularity import item_popularity, popularity_order
from recs.synthetic import synthetic_shop
from retail.types import Event, EventType, Product


def recall_at_k(
    recommended: Mapping[str, Sequence[str]], relevant: Mapping[str, Collection[str]], k: int
) -> float:
    """Mean over customers with relevant items of |top-k ∩ relevant| / |relevant|.

    A customer missing from `recommended` counts as zero hits.
    """
    scores = [
        len(set(recommended.get(cid, ())[:k]) & set(items)) / len(items)
        for cid, items in relevant.items()
        if items
    ]
    return float(np.mean(scores)) if scores else 0.0


def hit_rate_at_k(
    recommended: Mapping[str, Sequence[str]], relevant: Mapping[str, Collection[str]], k: int
) -> float:
    """Share of customers with relevant items who find at least one of them in the top k."""
    hits = [
        bool(set(recommended.get(cid, ())[:k]) & set(items))
        for cid, items in relevant.items()
        if items
    ]
    return float(np.mean(hits)) if hits else 0.0


def holdout_by_time(
    events: Sequence[Event], cutoff: datetime
) -> tuple[list[Event], dict[str, set[str]]]:
    """Events before `cutoff` to train on, and per customer the products first bought after it.

    Repeat purchases are left out of the truth: the recommender never re-offers them.
    """
    train = [e for e in events if e.timestamp < cutoff]
    bought_before = {(e.customer_id, e.product_id) for e in train if e.type is EventType.purchase}
    relevant: dict[str, set[str]] = {}
    for e in events:
        if (
            e.timestamp >= cutoff
            and e.type is EventType.purchase
            and e.product_id is not None
            and (e.customer_id, e.product_id) not in bought_before
        ):
            relevant.setdefault(e.customer_id, set()).add(e.product_id)
    return train, relevant


def popularity_baseline(
    products: Sequence[Product],
    events: Sequence[Event],
    customer_ids: Sequence[str],
    *,
    now: datetime,
    n: int,
    config: RecConfig | None = None,
) -> dict[str, list[str]]:
    """Recent popularity for everyone: the same top-n in-stock list minus each one's purchases."""
    config = config or RecConfig()
    data = build_interactions(
        products,
        events,
        now=now,
        half_life_days=config.half_life_days,
        event_weights=config.event_weights,
    )
    stock = {p.id: p.in_stock for p in products}
    in_stock = np.array([stock[pid] for pid in data.item_ids], dtype=bool)
    ranked = [data.item_ids[c] for c in popularity_order(item_popularity(data.weights), in_stock)]
    result: dict[str, list[str]] = {}
    for cid in customer_ids:
        row = data.customer_index.get(cid)
        bought = (
            set()
            if row is None
            else {data.item_ids[c] for c in data.purchased[row].indices.tolist()}
        )
        result[cid] = [pid for pid in ranked[: n + len(bought)] if pid not in bought][:n]
    return result


def main(argv: Sequence[str] | None = None) -> None:
    """Print recall@k and hit-rate@k of the recommender vs popularity on a synthetic holdout."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=5_000)
    parser.add_argument("--products", type=int, default=400)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--holdout-days", type=int, default=15)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    shop = synthetic_shop(n_customers=args.customers, n_products=args.products, seed=args.seed)
    cutoff = shop.now - timedelta(days=args.holdout_days)
    train, relevant = holdout_by_time(shop.events, cutoff)
    asked = sorted(relevant)
    print(
        f"synthetic shop: {len(shop.customer_ids)} customers, {len(shop.products)} products, "
        f"{len(shop.events)} events; holdout: last {args.holdout_days} days, "
        f"{len(asked)} customers with new purchases"
    )
    rows = [("popularity", popularity_baseline(shop.products, train, asked, now=cutoff, n=args.k))]
    for label, config in (
        ("recs (no category cap)", RecConfig(max_per_category=args.k)),
        ("recs (cap 2 per category)", RecConfig()),
    ):
        started = time.perf_counter()
        model = fit(shop.products, train, now=cutoff, seed=args.seed, config=config)
        picks = model.recommend(asked, n=args.k)
        seconds = time.perf_counter() - started
        rows.append((f"{label} [{seconds:.2f} s]", {c: p.product_ids for c, p in picks.items()}))
    print(f"{'':40s} recall@{args.k}  hit@{args.k}")
    for label, recommended in rows:
        recall = recall_at_k(recommended, relevant, args.k)
        hits = hit_rate_at_k(recommended, relevant, args.k)
        print(f"{label:40s} {recall:9.3f}  {hits:6.3f}")


if __name__ == "__main__":
    main()
