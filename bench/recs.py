"""Recommendation quality and speed: tuned baselines vs the reelcast pipeline, in one run.

Quality: MovieLens-100K (from the recbole wheel) and the demo retailer, each under
leave-last-out and random 80/10/10, over `--seeds` split seeds (default 5); full
ranking, seen items removed, every model (baselines, sequential baselines and the
pipeline) tuned on validation by one procedure and scored on test once per seed (see
`recs.evaluation.run`). Scale: `reelcast recs evaluate` itself, in a child process, on a
generated shop of 50,000 products and 5,000 customers: its wall time and peak memory.
Speed: a synthetic 50,000-item × 100,000-customer log, customers/s end to end as a
campaign serves them (`recs.pick.serve`: retrieval, ranking, rules and exploration) with
HNSW retrieval and with exact (Flat) retrieval under the same fitted ranker, and HNSW
recall@100 against exact search on the pipeline's normalised ALS vectors.

    python bench/recs.py [--quick] [--json] [--seeds 5] [--sasrec] [--no-speed] [--no-scale]

`--quick` thins every tuning grid alike and uses a 10,000-item × 20,000-customer speed
log (its HNSW threshold lowered so that HNSW is still what is measured). `--sasrec` adds
SASRec (needs the `sasrec` extra, PyTorch); without it, or without torch, its row says
why it is absent.
`--json` ends the output with one JSON line: {"seeds": 5, "protocols": {protocol: {model:
{"ndcg@10" (mean over seeds), "ndcg@10_sd", "recall@10", "recall@10_sd", …}}}, "demo":
{same, the demo retailer}, "ratios": {"movielens"|"demo": {protocol: {"best", "mean",
"ci95", "per_seed"}}}, "tuned": {...}, "scale": {"items", "evaluate_s", "peak_rss_mb"},
"speed": {...}}.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
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

from bench.evalkit.measure import RssSampler  # noqa: E402
from bench.evalkit.movielens import load_movielens_100k  # noqa: E402
from bench.evalkit.synthetic import planted_log  # noqa: E402
from recs.dataset import InteractionLog, from_retail  # noqa: E402
from recs.errors import RecsError  # noqa: E402
from recs.evaluation.protocols import PROTOCOLS  # noqa: E402
from recs.evaluation.run import (  # noqa: E402
    COLUMNS,
    PIPELINE,
    default_specs,
    evaluate_detailed,
)
from retail.demo import generate_retailer  # noqa: E402
from retail.loaders import load_retail  # noqa: E402

#: Targets of issue 18: the pipeline's NDCG@10 over the best baseline's, per protocol.
TARGETS = {"leave-last-out": 1.05, "random-80-10-10": 1.00}
RECALL_K = 100
K = 10
#: Two-sided 95 % Student t quantiles by degrees of freedom (seeds - 1).
_T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262}


def _metric_keys() -> list[str]:
    return [f"recall@{K}", f"ndcg@{K}", *COLUMNS[2:]]


def summarize(tables: list[dict[str, dict[str, float | None]]]) -> dict[str, dict[str, Any]]:
    """Per model, each metric's mean over seeds, and the sd of recall and NDCG."""
    out: dict[str, dict[str, Any]] = {}
    for name in tables[0]:
        row: dict[str, Any] = {}
        for key in _metric_keys():
            values = [t[name][key] for t in tables if t.get(name, {}).get(key) is not None]
            row[key] = statistics.fmean(values) if values else None  # type: ignore[arg-type]
            if key in (f"recall@{K}", f"ndcg@{K}"):
                sd = statistics.stdev(values) if len(values) > 1 else None  # type: ignore[arg-type]
                row[f"{key}_sd"] = sd
        out[name] = row
    return out


