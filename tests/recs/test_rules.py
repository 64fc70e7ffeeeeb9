from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from recs.rules import capped_top, in_rows, top_up


def _reference_capped_top(columns, valid, categories, n, cap):  # the obvious loop
    keep = np.zeros_like(valid)
    for r in range(columns.shape[0]):
        taken: dict[int, int] = {}
        for c in range(columns.shape[1]):
            if not valid[r, c] or keep[r].sum() >= n:
                continue
            category = categories[columns[r, c]]
            if taken.get(category, 0) < cap:
                keep[r, c] = True
                taken[category] = taken.get(category, 0) + 1
    return keep


def test_vectorised_cap_matches_the_obvious_loop() -> None:
    rng = np.random.default_rng(0)
    categories = rng.integers(0, 4, 50)
    columns = np.stack([rng.permutation(50)[:20] for _ in range(200)])
    valid = rng.random(columns.shape) < 0.8
    for n, cap in ((3, 1), (3, 2), (10, 2), (5, 5)):
        expected = _reference_capped_top(columns, valid, categories, n, cap)
        np.testing.assert_array_equal(
            capped_top(columns, valid, categories, n=n, cap=cap), expected
        )


def test_membership_is_checked_row_by_row() -> None:
    bought = sp.csr_matrix(np.array([[1, 0, 0, 1], [0, 1, 0, 0]], dtype=bool))
    columns = np.array([[0, 1, 3, -1], [0, 1, 3, 2]])
    np.testing.assert_array_equal(
        in_rows(columns, bought),
        [[True, False, True, False], [False, True, False, False]],
    )


def test_top_up_skips_excluded_taken_and_capped_items() -> None:
    categories = np.array([0, 0, 0, 1, 1])
    # 0 is taken, 1 excluded, 2 is the second of category 0 (allowed), 3 fills the last slot.
    assert top_up([0], [0, 1, 2, 3, 4], categories, n=3, cap=2, excluded={1}) == [2, 3]
    # With one per category, the rest of category 0 is passed over.
    assert top_up([0], [0, 1, 2, 3, 4], categories, n=3, cap=1, excluded=set()) == [3]


def test_top_up_without_a_cap_fills_from_any_category() -> None:
    categories = np.array([0, 0, 0])
    assert top_up([], [2, 1, 0], categories, n=2, cap=None, excluded=set()) == [2, 1]
