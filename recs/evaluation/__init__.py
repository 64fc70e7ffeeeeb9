"""Offline evaluation of recommenders: splits, pure metrics, tuned baselines, one table.

No recommender imports this package; it imports them. Baselines: popularity, item-kNN,
EASE, ALS (`baselines`), the sequential Markov and sequence kNN (`sequential`) and, with
the `sasrec` extra, SASRec (`sasrec`, PyTorch). `evaluate(log, protocol)` is the
entry point the CLI (`reelcast recs evaluate`), the training gate (`recs.training`) and
`bench/recs.py` share. Every caller passes its own log: the benches' and tests' data sets
(MovieLens-100K, synthetic logs) live in `bench/evalkit/`, outside the shipped packages.
"""

from recs.evaluation.baselines import ALS, EASE, ItemKNN, Popularity
from recs.evaluation.protocols import PROTOCOLS, Split, leave_last_out, random_split, split
from recs.evaluation.run import ModelSpec, default_specs, evaluate, evaluate_detailed, format_table
from recs.evaluation.sequential import Markov, SequenceKNN

__all__ = [
    "ALS",
    "EASE",
    "PROTOCOLS",
    "ItemKNN",
    "Markov",
    "ModelSpec",
    "Popularity",
    "SequenceKNN",
    "Split",
    "default_specs",
    "evaluate",
    "evaluate_detailed",
    "format_table",
    "leave_last_out",
    "random_split",
    "split",
]
