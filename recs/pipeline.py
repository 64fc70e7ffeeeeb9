"""The reelcast recommender: several candidate sources, then a learned LambdaRank ranker.

`Pipeline.fit` is time-correct: the ranker learns from candidates and features computed on
the events before a cutoff, with the events after it as labels; then the sources are
refitted on the whole log to serve. `recommend_indices` is the `Recommender` protocol;
`rank` also says which sources proposed each item and which features pushed it up.

The ranker's labels are cut from the training log the way the deployment will be asked:
one time cutoff for a retailer's next campaign ("time"), each user's next item after
their earlier ones ("user-last", as leave-last-out), or random shares of each user's
events ("user-random", as a random split); `PipelineConfig.label_split` chooses.
Only "time" is time-correct across users: in the user modes a user's own features stop
at that user's labels, but the item statistics shared by all (popularity, trend,
co-occurrence, item factors) include other users' later events (see `Pipeline`).
"""

from __future__ import annotations

import hashlib
import logging
import pickle
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import numpy as np
import scipy.sparse as sp

from recs.config import PipelineConfig
from recs.dataset import InteractionLog
from recs.errors import RecsError
from recs.features import NOT_RETRIEVED, CandidateSet, candidate_union, feature_names, features
from recs.history import History, build_history
from recs.matrix import SECONDS_PER_DAY, dense_top_k, lookup
from recs.ranker import Ranker
from recs.sources import (
    AlsEmbedding,
    CategoryAffinity,
    CoOccurrence,
    Ease,
    Source,
    Transition,
    Trending,
)

logger = logging.getLogger(__name__)

#: Bump when the algorithm changes in a way that changes results for the same inputs.
ALGORITHM = "rc4"
# Reciprocal-rank fusion constant for the no-ranker fallback (tiny logs): the usual 60.
_RRF_K = 60.0


@dataclass(frozen=True, eq=False)
class Ranked:
    """The top candidates of a batch of users, best first (item -1 = empty slot)."""

    users: np.ndarray  # (U,)
    items: np.ndarray  # (U, k) int64
    scores: np.ndarray  # (U, k) float64, -inf in empty slots
    sources: np.ndarray  # (U, k) int64 bit s = source s proposed the item
    #: (U, k, F) the ranker's features of each ranked item; None unless asked for
    features: np.ndarray | None = None


def _sources_for(history: History, config: PipelineConfig) -> list[Source]:
    sources: list[Source] = [AlsEmbedding(), CoOccurrence(), Trending(), Transition()]
    if history.category_share is not None:
        sources.append(CategoryAffinity())
    if history.n_items <= config.ease_max_items:
        sources.append(Ease())
    return sources


def _k_for(source: Source, config: PipelineConfig) -> int:
    return {
        "als": config.als_k,
        "cooc": config.cooc_k,
        "trend": config.trend_k,
        "category": config.category_k,
        "ease": config.ease_k,
        "trans": config.transition_k,
    }[source.name]


