"""Offline evaluation of recommenders: splits, pure metrics, tuned baselines, one table.

No recommender imports this package; it imports them. `evaluate(log, protocol)` is the
entry point the CLI (`reelcast recs evaluate`) and `bench/recs.py` share.
"""

from recs.evaluation.baselines import ALS, EASE, ItemKNN, Popularity
from recs.evaluation.movielens import load_movielens_100k
from recs.evaluation.protocols import PROTOCOLS, Split, leave_last_out, random_split, split
from recs.evaluation.run import ModelSpec, default_specs, evaluate, evaluate_detailed, format_table

__all__ = [
    "ALS",
    "EASE",
    "PROTOCOLS",
    "ItemKNN",
    "ModelSpec",
    "Popularity",
    "Split",
    "default_specs",
    "evaluate",
    "evaluate_detailed",
    "format_table",
    "leave_last_out",
    "load_movielens_100k",
    "random_split",
    "split",
]
