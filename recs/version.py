"""A short, stable name for a fitted model: same data and parameters, same name."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import fields

import numpy as np

from recs.config import RecConfig
from recs.interactions import Interactions
from retail.types import Product

#: Bump when the algorithm changes in a way that changes Picks for the same inputs.
ALGORITHM = "svd1"


def model_version(
    interactions: Interactions, products: Sequence[Product], config: RecConfig, seed: int
) -> str:
    """`svd1-<12 hex>`: a hash of everything that decides the Picks.

    That is the interaction matrix (which already reflects `now` through decay), each
    product's id, category and stock, the parameters that change results and the seed.
    Titles, prices and the thread count do not enter: they do not change what is picked.
    """
    digest = hashlib.sha256()

    def add(label: str, payload: bytes) -> None:
        # Length-prefixed so two fields can never run together into the same bytes.
        digest.update(f"{label}:{len(payload)}:".encode())
        digest.update(payload)

    params = {f.name: getattr(config, f.name) for f in fields(config) if f.name != "threads"}
    params["event_weights"] = sorted((str(k), v) for k, v in config.event_weights.items())
    add("params", repr(sorted(params.items())).encode())
    add("seed", str(seed).encode())
    catalog = sorted((p.id, p.category, p.in_stock) for p in products)
    add("catalog", repr(catalog).encode())
    add("customers", "\x1f".join(interactions.customer_ids).encode())
    for name in ("weights", "purchased"):
        matrix = getattr(interactions, name)
        add(f"{name}.shape", repr(matrix.shape).encode())
        add(f"{name}.indptr", np.ascontiguousarray(matrix.indptr, dtype=np.int64).tobytes())
        add(f"{name}.indices", np.ascontiguousarray(matrix.indices, dtype=np.int64).tobytes())
        add(f"{name}.data", np.ascontiguousarray(matrix.data, dtype=np.float64).tobytes())
    return f"{ALGORITHM}-{digest.hexdigest()[:12]}"
