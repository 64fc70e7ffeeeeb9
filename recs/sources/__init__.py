"""Candidate sources: each proposes ~100 scored items for every user, batched.

Names are short because they appear in every Pick's reasons: `als`, `cooc`, `trend`,
`category`, `ease`, `trans`.
"""

from recs.sources.base import Source
from recs.sources.category import CategoryAffinity
from recs.sources.cooccurrence import CoOccurrence
from recs.sources.ease import Ease
from recs.sources.embedding import AlsEmbedding
from recs.sources.transition import Transition
from recs.sources.trending import Trending

__all__ = [
    "AlsEmbedding",
    "CategoryAffinity",
    "CoOccurrence",
    "Ease",
    "Source",
    "Transition",
    "Trending",
]
