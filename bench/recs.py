"""Recommendation quality and speed: tuned baselines vs the reelcast pipeline, in one run.

Quality: MovieLens-100K (from the recbole wheel) and the demo retailer, each under
leave-last-out and random 80/10/10; full ranking, seen items removed, baselines tuned on
validation, test scored once (see `recs.evaluation.run`). Speed: a synthetic 50,000-item ×
100,000-customer log, customers/s end to end as a campaign serves them (`recs.pick.serve`:
retrieval, ranking, rules and exploration) with HNSW retrieval and with exact (Flat)
retrieval under the same fitted ranker, and HNSW recall@100 against exact search on the
pipeline's normalised ALS vectors.

    python bench/recs.py [--quick] [--json] [--no-speed]

`--quick` uses small tuning grids and a 10,000-item × 20,000-customer speed log
(its HNSW threshold lowered so that HNSW is still what is measured).
`--json` ends the output with one JSON line:
{"protocols": {...}, "demo": {...}, "speed": {...}} (MovieLens under "protocols", the
demo retailer under "demo", both keyed by protocol name).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

# Run as a script, this file's folder comes first on the import path, and its name would
# hide the `recs` package it measures; the repository root goes first instead, for
# `bench.evalkit` and the packages of this checkout.
_HERE = Path(__file__).resolve().parent
REPO = _HERE.parent
sys.path[:] = [str(REPO)] + [p for p in sys.path if Path(p or ".").resolve() not in (_HERE, REPO)]

import faiss  # noqa: E402
import numpy as np  # noqa: E402

from bench.evalkit.movielens import load_movielens_100k  # noqa: E402
from bench.evalkit.synthetic import planted_log  # noqa: E402
from recs.dataset import InteractionLog, from_retail  # noqa: E402
from recs.errors import RecsError  # noqa: E402
from recs.evaluation.protocols import PROTOCOLS  # noqa: E402
from recs.evaluation.run import (  # noqa: E402
    default_specs,
    evaluate_detailed,
    format_table,
    pipeline_ratio,
)
from retail.demo import generate_retailer  # noqa: E402
from retail.loaders import load_retail  # noqa: E402

TARGET_RATIO = 1.05
RECALL_K = 100


def quality(log: InteractionLog, label: str, *, quick: bool) -> dict[str, Any]:
    """Evaluate every model under both protocols; print each table; return them by protocol."""
    tables: dict[str, Any] = {}
    for protocol in PROTOCOLS:
        started = time.perf_counter()
        result = evaluate_detailed(log, protocol, default_specs(quick=quick), on_error="record")
        seconds = time.perf_counter() - started
        print(
            format_table(
                result.table,
                f"\n{label} · {protocol} · {result.test_users} test users · {seconds:.0f} s",
            )
        )
        ratio = pipeline_ratio(result.table)
        verdict = (
            "—"
            if ratio is None
            else f"{ratio:.3f} ({'meets' if ratio >= TARGET_RATIO else 'misses'} ≥ {TARGET_RATIO})"
        )
        print(f"reelcast NDCG@10 / best baseline: {verdict}")
        for name, params in result.params.items():
            if params:
                print(f"  {name} tuned: {params}")
        for note in result.notes:
            print(f"  note: {note}")
        tables[protocol] = result.table
    return tables


def demo_log(out: Path) -> InteractionLog:
    """The demo retailer's files (small images: only the events matter here) as a log."""
    files = generate_retailer(out, image_size=64)
    data = load_retail(files.catalog, files.customers, files.events)
    return from_retail(data.products, data.events, [c.id for c in data.customers])


def _unit(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0).astype(np.float32)


def _recall(approx: np.ndarray, exact: np.ndarray) -> float:
    """Mean share of each exact top-k list that the approximate list also found."""
    found = [
        len(set(a[a >= 0]) & set(e[e >= 0])) / max((e >= 0).sum(), 1)
        for a, e in zip(approx, exact, strict=True)
    ]
    return float(np.mean(found))


def _timed_rate(score: Any, users: np.ndarray) -> float:
    started = time.perf_counter()
    score(users)
    return len(users) / (time.perf_counter() - started)


