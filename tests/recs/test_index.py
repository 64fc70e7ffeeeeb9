from __future__ import annotations

import faiss
import numpy as np

from recs.config import PipelineConfig
from recs.index import ItemIndex, faiss_threads


def _vectors(n: int, dim: int = 16, seed: int = 0) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal((n, dim)).astype("f4")
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_small_catalogs_are_searched_exactly() -> None:
    vectors = _vectors(50)
    index = ItemIndex(vectors, np.arange(50) + 100, hnsw_threshold=1_000)
    similarity, columns = index.search(vectors[:3], 1)
    assert index.kind == "flat"
    assert isinstance(index.faiss_index, faiss.IndexFlatIP)
    assert columns[:, 0].tolist() == [100, 101, 102]  # results speak in model columns
    np.testing.assert_allclose(similarity[:, 0], 1.0, rtol=1e-5)


def test_large_catalogs_use_hnsw_with_the_measured_parameters() -> None:
    vectors = _vectors(300)
    index = ItemIndex(vectors, np.arange(300), hnsw_threshold=200)
    assert index.kind == "hnsw"
    assert isinstance(index.faiss_index, faiss.IndexHNSWFlat)
    assert index.faiss_index.metric_type == faiss.METRIC_INNER_PRODUCT
    assert index.faiss_index.hnsw.efSearch == 128
    assert index.faiss_index.hnsw.efConstruction == 200
    exact = ItemIndex(vectors, np.arange(300), hnsw_threshold=10_000)
    _, approximate_top = index.search(vectors[:100], 10)
    _, exact_top = exact.search(vectors[:100], 10)
    overlap = np.mean(
        [len(set(a) & set(b)) / 10 for a, b in zip(approximate_top, exact_top, strict=True)]
    )
    assert overlap > 0.95


def test_the_default_threshold_is_twenty_thousand_items() -> None:
    assert PipelineConfig().hnsw_threshold == 20_000


def test_asking_for_more_than_the_index_holds_returns_what_it_has() -> None:
    index = ItemIndex(_vectors(4), np.arange(4))
    similarity, columns = index.search(_vectors(2, seed=1), 10)
    assert columns.shape == (2, 4) and (columns >= 0).all()
    assert np.isfinite(similarity).all()


def test_an_empty_index_returns_empty_results() -> None:
    index = ItemIndex(np.zeros((0, 8), "f4"), np.zeros(0, np.int64))
    similarity, columns = index.search(_vectors(3, dim=8), 5)
    assert similarity.shape == columns.shape == (3, 0)


def test_faiss_thread_setting_is_restored() -> None:
    before = faiss.omp_get_max_threads()
    with faiss_threads(1):
        assert faiss.omp_get_max_threads() == 1
    assert faiss.omp_get_max_threads() == before


def test_an_index_survives_pickling() -> None:
    import pickle

    vectors = _vectors(300)
    index = ItemIndex(vectors, np.arange(300), hnsw_threshold=100)
    copy = pickle.loads(pickle.dumps(index))
    assert copy.kind == "hnsw"
    assert (copy.search(vectors[:5], 10)[1] == index.search(vectors[:5], 10)[1]).all()