def _labels(log: InteractionLog, mask: np.ndarray) -> sp.csr_matrix:
    """Users × items graded relevance in the window: 1 view, 2 cart, 3 purchase (the best)."""
    grade = log.kind[mask].astype(np.float32) + 1
    key = log.user[mask].astype(np.int64) * log.n_items + log.item[mask]
    order = np.lexsort((grade, key))
    key, grade = key[order], grade[order]
    last = np.r_[key[1:] != key[:-1], True] if len(key) else np.empty(0, bool)
    return sp.csr_matrix(
        (grade[last], (key[last] // log.n_items, key[last] % log.n_items)),
        shape=(log.n_users, log.n_items),
    )


def user_holdout(
    log: InteractionLog,
    config: PipelineConfig,
    *,
    randomly: bool,
    fold: int = 0,
    last: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """(labels, features) masks: fold `fold` of each user's `label_share` of events.

    By time, fold f labels each user's f-th last share (at least one event) and drops the
    events after it, so a user's features come only from that user's earlier events.
    `randomly` labels the f-th disjoint random share instead (seeded, k-fold over each
    user's events) and keeps all the rest as features, to mirror a random evaluation split.
    `last` labels one step per user and fold (the f-th last), as leave-last-out tests: a
    step is one item, all of the user's consecutive events on it (a view, the cart and
    the purchase of that product) labelled together, so the features never hold the view
    of the item whose cart is the label (a leave-last-out test item is a new one).
    A user keeps at least one feature event (step); users too short for a fold have no
    labels.
    """
    n = len(log.user)
    if randomly:
        tiebreak = np.random.default_rng(config.seed).permutation(n)
        order = np.lexsort((tiebreak, log.user))
    else:
        order = np.lexsort((np.arange(n), log.time, log.user))
    users = log.user[order]
    if last:
        # Count in steps of the user's item sequence: consecutive events on one item (its
        # view, cart and purchase) are one step, labelled together or not at all.
        items = log.item[order]
        fresh = np.zeros(n, dtype=bool)
        fresh[:1] = True
        fresh[1:] = (users[1:] != users[:-1]) | (items[1:] != items[:-1])
        step = np.cumsum(fresh) - 1
        counts = np.bincount(users[fresh], minlength=log.n_users)
        starts = np.r_[0, np.cumsum(counts)[:-1]]
        position = step - starts[users]
    else:
        counts = np.bincount(log.user, minlength=log.n_users)
        starts = np.r_[0, np.cumsum(counts)[:-1]]
        position = np.arange(n) - starts[users]
    size = counts[users]
    if last:
        held = np.minimum(1, size - 1)
    else:
        held = np.minimum(np.maximum(np.round(size * config.label_share), 1), size - 1)
    # Counted back from each user's end: [size - (f+1)·held, size - f·held) are labels.
    low, high = size - (fold + 1) * held, size - fold * held
    ok = low >= 1
    label = ok & (position >= low) & (position < high)
    feature = ok & (position < low) if not randomly else ok & ~label
    mask = np.zeros(n, dtype=bool)
    keep = np.zeros(n, dtype=bool)
    mask[order] = label
    keep[order] = feature
    return mask, keep


def cutoff_time(times: np.ndarray, now: float, config: PipelineConfig, *, fold: int = 0) -> float:
    """Start of label window `fold` (0 = the latest): the last (fold+1) `label_share`s of
    events, each window at least `min_label_days` long."""
    if len(times) == 0:
        return now
    share = min(config.label_share * (fold + 1), 1.0)
    cutoff = float(np.quantile(times, 1.0 - share, method="lower"))
    return min(cutoff, now - (fold + 1) * config.min_label_days * SECONDS_PER_DAY)


class Pipeline:
    """Two-stage recommender implementing `recs.base.Recommender` (name "reelcast").

    Time-correctness of the ranker's training depends on `config.label_split`:

    - "time" (and "auto" with at least `min_label_users` users on both sides of the
      cutoff): each fold's History, hence every source and feature, is built from the
      events strictly before that fold's cutoff; the labels are the events after it.
    - "user", "user-last", "user-random" ("auto" falls back to "user" below
      `min_label_users`): each fold cuts every user's own events at that user's labels,
      so a user's own features (history, recency, affinity, price band, views, carts,
      latest items for the transitions)
      never contain that user's labels nor, except for "user-random", later events. But
      all users share one History per fold, so the global item statistics (item
      popularity and trend, co-occurrence, item → next item transitions, ALS/EASE item
      factors, category top items)
      include other users' events from after this user's label time: not a leak of the
      label itself, but the ranker may learn from the label period's item trends.
    """

    name = "reelcast"

    def __init__(self, config: PipelineConfig | None = None) -> None:
        """An unfitted pipeline with these knobs (defaults tuned on MovieLens-100K)."""
        self.config = config or PipelineConfig()
        self.ranker: Ranker | None = None
        self.history: History | None = None
        self.sources: list[Source] = []
        self.version = ""
        self.training: dict[str, Any] = {}

    # -- fitting ---------------------------------------------------------------------------

    def _fit_sources(self, history: History) -> list[Source]:
        return [s.fit(history, self.config) for s in _sources_for(history, self.config)]

    def fit(self, log: InteractionLog, *, now: float) -> Self:
        """Learn from the events of `log` before `now` (later ones are ignored).

        Deterministic: the same log, `now` and config give the same model and `version`.
        """
        config = self.config
        log = log.subset(log.time < now)
        if log.n_items == 0:
            raise RecsError("the catalog is empty: nothing can be recommended")
        self.version = _version(log, now, config)
        self.ranker = None
        self.training = {}
        split, folds = self._label_folds(log, now)
        self.training.update(split=split, folds=len(folds))
        parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        names: tuple[str, ...] = ()
        label_events = positives = 0
        for fold, (label_mask, keep_mask, feature_now) in enumerate(folds):
            label_events += int(label_mask.sum())
            past = build_history(log.subset(keep_mask), now=feature_now, config=config)
            labels = _labels(log, label_mask)
            train_users = np.flatnonzero((np.diff(labels.indptr) > 0) & (past.user_count > 0))
            if len(train_users) > config.ranker_max_users:
                rng = np.random.default_rng([config.seed, fold])
                train_users = np.sort(
                    rng.choice(train_users, config.ranker_max_users, replace=False)
                )
            if not len(train_users):
                continue
            sources = self._fit_sources(past)
            names = feature_names(past, sources)
            x, y, group, found = self._training_rows(past, sources, train_users, labels, fold)
            positives += found
            if len(group):
                parts.append((x, y, group))
        self.training["label_events"] = label_events
        if parts:
            group = np.concatenate([g for _, _, g in parts])
            self.training.update(users=len(group), rows=int(group.sum()), positives=positives)
            self.ranker = Ranker.train(
                np.concatenate([x for x, _, _ in parts]),
                np.concatenate([y for _, y, _ in parts]),
                group,
                names,
                config,
            )
            self.training["rounds"] = self.ranker.rounds
        self.history = build_history(log, now=now, config=config)
        self.sources = self._fit_sources(self.history)
        logger.info(
            "fitted reelcast %s: %d users, %d items, sources %s, ranker on %d users",
            self.version,
            log.n_users,
            log.n_items,
            "+".join(s.name for s in self.sources),
            self.training.get("users", 0),
        )
        return self

    def _label_folds(
        self, log: InteractionLog, now: float
    ) -> tuple[str, list[tuple[np.ndarray, np.ndarray, float]]]:
        """(split used, per fold: which events are labels, which are features, features' now).

        Fold f of "time" labels the events in the f-th `label_share` window counted back
        from `now` (later events dropped, features before the window); of "user", each
        user's f-th last share likewise; of "user-random", the f-th disjoint random share
        of each user's events (k-fold over events).
        """
        config = self.config
        split = config.label_split
        folds: list[tuple[np.ndarray, np.ndarray, float]] = []
        if split in ("auto", "time"):
            end = now
            for fold in range(config.label_folds):
                cutoff = cutoff_time(log.time, now, config, fold=fold)
                mask = (log.time >= cutoff) & (log.time < end)
                if fold == 0:
                    before = np.bincount(log.user[~mask], minlength=log.n_users) > 0
                    after = np.bincount(log.user[mask], minlength=log.n_users) > 0
                    if split == "auto" and (before & after).sum() < config.min_label_users:
                        split = "user"
                        break
                    self.training["cutoff"] = cutoff
                if not mask.any() or cutoff <= log.time.min(initial=now):
                    break
                folds.append((mask, log.time < cutoff, cutoff))
                end = cutoff
            if split != "user":
                return "time", folds
        for fold in range(config.label_folds):
            mask, keep = user_holdout(
                log, config, randomly=split == "user-random", fold=fold, last=split == "user-last"
            )
            if not mask.any():
                break
            folds.append((mask, keep, now))
        return split, folds

    def _training_rows(
        self,
        past: History,
        sources: list[Source],
        users: np.ndarray,
        labels: sp.csr_matrix,
        fold: int,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
        """The ranker's rows of one label fold: (x, y, rows per user, positives found)."""
        xs, ys, groups = [], [], []
        positives = 0
        n_features = len(feature_names(past, sources))
        for start in range(0, len(users), self.config.batch_users):
            chunk = users[start : start + self.config.batch_users]
            cands = self._candidates(past, sources, chunk, past.purchased[chunk])
            x = features(past, sources, cands)
            y = _lookup_rows(labels, chunk, cands.items)
            valid = cands.valid & self._sampled(y, start + fold * len(users))
            keep = (y * valid).sum(axis=1) > 0  # users whose labels no source found teach nothing
            xs.append(x[keep][valid[keep]])
            ys.append(y[keep][valid[keep]])
            groups.append(valid[keep].sum(axis=1))
            positives += int((y[keep] > 0).sum())
        if not xs:
            return np.empty((0, n_features), np.float32), np.empty(0), np.empty(0, np.int64), 0
        return np.concatenate(xs), np.concatenate(ys), np.concatenate(groups), positives

    def _sampled(self, y: np.ndarray, salt: int) -> np.ndarray:
        """All positives, plus up to `ranker_negatives` seeded-random negatives per row."""
        rng = np.random.default_rng([self.config.seed, salt])
        key = np.where(y > 0, -1.0, rng.random(y.shape))
        order = np.argsort(key, axis=1, kind="stable")
        rank = np.empty_like(order)
        np.put_along_axis(rank, order, np.arange(y.shape[1])[None, :], axis=1)
        kept: np.ndarray = (y > 0) | (
            rank < (y > 0).sum(axis=1, keepdims=True) + self.config.ranker_negatives
        )
        return kept

    # -- serving -----------------------------------------------------------------------------

    @property
    def feature_names(self) -> tuple[str, ...]:
        """The ranker's feature columns (empty before fit)."""
        return self.ranker.names if self.ranker is not None else ()

    @property
    def source_names(self) -> tuple[str, ...]:
        """Sources in bit order of `Ranked.sources`."""
        return tuple(s.name for s in self.sources)

    def _candidates(
        self, history: History, sources: Sequence[Source], users: np.ndarray, exclude: sp.csr_matrix
    ) -> CandidateSet:
        lists = [s.candidates(users, _k_for(s, self.config), exclude)[0] for s in sources]
        return candidate_union(users, lists, history.n_items)

    def rank(
        self,
        users: np.ndarray,
        k: int,
        *,
        exclude: sp.csr_matrix | None = None,
        allowed: np.ndarray | None = None,
        explain: bool = False,
    ) -> Ranked:
        """Top-`k` ranked candidates per user, batched.

        `exclude` (users × items over the whole user space) removes items per user; by
        default each user's purchases. `allowed` (bool per item) removes items for all,
        e.g. out of stock. With `explain`, also the top contributing features per pick.
        """
        if self.history is None:
            raise RecsError("the pipeline is not fitted: call fit(log, now=...) first")
        users = np.asarray(users, dtype=np.int64)
        history = self.history
        exclude = history.purchased if exclude is None else exclude.tocsr()
        out_items = np.full((len(users), k), -1, dtype=np.int64)
        out_scores = np.full((len(users), k), -np.inf, dtype=np.float64)
        out_sources = np.zeros((len(users), k), dtype=np.int64)
        n_features = len(self.feature_names)
        out_x = np.full((len(users), k, n_features), np.nan, np.float32) if explain else None
        for start in range(0, len(users), self.config.batch_users):
            part = slice(start, start + self.config.batch_users)
            chunk = users[part]
            cands = self._candidates(history, self.sources, chunk, exclude[chunk])
            valid = cands.valid
            if allowed is not None:
                valid = valid & allowed[np.maximum(cands.items, 0)]
            x = features(history, self.sources, cands) if self.ranker is not None else None
            scores = np.full(cands.items.shape, -np.inf)
            if self.ranker is not None and x is not None:
                scores[valid] = self.ranker.predict(x[valid])
            else:
                fused = (1.0 / (_RRF_K + cands.ranks) * (cands.ranks < NOT_RETRIEVED)).sum(0)
                scores[valid] = fused[valid]
            top, top_scores = dense_top_k(scores, k)
            width = top.shape[1]
            filled = top >= 0
            safe = np.maximum(top, 0)
            out_items[part, :width] = np.where(filled, np.take_along_axis(cands.items, safe, 1), -1)
            out_scores[part, :width] = top_scores
            out_sources[part, :width] = np.where(
                filled, np.take_along_axis(cands.source_mask(), safe, 1), 0
            )
            if out_x is not None and x is not None:
                r, c = np.nonzero(filled)
                out_x[start + r, c] = x[r, top[r, c]]
        return Ranked(users, out_items, out_scores, out_sources, out_x)

    def top_features(self, x: np.ndarray, count: int = 2) -> list[list[str]]:
        """Per feature row, the names of up to `count` features that raised its score most.

        LightGBM's SHAP values (`pred_contrib`); costly, so ask only for the items shown.
        At least one name per row: when no feature raised the score, the one that lowered
        it least. Without a ranker (a log too small to train one), no names.
        """
        if self.ranker is None or len(x) == 0:
            return [[] for _ in range(len(x))]
        contrib = self.ranker.contributions(x)
        best = np.argsort(-contrib, axis=1, kind="stable")[:, :count]
        positive = np.take_along_axis(contrib, best, 1) > 0
        positive[:, 0] = True
        return [
            [self.feature_names[f] for f, ok in zip(row, keep, strict=True) if ok]
            for row, keep in zip(best.tolist(), positive.tolist(), strict=True)
        ]

    def recommend_indices(
        self, users: np.ndarray, n: int, *, exclude: sp.csr_matrix | None = None
    ) -> np.ndarray:
        """Top-`n` item indices per user, best first, -1 padded (the Recommender protocol)."""
        return self.rank(users, n, exclude=exclude).items

    def explain(
        self, users: np.ndarray, n: int, *, exclude: sp.csr_matrix | None = None
    ) -> list[list[str]]:
        """Per user, per pick a reason such as `source=als+cooc;top=recency_item,cat_affinity`."""
        ranked = self.rank(users, n, exclude=exclude, explain=True)
        r, c = np.nonzero(ranked.items >= 0)
        tops = self.top_features(ranked.features[r, c]) if ranked.features is not None else []
        out: list[list[str]] = [[] for _ in range(len(users))]
        for i, (row, slot) in enumerate(zip(r.tolist(), c.tolist(), strict=True)):
            out[row].append(self.reason(int(ranked.sources[row, slot]), tops[i] if tops else []))
        return out

    def reason(self, source_bits: int, top: list[str]) -> str:
        """The machine-readable reason of one ranked pick: `source=als+cooc;top=f1,f2`.

        `top` always has a value: the ranker's top features, or `rrf` when no ranker was
        trained (the sources' ranks fused by reciprocal rank decided the order).
        """
        names = [n for s, n in enumerate(self.source_names) if source_bits >> s & 1]
        if not top:
            top = ["rrf"] if self.ranker is None else ["none"]
        return f"source={'+'.join(names) or 'none'};top={','.join(top)}"

    # -- persistence ----------------------------------------------------------------------

    def params(self) -> dict[str, Any]:
        """Algorithm, version, knobs and training facts, JSON-able."""
        return {
            "algorithm": ALGORITHM,
            "version": self.version,
            "config": self.config.params(),
            "sources": list(self.source_names),
            "features": list(self.feature_names),
            "training": {
                k: float(v) if isinstance(v, float) else v for k, v in self.training.items()
            },
        }

    def save(self, path: str | Path) -> None:
        """Write the fitted pipeline to `path` (pickle; load only files you wrote)."""
        with Path(path).open("wb") as handle:
            pickle.dump(self, handle, protocol=pickle.HIGHEST_PROTOCOL)

    @classmethod
    def load(cls, path: str | Path) -> Pipeline:
        """Read a pipeline written by `save` (pickle: trusted files only, e.g. the registry)."""
        with Path(path).open("rb") as handle:
            pipeline = pickle.load(handle)
        if not isinstance(pipeline, cls):
            raise RecsError(f"{path} does not hold a reelcast Pipeline")
        if not is_current(pipeline.version):
            raise RecsError(
                f"model {pipeline.version} was trained by an older reelcast (algorithm "
                f"{pipeline.version.split('-')[0]}, now {ALGORITHM}): train a new one with "
                "`reelcast recs train`"
            )
        return pipeline


def is_current(version: str) -> bool:
    """Whether a model version was trained by this algorithm (older pickles cannot serve)."""
    return version.startswith(f"{ALGORITHM}-")


def _lookup_rows(matrix: sp.csr_matrix, users: np.ndarray, items: np.ndarray) -> np.ndarray:
    rows = np.broadcast_to(users[:, None], items.shape).ravel()
    values = lookup(matrix, rows, np.maximum(items, 0).ravel()).reshape(items.shape)
    return np.where(items >= 0, values, 0.0)


def _version(log: InteractionLog, now: float, config: PipelineConfig) -> str:
    """`rc4-<12 hex>`: hash of the events, the item facts, `now` and the knobs (not threads)."""
    digest = hashlib.sha256()

    def add(label: str, payload: bytes) -> None:
        # Length-prefixed so two fields can never run together into the same bytes.
        digest.update(f"{label}:{len(payload)}:".encode())
        digest.update(payload)

    params = {k: v for k, v in config.params().items() if k != "threads"}
    add("params", repr(sorted(params.items())).encode())
    add("now", repr(float(now)).encode())
    add("users", "\x1f".join(log.user_ids).encode())
    add("items", "\x1f".join(log.item_ids).encode())
    for name in ("user", "item", "kind", "time", "item_category", "item_brand", "item_price"):
        value = getattr(log, name)
        add(name, b"" if value is None else np.ascontiguousarray(value).tobytes())
    stock = log.item_in_stock
    add("stock", b"" if stock is None else np.ascontiguousarray(stock).tobytes())
    return f"{ALGORITHM}-{digest.hexdigest()[:12]}"
