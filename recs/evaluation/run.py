"""Fit recommenders on one protocol's split, tune on validation, score test once: one table.

The table is a plain dict, one row per model: `{"pop": {"recall@10", "ndcg@10",
"coverage", "diversity", "fit_s", "customers_per_s", "seconds"}, …}`. A model that is
missing or failed has every value None (the reason is in the notes).

The procedure, the same for every model (the pipeline included):
1. Split the log by the protocol and seed (`recs.evaluation.protocols.split`).
2. Fit each point of the model's grid on train and score validation (seen = train
   items) by NDCG@k; the best wins, ties to the earlier point. A model trained in
   epochs (`fit_stages`) is scored after every few epochs of one run, and each stage
   counts as a grid point (its epochs become a setting); a one-point grid skips this.
3. Refit the winning settings on train + validation and score test once (seen = train
   and validation items; users with a new test item count): every model, sequential
   or not, then knows everything that happened before the test event. With
   `refit=False`, step 3 scores the model fitted on train instead (RecBole's choice).
Test is never read before step 3. Grids: `default_specs`; `quick` and large logs keep
every other value of each axis (`thin`), for every model alike.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp

from recs.base import Recommender
from recs.dataset import InteractionLog
from recs.evaluation import sasrec
from recs.evaluation.baselines import ALS, EASE, ItemKNN, Popularity
from recs.evaluation.metrics import (
    catalog_coverage,
    intra_list_diversity,
    ndcg_at_k,
    recall_at_k,
)
from recs.evaluation.protocols import Split, relevant_items, split
from recs.evaluation.sequential import Markov, SequenceKNN

PIPELINE = "reelcast"
COLUMNS = ("recall", "ndcg", "coverage", "diversity", "fit_s", "customers_per_s", "seconds")

#: Called with one line of progress at a time ("itemknn 3/12 …").
Progress = Callable[[str], None]


def grid(**axes: Sequence[Any]) -> tuple[dict[str, Any], ...]:
    """Every combination of the given parameter values, as keyword dicts."""
    keys = list(axes)
    return tuple(
        dict(zip(keys, values, strict=True)) for values in itertools.product(*axes.values())
    )


def thin(**axes: Sequence[Any]) -> dict[str, Sequence[Any]]:
    """Every other value of each axis (the first, third, …): how `quick` shrinks a grid."""
    return {name: list(values)[::2] for name, values in axes.items()}


@dataclass(frozen=True)
class ModelSpec:
    """How to build one model, and the grid to tune it over on validation.

    `build` is None when the model cannot be built here (e.g. the pipeline module does
    not exist yet); `missing` says why. `note` says how it was approximated, if it was.
    """

    name: str
    build: Callable[..., Recommender] | None
    grid: tuple[dict[str, Any], ...] = ({},)
    missing: str = ""
    note: str = ""


#: The pipeline's tuning axis: how its ranker's training labels are cut from the log. "auto"
#: (one time cutoff, or each user's latest events) mirrors a split by time; "user-last"
#: (each user's next event after their earlier ones) mirrors leave-last-out; "user-random"
#: (random shares of each user's events) mirrors a random split. Validation decides.
PIPELINE_AXES: dict[str, Sequence[Any]] = {"label_split": ["auto", "user-last", "user-random"]}
PIPELINE_GRID = grid(**PIPELINE_AXES)


def _pipeline_spec(pipeline_grid: tuple[dict[str, Any], ...] = PIPELINE_GRID) -> ModelSpec:
    """The reelcast pipeline tuned over `pipeline_grid`, if `recs.pipeline` exists."""
    try:
        from recs.config import PipelineConfig
        from recs.pipeline import Pipeline
    except ImportError as error:
        return ModelSpec(PIPELINE, None, missing=f"recs.pipeline not importable ({error})")

    def build(**params: Any) -> Recommender:
        return Pipeline(PipelineConfig(**params))

    return ModelSpec(PIPELINE, build, pipeline_grid)


#: EASE inverts a dense items × items matrix (numpy's inverse holds three n × n float64
#: arrays: 1.5 GB at 8,000 items; O(n³) time, ~20 s here): past this many items it is
#: fitted on this many most-touched items only. At 10,000 a 50,000-item evaluation
#: peaked at 3.8 GB.
EASE_MAX_ITEMS = 8_000
#: Past this many items every grid is thinned as with `quick` (and the notes say so):
#: a retailer's catalog of tens of thousands of items then evaluates in minutes.
THIN_ABOVE_ITEMS = 10_000

#: Each model's full grid. Tuned by validation NDCG@10; `quick` keeps every other value.
AXES: dict[str, dict[str, Sequence[Any]]] = {
    "pop": {},
    "itemknn": {"k": [20, 50, 100, 200], "shrink": [0.0, 10.0, 100.0]},
    "ease": {"lam": [50.0, 100.0, 250.0, 500.0, 1000.0]},
    # Regularization far above implicit's default (0.01) won on MovieLens validation.
    "als": {
        "factors": [64, 128],
        "regularization": [10.0, 1.0, 30.0],
        "iterations": [15, 30],
        "alpha": [1.0, 3.0, 10.0],
    },
    "markov": {"window": [1, 4, 16, 64], "shrink": [0.0, 10.0, 100.0, 1000.0]},
    "sknn": {"k": [10, 25, 50, 100, 200], "half_life": [2.0, 5.0, 10.0, 30.0, None]},
    # Epochs are chosen along one run (`fit_stages`): the axis is the longest run.
    "sasrec": {"epochs": [200]},
    PIPELINE: PIPELINE_AXES,
}


def default_specs(
    *,
    quick: bool = False,
    pipeline: bool = True,
    n_items: int | None = None,
    sasrec_model: bool = False,
) -> list[ModelSpec]:
    """The baselines (pop, itemknn, ease, als, markov, sknn[, sasrec]), then the pipeline.

    Grids are `AXES`; with `quick`, or more than THIN_ABOVE_ITEMS items, every axis keeps
    every other value (`thin`). Past EASE_MAX_ITEMS items EASE is fitted on the most
    touched EASE_MAX_ITEMS items (the spec's note says so). SASRec (`sasrec_model`)
    needs PyTorch (the `sasrec` extra) and at most SASREC_MAX_ITEMS items; otherwise its
    row says why it is missing.
    """
    large = (n_items or 0) > THIN_ABOVE_ITEMS
    thinned = quick or large
    note = f"grid thinned: {n_items:,} items > {THIN_ABOVE_ITEMS:,}" if large else ""

    def spec_grid(name: str) -> tuple[dict[str, Any], ...]:
        axes = AXES[name]
        return grid(**(thin(**axes) if thinned else axes))

    ease_note = note
    ease_build: Callable[..., Recommender] = EASE
    if (n_items or 0) > EASE_MAX_ITEMS:
        ease_note = "; ".join(
            filter(None, [note, f"fitted on the {EASE_MAX_ITEMS:,} most-touched items"])
        )

        def ease_build(**params: Any) -> Recommender:
            return EASE(**params, max_items=EASE_MAX_ITEMS)

    specs = [
        ModelSpec("pop", Popularity),
        ModelSpec("itemknn", ItemKNN, spec_grid("itemknn"), note=note),
        ModelSpec("ease", ease_build, spec_grid("ease"), note=ease_note),
        ModelSpec("als", ALS, spec_grid("als"), note=note),
        ModelSpec("markov", Markov, spec_grid("markov"), note=note),
        ModelSpec("sknn", SequenceKNN, spec_grid("sknn"), note=note),
    ]
    if sasrec_model:
        if not sasrec.available():
            specs.append(
                ModelSpec("sasrec", None, missing="PyTorch is not installed (the `sasrec` extra)")
            )
        elif (n_items or 0) > sasrec.SASREC_MAX_ITEMS:
            specs.append(
                ModelSpec(
                    "sasrec",
                    None,
                    missing=f"{n_items:,} items > SASREC_MAX_ITEMS {sasrec.SASREC_MAX_ITEMS:,}",
                )
            )
        else:
            specs.append(ModelSpec("sasrec", sasrec.SASRec, spec_grid("sasrec"), note=note))
    if pipeline:
        piped = _pipeline_spec(spec_grid(PIPELINE))
        specs.append(
            piped if piped.build is None else ModelSpec(**{**piped.__dict__, "note": note})
        )
    return specs


@dataclass
class Evaluation:
    """The metrics table plus how it was reached (chosen parameters, tuning scores, notes)."""

    protocol: str
    k: int
    table: dict[str, dict[str, float | None]]
    params: dict[str, dict[str, Any]] = field(default_factory=dict)
    tuning: dict[str, list[tuple[dict[str, Any], float]]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    test_users: int = 0
    validation_users: int = 0
    seed: int | None = None
    #: whether test scores models refitted on train + validation (the procedure's step 3)
    refit: bool = True
    #: fit seconds of tuned models kept as they are (refit=False), by name
    fit_seconds: dict[str, float] = field(default_factory=dict)


def _users_with_truth(truth: sp.csr_matrix) -> np.ndarray:
    return np.flatnonzero(np.diff(truth.indptr) > 0)


def _fit(model: Recommender, log: InteractionLog, now: float) -> tuple[Recommender, float]:
    started = time.perf_counter()
    model.fit(log, now=now)
    return model, time.perf_counter() - started


def _row(
    model: Recommender,
    fit_s: float,
    started: float,
    users: np.ndarray,
    truth: sp.csr_matrix,
    seen: sp.csr_matrix,
    log: InteractionLog,
    k: int,
) -> dict[str, float | None]:
    """Score `users` once and measure the list they get (`started`: the model's first fit)."""
    scoring = time.perf_counter()
    recommended = model.recommend_indices(users, k, exclude=seen)
    seconds = time.perf_counter() - scoring
    rows = truth[users]
    return {
        f"recall@{k}": recall_at_k(recommended, rows, k),
        f"ndcg@{k}": ndcg_at_k(recommended, rows, k),
        "coverage": catalog_coverage(recommended, log.n_items),
        "diversity": (
            None
            if log.item_category is None
            else intra_list_diversity(recommended, log.item_category)
        ),
        "fit_s": fit_s,
        "customers_per_s": len(users) / seconds if seconds > 0 else None,
        "seconds": time.perf_counter() - started,
    }


def _empty_row(k: int) -> dict[str, float | None]:
    return dict.fromkeys((f"recall@{k}", f"ndcg@{k}", *COLUMNS[2:]))


def evaluate_detailed(
    log: InteractionLog,
    protocol: str | Split,
    recommenders: Sequence[ModelSpec | Recommender] | None = None,
    k: int = 10,
    *,
    on_error: Literal["raise", "record"] = "raise",
    seed: int | None = None,
    refit: bool = True,
    progress: Progress | None = None,
) -> Evaluation:
    """Split `log` by `protocol` and `seed`, tune each ModelSpec on validation, score test once.

    The procedure is the module's. A Recommender instance (not a spec) has nothing to
    tune: it is fitted as it is (on train + validation with `refit`). With
    `on_error="record"`, a model that raises gets an all-None row and a note instead.
    `progress` is told what runs, model by model and grid point by grid point.
    """
    say = progress or (lambda _line: None)
    parts = protocol if isinstance(protocol, Split) else split(log, protocol, seed)
    now = float(parts.train.time.max()) + 1.0 if len(parts.train.time) else 0.0
    final_log = parts.train_and_validation if refit else parts.train
    final_now = float(final_log.time.max()) + 1.0 if len(final_log.time) else 0.0
    val_seen, test_seen = parts.validation_seen, parts.test_seen
    val_truth = relevant_items(parts.validation, val_seen)
    test_truth = relevant_items(parts.test, test_seen)
    val_users, test_users = _users_with_truth(val_truth), _users_with_truth(test_truth)
    result = Evaluation(
        parts.protocol,
        k,
        {},
        test_users=len(test_users),
        validation_users=len(val_users),
        seed=parts.seed,
        refit=refit,
    )
    if recommenders is None:
        recommenders = default_specs(n_items=log.n_items)
    for entry in recommenders:
        name = entry.name
        if isinstance(entry, ModelSpec) and entry.build is None:
            result.table[name] = _empty_row(k)
            result.notes.append(f"{name}: missing: {entry.missing}")
            say(f"{name}: skipped ({entry.missing})")
            continue
        if isinstance(entry, ModelSpec) and entry.note:
            result.notes.append(f"{name}: {entry.note}")
        started = time.perf_counter()
        try:
            if not isinstance(entry, ModelSpec):
                say(f"{name}: fitting")
                model, fit_s = _fit(entry, final_log, final_now)
            else:
                tuned, params = _tune(entry, parts, now, val_users, val_truth, k, result, say)
                result.params[name] = params
                if tuned is None:
                    assert entry.build is not None
                    say(f"{name}: fitting {_show(params)} on the final log")
                    model, fit_s = _fit(entry.build(**params), final_log, final_now)
                else:
                    model, fit_s = tuned, result.fit_seconds.pop(name, 0.0)
            say(f"{name}: scoring {len(test_users):,} test customers")
            result.table[name] = _row(
                model, fit_s, started, test_users, test_truth, test_seen, log, k
            )
            say(f"{name}: done in {time.perf_counter() - started:.0f} s")
        except Exception as error:
            if on_error == "raise":
                raise
            result.table[name] = _empty_row(k)
            result.notes.append(f"{name}: failed: {type(error).__name__}: {error}")
            say(f"{name}: failed ({type(error).__name__})")
    return result


def _show(params: Mapping[str, Any]) -> str:
    return "(" + ", ".join(f"{key}={value}" for key, value in params.items()) + ")"


def _tune(
    spec: ModelSpec,
    parts: Split,
    now: float,
    users: np.ndarray,
    truth: sp.csr_matrix,
    k: int,
    result: Evaluation,
    say: Progress,
) -> tuple[Recommender | None, dict[str, Any]]:
    """Score every grid point (and every stage of staged models) on validation.

    Returns the settings that won, and the model fitted on train with them when it can
    serve as is (no refit, and not a stage of a longer run); None means: fit it anew.
    """
    assert spec.build is not None
    refit = result.refit
    if len(spec.grid) == 1 and not hasattr(spec.build(**spec.grid[0]), "fit_stages"):
        if refit:
            return None, dict(spec.grid[0])
        model, fit_s = _fit(spec.build(**spec.grid[0]), parts.train, now)
        result.fit_seconds[spec.name] = fit_s
        return model, dict(spec.grid[0])
    if not len(users):
        return None, dict(spec.grid[0])
    best: tuple[float, Recommender | None, float, dict[str, Any]] | None = None
    scores = result.tuning.setdefault(spec.name, [])
    seen = parts.validation_seen
    total = len(spec.grid)

    def score(model: Recommender) -> float:
        recommended = model.recommend_indices(users, k, exclude=seen)
        return ndcg_at_k(recommended, truth[users], k)

    for number, params in enumerate(spec.grid, 1):
        model = spec.build(**params)
        stages = getattr(model, "fit_stages", None)
        if stages is None:
            model, fit_s = _fit(model, parts.train, now)
            points: list[tuple[dict[str, Any], float, Recommender | None]] = [
                (dict(params), score(model), model)
            ]
        else:
            # One run, scored after each stage; stop after STAGE_PATIENCE stages without gain.
            points, started, worse = [], time.perf_counter(), 0
            for stage in stages(parts.train, now=now):
                value = score(model)
                points.append(({**params, **stage}, value, None))
                say(f"{spec.name} {number}/{total} {_show(stage)}: validation NDCG@{k} {value:.4f}")
                worse = 0 if value >= max(p[1] for p in points) else worse + 1
                if worse >= STAGE_PATIENCE:
                    break
            fit_s = time.perf_counter() - started
        for point, value, fitted in points:
            scores.append((point, value))
            if best is None or value > best[0]:
                best = (value, fitted, fit_s, point)
        say(
            f"{spec.name} {number}/{total} {_show(params)}: validation NDCG@{k} {points[-1][1]:.4f}"
        )
    assert best is not None
    if refit or best[1] is None:
        return None, best[3]
    result.fit_seconds[spec.name] = best[2]
    return best[1], best[3]


#: Staged models stop after this many stages in a row below their best validation score.
STAGE_PATIENCE = 3


def evaluate(
    log: InteractionLog,
    protocol: str,
    recommenders: Sequence[ModelSpec | Recommender] | None = None,
    k: int = 10,
    *,
    seed: int | None = None,
) -> dict[str, dict[str, float | None]]:
    """The metrics table of `evaluate_detailed` (default: tuned baselines and the pipeline).

    `protocol` is "leave-last-out" or "random-80-10-10".
    """
    return evaluate_detailed(log, protocol, recommenders, k, seed=seed).table


def pipeline_ratio(
    table: Mapping[str, Mapping[str, float | None]], k: int = 10, pipeline: str = PIPELINE
) -> float | None:
    """The pipeline's NDCG@k over the best other row's; None when either is missing."""
    key = f"ndcg@{k}"
    ours = table.get(pipeline, {}).get(key)
    others = [value for name, row in table.items() if name != pipeline and (value := row.get(key))]
    if ours is None or not others:
        return None
    return float(ours) / max(others)


def format_table(
    result: Mapping[str, Mapping[str, float | None]],
    title: str = "",
    notes: Sequence[str] = (),
) -> str:
    """The table as aligned text for a terminal; missing values print as '—'.

    `time s` is all the time a model took: tuning, the final fit and scoring test.
    `notes` (skipped or approximated models) are printed under the table.
    """
    k = next(
        (key.split("@")[1] for row in result.values() for key in row if key.startswith("recall@")),
        "10",
    )
    head = ("model", f"R@{k}", f"N@{k}", "coverage", "diversity", "fit s", "customers/s", "time s")
    formats = ("{:.4f}", "{:.4f}", "{:.3f}", "{:.3f}", "{:.2f}", "{:,.0f}", "{:.1f}")
    lines = [title] if title else []
    lines.append(f"{head[0]:10s}" + "".join(f"{h:>12s}" for h in head[1:]))
    for name, row in result.items():
        keys = (f"recall@{k}", f"ndcg@{k}", *COLUMNS[2:])
        cells = [
            "—" if row.get(key) is None else fmt.format(row[key])
            for key, fmt in zip(keys, formats, strict=True)
        ]
        lines.append(f"{name:10s}" + "".join(f"{c:>12s}" for c in cells))
    lines.extend(f"note: {note}" for note in notes)
    return "\n".join(lines)
