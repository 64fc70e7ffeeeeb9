"""The two-stage pipeline: the Recommender protocol, time-correctness, determinism, persistence."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

import recs.pipeline as pipeline_module
from bench.evalkit.synthetic import SyntheticShop
from recs.dataset import InteractionLog
from recs.errors import RecsError
from recs.features import candidate_union, features
from recs.history import build_history
from recs.index import ItemIndex
from recs.pipeline import Pipeline, cutoff_time, user_holdout
from tests.recs.conftest import FAST


def _with_event(log: InteractionLog, user: int, item: int, when: float) -> InteractionLog:
    """The log plus one purchase event at `when` (kept sorted by time)."""
    time = np.append(log.time, when)
    order = np.argsort(time, kind="stable")
    return replace(
        log,
        user=np.append(log.user, user).astype(np.int32)[order],
        item=np.append(log.item, item).astype(np.int32)[order],
        kind=np.append(log.kind, 2).astype(np.int8)[order],
        time=time[order],
    )


def test_recommend_indices_is_batched_padded_and_honours_exclude(fitted: Pipeline) -> None:
    users = np.arange(20)
    exclude = sp.lil_matrix((fitted.history.n_users, fitted.history.n_items))
    first = fitted.recommend_indices(users, 5)
    exclude[users, first[:, 0]] = 1
    again = fitted.recommend_indices(users, 5, exclude=exclude.tocsr())
    assert first.shape == again.shape == (20, 5)
    assert not (again == first[:, :1]).any()
    wide = fitted.recommend_indices(users[:2], 500)
    assert (wide[:, -1] == -1).all()  # more than the catalog: padded with -1


def test_the_ranker_was_trained_and_beats_nothing_silly(fitted: Pipeline) -> None:
    assert fitted.ranker is not None
    assert fitted.training["positives"] > 0
    assert set(fitted.source_names) >= {"als", "cooc", "trend", "category", "ease", "trans"}
    assert {"trans_score", "trans_last", "trans_cat_last"} <= set(fitted.feature_names)
    assert "price_band" in fitted.feature_names and "viewed" in fitted.feature_names


def test_an_event_after_now_changes_nothing(shop: SyntheticShop, shop_log: InteractionLog) -> None:
    now = shop.now.timestamp()
    later = _with_event(shop_log, 0, 5, now + 3600)
    a = Pipeline(FAST).fit(shop_log, now=now)
    b = Pipeline(FAST).fit(later, now=now)
    assert a.version == b.version
    users = np.arange(50)
    assert (a.recommend_indices(users, 10) == b.recommend_indices(users, 10)).all()


def test_an_event_in_the_label_window_never_reaches_the_training_features(
    shop: SyntheticShop, shop_log: InteractionLog
) -> None:
    now = shop.now.timestamp()
    cutoff = cutoff_time(shop_log.time, now, FAST)
    user, item = 3, 7
    later = _with_event(shop_log, user, item, cutoff + 60)
    pipelines = [Pipeline(FAST) for _ in range(2)]
    rows = []
    for pipeline, log in zip(pipelines, (shop_log, later), strict=True):
        past = build_history(log, now=cutoff, config=FAST)
        sources = pipeline._fit_sources(past)
        users = np.arange(log.n_users)
        lists = [s.candidates(users, 20, past.purchased)[0] for s in sources]
        cands = candidate_union(users, lists, log.n_items)
        rows.append((cands.items, features(past, sources, cands)))
    (items_a, x_a), (items_b, x_b) = rows
    assert (items_a == items_b).all()
    np.testing.assert_array_equal(x_a, x_b)
    # ...while the same event before the cutoff does change them: the test can fail.
    earlier = build_history(_with_event(shop_log, user, item, cutoff - 60), now=cutoff, config=FAST)
    assert earlier.seen[user, item] == 1


def test_fitting_is_deterministic(shop: SyntheticShop, shop_log: InteractionLog) -> None:
    now = shop.now.timestamp()
    a, b = (Pipeline(FAST).fit(shop_log, now=now) for _ in range(2))
    users = np.arange(shop_log.n_users)
    assert a.version == b.version
    assert (a.recommend_indices(users, 10) == b.recommend_indices(users, 10)).all()


def test_save_and_load_give_identical_recommendations(fitted: Pipeline, tmp_path: Path) -> None:
    fitted.save(tmp_path / "model.pkl")
    loaded = Pipeline.load(tmp_path / "model.pkl")
    users = np.arange(100)
    assert loaded.version == fitted.version
    assert (loaded.recommend_indices(users, 10) == fitted.recommend_indices(users, 10)).all()
    json.dumps(loaded.params())


def test_exact_retrieval_can_be_forced(shop: SyntheticShop, shop_log: InteractionLog) -> None:
    config = replace(FAST, exact_retrieval=True, hnsw_threshold=1)
    pipeline = Pipeline(config).fit(shop_log, now=shop.now.timestamp())
    assert pipeline.sources[0].index.kind == "flat"  # type: ignore[attr-defined]
    hnsw = Pipeline(replace(FAST, hnsw_threshold=1)).fit(shop_log, now=shop.now.timestamp())
    assert hnsw.sources[0].index.kind == "hnsw"  # type: ignore[attr-defined]


def test_explanations_name_sources_and_features(fitted: Pipeline) -> None:
    reasons = fitted.explain(np.arange(5), 3)
    assert all(len(r) == 3 for r in reasons)
    for text in (t for row in reasons for t in row):
        assert text.startswith("source=")
        sources = text.split(";")[0].removeprefix("source=").split("+")
        assert set(sources) <= set(fitted.source_names)


def test_label_folds_are_disjoint_and_time_correct(shop_log: InteractionLog) -> None:
    config = replace(FAST, label_folds=3)
    by_time = [user_holdout(shop_log, config, randomly=False, fold=f) for f in range(3)]
    by_chance = [user_holdout(shop_log, config, randomly=True, fold=f) for f in range(3)]
    for folds in (by_time, by_chance):
        labels = np.stack([mask for mask, _ in folds])
        assert labels.any(axis=1).all()
        assert labels.sum(axis=0).max() == 1  # no event is a label twice
        for mask, keep in folds:
            assert not (mask & keep).any()
    for mask, keep in by_time:  # features strictly before each user's labels
        for user in np.unique(shop_log.user[mask])[:50]:
            mine = shop_log.user == user
            assert shop_log.time[mine & keep].max() <= shop_log.time[mine & mask].min()
            assert not (
                mine & ~mask & ~keep & (shop_log.time < shop_log.time[mine & mask].min())
            ).any()


def test_user_last_folds_label_each_users_next_item(shop_log: InteractionLog) -> None:
    """Fold f labels each user's (f+1)-th last step of their item sequence: consecutive
    events on one item (its view, cart and purchase) are one step, labelled together."""
    config = replace(FAST, label_folds=3)
    folds = [user_holdout(shop_log, config, randomly=False, fold=f, last=True) for f in range(3)]
    labels = np.stack([mask for mask, _ in folds])
    assert labels.sum(axis=0).max() == 1  # no event is a label twice
    order = np.lexsort((np.arange(len(shop_log.user)), shop_log.time, shop_log.user))
    repeated = 0
    for fold, (mask, keep) in enumerate(folds):
        for user in np.unique(shop_log.user[mask])[:80]:
            mine = order[shop_log.user[order] == user]
            items = shop_log.item[mine]
            step = np.cumsum(np.r_[True, items[1:] != items[:-1]]) - 1
            target = step.max() - fold
            assert mask[mine].tolist() == (step == target).tolist()
            assert keep[mine].tolist() == (step < target).tolist()
            assert len(set(items[step == target].tolist())) == 1  # one item per label
            repeated += int((step == target).sum() > 1)
    assert repeated > 0  # some labels are several events on one item: the test can fail
    pipeline = Pipeline(replace(FAST, label_split="user-last")).fit(
        shop_log, now=float(shop_log.time.max()) + 1
    )
    assert pipeline.training["split"] == "user-last"
    assert pipeline.training["label_events"] == int(folds[0][0].sum())


def test_the_recent_profile_weighs_each_users_latest_events_most(
    shop_log: InteractionLog,
) -> None:
    history = build_history(shop_log, now=float(shop_log.time.max()) + 1, config=FAST)
    half = FAST.recent_half_life
    for user in range(20):
        mine = np.flatnonzero(shop_log.user == user)
        mine = mine[np.argsort(shop_log.time[mine], kind="stable")]
        expected: dict[int, float] = {}
        for back, event in enumerate(mine[::-1]):
            if back < 6 * half:
                item = int(shop_log.item[event])
                expected[item] = expected.get(item, 0.0) + 2.0 ** (-back / half)
        row = history.recent[user]
        assert dict(zip(row.indices.tolist(), row.data.tolist(), strict=True)) == pytest.approx(
            expected
        )


def test_several_label_folds_train_one_ranker(
    shop: SyntheticShop, shop_log: InteractionLog
) -> None:
    now = shop.now.timestamp()
    one = Pipeline(FAST).fit(shop_log, now=now)
    three = Pipeline(replace(FAST, label_folds=3, label_split="user-random")).fit(shop_log, now=now)
    assert three.training["folds"] == 3 and three.training["split"] == "user-random"
    assert three.training["users"] > one.training["users"]
    assert three.ranker is not None


def test_als_retrieval_ranks_by_dot_product(fitted: Pipeline) -> None:
    als = fitted.sources[0]
    users = np.arange(30)
    empty = sp.csr_matrix((len(users), fitted.history.n_items))
    items, _ = als.candidates(users, 10, empty)
    known = als.index.item_columns  # type: ignore[attr-defined]
    dots = als.user_factors[users] @ als.item_factors[known].T  # type: ignore[attr-defined]
    best = known[np.argsort(-dots, axis=1, kind="stable")[:, :10]]
    assert (np.sort(items, 1) == np.sort(best, 1)).mean() > 0.99
    assert als.index.kind == "flat"  # type: ignore[attr-defined]
    np.testing.assert_array_equal(als.index_vectors(), als.item_factors[known])  # type: ignore[attr-defined]


def test_large_catalogs_retrieve_by_cosine_through_hnsw(
    shop: SyntheticShop, shop_log: InteractionLog
) -> None:
    """Above the HNSW threshold the ALS source searches unit vectors, and the graph finds
    what exact search over the same vectors finds."""
    pipeline = Pipeline(replace(FAST, hnsw_threshold=50)).fit(shop_log, now=shop.now.timestamp())
    als = pipeline.sources[0]
    assert als.index.kind == "hnsw"  # type: ignore[attr-defined]
    vectors = als.index_vectors()  # type: ignore[attr-defined]
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    exact = ItemIndex(vectors, als.index.item_columns, hnsw_threshold=2**62)  # type: ignore[attr-defined]
    queries = als.queries(np.arange(pipeline.history.n_users))  # type: ignore[attr-defined]
    k = 20
    approx, best = als.index.search(queries, k)[1], exact.search(queries, k)[1]  # type: ignore[attr-defined]
    recall = np.mean([len(set(a) & set(b)) / k for a, b in zip(approx, best, strict=True)])
    assert recall >= 0.99


def test_a_model_of_an_older_algorithm_is_refused_with_what_to_do(
    fitted: Pipeline, tmp_path: Path
) -> None:
    import copy

    old = copy.copy(fitted)
    old.version = "rc1-0123456789ab"
    old.save(tmp_path / "model.pkl")
    with pytest.raises(RecsError, match=r"older reelcast .*reelcast recs train"):
        Pipeline.load(tmp_path / "model.pkl")


# -- time-correctness of training, checked on what `Pipeline.fit` really builds -----------


def _spy(monkeypatch: pytest.MonkeyPatch, name: str) -> list[tuple[tuple, dict, object]]:
    """Wrap `recs.pipeline.<name>`: every call's (args, kwargs, result), in call order."""
    calls: list[tuple[tuple, dict, object]] = []
    real = getattr(pipeline_module, name)

    def spy(*args: object, **kwargs: object) -> object:
        result = real(*args, **kwargs)
        calls.append((args, kwargs, result))
        return result

    monkeypatch.setattr(pipeline_module, name, spy)
    return calls


