"""Sequential baselines: Markov recovers a planted transition, sknn trusts recent items."""

from __future__ import annotations

import numpy as np
import pytest

from recs.dataset import InteractionLog
from recs.evaluation.baselines import EASE
from recs.evaluation.protocols import leave_last_out
from recs.evaluation.sequential import Markov, SequenceKNN, recency_profile
from recs.sources.transition import item_sequences as sequences


def log_of(histories: list[list[int]], n_items: int = 10) -> InteractionLog:
    """One user per history, events one second apart, in the order given."""
    user, item, time = [], [], []
    clock = 0.0
    for u, history in enumerate(histories):
        for i in history:
            user.append(u)
            item.append(i)
            time.append(clock)
            clock += 1.0
    order = np.argsort(time, kind="stable")
    return InteractionLog(
        user_ids=tuple(f"u{u}" for u in range(len(histories))),
        item_ids=tuple(f"i{i}" for i in range(n_items)),
        user=np.array(user, dtype=np.int32)[order],
        item=np.array(item, dtype=np.int32)[order],
        kind=np.full(len(user), 2, dtype=np.int8),
        time=np.array(time)[order],
    )


def test_sequences_collapse_repeats_and_count_steps_back() -> None:
    user, item, back = sequences(log_of([[1, 1, 2, 1], [3]]))
    assert user.tolist() == [0, 0, 0, 1]
    assert item.tolist() == [1, 2, 1, 3]
    assert back.tolist() == [2, 1, 0, 0]
    profile = recency_profile(log_of([[1, 2, 1]]), half_life=1.0).toarray()[0]
    assert profile[1] == 1.0 and profile[2] == 0.5  # item 1's latest position wins


def test_markov_recommends_the_item_that_follows_the_last_one() -> None:
    # Everyone who had 3 had 7 next; item 5 is more popular overall but never follows 3.
    histories = [[3, 7], [3, 7, 5], [5, 3, 7], [5, 1], [5, 2], [5, 4], [8, 3]]
    model = Markov(window=1).fit(log_of(histories), now=100.0)
    top = model.recommend_indices(np.array([6]), 3)[0]  # user 6's last item is 3
    assert top[0] == 7
    # Without the transition, popularity decides: item 5 comes first.
    assert model.recommend_indices(np.array([3]), 1)[0][0] != 7


def test_markov_window_blends_earlier_items_with_halving_weights() -> None:
    histories = [[1, 2], [1, 2], [3, 4], [1, 9, 3]]
    model = Markov(window=2).fit(log_of(histories), now=100.0)
    scores = model.scores(np.array([3]))[0]
    # Last item 3 → 4 (weight 1); item 9 before it has no transitions out.
    assert scores[4] == pytest.approx(1.0)
    assert scores[2] < 0  # reached only by popularity fill


def test_sknn_ranks_the_recent_neighbours_item_first() -> None:
    # User 0 had item 1 long ago and item 2 last. User 1 shares item 1 (and had 8);
    # user 2 shares item 2 (and had 9). With recency weights, user 2's 9 wins; without,
    # the two tie and the lower column (8) comes first.
    histories = [[1, 4, 5, 6, 2], [1, 8], [2, 9]]
    log = log_of(histories)
    seen = np.zeros((3, 10), dtype=bool)
    seen[0, histories[0]] = True
    import scipy.sparse as sp

    exclude = sp.csr_matrix(seen)
    decayed = SequenceKNN(k=2, half_life=1.0).fit(log, now=100.0)
    assert decayed.recommend_indices(np.array([0]), 2, exclude=exclude)[0].tolist() == [9, 8]
    flat = SequenceKNN(k=2, half_life=None).fit(log, now=100.0)
    assert flat.recommend_indices(np.array([0]), 2, exclude=exclude)[0].tolist() == [8, 9]


def test_sknn_is_never_its_own_neighbour() -> None:
    log = log_of([[1, 2, 3], [4, 5]])
    model = SequenceKNN(k=1, half_life=None).fit(log, now=100.0)
    # User 0's only possible neighbour shares nothing: no item gets a positive score.
    assert (model.scores(np.array([0]))[0] <= 0).all()


def test_leave_last_out_seed_reorders_only_equal_times() -> None:
    # Five events of one user in the same second, then one later: the later one is
    # always test; which of the tied ones is validation depends on the seed.
    log = log_of([[1, 2, 3, 4, 5, 6]])
    time = np.array([0.0, 0.0, 0.0, 0.0, 0.0, 9.0])
    log = InteractionLog(log.user_ids, log.item_ids, log.user, log.item, log.kind, time)
    picks = set()
    for seed in range(6):
        parts = leave_last_out(log, seed=seed)
        assert parts.test.item.tolist() == [6]
        picks.add(int(parts.validation.item[0]))
        both = parts.train_and_validation
        assert sorted(both.item.tolist()) == [1, 2, 3, 4, 5]
    assert len(picks) > 1
    assert leave_last_out(log).validation.item.tolist() == [5]  # None: the log's order


def test_ease_past_max_items_fits_the_most_touched_items_only() -> None:
    histories = [[0, 1, 2], [0, 1], [0, 2], [1, 2], [3]]
    model = EASE(lam=1.0, max_items=3).fit(log_of(histories, n_items=5), now=0.0)
    assert model.columns.tolist() == [0, 1, 2]
    scores = model.scores(np.arange(5))
    assert scores.shape == (5, 5) and (scores[:, 3:] == 0).all()
    assert scores[3, 0] > 0  # user 3 had 1 and 2: item 0 goes with both


def test_sasrec_learns_a_deterministic_next_item() -> None:
    pytest.importorskip("torch")
    from recs.evaluation.sasrec import SASRec

    # Every user walks 0 → 1 → 2 → 3 → 4 … in order; after 2 comes 3.
    histories = [[(s + j) % 8 for j in range(6)] for s in range(8)] * 4
    log = log_of(histories, n_items=8)
    model = SASRec(epochs=30, hidden=16, blocks=1, heads=1, inner=32, dropout=0.0, max_len=8)
    stages = list(model.fit_stages(log, now=0.0))
    assert stages[-1] == {"epochs": 30}
    # User 0's history ends with 5: the next is 6.
    assert model.recommend_indices(np.array([0]), 1)[0][0] == 6
