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
KEYS = {"recall@10", "ndcg@10", "coverage", "diversity", "fit_s", "customers_per_s"}


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

    spec = default_specs(quick=True)[-1]
    assert spec.name == "reelcast" and spec.grid == PIPELINE_GRID
    assert {p["label_split"] for p in spec.grid} == {"auto", "user-last", "user-random"}
    assert spec.build is not None
    assert spec.build(**spec.grid[-1]).config.label_split == "user-random"