def speed(*, quick: bool, seed: int = 0) -> dict[str, float | None]:
    """Customers/s through `serve` with HNSW vs exact retrieval, and HNSW recall@100."""
    n_items, n_users = (10_000, 20_000) if quick else (50_000, 100_000)
    log = planted_log(n_users, n_items, n_clusters=50, seed=seed)
    rng = np.random.default_rng(seed)
    sample = np.sort(rng.choice(n_users, min(n_users, 10_000), replace=False))
    print(
        f"\nspeed · synthetic {n_items:,} items × {n_users:,} customers · {len(log.user):,} events"
    )
    try:
        from recs.config import PipelineConfig
        from recs.index import ItemIndex
        from recs.pipeline import Pipeline
    except ImportError as error:
        print(f"  note: pipeline not importable ({error}): measuring the Faiss stage alone")
        return faiss_stage(log, sample)
    started = time.perf_counter()
    # The quick catalog is below the default HNSW threshold: lower it, so that the quick
    # run still measures HNSW against exact search (the full run uses the defaults).
    config = PipelineConfig(hnsw_threshold=min(PipelineConfig().hnsw_threshold, n_items // 2))
    pipeline = Pipeline(config).fit(log, now=float(log.time.max()) + 1.0)
    print(f"  pipeline fit: {time.perf_counter() - started:.0f} s")
    als = next(
        (s for s in pipeline.sources if isinstance(getattr(s, "index", None), ItemIndex)), None
    )
    if als is None:
        print("  note: the pipeline has no Faiss-indexed source: measuring the Faiss stage alone")
        return faiss_stage(log, sample)
    hnsw = als.index
    # The same vectors, searched exactly: everything else (sources, ranker, rules) is shared.
    vectors = als.index_vectors()
    exact = ItemIndex(vectors, hnsw.item_columns, hnsw_threshold=2**62, threads=hnsw.threads)
    print(f"  retrieval index: {hnsw.kind} over {len(hnsw):,} items (exact: {exact.kind})")

    # End to end is what a campaign runs: `recs.pick.serve` (retrieval, ranking, then the
    # rules: purchase and stock exclusions, category caps, the content slot, exploration,
    # reasons with their top features) with the default Rules, 10 products per customer.
    from recs.pick import serve
    from recs.rules import Rules

    now = datetime.fromtimestamp(float(log.time.max()) + 1.0, UTC)
    rules = Rules()

    def score(users: np.ndarray) -> None:
        picks = serve(pipeline, [log.user_ids[u] for u in users], n=10, now=now, rules=rules)
        assert len(picks) == len(users), "a customer got no Pick"

    everyone = np.arange(n_users)
    rate = _timed_rate(score, everyone)
    als.index = exact
    # Exact search is the slow path: time it on a sample (a rate does not need everyone).
    exact_rate = _timed_rate(score, sample)
    als.index = hnsw
    queries = als.queries(sample)
    recall = _recall(hnsw.search(queries, RECALL_K)[1], exact.search(queries, RECALL_K)[1])
    print(
        f"  end to end (recs.pick.serve: retrieve + rank + rules + exploration): "
        f"HNSW {rate:,.0f} customers/s "
        f"(all {n_users:,} in {n_users / rate:.0f} s), exact {exact_rate:,.0f} customers/s "
        f"(on {len(sample):,}) · ratio {rate / exact_rate:.2f}×"
    )
    print(f"  HNSW recall@{RECALL_K} vs exact on {len(sample):,} customers: {recall:.4f}")
    return {
        "customers_per_s": rate,
        "exact_customers_per_s": exact_rate,
        f"hnsw_recall@{RECALL_K}": recall,
    }


def faiss_stage(log: InteractionLog, sample: np.ndarray) -> dict[str, float | None]:
    """Fallback without a pipeline: ALS vectors, HNSW vs Flat search rates and recall."""
    from recs.evaluation.baselines import ALS

    als = ALS(factors=64, regularization=10.0, iterations=15).fit(log, now=0.0)
    items, users = _unit(als.item_factors), _unit(als.user_factors)
    flat = faiss.IndexFlatIP(items.shape[1])
    hnsw = faiss.IndexHNSWFlat(items.shape[1], 32, faiss.METRIC_INNER_PRODUCT)
    hnsw.hnsw.efConstruction, hnsw.hnsw.efSearch = 200, 64
    flat.add(items)
    hnsw.add(items)
    rate = _timed_rate(lambda q: hnsw.search(users[q], RECALL_K), np.arange(len(users)))
    exact_rate = _timed_rate(lambda q: flat.search(users[q], RECALL_K), sample)
    recall = _recall(
        hnsw.search(users[sample], RECALL_K)[1], flat.search(users[sample], RECALL_K)[1]
    )
    print(
        f"  Faiss stage alone: HNSW {rate:,.0f}/s, Flat {exact_rate:,.0f}/s, "
        f"recall@{RECALL_K} {recall:.4f}"
    )
    return {
        "customers_per_s": rate,
        "exact_customers_per_s": exact_rate,
        f"hnsw_recall@{RECALL_K}": recall,
    }


def _clean(value: Any) -> Any:
    """JSON has no NaN or infinity: they become null."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def main() -> None:
    """Parse the flags, run the benchmark, print tables (and JSON on the last line)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small grids and speed log")
    parser.add_argument("--json", action="store_true", help="end with one JSON line")
    parser.add_argument("--no-speed", action="store_true", help="skip the 50k × 100k speed run")
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[attr-defined]  # progress when piped

    result: dict[str, Any] = {"protocols": {}, "demo": {}, "speed": {}}
    try:
        movielens = load_movielens_100k()
    except RecsError as error:
        print(f"MovieLens-100K skipped: {error}")
    else:
        result["protocols"] = quality(movielens, "MovieLens-100K", quick=args.quick)
    with tempfile.TemporaryDirectory() as tmp:
        result["demo"] = quality(demo_log(Path(tmp)), "demo retailer", quick=args.quick)
    if not args.no_speed:
        result["speed"] = speed(quick=args.quick)
    if args.json:
        print(json.dumps(_clean(result)))


if __name__ == "__main__":
    main()
