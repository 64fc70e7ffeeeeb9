"""Recommendations: which products each customer is most likely to buy, and why.

`Pipeline` is the two-stage recommender (sources → LambdaRank). The campaign trains and
registers it with `recs.training` (`train`, `register`, gated by `recs.evaluation`) and
serves the approved model with `recs.training.serve_current`: `recs.pick.serve` (the
business rules of `recs.rules` applied after ranking), checked against today's catalog
and purchases.
"""

from recs.config import PipelineConfig
from recs.errors import RecsError
from recs.pipeline import Pipeline

__all__ = ["Pipeline", "PipelineConfig", "RecsError"]
