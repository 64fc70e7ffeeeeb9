"""evaluate(): one row per model, in the shape the CLI and bench print."""

from __future__ import annotations

import pytest

from bench.evalkit.synthetic import planted_log
from recs.evaluation.baselines import EASE, Popularity
from recs.evaluation.run import (
    ModelSpec,
    evaluate,
    evaluate_detailed,
    format_table,
    grid,
    pipeline_ratio,
)

LOG = planted_log(150, 60, n_clusters=5, events_per_user=12, seed=4)
KEYS = {"recall@10", "ndcg@10", "coverage", "diversity", "fit_s", "customers_per_s", "seconds"}


@pytest.mark.parametrize("protocol", ["leave-last-out", "random-80-10-10"])
def test_evaluate_returns_one_row_per_model_with_the_issue_keys(protocol: str) -> None:
    specs = [
        ModelSpec("pop", Popularity),
        ModelSpec("ease", EASE, grid(lam=[10.0, 100.0])),
        ModelSpec("reelcast", None, missing="not built yet"),
    ]
    table = evaluate(LOG, protocol, specs)
    assert list(table) == ["pop", "ease", "reelcast"]
    for name, row in table.items():
        assert set(row) == KEYS
        assert all(row[key] is None for key in KEYS) == (name == "reelcast")
    assert table["ease"]["ndcg@10"] > table["pop"]["ndcg@10"]


def test_tuning_is_recorded_and_picks_the_best_on_validation() -> None:
    result = evaluate_detailed(
        LOG, "random-80-10-10", [ModelSpec("ease", EASE, grid(lam=[1.0, 50.0, 5000.0]))]
    )
    scores = result.tuning["ease"]
    assert len(scores) == 3
    assert result.params["ease"] == max(scores, key=lambda s: s[1])[0]


def test_a_plain_recommender_is_fitted_as_is_and_failures_can_be_recorded() -> None:
    class Broken(Popularity):
        name = "reelcast"

        def fit(self, log: object, *, now: float) -> Broken:
            raise RuntimeError("boom")

    result = evaluate_detailed(LOG, "leave-last-out", [Popularity(), Broken()], on_error="record")
    assert result.table["pop"]["recall@10"] is not None
    assert result.table["reelcast"]["ndcg@10"] is None
    assert any("boom" in note for note in result.notes)
    with pytest.raises(RuntimeError):
        evaluate_detailed(LOG, "leave-last-out", [Broken()])


def test_format_table_and_ratio() -> None:
    table = {
        "pop": dict.fromkeys(KEYS, 0.1),
        "reelcast": {**dict.fromkeys(KEYS, 0.2), "fit_s": None},
    }
    text = format_table(table, "demo")
    assert "reelcast" in text and "—" in text and text.startswith("demo")
    assert pipeline_ratio(table) == pytest.approx(2.0)
    assert pipeline_ratio({"pop": table["pop"]}) is None


def test_the_pipeline_is_tuned_over_its_label_split() -> None:
    from recs.evaluation.run import PIPELINE_GRID, default_specs

    spec = default_specs()[-1]
    assert spec.name == "reelcast" and spec.grid == PIPELINE_GRID
    assert {p["label_split"] for p in spec.grid} == {"auto", "user-last", "user-random"}
    assert spec.build is not None
    assert spec.build(**spec.grid[-1]).config.label_split == "user-random"


def test_quick_and_large_catalogs_thin_every_grid_alike() -> None:
    from recs.evaluation.run import AXES, default_specs, thin

    full = {s.name: s for s in default_specs(n_items=1_000)}
    quick = {s.name: s for s in default_specs(quick=True, n_items=1_000)}
    large = {s.name: s for s in default_specs(n_items=50_000)}
    for name, spec in full.items():
        expected = grid(**thin(**AXES[name]))
        assert quick[name].grid == large[name].grid == expected
        assert len(spec.grid) >= len(expected)
    assert "thinned" in large["als"].note and not full["als"].note
    # Past EASE_MAX_ITEMS, EASE is approximated on the most-touched items, and says so.
    assert "most-touched" in large["ease"].note
    assert large["ease"].build is not None
    from recs.evaluation.run import EASE_MAX_ITEMS

    assert large["ease"].build(lam=100.0).max_items == EASE_MAX_ITEMS


def test_test_scores_the_winner_refitted_on_train_and_validation() -> None:
    fitted: list[int] = []

    class Counting(Popularity):
        def fit(self, log, *, now: float) -> Counting:  # type: ignore[no-untyped-def]
            fitted.append(len(log.user))
            return super().fit(log, now=now)

    result = evaluate_detailed(
        LOG, "leave-last-out", [ModelSpec("pop", Counting, ({}, {}))], seed=1
    )
    # Two grid points fitted on train, then the winner on train + validation.
    from recs.evaluation.protocols import split

    parts = split(LOG, "leave-last-out", 1)
    assert fitted == [len(parts.train.user)] * 2 + [len(parts.train_and_validation.user)]
    assert result.seed == 1 and result.table["pop"]["seconds"] is not None
    fitted.clear()
    evaluate_detailed(LOG, "leave-last-out", [ModelSpec("pop", Counting, ({}, {}))], refit=False)
    assert len(fitted) == 2


def test_progress_reports_each_model_and_grid_point() -> None:
    lines: list[str] = []
    evaluate_detailed(
        LOG,
        "random-80-10-10",
        [ModelSpec("ease", EASE, grid(lam=[1.0, 50.0])), ModelSpec("x", None, missing="why")],
        progress=lines.append,
    )
    assert any(line.startswith("ease 2/2 (lam=50.0)") for line in lines)
    assert any("ease: done in" in line for line in lines)
    assert "x: skipped (why)" in lines
