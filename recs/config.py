"""The knobs of the recommender, as one small immutable value."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from recs.errors import RecsError
from retail.types import EventType

#: How much one event says about wanting a product. Exposure, open, click and
#: unsubscribe are campaign feedback, not product interest: they count for nothing yet.
DEFAULT_EVENT_WEIGHTS: Mapping[EventType, float] = MappingProxyType(
    {EventType.view: 1.0, EventType.cart: 3.0, EventType.purchase: 5.0}
)


@dataclass(frozen=True)
class RecConfig:
    """Parameters of one fitted model. Every field enters the model version."""

    #: Embedding dimension; clipped to what the interaction matrix can support.
    dim: int = 32
    #: An event this many days before `now` counts half as much as one at `now`.
    half_life_days: float = 30.0
    #: Weight of each event type; types missing here are ignored.
    event_weights: Mapping[EventType, float] = field(default_factory=lambda: DEFAULT_EVENT_WEIGHTS)
    #: Share of the final score that comes from (recent) popularity, in [0, 1].
    popularity_weight: float = 0.1
    #: At most this many products of one category in a Pick, while the catalog allows.
    max_per_category: int = 2
    #: Catalogs with at least this many in-stock items are searched with HNSW, not exactly.
    hnsw_threshold: int = 20_000
    #: Faiss (OpenMP) threads for building the index and batched search; None = all cores.
    threads: int | None = None

    def __post_init__(self) -> None:
        if self.dim < 1:
            raise RecsError(f"dim must be at least 1, got {self.dim}")
        if not (self.half_life_days > 0):
            raise RecsError(
                f"half_life_days must be positive (math.inf for no decay), "
                f"got {self.half_life_days}"
            )
        if not (0.0 <= self.popularity_weight <= 1.0):
            raise RecsError(f"popularity_weight must be in [0, 1], got {self.popularity_weight}")
        if self.max_per_category < 1:
            raise RecsError(f"max_per_category must be at least 1, got {self.max_per_category}")
        if self.hnsw_threshold < 1:
            raise RecsError(f"hnsw_threshold must be at least 1, got {self.hnsw_threshold}")
        if self.threads is not None and self.threads < 1:
            raise RecsError(f"threads must be at least 1 or None, got {self.threads}")
        for kind, weight in self.event_weights.items():
            if not (math.isfinite(weight) and weight >= 0):
                raise RecsError(f"event weight for {kind} must be finite and >= 0, got {weight}")
        # A frozen copy, so a caller mutating its dict later cannot change a fitted model.
        object.__setattr__(
            self,
            "event_weights",
            MappingProxyType({EventType(k): float(v) for k, v in self.event_weights.items()}),
        )
