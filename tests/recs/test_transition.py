"""The transition source: item → next item counts from training events, scored from the
user's latest items, as a candidate source and as ranker features."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import scipy.sparse as sp

from recs.dataset import InteractionLog
from recs.features import feature_names
from recs.history import build_history
from recs.pipeline import Pipeline, user_holdout
from recs.sources import Transition
from recs.sources.transition import item_sequences
from tests.recs.conftest import FAST

HOUR = 3_600.0


def _log(sequences: list[list[int]], n_items: int, *, categories: bool = True) -> InteractionLog:
    """One user per sequence, their items viewed an hour apart in that order."""
    user, item, time = [], [], []
    for u, items in enumerate(sequences):
        for step, i in enumerate(items):
            user.append(u)
            item.append(i)
            time.append(1_000_000.0 + u + step * HOUR)
    order = np.argsort(time, kind="stable")
    return InteractionLog(
        user_ids=tuple(f"u{u}" for u in range(len(sequences))),
        item_ids=tuple(f"i{i}" for i in range(n_items)),
        user=np.array(user, np.int32)[order],
        item=np.array(item, np.int32)[order],
        kind=np.zeros(len(user), np.int8),
        time=np.array(time)[order],
        item_category=np.arange(n_items, dtype=np.int32) % 2 if categories else None,
        categories=("even", "odd") if categories else (),
    )


#: Items 0 → 3 → 2 → 1 is the usual path (so the next item after 0 is not the lowest
#: index, which ties would favour); 5 and 6 are popular but never come after 0.
PLANTED = [[0, 3, 2, 1]] * 6 + [[5, 6, 5, 6, 7]] * 10 + [[4, 0]]


def _fit(log: InteractionLog, **knobs: object) -> Transition:
    config = replace(FAST, **knobs)  # type: ignore[arg-type]
    history = build_history(log, now=float(log.time.max()) + 1, config=config)
    return Transition().fit(history, config)


def test_the_item_that_follows_the_users_last_item_comes_first() -> None:
    log = _log(PLANTED, 8)
    source = _fit(log)
    user = np.array([len(PLANTED) - 1])  # last item 0
    nothing = sp.csr_matrix((1, log.n_items))
    items, scores = source.candidates(user, 3, nothing)
    assert items[0, 0] == 3  # what came after 0 for everyone else
    assert scores[0, 0] > scores[0, 1]
    # Excluded items are never proposed.
    excluded = sp.csr_matrix(([1.0], ([0], [3])), shape=(1, log.n_items))
    assert 3 not in source.candidates(user, 3, excluded)[0]
    # P(3 | 0) as a feature for the pair, nothing for items that never follow 0.
    last = source.last_score(user, np.array([[3, 5, 6, -1]]))
    assert last[0, 0] == pytest.approx(6 / (6 + FAST.transition_shrink))
    assert last[0, 1:].tolist() == [0.0, 0.0, 0.0]


def test_the_latest_items_vote_with_weights_halving_per_step_back() -> None:
    log = _log([[0, 1], [0, 1], [2, 3], [2, 3], [2, 0]], 4)
    source = _fit(log, transition_shrink=0.0, transition_window=2)
    user = np.array([4])  # ... 2, then 0: 0 → 1 counts fully, 2 → 3 half
    scores = source.score(user, np.array([[1, 3]]))
    assert scores[0].tolist() == pytest.approx([1.0, 0.5 * 2 / 3])
    one = _fit(log, transition_shrink=0.0, transition_window=1)
    assert one.score(user, np.array([[1, 3]]))[0].tolist() == pytest.approx([1.0, 0.0])


def test_repeats_of_one_item_are_one_step_and_the_category_transition_is_counted() -> None:
    # A view, cart and purchase of item 2 in a row are one step: 2 never follows 2.
    log = _log([[1, 2, 2, 2, 3], [1, 2, 3], []], 4)
    user, item, back = item_sequences(log)
    assert item[user == 0].tolist() == [1, 2, 3] and back[user == 0].tolist() == [2, 1, 0]
    source = _fit(log, transition_shrink=0.0)
    assert source.transitions[2, 2] == 0 and source.transitions[2, 3] == 1.0
    # Categories alternate (odd 1 → even 2 → odd 3): after an odd item comes an even one.
    assert source.extra_names == ("last", "cat_last")
    items = np.array([[0, 1, 2], [0, 1, 2]])
    last, cat_last = source.extra_scores(np.array([0, 2]), items)
    assert cat_last[0].tolist() == [1.0, 0.0, 1.0]  # user 0 had odd 3 last
    assert np.isnan(cat_last[1]).all()  # user 2 has no last item
    assert last.tolist() == [[0.0, 0.0, 0.0]] * 2  # nothing ever followed 3
    plain = _fit(_log([[1, 2, 3]], 4, categories=False))
    assert plain.extra_names == ("last",)


def test_each_item_keeps_only_its_likeliest_next_items() -> None:
    rng = np.random.default_rng(3)
    sequences = [rng.integers(0, 200, size=30).tolist() for _ in range(200)]
    log = _log(sequences, 200)
    source = _fit(log, transition_neighbours=5)
    assert np.diff(source.transitions.indptr).max() == 5
    full = _fit(log, transition_neighbours=1_000)
    row = full.transitions[7].toarray().ravel()
    kept = source.transitions[7].toarray().ravel()
    assert set(np.flatnonzero(kept)) <= set(np.flatnonzero(row))
    assert kept.max() == row.max()


def test_the_pipeline_ranks_the_planted_next_item_first() -> None:
    # Paths of several lengths, so every label step is also someone's feature event.
    paths = [[0, 3, 2, 1], [0, 3, 2, 1, 6], [5, 6, 5, 6, 7], [4, 0, 3], [6, 0, 3, 2], [7, 5, 6]]
    log = _log([*paths * 8, [4, 0]], 8)
    now = float(log.time.max()) + 1
    pipeline = Pipeline(replace(FAST, label_split="user-last", ranker_min_leaf=5)).fit(log, now=now)
    assert "trans" in pipeline.source_names
    assert {"trans_score", "trans_rank", "trans_recent", "trans_last"} <= set(
        pipeline.feature_names
    )
    last_item_zero = np.array([log.n_users - 1])
    seen = build_history(log, now=now, config=FAST).seen
    assert pipeline.recommend_indices(last_item_zero, 3, exclude=seen)[0, 0] == 3


def test_in_user_last_folds_transitions_come_from_the_feature_events_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each fold's source is fitted on that fold's History: the user's label step is
    neither a counted transition nor the user's last item there."""
    log = _log(PLANTED, 8)
    fitted: list[Transition] = []
    real = Transition.fit

    def spy(self: Transition, history: object, config: object) -> Transition:
        result = real(self, history, config)  # type: ignore[arg-type]
        fitted.append(result)
        return result

    monkeypatch.setattr(Transition, "fit", spy)
    config = replace(FAST, label_split="user-last", label_folds=2, ranker_min_leaf=5)
    Pipeline(config).fit(log, now=float(log.time.max()) + 1)
    *folds, serving = fitted
    assert len(folds) == 2
    for fold, source in enumerate(folds):
        mask, keep = user_holdout(log, config, randomly=False, fold=fold, last=True)
        features = log.subset(keep)
        # Every counted step is a step of the feature events, none crosses into a label.
        user, item, _ = item_sequences(features)
        step = user[1:] == user[:-1]
        pairs = set(zip(item[:-1][step].tolist(), item[1:][step].tolist(), strict=True))
        counted = source.transitions.tocoo()
        assert set(zip(counted.row.tolist(), counted.col.tolist(), strict=True)) == pairs
        # The users' "last item" is the one before their label.
        labelled = np.unique(log.user[mask])
        last = source.last[labelled].tocoo()
        for u, i in zip(labelled[last.row].tolist(), last.col.tolist(), strict=True):
            mine = features.user == u
            assert i == features.item[mine][np.argmax(features.time[mine])]
            assert i not in log.item[mask & (log.user == u)].tolist()
    # Serving sees everything: user 0's last item is 1, the end of the path.
    assert serving.last[0].indices.tolist() == [1]


def test_a_source_without_categories_adds_no_category_column() -> None:
    log = _log(PLANTED, 8, categories=False)
    history = build_history(log, now=float(log.time.max()) + 1, config=FAST)
    source = Transition().fit(history, FAST)
    names = feature_names(history, [source])
    assert "trans_last" in names and "trans_cat_last" not in names
