"""Train, measure and register a model; serve a registered model on today's data.

A registered model was fitted on an older snapshot. Serving it must still respect what
changed since: products sold out or removed, and products the customer bought after
training. `serve_current` asks the model for spare picks and applies those facts, and
gives products added since training a way in (`recs.arrivals`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import numpy as np

from recs.arrivals import Arrival, new_arrivals
from recs.config import PipelineConfig
from recs.dataset import from_retail
from recs.errors import RecsError
from recs.evaluation.baselines import Popularity
from recs.evaluation.run import evaluate
from recs.explore import explore, propensity_marker
from recs.offpolicy import logged_propensity
from recs.pick import serve
from recs.pipeline import Pipeline, is_current
from recs.registry import Gate, ModelRecord, Registry
from recs.rules import Rules
from retail.events import EVENT_TYPES, EventTable, to_micros
from retail.types import Event, Pick, Product

MODEL_FILE = "pipeline.pkl"
# Events formatted at a time for the snapshot hash.
_HASH_CHUNK = 65_536


def snapshot_hash(products: Sequence[Product], events: Sequence[Event]) -> str:
    """A hash of what a model learns from: the catalog facts and the behaviour events."""
    digest = hashlib.sha256()
    for p in sorted(products, key=lambda p: p.id):
        digest.update(
            f"P\x1f{p.id}\x1f{p.category}\x1f{p.brand}\x1f{p.price}\x1f{p.in_stock}\n".encode()
        )
    table = EventTable.of(events)
    # By time, customer id and product id ("" for none), stably: the order of the events
    # as `sorted` would give it, so the hash does not depend on how the events are held.
    product_rank, customer_rank = table.product_ids.ranks(), table.customer_ids.ranks()
    order = np.lexsort((product_rank[table.product], customer_rank[table.customer], table.micros))
    customer_ids, product_ids = table.customer_ids.ids, table.product_ids.ids
    types = [str(t) for t in EVENT_TYPES]
    for start in range(0, len(order), _HASH_CHUNK):
        rows = order[start : start + _HASH_CHUNK]
        lines = [
            f"E\x1f{customer_ids[c]}\x1f{product_ids[p] if p >= 0 else ''}\x1f{types[k]}\x1f"
            f"{us / 1e6:.0f}\n"
            for c, p, k, us in zip(
                table.customer[rows].tolist(),
                table.product[rows].tolist(),
                table.type[rows].tolist(),
                table.micros[rows].tolist(),
                strict=True,
            )
        ]
        digest.update("".join(lines).encode())
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class Trained:
    """A fitted pipeline with its offline metrics and the hash of its data."""

    pipeline: Pipeline
    metrics: dict[str, float]
    data_hash: str


def train(
    products: Sequence[Product],
    events: Sequence[Event],
    customer_ids: Sequence[str],
    *,
    now: datetime,
    config: PipelineConfig | None = None,
) -> Trained:
    """Measure the pipeline offline (leave-last-out, against popularity), then fit it on all.

    The metrics feed the registry's gate: `ndcg@10`, `recall@10` and the popularity
    baseline's `baseline_ndcg@10` of the same split.
    """
    every = EventTable.of(events)
    history = every.where(
        (every.micros <= to_micros(now)) & every.product_mask(p.id for p in products)
    )
    log = from_retail(products, history, customer_ids)
    if len(log.user) == 0:
        raise RecsError("no view, cart or purchase events before now: nothing to learn from")
    table = evaluate(log, "leave-last-out", [Popularity(), Pipeline(config)])
    ours, pop = table.get("reelcast", {}), table.get("pop", {})
    metrics = {
        name: float(value)
        for name, value in {
            "ndcg@10": ours.get("ndcg@10"),
            "recall@10": ours.get("recall@10"),
            "coverage": ours.get("coverage"),
            "baseline_ndcg@10": pop.get("ndcg@10"),
        }.items()
        if value is not None
    }
    pipeline = Pipeline(config).fit(log, now=now.timestamp())
    return Trained(pipeline, metrics, snapshot_hash(products, history))


def register(registry: Registry, trained: Trained, gate: Gate | None = None) -> ModelRecord:
    """Store the trained pipeline in the registry; approve it if it passes `gate`."""
    return registry.register(
        trained.pipeline.version,
        lambda folder: trained.pipeline.save(folder / MODEL_FILE),
        data_hash=trained.data_hash,
        params=trained.pipeline.params(),
        metrics=trained.metrics,
        gate=gate,
    )


def as_of(events: Sequence[Event]) -> datetime:
    """The time the data describes: its latest event (now, when there are none)."""
    return EventTable.of(events).latest() or datetime.now(UTC)


@dataclass(frozen=True)
class ModelChoice:
    """The model a campaign serves, and whether it was trained for it just now."""

    #: the approved model to serve; None when none is approved (see `refusal`)
    record: ModelRecord | None
    #: the model trained by this call (approved or not), when one was
    trained: ModelRecord | None = None
    #: why a campaign cannot pick products, and what to do about it
    refusal: str = ""
    #: the approved model of an older reelcast that could not serve, when there was one
    outdated: str | None = None


def approved_or_trained(
    registry: Registry,
    products: Sequence[Product],
    events: Sequence[Event],
    customer_ids: Sequence[str],
    gate: Gate,
) -> ModelChoice:
    """The newest approved model of this algorithm; else a model trained now on these
    files, served only if the gate approves it (a model of an older reelcast cannot serve).
    """
    record = registry.approved()
    if record is not None and is_current(record.version):
        return ModelChoice(record)
    outdated = record.version if record is not None else None
    trained = train(products, events, customer_ids, now=as_of(events))
    new = register(registry, trained, gate)
    if new.approved:
        return ModelChoice(new, trained=new, outdated=outdated)
    return ModelChoice(
        None,
        trained=new,
        outdated=outdated,
        refusal=f"no approved recommendation model: the new model {new.version} did not pass "
        f"the gate ({new.approval_note}); approve it with `reelcast recs approve "
        f"{new.version}` if it is good enough",
    )


def load(registry: Registry, record: ModelRecord) -> Pipeline:
    """The fitted pipeline of a registered model."""
    return Pipeline.load(registry.path(record.version) / MODEL_FILE)


def serve_current(
    pipeline: Pipeline,
    products: Sequence[Product],
    events: Sequence[Event],
    customer_ids: Sequence[str],
    *,
    n: int,
    now: datetime,
    rules: Rules | None = None,
    groups: Mapping[str, str] | None = None,
    spare: int = 6,
) -> dict[str, Pick]:
    """Picks from a (possibly older) model, checked against today's catalog and events.

    Drops products no longer in the catalog or out of stock, and products the customer
    bought (after training too), unless the rules' repurchase window lets them back.
    A product added to the catalog after training (the model has never seen it) that is
    like the customer's history takes one slot, never the first nor the exploration slot,
    with the reason `new(sim=…)` (see `recs.arrivals`; not when `n` is 1).
    """
    rules = rules or Rules()
    # Exploration comes after today's checks: a slot explored among the model's spare
    # picks and then dropped (sold out, bought since) would leave a wrong propensity.
    wide = serve(
        pipeline,
        customer_ids,
        n=n + spare,
        now=now,
        rules=replace(rules, epsilon=0.0),
        groups=groups,
    )
    catalog = {p.id: p for p in products}
    table = EventTable.of(events)
    bought = table.last_purchases(until=now)
    window = timedelta(days=rules.repurchase_days) if rules.repurchase_days is not None else None

    def allowed(customer_id: str, product_id: str) -> bool:
        product = catalog.get(product_id)
        if product is None or not product.in_stock:
            return False
        last = bought.get((customer_id, product_id))
        if last is None:
            return True
        return (
            window is not None
            and product.category in rules.repurchase_categories
            and now - last >= window
        )

    history = pipeline.history
    arrivals = (
        new_arrivals(
            history.log.item_ids,
            products,
            table,
            customer_ids,
            min_similarity=rules.cold_item_similarity,
        )
        if history is not None and n > 1
        else {}
    )
    usable = {
        customer_id: [i for i, pid in enumerate(pick.product_ids) if allowed(customer_id, pid)]
        for customer_id, pick in wide.items()
    }
    explored = _explore_last_slot(wide, usable, n, rules)
    picks: dict[str, Pick] = {}
    for customer_id, pick in wide.items():
        slots = explored.get(customer_id) or [
            (pick.product_ids[i], pick.scores[i], pick.reasons[i]) for i in usable[customer_id][:n]
        ]
        arrival = arrivals.get(customer_id)
        if arrival is not None:
            slots = _with_arrival(slots, arrival, n)
        if not slots:
            continue
        picks[customer_id] = Pick(
            customer_id=customer_id,
            product_ids=tuple(s[0] for s in slots),
            scores=tuple(s[1] for s in slots),
            reasons=tuple(s[2] for s in slots),
            model_version=pick.model_version,
        )
    return picks


Slot = tuple[str, float, str]


def _explore_last_slot(
    wide: Mapping[str, Pick], usable: Mapping[str, list[int]], n: int, rules: Rules
) -> dict[str, list[Slot]]:
    """Each customer's first `n` usable slots with the last one explored (`recs.explore`)
    among all their usable spare picks, its propensity in its reason as `recs.pick.serve`
    writes it. Empty when the rules do not explore."""
    if rules.epsilon <= 0 or not wide:
        return {}
    ids = [c for c in wide if usable[c]]
    width = max(len(usable[c]) for c in ids) if ids else 0
    pool = np.full((len(ids), width), -1, dtype=np.int64)
    shown = np.full((len(ids), n), -1, dtype=np.int64)
    for r, c in enumerate(ids):
        pool[r, : len(usable[c])] = usable[c]
        greedy = usable[c][:n]
        shown[r, : len(greedy)] = greedy
    # The last slot of a row with fewer than n usable picks is its last filled one.
    does, position, propensity = explore(ids, pool, shown, epsilon=rules.epsilon, seed=rules.seed)
    result: dict[str, list[Slot]] = {}
    for r, c in enumerate(ids):
        pick = wide[c]
        slots = [(pick.product_ids[i], pick.scores[i], pick.reasons[i]) for i in usable[c][:n]]
        if len(slots) < n:
            result[c] = slots  # no full pick: no exploration slot, no round
            continue
        if does[r]:
            i = int(pool[r, position[r]])
            slots[-1] = (pick.product_ids[i], pick.scores[i], f"explore(p={propensity[r]:.4g})")
        else:
            product, score, reason = slots[-1]
            slots[-1] = (product, score, reason + propensity_marker(float(propensity[r])))
        result[c] = slots
    return result


def _with_arrival(slots: list[Slot], arrival: Arrival, n: int) -> list[Slot]:
    """`slots` (product, score, reason) with the new product in one of them: an empty one
    if there is room, else the last that is neither the first nor exploration's."""
    if any(product_id == arrival.product_id for product_id, _, _ in slots):
        return slots
    new: Slot = (arrival.product_id, round(arrival.similarity, 6), arrival.reason)
    explores = bool(slots) and logged_propensity(slots[-1][2]) is not None
    if len(slots) < n:
        at = len(slots) - 1 if explores else len(slots)
        return [*slots[:at], new, *slots[at:]]
    free = [
        i
        for i in range(1, len(slots) - explores)
        if not slots[i][2].startswith(("explore(", "new("))
    ]
    if not free:
        return slots
    at = free[-1]
    return [*slots[:at], new, *slots[at + 1 :]]
