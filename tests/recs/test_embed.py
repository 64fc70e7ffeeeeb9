from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from recs.embed import customer_vectors, item_vectors


def _random_matrix(customers: int = 200, items: int = 60, seed: int = 0) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    dense = rng.random((customers, items)) * (rng.random((customers, items)) < 0.1)
    return sp.csr_matrix(dense)


def test_item_vectors_are_unit_length_and_repeatable() -> None:
    matrix = _random_matrix()
    first = item_vectors(matrix, dim=16, seed=3)
    second = item_vectors(matrix.copy(), dim=16, seed=3)
    assert first.shape == (60, 16) and first.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(first, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(first, second)


def test_dimension_is_clipped_to_what_the_matrix_supports() -> None:
    vectors = item_vectors(_random_matrix(customers=5, items=40), dim=32)
    assert vectors.shape[0] == 40
    assert vectors.shape[1] <= 5


def test_items_nobody_touched_get_the_zero_vector() -> None:
    matrix = _random_matrix().tolil()
    matrix[:, 7] = 0
    vectors = item_vectors(matrix.tocsr(), dim=8)
    assert not vectors[7].any()


def test_an_empty_matrix_gives_zero_vectors() -> None:
    vectors = item_vectors(sp.csr_matrix((3, 4)), dim=8)
    assert vectors.shape[0] == 4 and not vectors.any()


def test_customer_vector_points_towards_their_items() -> None:
    items = np.eye(3, dtype=np.float32)
    history = sp.csr_matrix(np.array([[5.0, 0.0, 0.0], [0.0, 0.0, 0.0]]))
    vectors = customer_vectors(history, items)
    np.testing.assert_allclose(vectors, [[1, 0, 0], [0, 0, 0]])
