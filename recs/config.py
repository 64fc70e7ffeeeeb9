"""Every knob of the reelcast pipeline, as one small immutable value."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from recs.errors import RecsError


@dataclass(frozen=True)
class PipelineConfig:
    """Parameters of one fitted pipeline. Every field except `threads` enters the version."""

    # --- interaction weights -------------------------------------------------------------
    #: weight of a view, a cart and a purchase in the interaction matrix
    kind_weights: tuple[float, float, float] = (1.0, 3.0, 5.0)
    #: interactions this many days old count half (None: no decay)
    half_life_days: float | None = None

    #: the "recent" profile behind the `<source>_recent` features (the item-item sources
    #: scored from the user's latest events only): an event's weight halves every this
    #: many events counted back from the user's latest
    recent_half_life: float = 3.0

    # --- source: ALS embeddings + Faiss ------------------------------------------------
    als_factors: int = 64
    #: tuned on MovieLens-100K validation (ranking by dot product; 0.05 overfit badly)
    als_regularization: float = 10.0
    als_iterations: int = 15
    #: confidence = 1 + alpha × weight (implicit's convention)
    als_alpha: float = 0.6
    als_k: int = 100
    #: catalogs with at least this many items are searched with HNSW, below exactly
    hnsw_threshold: int = 20_000
    #: force exact (Flat) search at any size: the bench's brute-force comparison
    exact_retrieval: bool = False

    # --- source: item-to-item co-occurrence ----------------------------------------------
    cooc_k: int = 100
    cooc_neighbours: int = 100
    cooc_shrink: float = 10.0

    # --- source: item → next item transitions ----------------------------------------------
    transition_k: int = 100
    #: P(j | i) = n(i → j) / (n(i → ·) + shrink), each item keeping its likeliest next items
    transition_neighbours: int = 100
    transition_shrink: float = 10.0
    #: a user's latest this many items vote, each half the weight of the one after it
    transition_window: int = 8

    # --- source: trending ------------------------------------------------------------------
    trend_k: int = 50
    #: popularity decays with this half-life; trend compares the last `trend_recent_days`
    #: with the `trend_baseline_days` before them
    trend_half_life_days: float = 14.0
    trend_recent_days: float = 7.0
    trend_baseline_days: float = 28.0

    # --- source: category affinity ---------------------------------------------------------
    category_k: int = 50
    category_top_items: int = 50

    # --- source: EASE (only for catalogs up to `ease_max_items`) ---------------------------
    ease_k: int = 100
    ease_lambda: float = 400.0
    ease_max_items: int = 20_000

    # --- ranker ----------------------------------------------------------------------------
    #: how the training log is cut into features | labels for the ranker:
    #: "time" = one cutoff for everyone (the last `label_share` of events are labels);
    #: "user" = each user's own last `label_share` of events are their labels (for logs
    #: like MovieLens where users are active in short, non-overlapping bursts);
    #: "user-last" = each user's next item after their earlier ones (one label per user
    #: and fold: what leave-last-out asks; consecutive events on one item, its view, cart
    #: and purchase, are one step); "user-random" = random shares of each user's
    #: events (what a random split asks);
    #: "auto" = "time" unless fewer than `min_label_users` users have events on both sides.
    #: Time-correctness: "time" is time-correct for everything (every fold's History holds
    #: only events strictly before its cutoff). The user modes cut only each user's OWN
    #: history at that user's labels ("user", "user-last": the user's events before the
    #: labels; "user-random": all the user's other events, later ones included, as the
    #: random split it mirrors); the global item statistics of a fold (popularity, trend,
    #: co-occurrence, item transitions, ALS/EASE item factors, category top items) are
    #: computed from every user's feature events, which include OTHER users' events after
    #: this user's label time. So the user modes (and "auto" when it falls back to
    #: "user") may learn from item statistics of the label period: fine for logs of
    #: separate bursts such as MovieLens, not a forecast of a retailer's next campaign;
    #: use "time" for that.
    label_split: str = "auto"
    label_share: float = 0.15
    #: train the ranker on this many label folds stacked (more query groups): "time" and
    #: "user" step back one `label_share` window per fold, "user-random" takes disjoint
    #: random shares; each fold refits the sources on its own feature events
    label_folds: int = 3
    min_label_users: int = 500
    #: a label window of at least this many days, when the log is long enough
    min_label_days: float = 0.0
    ranker_rounds: int = 200
    ranker_learning_rate: float = 0.03
    #: small trees: bigger ones overfit the label folds (MovieLens validation NDCG fell)
    ranker_leaves: int = 7
    ranker_min_leaf: int = 200
    ranker_feature_fraction: float = 0.8
    #: at most this many users' candidate lists train the ranker (a seeded sample)
    ranker_max_users: int = 5_000
    #: per training user, all positives and at most this many sampled negatives: keeps
    #: LambdaRank's per-query cost down without changing what it learns much
    ranker_negatives: int = 100
    #: LambdaRank optimises NDCG at this cut
    ranker_eval_at: int = 10

    seed: int = 0
    #: Faiss, LightGBM and BLAS threads; None = all cores. Does not change results.
    threads: int | None = None
    #: users scored per batch: bounds memory at 100k users × 50k items
    batch_users: int = 2_048

    def __post_init__(self) -> None:
        positive_ints = (
            *("als_factors", "als_iterations", "als_k", "cooc_k", "cooc_neighbours"),
            *("trend_k", "category_k", "category_top_items", "ease_k", "ranker_rounds"),
            *("ranker_leaves", "ranker_min_leaf", "ranker_max_users", "ranker_negatives"),
            *("ranker_eval_at", "batch_users", "hnsw_threshold", "label_folds"),
            *("transition_k", "transition_neighbours", "transition_window"),
        )
        for name in positive_ints:
            if getattr(self, name) < 1:
                raise RecsError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.label_split not in ("auto", "time", "user", "user-last", "user-random"):
            raise RecsError(
                "label_split must be auto, time, user, user-last or user-random, "
                f"got {self.label_split!r}"
            )
        if not (0.0 < self.label_share < 1.0):
            raise RecsError(f"label_share must be in (0, 1), got {self.label_share}")
        if not self.recent_half_life > 0:
            raise RecsError(f"recent_half_life must be positive, got {self.recent_half_life}")
        if self.transition_shrink < 0:
            raise RecsError(f"transition_shrink must be >= 0, got {self.transition_shrink}")
        if self.half_life_days is not None and not self.half_life_days > 0:
            raise RecsError(f"half_life_days must be positive or None, got {self.half_life_days}")
        if len(self.kind_weights) != 3 or min(self.kind_weights) < 0:
            raise RecsError("kind_weights needs three weights >= 0 (view, cart, purchase)")
        if self.threads is not None and self.threads < 1:
            raise RecsError(f"threads must be at least 1 or None, got {self.threads}")

    def params(self) -> dict[str, Any]:
        """The knobs as a JSON-able dict (tuples become lists)."""
        return {
            f.name: list(v) if isinstance(v := getattr(self, f.name), tuple) else v
            for f in dataclasses.fields(self)
        }
