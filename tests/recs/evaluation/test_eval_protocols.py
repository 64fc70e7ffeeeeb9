"""Splits: leave-last-out takes the last by time, random 80/10/10 cuts as RecBole does."""

from __future__ import annotations

import numpy as np
import pytest

from bench.evalkit.synthetic import planted_log
from recs.dataset import InteractionLog
from recs.errors import RecsError
from recs.evaluation.protocols import (
    interaction_matrix,
    leave_last_out,
    random_split,
    relevant_items,
    split,
    split_counts,
)


def tiny_log(
    events: list[tuple[int, int, float]], n_users: int = 3, n_items: int = 10
) -> InteractionLog:
    """(user, item, time) events, stored sorted by time like every InteractionLog."""
    events = sorted(events, key=lambda e: e[2])
    return InteractionLog(
        user_ids=tuple(f"u{i}" for i in range(n_users)),
        item_ids=tuple(f"i{j}" for j in range(n_items)),
        user=np.array([e[0] for e in events], dtype=np.int32),
        item=np.array([e[1] for e in events], dtype=np.int32),
        kind=np.full(len(events), 2, dtype=np.int8),
        time=np.array([e[2] for e in events], dtype=np.float64),
    )


def pairs(log: InteractionLog) -> set[tuple[int, int]]:
    return set(zip(log.user.tolist(), log.item.tolist(), strict=True))


def test_leave_last_out_takes_the_last_two_by_time() -> None:
    # user 0: five events, times out of item order; user 1: two; user 2: one.
    log = tiny_log(
        [
            (0, 3, 50.0),
            (0, 1, 10.0),
            (0, 4, 40.0),
            (0, 2, 30.0),
            (0, 5, 20.0),
            (1, 6, 5.0),
            (1, 7, 1.0),
            (2, 8, 7.0),
        ]
    )
    parts = leave_last_out(log)
    assert pairs(parts.test) == {(0, 3), (1, 6)}
    assert pairs(parts.validation) == {(0, 4)}
    assert pairs(parts.train) == {(0, 1), (0, 5), (0, 2), (1, 7), (2, 8)}


def test_leave_last_out_keeps_log_order_on_equal_times() -> None:
    log = tiny_log([(0, 1, 1.0), (0, 2, 1.0), (0, 3, 1.0)])
    parts = leave_last_out(log)
    assert pairs(parts.test) == {(0, 3)} and pairs(parts.validation) == {(0, 2)}


@pytest.mark.parametrize(
    ("total", "expected"),
    [(10, [8, 1, 1]), (25, [21, 2, 2]), (5, [3, 1, 1]), (2, [1, 0, 1]), (1, [1, 0, 0])],
)
def test_split_counts_follow_recbole(total: int, expected: list[int]) -> None:
    assert split_counts(total, (0.8, 0.1, 0.1)) == expected


def test_random_split_cuts_each_user_by_ratio_and_loses_nothing() -> None:
    log = planted_log(60, 40, n_clusters=4, seed=2)
    parts = random_split(log, seed=5)
    for u in range(log.n_users):
        sizes = [int((p.user == u).sum()) for p in (parts.train, parts.validation, parts.test)]
        assert sizes == split_counts(int((log.user == u).sum()), (0.8, 0.1, 0.1))
    assert len(parts.train.user) + len(parts.validation.user) + len(parts.test.user) == len(
        log.user
    )
    assert parts.train.item_ids == log.item_ids and parts.test.user_ids == log.user_ids


def test_random_split_is_deterministic_per_seed() -> None:
    log = planted_log(60, 40, n_clusters=4, seed=2)
    a, b, c = random_split(log, seed=1), random_split(log, seed=1), random_split(log, seed=2)
    assert np.array_equal(a.test.time, b.test.time) and np.array_equal(a.test.item, b.test.item)
    assert not np.array_equal(a.test.time, c.test.time)


def test_leave_last_out_is_deterministic() -> None:
    log = planted_log(60, 40, n_clusters=4, seed=2)
    assert np.array_equal(leave_last_out(log).test.item, leave_last_out(log).test.item)


@pytest.mark.parametrize("protocol", ["leave-last-out", "random-80-10-10"])
def test_no_users_test_truth_is_in_their_training_items(protocol: str) -> None:
    log = planted_log(80, 40, n_clusters=4, seed=3)  # repeats of a (user, item) happen here
    parts = split(log, protocol)
    relevant = relevant_items(parts.test, parts.test_seen)
    assert relevant.nnz > 0
    assert relevant.multiply(interaction_matrix(parts.train)).nnz == 0
    assert relevant.multiply(interaction_matrix(parts.validation)).nnz == 0


def test_unknown_protocol_names_the_choices() -> None:
    with pytest.raises(RecsError, match="leave-last-out"):
        split(planted_log(5, 5, n_clusters=1), "temporal")
