"""Recommendations: which products each customer is most likely to buy, and why.

`Pipeline` is the two-stage recommender (sources → LambdaRank); `recommend(...)` is the
one call the campaign makes, with the business rules applied after ranking.
"""

from recs.config import PipelineConfig
from recs.errors import RecsError
from recs.pipeline import Pipeline

__all__ = ["Pipeline", "PipelineConfig", "RecsError"]