def ratio_interval(tables: list[dict[str, dict[str, float | None]]]) -> dict[str, Any] | None:
    """The pipeline's NDCG@10 over the best baseline's (best by mean over seeds).

    Per seed the ratio against that baseline; its mean and a 95 % Student t interval.
    """
    key = f"ndcg@{K}"
    means = summarize(tables)
    baselines = {n: r[key] for n, r in means.items() if n != PIPELINE and r[key] is not None}
    if not baselines or means.get(PIPELINE, {}).get(key) is None:
        return None
    best = max(baselines, key=lambda n: baselines[n])
    per_seed = [
        float(t[PIPELINE][key]) / float(t[best][key])  # type: ignore[arg-type]
        for t in tables
        if t[PIPELINE][key] is not None and t[best][key]
    ]
    mean = statistics.fmean(per_seed)
    half = (
        _T95.get(len(per_seed) - 1, 1.96) * statistics.stdev(per_seed) / math.sqrt(len(per_seed))
        if len(per_seed) > 1
        else float("nan")
    )
    return {
        "best": best,
        "mean": mean,
        "ci95": [mean - half, mean + half],
        "per_seed": per_seed,
        "of_means": float(means[PIPELINE][key]) / baselines[best],
    }


def format_summary(summary: dict[str, dict[str, Any]], title: str) -> str:
    """Mean ± sd of NDCG@10 and Recall@10, mean coverage and time, one line per model."""
    lines = [
        title,
        f"{'model':10s}{'N@10 mean':>11s}{'± sd':>8s}{'R@10 mean':>11s}{'± sd':>8s}"
        f"{'coverage':>10s}{'time s':>9s}",
    ]
    for name, row in summary.items():

        def cell(key: str, width: int, fmt: str, r: dict[str, Any] = row) -> str:
            return f"{'—' if r.get(key) is None else fmt.format(r[key]):>{width}s}"

        lines.append(
            f"{name:10s}{cell(f'ndcg@{K}', 11, '{:.4f}')}{cell(f'ndcg@{K}_sd', 8, '{:.4f}')}"
            f"{cell(f'recall@{K}', 11, '{:.4f}')}{cell(f'recall@{K}_sd', 8, '{:.4f}')}"
            f"{cell('coverage', 10, '{:.3f}')}{cell('seconds', 9, '{:.1f}')}"
        )
    return "\n".join(lines)