#: three time folds whose cutoffs are pinned by `min_label_days` (now − 14, 28, 42 days),
#: so that adding an event to the log cannot move them
TIME_FOLDS = replace(FAST, label_split="time", label_folds=3, min_label_days=14.0)


def test_every_training_fold_history_holds_only_events_before_its_cutoff(
    shop: SyntheticShop, shop_log: InteractionLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = shop.now.timestamp()
    built = _spy(monkeypatch, "build_history")
    pipeline = Pipeline(TIME_FOLDS).fit(shop_log, now=now)
    cutoffs = [cutoff_time(shop_log.time, now, TIME_FOLDS, fold=f) for f in range(3)]
    assert pipeline.training["split"] == "time" and pipeline.training["folds"] == 3
    assert pipeline.training["cutoff"] == cutoffs[0] and pipeline.ranker is not None
    *folds, serving = [history for _, _, history in built]
    assert len(folds) == 3
    for history, cutoff in zip(folds, cutoffs, strict=True):
        assert history.now == cutoff
        assert history.log.time.max() < cutoff  # strictly before the fold's cutoff
        assert len(history.log.time) == int((shop_log.time < cutoff).sum())  # and all of them
        assert history.last_item_time.max() < cutoff
        assert history.item_count.sum() == len(history.log.time)
    # Only the History the model serves from (built after training) sees everything.
    assert serving.now == now and len(serving.log.time) == len(shop_log.time)


def _training_features(
    log: InteractionLog, now: float, monkeypatch: pytest.MonkeyPatch
) -> list[tuple[float, np.ndarray, np.ndarray, np.ndarray]]:
    """(fold cutoff, users, candidate items, features) of every ranker training batch."""
    with monkeypatch.context() as patch:
        calls = _spy(patch, "features")
        Pipeline(TIME_FOLDS).fit(log, now=now)
    return [(args[0].now, args[2].users, args[2].items, x) for args, _, x in calls]


def test_a_planted_event_after_the_cutoff_does_not_change_the_training_features(
    shop: SyntheticShop, shop_log: InteractionLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = shop.now.timestamp()
    cutoff = cutoff_time(shop_log.time, now, TIME_FOLDS)
    base = _training_features(shop_log, now, monkeypatch)
    # A user who is already trained on (labels after the cutoff, events before it) buys
    # the item most often proposed to the training users, which they never touched.
    _, users, items, _ = base[0]
    user = int(users[0])
    before = shop_log.time < cutoff
    touched = set(shop_log.item[before & (shop_log.user == user)].tolist())
    proposed = np.bincount(items[items >= 0], minlength=shop_log.n_items)
    item = next(int(i) for i in np.argsort(-proposed, kind="stable") if int(i) not in touched)
    planted = _training_features(_with_event(shop_log, user, item, cutoff + 60), now, monkeypatch)
    assert cutoff_time(_with_event(shop_log, user, item, cutoff + 60).time, now, TIME_FOLDS) == (
        cutoff
    )
    assert [b[0] for b in planted] == [b[0] for b in base] and len(base) == 3
    for (_, users_a, items_a, x_a), (_, users_b, items_b, x_b) in zip(base, planted, strict=True):
        np.testing.assert_array_equal(users_a, users_b)
        np.testing.assert_array_equal(items_a, items_b)
        np.testing.assert_array_equal(x_a, x_b)
    assert (base[0][2] == item).any()  # the planted item's features were computed
    # The same purchase just before the cutoff does change them: the test can fail.
    earlier = _training_features(_with_event(shop_log, user, item, cutoff - 60), now, monkeypatch)
    assert not np.array_equal(earlier[0][3], base[0][3], equal_nan=True)


@pytest.mark.parametrize("split", ["user", "user-last", "user-random"])
def test_in_user_modes_a_users_own_features_never_hold_their_labels(
    shop: SyntheticShop, shop_log: InteractionLog, monkeypatch: pytest.MonkeyPatch, split: str
) -> None:
    """Each fold's History holds none of a labelled user's label events, and (but for
    the random split) none of that user's later events; other users' later events do
    feed the shared item statistics, as `PipelineConfig.label_split` documents."""
    built = _spy(monkeypatch, "build_history")
    labelled = _spy(monkeypatch, "_labels")
    now = shop.now.timestamp()
    pipeline = Pipeline(replace(FAST, label_split=split, label_folds=2)).fit(shop_log, now=now)
    assert pipeline.training["split"] == split and pipeline.training["folds"] == 2
    histories = [history for _, _, history in built][:-1]  # the last one serves
    masks = [args[1] for args, _, _ in labelled]
    assert len(histories) == len(masks) == 2
    assert len(np.unique(shop_log.time)) == len(shop_log.time)  # a time names one event
    later_from_others = 0
    for history, mask in zip(histories, masks, strict=True):
        own_log = history.log
        for user in np.unique(shop_log.user[mask]).tolist():
            mine = shop_log.user == user
            label_times = shop_log.time[mine & mask]
            own = own_log.user == user
            own_times = own_log.time[own]
            assert not np.isin(own_times, label_times).any()  # no label is a feature
            assert history.user_count[user] == own.sum()
            label_only = set(shop_log.item[mine & mask].tolist()) - set(
                shop_log.item[mine & ~mask].tolist()
            )
            assert not any(history.seen[user, i] for i in label_only)
            assert set(history.recent[user].indices.tolist()) <= set(own_log.item[own].tolist())
            if split == "user-random":
                assert own.sum() == (mine & ~mask).sum()  # everything else, later events too
            else:
                assert own_times.max() < label_times.min()  # nothing from the label on
                assert history.last_item_time[user].max() < label_times.min()
            later_from_others += int((own_log.time[~own] > label_times.min()).any())
    assert later_from_others > 0  # the documented limit: global stats see later events
