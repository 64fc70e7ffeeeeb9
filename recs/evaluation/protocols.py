"""Train / validation / test splits of an InteractionLog, as RecBole makes them.

Two protocols: leave-last-out by time (RecBole's `order: TO, split: LS valid_and_test`)
and per-user random 80/10/10 (RecBole's `order: RO, split: RS [0.8, 0.1, 0.1]`). Every
part keeps the full log's id spaces, so one user or item index means the same in each.

Both take a seed. The random split shuffles with it; leave-last-out uses it to order
events with equal times (on MovieLens-100K 44 % of users rated their last two movies in
the same second, so which one is "last" is the file's order, not time). Seed None keeps
the log's order for ties, as RecBole does.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import cached_property

import numpy as np
import scipy.sparse as sp

from recs.dataset import InteractionLog
from recs.errors import RecsError


def interaction_matrix(log: InteractionLog) -> sp.csr_matrix:
    """Users × items, True where the user has at least one event with the item."""
    ones = np.ones(len(log.user), dtype=bool)
    matrix = sp.csr_matrix((ones, (log.user, log.item)), shape=(log.n_users, log.n_items))
    matrix.sum_duplicates()
    return matrix


def relevant_items(target: InteractionLog, seen: sp.csr_matrix) -> sp.csr_matrix:
    """Users × items: what each user touched in `target` and had not already seen.

    Seen items are never recommended (full ranking, seen removed), so they cannot count
    as relevant either. On MovieLens (one rating per pair) nothing is removed.
    """
    fresh = interaction_matrix(target).astype(np.int8) - seen.astype(np.int8)
    fresh.data = (fresh.data > 0).astype(np.int8)
    fresh.eliminate_zeros()
    return fresh.astype(bool).tocsr()


@dataclass(frozen=True, eq=False)
class Split:
    """One protocol's three parts and what each stage must not recommend again."""

    protocol: str
    train: InteractionLog
    validation: InteractionLog
    test: InteractionLog
    #: the split's seed (None: the log's own order; see `split`)
    seed: int | None = None

    @cached_property
    def train_and_validation(self) -> InteractionLog:
        """Train and validation events together, in the log's order: what a model chosen
        on validation learns from before it is scored on test."""
        train, validation = self.train, self.validation
        order = np.argsort(np.concatenate([train.time, validation.time]), kind="stable")
        return replace(
            train,
            user=np.concatenate([train.user, validation.user])[order],
            item=np.concatenate([train.item, validation.item])[order],
            kind=np.concatenate([train.kind, validation.kind])[order],
            time=np.concatenate([train.time, validation.time])[order],
        )

    @cached_property
    def validation_seen(self) -> sp.csr_matrix:
        """Items excluded when scoring validation: the user's training items."""
        return interaction_matrix(self.train)

    @cached_property
    def test_seen(self) -> sp.csr_matrix:
        """Items excluded when scoring test: training and validation items (as RecBole)."""
        return (interaction_matrix(self.train) + interaction_matrix(self.validation)).tocsr()