def quality(
    log: InteractionLog, label: str, *, quick: bool, seeds: int, sasrec: bool
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Every model under both protocols and `seeds` split seeds: (summaries, ratios, tuned)."""
    summaries: dict[str, Any] = {}
    ratios: dict[str, Any] = {}
    tuned: dict[str, Any] = {}
    specs = default_specs(quick=quick, n_items=log.n_items, sasrec_model=sasrec)
    for protocol in PROTOCOLS:
        started = time.perf_counter()
        tables, notes = [], set()
        tuned[protocol] = {}
        for seed in range(seeds):
            result = evaluate_detailed(log, protocol, specs, K, on_error="record", seed=seed)
            tables.append(result.table)
            notes.update(result.notes)
            for name, params in result.params.items():
                tuned[protocol].setdefault(name, []).append(params)
            best = max(
                (n for n in result.table if n != PIPELINE and result.table[n][f"ndcg@{K}"]),
                key=lambda n: result.table[n][f"ndcg@{K}"] or 0.0,
                default="—",
            )
            print(
                f"  {label} · {protocol} · seed {seed}: reelcast "
                f"{result.table.get(PIPELINE, {}).get(f'ndcg@{K}') or float('nan'):.4f}, "
                f"best baseline {best} "
                f"{(result.table.get(best) or {}).get(f'ndcg@{K}') or float('nan'):.4f}"
                f" ({result.test_users} test users, {time.perf_counter() - started:.0f} s)"
            )
        seconds = time.perf_counter() - started
        summary = summarize(tables)
        print(
            format_summary(
                summary,
                f"\n{label} · {protocol} · {seeds} seed(s) · {seconds:.0f} s",
            )
        )
        ratio = ratio_interval(tables)
        target = TARGETS[protocol]
        if ratio is None:
            print("reelcast NDCG@10 / best baseline: —")
        else:
            low, high = ratio["ci95"]
            verdict = "meets" if ratio["mean"] >= target else "misses"
            print(
                f"reelcast NDCG@10 / best baseline ({ratio['best']}): mean over seeds "
                f"{ratio['mean']:.3f}, 95 % interval [{low:.3f}, {high:.3f}] "
                f"({verdict} ≥ {target:.2f})"
            )
        for name, chosen in tuned[protocol].items():
            if any(chosen):
                print(f"  {name} tuned per seed: {chosen}")
        for note in sorted(notes):
            print(f"  note: {note}")
        summaries[protocol] = summary
        ratios[protocol] = ratio
    return summaries, ratios, tuned


_SCALE_CHILD = """
import sys
from cli.main import main
sys.argv = ["reelcast", "recs", "evaluate", *sys.argv[1:]]
main()
"""


def scale(*, items: int = 50_000, customers: int = 5_000) -> dict[str, Any]:
    """`reelcast recs evaluate` on a generated shop of `items` × `customers`, in a child.

    The clock and the memory sampler cover the child only: loading the CSV files,
    coding the log, splitting, tuning and scoring every model.
    """
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        files = generate_retailer(
            Path(tmp) / "shop", n_products=items, n_customers=customers, image_size=16
        )
        print(
            f"\nscale · shop of {items:,} products × {customers:,} customers generated "
            f"in {time.perf_counter() - started:.0f} s"
        )
        command = [
            sys.executable,
            "-c",
            _SCALE_CHILD,
            "--catalog",
            str(files.catalog),
            "--customers",
            str(files.customers),
            "--events",
            str(files.events),
            "--json",
        ]
        env = dict(os.environ, PYTHONPATH=str(REPO))
        with RssSampler() as rss:
            started = time.perf_counter()
            done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=REPO)
            seconds = time.perf_counter() - started
    for line in done.stderr.splitlines():
        if line.strip():
            print(f"  {line.strip()}")
    row: dict[str, Any] = {
        "items": items,
        "customers": customers,
        "evaluate_s": seconds,
        "peak_rss_mb": rss.peak_children / 2**20,
        "exit_code": done.returncode,
    }
    if done.returncode == 0:
        table = json.loads(done.stdout.strip().splitlines()[-1])
        row["models"] = {
            name: {k: v for k, v in r.items() if k in (f"ndcg@{K}", "seconds")}
            for name, r in table["models"].items()
        }
        row["notes"] = table.get("notes", [])
    else:
        print(done.stderr[-2000:])
    print(
        f"  reelcast recs evaluate: {seconds:.0f} s (target ≤ 600), peak RSS "
        f"{row['peak_rss_mb']:.0f} MB (target ≤ 4,096), exit {done.returncode}"
    )
    return row


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
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def main() -> None:
    """Parse the flags, run the benchmark, print tables (and JSON on the last line)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="thinned grids, small speed log")
    parser.add_argument("--json", action="store_true", help="end with one JSON line")
    parser.add_argument("--seeds", type=int, default=5, help="split seeds (default 5)")
    parser.add_argument("--sasrec", action="store_true", help="add SASRec (PyTorch)")
    parser.add_argument("--no-speed", action="store_true", help="skip the 50k × 100k speed run")
    parser.add_argument("--no-scale", action="store_true", help="skip the 50k-item evaluate run")
    parser.add_argument("--no-demo", action="store_true", help="skip the demo retailer")
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[attr-defined]  # progress when piped

    result: dict[str, Any] = {
        "seeds": args.seeds,
        "protocols": {},
        "demo": {},
        "ratios": {},
        "tuned": {},
        "scale": {},
        "speed": {},
    }
    try:
        movielens = load_movielens_100k()
    except RecsError as error:
        print(f"MovieLens-100K skipped: {error}")
    else:
        summary, ratios, tuned = quality(
            movielens, "MovieLens-100K", quick=args.quick, seeds=args.seeds, sasrec=args.sasrec
        )
        result["protocols"], result["ratios"]["movielens"] = summary, ratios
        result["tuned"]["movielens"] = tuned
    if not args.no_demo:
        with tempfile.TemporaryDirectory() as tmp:
            summary, ratios, tuned = quality(
                demo_log(Path(tmp)),
                "demo retailer",
                quick=args.quick,
                seeds=args.seeds,
                sasrec=args.sasrec,
            )
        result["demo"], result["ratios"]["demo"] = summary, ratios
        result["tuned"]["demo"] = tuned
    if not args.no_scale:
        result["scale"] = scale()
    if not args.no_speed:
        result["speed"] = speed(quick=args.quick)
    if args.json:
        print(json.dumps(_clean(result)))


if __name__ == "__main__":
    main()
