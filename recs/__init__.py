"""Recommendations: which products each customer is most likely to buy, and why.

`recommend(...)` is the one-call entry point; `fit(...)` returns a reusable `RecModel`.
"""

from recs.config import DEFAULT_EVENT_WEIGHTS, RecConfig
from recs.errors import RecsError
from recs.model import REASONS, RecModel, fit
from recs.pick import recommend

__all__ = [
    "DEFAULT_EVENT_WEIGHTS",
    "REASONS",
    "RecConfig",
    "RecModel",
    "RecsError",
    "fit",
    "recommend",
]