def _user_groups(log: InteractionLog, order: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For events visited in `order` (grouped by user): position in its user's group, group size."""
    users = log.user[order]
    counts = np.bincount(log.user, minlength=log.n_users)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    position = np.arange(len(order)) - starts[users]
    return position, counts[users]


def _parts(
    log: InteractionLog, order: np.ndarray, part: np.ndarray, name: str, seed: int | None
) -> Split:
    """Cut `log` into the parts named by `part` (0 train, 1 validation, 2 test) of `order`."""
    label = np.empty(len(order), dtype=np.int8)
    label[order] = part
    return Split(name, log.subset(label == 0), log.subset(label == 1), log.subset(label == 2), seed)


def shuffle_ties(log: InteractionLog, seed: int) -> InteractionLog:
    """The same events, still sorted by time, with equal times in a seeded random order."""
    tiebreak = np.random.default_rng(seed).permutation(len(log.user))
    order = np.lexsort((tiebreak, log.time))
    return replace(
        log,
        user=log.user[order],
        item=log.item[order],
        kind=log.kind[order],
        time=log.time[order],
    )


def leave_last_out(log: InteractionLog, seed: int | None = None) -> Split:
    """Per user by time: the last event is test, the one before validation, the rest train.

    As RecBole: a user with two events gives one to train and one to test, a user with one
    event keeps it in train. Equal times keep the log's order (stable sort); with a
    `seed`, they are put in a seeded random order first (`shuffle_ties`), and every part
    keeps that order, so models that sort by time see the same sequence as the split.
    """
    if seed is not None:
        log = shuffle_ties(log, seed)
    order = np.lexsort((np.arange(len(log.user)), log.time, log.user))
    position, size = _user_groups(log, order)
    from_end = size - 1 - position
    part = np.zeros(len(order), dtype=np.int8)
    part[(from_end == 0) & (size >= 2)] = 2
    part[(from_end == 1) & (size >= 3)] = 1
    return _parts(log, order, part, "leave-last-out", seed)


def split_counts(total: int, ratios: Sequence[float]) -> list[int]:
    """How many of a user's `total` events go to each part (RecBole's `_calcu_split_ids`).

    Parts after the first are rounded down, but a part whose share is below one event
    still gets one while the first part keeps at least two.
    """
    shares = [r / sum(ratios) for r in ratios]
    counts = [int(s * total) for s in shares]
    counts[0] = total - sum(counts[1:])
    for i in range(1, len(shares)):
        if counts[0] <= 1:
            break
        if 0 < shares[-i] * total < 1:
            counts[-i] += 1
            counts[0] -= 1
    return counts


def random_split(
    log: InteractionLog, ratios: Sequence[float] = (0.8, 0.1, 0.1), seed: int | None = 0
) -> Split:
    """Per user, a random `ratios` share of events to train / validation / test.

    RecBole's "RO" protocol: shuffle all events once with `seed`, then cut each user's
    events, in shuffled order, by `split_counts`. The same seed gives the same split.
    On MovieLens-100K the seed alone moves Pop's Recall@10 between 0.116 and 0.132;
    seed 0 (and None) reproduces DESIGN.md's reference figures.
    """
    seed = 0 if seed is None else seed
    if len(ratios) != 3 or min(ratios) < 0 or sum(ratios) <= 0:
        raise RecsError(f"ratios must be three non-negative shares, got {tuple(ratios)}")
    shuffled = np.random.default_rng(seed).permutation(len(log.user))
    order = shuffled[np.argsort(log.user[shuffled], kind="stable")]
    position, size = _user_groups(log, order)
    # Few distinct history lengths: compute each one's cut points once.
    cuts = np.zeros((int(size.max(initial=0)) + 1, 2), dtype=np.int64)
    for n in np.unique(size):
        cuts[n] = np.cumsum(split_counts(int(n), ratios))[:2]
    part = (position >= cuts[size, 0]).astype(np.int8) + (position >= cuts[size, 1])
    name = "random-" + "-".join(f"{round(100 * r / sum(ratios))}" for r in ratios)
    return _parts(log, order, part, name, seed)


def _random_80_10_10(log: InteractionLog, seed: int | None = None) -> Split:
    return random_split(log, (0.8, 0.1, 0.1), seed)


#: Protocol names as the CLI and the bench spell them: (log, seed) → Split.
PROTOCOLS: dict[str, Callable[[InteractionLog, int | None], Split]] = {
    "leave-last-out": leave_last_out,
    "random-80-10-10": _random_80_10_10,
}


def split(log: InteractionLog, protocol: str, seed: int | None = None) -> Split:
    """Split `log` by the protocol named `protocol` (a key of PROTOCOLS) with `seed`.

    Seed None is each protocol's reference split: leave-last-out keeps the log's order
    for equal times, the random split uses seed 0.
    """
    if protocol not in PROTOCOLS:
        raise RecsError(f"unknown protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}")
    return PROTOCOLS[protocol](log, seed)
