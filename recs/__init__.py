"""Recommendations: which products each customer is most likely to buy, and why.

`Pipeline` is the two-stage recommender (sources → LambdaRank). The campaign trains and
registers it with `recs.training` (`train`, `register`, gated by `recs.evaluation`) and
serves the approved model with `recs.training.serve_current`: `recs.pick.serve` (the
business rules of `recs.rules` applied after ranking), checked against today's catalog
and purchases.
"""

from typing import TYPE_CHECKING, Any

from recs.config import PipelineConfig
from recs.errors import RecsError

if TYPE_CHECKING:
    from recs.pipeline import Pipeline

__all__ = ["Pipeline", "PipelineConfig", "RecsError"]


def __getattr__(name: str) -> Any:
    # The pipeline pulls in Faiss, LightGBM and scipy: loaded when first asked for, so
    # importing a light module of this package (rules, errors) stays light.
    if name == "Pipeline":
        from recs.pipeline import Pipeline

        return Pipeline
    raise AttributeError(f"module 'recs' has no attribute {name!r}")
