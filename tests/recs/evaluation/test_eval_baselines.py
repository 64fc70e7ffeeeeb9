"""Each baseline finds the planted clusters of a tiny synthetic log and honours exclusions."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from bench.evalkit.synthetic import planted_log
from recs.evaluation.baselines import ALS, EASE, ItemKNN, Popularity, top_n
from recs.evaluation.protocols import interaction_matrix

LOG = planted_log(200, 100, n_clusters=5, events_per_user=15, loyalty=0.95, seed=1)
USERS = np.arange(LOG.n_users)


@pytest.mark.parametrize(
    "model",
    [ItemKNN(k=20), EASE(lam=50.0), ALS(factors=8, regularization=1.0, iterations=10)],
    ids=["itemknn", "ease", "als"],
)
def test_personal_baselines_recommend_the_users_cluster(model) -> None:
    seen = interaction_matrix(LOG)
    recommended = model.fit(LOG, now=LOG.time.max() + 1).recommend_indices(USERS, 5, exclude=seen)
    in_cluster = LOG.item_category[recommended] == (USERS % 5)[:, None]
    assert in_cluster.mean() > 0.9
    assert not seen.toarray()[USERS[:, None], recommended].any()


def test_popularity_ranks_by_distinct_users_and_skips_seen() -> None:
    model = Popularity().fit(LOG, now=0.0)
    counts = np.asarray(interaction_matrix(LOG).sum(axis=0)).ravel()
    first = model.recommend_indices(np.array([0]), 3)[0]
    assert list(first) == list(np.argsort(-counts, kind="stable")[:3])
    exclude = sp.csr_matrix(([True], ([0], [first[0]])), shape=(LOG.n_users, LOG.n_items))
    assert model.recommend_indices(np.array([0]), 3, exclude=exclude)[0][0] == first[1]


def test_top_n_pads_breaks_ties_by_column_and_respects_exclusion() -> None:
    scores = np.array([[1.0, 3.0, 3.0, 0.5]])
    exclude = sp.csr_matrix(np.array([[False, False, False, True]]))
    assert top_n(scores, 5, exclude).tolist() == [[1, 2, 0, -1]]
