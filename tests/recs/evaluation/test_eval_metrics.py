"""Metrics against hand-computed lists and RecBole's published formulas."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp

from recs.evaluation.metrics import (
    catalog_coverage,
    hit_rate_at_k,
    intra_list_diversity,
    ndcg_at_k,
    recall_at_k,
)


def truth(rows: list[list[int]], n_items: int = 10) -> sp.csr_matrix:
    """A users × items relevance matrix from per-user item lists."""
    data = [(u, i) for u, items in enumerate(rows) for i in items]
    users, items = zip(*data, strict=True) if data else ((), ())
    return sp.csr_matrix(
        (np.ones(len(users), dtype=bool), (users, items)), shape=(len(rows), n_items)
    )


RECOMMENDED = np.array([[1, 2, 3], [4, 5, 6]])
RELEVANT = truth([[2, 9], [7]])


def test_recall_is_hits_over_the_users_relevant_count() -> None:
    # user 0: 1 of 2 relevant found; user 1: 0 of 1.
    assert recall_at_k(RECOMMENDED, RELEVANT, 3) == pytest.approx((1 / 2 + 0) / 2)


def test_ndcg_normalises_by_min_of_relevant_count_and_k() -> None:
    # user 0: hit at rank 2, ideal has 2 hits; user 1: nothing.
    user0 = (1 / math.log2(3)) / (1 + 1 / math.log2(3))
    assert ndcg_at_k(RECOMMENDED, RELEVANT, 3) == pytest.approx(user0 / 2)


def test_ndcg_ideal_is_capped_at_k() -> None:
    recommended = np.array([[0, 1]])
    assert ndcg_at_k(recommended, truth([[0, 1, 2, 3]]), 2) == pytest.approx(1.0)


def test_hit_rate_counts_users_with_any_hit() -> None:
    assert hit_rate_at_k(RECOMMENDED, RELEVANT, 3) == pytest.approx(0.5)


def test_only_the_first_k_ranks_count() -> None:
    assert recall_at_k(RECOMMENDED, RELEVANT, 1) == 0.0
    assert hit_rate_at_k(RECOMMENDED, RELEVANT, 2) == pytest.approx(0.5)


def test_users_without_relevant_items_are_left_out() -> None:
    relevant = truth([[2], []])
    assert recall_at_k(RECOMMENDED, relevant, 3) == pytest.approx(1.0)
    assert ndcg_at_k(RECOMMENDED, relevant, 3) == pytest.approx(1 / math.log2(3))


def test_padding_is_never_a_hit() -> None:
    recommended = np.array([[-1, -1, 0]])
    assert recall_at_k(recommended, truth([[0]]), 3) == pytest.approx(1.0)
    assert ndcg_at_k(recommended, truth([[0]]), 3) == pytest.approx(1 / math.log2(4))


def test_ndcg_matches_recbole_formula_on_random_lists() -> None:
    rng = np.random.default_rng(3)
    n_users, n_items, k = 50, 30, 10
    recommended = np.array([rng.permutation(n_items)[:k] for _ in range(n_users)])
    relevant = truth(
        [list(rng.choice(n_items, rng.integers(1, 15), replace=False)) for _ in range(n_users)],
        n_items,
    )
    # RecBole's NDCG.metric_info, transcribed (np.float → float).
    pos_index = np.array([[relevant[u, i] for i in recommended[u]] for u in range(n_users)])
    pos_len = np.diff(relevant.indptr)
    idcg_len = np.minimum(pos_len, k)
    idcg = np.cumsum(1.0 / np.log2(np.arange(1, k + 1) + 1))[idcg_len - 1]
    dcg = np.where(pos_index, 1.0 / np.log2(np.arange(1, k + 1) + 1), 0).sum(axis=1)
    assert ndcg_at_k(recommended, relevant, k) == pytest.approx(float(np.mean(dcg / idcg)))
    expected_recall = float(np.mean(pos_index.sum(axis=1) / pos_len))
    assert recall_at_k(recommended, relevant, k) == pytest.approx(expected_recall)


def test_coverage_is_share_of_catalog_shown() -> None:
    assert catalog_coverage(np.array([[1, 2, -1], [2, 3, 4]]), 10) == pytest.approx(0.4)


def test_diversity_is_share_of_pairs_across_categories() -> None:
    category = np.array([0, 0, 1, 2])
    # [0, 1, 2]: categories a a b → 2 of 3 pairs differ; [1, 2, 3]: a b c → all differ.
    lists = np.array([[0, 1, 2], [1, 2, 3]])
    assert intra_list_diversity(lists, category) == pytest.approx((2 / 3 + 1) / 2)


def test_diversity_ignores_padding_and_lists_too_short() -> None:
    category = np.array([0, 1])
    lists = np.array([[0, 1, -1], [0, -1, -1]])
    assert intra_list_diversity(lists, category) == pytest.approx(1.0)
