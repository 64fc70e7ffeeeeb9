"""A campaign at retailer size through the real flow: memory, state, task runs, duplicates.

N customers of a generated shop with a 50,000-item catalog go through `campaign_flow`
(Prefect's temporary API, flow heartbeat off), auto-approved and sent at once to
reelcast's own SMTP sink on 127.0.0.1. Before the clock, a run of N/10 customers in the
same process gives the memory baseline (ratio target: peak at N ≤ 1.5 × peak at N/10).

To keep the figure about scale rather than about video encoding, the renders are small:
the hero template at 288×512 (two fifths of 720×1280: prices still fit) with a single,
impersonal headline and personalization off, so every customer whose first product is
the same shares one video (content addressing). The output says so.

Counted, not assumed:
- duplicates: Message-IDs that reached the SMTP sink more than once (Maildir);
- sent vs eligible (from the flow's summary);
- prefect_task_runs: the flow run's task runs, read back from the API;
- api_p95_ms: Prefect's /health answered while the flow ran, polled every 0.5 s;
- peak_rss_mb: this process plus its children (the Prefect server, ffmpeg), sampled;
- state_bytes_per_customer: reelcast's SQLite files (outbox, audit, metrics, tracking)
  over N.

    python bench/load.py --customers 20000 [--products 50000] [--workers 2] [--json]

`--json` ends the output with one line:
{"customers", "eligible", "sent", "duplicates", "peak_rss_mb", "peak_rss_mb_at_tenth",
 "rss_ratio", "state_bytes_per_customer", "prefect_task_runs", "api_p95_ms", "wall_s", ...}
"""

from __future__ import annotations

import argparse
import json
import mailbox
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

# Run as a script, this file's folder comes first on the import path, and bench/recs.py
# would hide the `recs` package.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
REPO = _HERE.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

for _name in ("REELCAST_ESP_URL", "REELCAST_SMTP_HOST", "REELCAST_WORKSPACE"):
    os.environ.pop(_name, None)
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "WARNING")
os.environ.setdefault("PREFECT_UI_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_UI_ENABLED", "false")

import httpx  # noqa: E402
import yaml  # noqa: E402

from bench.evalkit.measure import RssSampler  # noqa: E402

SMALL = {"width": 288, "height": 512}
RSS_TARGET = 1.5
P95_TARGET_MS = 250.0


def small_templates(root: Path) -> Path:
    """The bundled templates, plus `load`: hero at 144×256, one impersonal headline."""
    out = root / "templates"
    shutil.copytree(REPO / "templates", out)
    spec = yaml.safe_load((REPO / "templates" / "hero" / "template.yaml").read_text())
    spec["name"] = "load"
    spec["description"] = "hero, small and impersonal, for the load benchmark"
    spec["aspects"] = {"9:16": {**spec["aspects"]["9:16"], "canvas": dict(SMALL)}}
    spec["headlines"] = [{"text": "Picked for you"}]
    spec["gif"] = {**spec.get("gif", {}), "width": 120}
    for layer in spec.get("layers", []):
        layer.pop("at", None)  # other aspects are gone
    (out / "load").mkdir()
    (out / "load" / "template.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    return out


class HealthPoller:
    """Prefect's /health latency, polled every `every` seconds while the flow runs."""

    def __init__(self, api_url: str, every: float = 0.5) -> None:
        self.url = api_url.rstrip("/") + "/health"
        self.every = every
        self.latencies_ms: list[float] = []
        self.errors = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(timeout=10) as client:
            while not self._stop.wait(self.every):
                start = time.perf_counter()
                try:
                    client.get(self.url).raise_for_status()
                except httpx.HTTPError:
                    self.errors += 1
                    continue
                self.latencies_ms.append(1000 * (time.perf_counter() - start))

    def p95(self) -> float:
        if len(self.latencies_ms) < 2:
            return float("nan")
        return statistics.quantiles(self.latencies_ms, n=20)[-1]

    def __enter__(self) -> HealthPoller:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def count_task_runs(flow_run_id: Any) -> int:
    """The flow run's task runs as the API knows them (recorded from events: read until
    the count holds still for 3 s)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    flow_runs = FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
    seen, stable = -1, 0
    deadline = time.monotonic() + 60
    with get_client(sync_client=True) as client:
        while stable < 3 and time.monotonic() < deadline:
            count, offset = 0, 0
            while True:
                page = client.read_task_runs(flow_run_filter=flow_runs, limit=200, offset=offset)
                count += len(page)
                offset += len(page)
                if len(page) < 200:
                    break
            stable = stable + 1 if count == seen else 0
            seen = count
            time.sleep(1)
    return seen


def state_bytes(ws: Path) -> int:
    return sum(
        p.stat().st_size
        for p in ws.iterdir()
        if p.is_file() and (p.suffix == ".sqlite" or ".sqlite-" in p.name)
    )


def one_run(files: Any, ws: Path, customers: int, workers: int, api_url: str) -> dict[str, Any]:
    """The campaign flow for `customers` customers in workspace `ws`, measured."""
    from prefect.task_runners import ThreadPoolTaskRunner

    from campaigns.params import CampaignParams
    from flows.campaign import campaign_flow

    params = CampaignParams(
        campaign="load",
        catalog=str(files.catalog),
        customers=str(files.customers),
        events=str(files.events),
        template="load",
        limit=customers,
        workspace=str(ws),
        auto_approve=True,
        send_now=True,
        on_bad_rows="skip",
    )
    flow = campaign_flow.with_options(task_runner=ThreadPoolTaskRunner(max_workers=workers))
    with RssSampler() as rss, HealthPoller(api_url) as health:
        start = time.perf_counter()
        state = flow(params, return_state=True)
        wall = time.perf_counter() - start
    summary = state.result()
    ids = Counter(str(m["Message-ID"]) for m in mailbox.Maildir(ws / "mail", create=False))
    return {
        "customers": customers,
        "eligible": summary.selected,
        "sent": summary.sent,
        "duplicates": sum(ids.values()) - len(ids),
        "messages_at_sink": sum(ids.values()),
        "videos_rendered": summary.rendered,
        "videos_reused": summary.reused_renders,
        "failed_checks": sum(summary.failed_checks.values()),
        "peak_rss_mb": round(rss.peak / 2**20, 1),
        "peak_rss_mb_flow_process": round(rss.peak_self / 2**20, 1),
        "peak_rss_mb_children": round(rss.peak_children / 2**20, 1),
        "state_bytes_per_customer": round(state_bytes(ws) / max(customers, 1), 1),
        "prefect_task_runs": count_task_runs(state.state_details.flow_run_id),
        "api_p95_ms": round(health.p95(), 1),
        "api_errors": health.errors,
        "wall_s": round(wall, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=2000, help="customers to mail (N)")
    parser.add_argument("--products", type=int, default=50_000, help="catalog size")
    parser.add_argument("--workers", type=int, default=2, help="render workers")
    parser.add_argument("--seed", type=int, default=5, help="demo retailer seed")
    parser.add_argument("--no-tenth", action="store_true", help="skip the N/10 baseline run")
    parser.add_argument("--json", action="store_true", help="end with one JSON line")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="reelcast-bench-load-"))
    os.environ.setdefault("PREFECT_HOME", str(root / "prefect-home"))
    os.environ["REELCAST_TEMPLATES_DIR"] = str(small_templates(root))
    os.environ["REELCAST_PERSONALIZE"] = "false"
    os.environ["REELCAST_PSEUDONYM_SECRET"] = "load-benchmark-secret-0123456789abcdef"
    os.environ["REELCAST_RENDER_WORKERS"] = str(args.workers)
    print(
        f"load benchmark in {root}: {args.customers} customers, {args.products} products; "
        f"renders at {SMALL['width']}×{SMALL['height']}, personalization off, one headline: "
        "videos are shared by customers with the same first product",
        flush=True,
    )
    try:
        from retail.demo import generate_retailer

        t = time.perf_counter()
        # Not every generated customer consents: generate enough for N eligible ones.
        files = generate_retailer(
            root / "data",
            seed=args.seed,
            n_products=args.products,
            n_customers=int(args.customers * 1.6) + 100,
            days=30,
            image_size=64,
        )
        print(f"shop generated in {time.perf_counter() - t:.0f} s", flush=True)

        from prefect.settings import (
            PREFECT_API_URL,
            PREFECT_FLOWS_HEARTBEAT_FREQUENCY,
            temporary_settings,
        )
        from prefect.testing.utilities import prefect_test_harness

        with (
            prefect_test_harness(server_startup_timeout=120),
            temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}),
        ):
            api_url = str(PREFECT_API_URL.value())
            tenth: dict[str, Any] | None = None
            if not args.no_tenth:
                n = max(args.customers // 10, 1)
                tenth = one_run(files, root / "ws-tenth", n, args.workers, api_url)
                print(f"N/10 = {n}: {json.dumps(tenth)}", flush=True)
            full = one_run(files, root / "ws", args.customers, args.workers, api_url)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)

    full["peak_rss_mb_at_tenth"] = tenth["peak_rss_mb"] if tenth else None
    full["rss_ratio"] = round(full["peak_rss_mb"] / tenth["peak_rss_mb"], 3) if tenth else None
    full["render_size"] = f"{SMALL['width']}x{SMALL['height']}, personalization off"
    lines = [
        f"customers {full['customers']}: eligible {full['eligible']}, sent {full['sent']}, "
        f"duplicates at the sink {full['duplicates']}",
        f"videos rendered {full['videos_rendered']}, reused {full['videos_reused']}",
        f"peak RSS {full['peak_rss_mb']} MB"
        + (
            f" vs {full['peak_rss_mb_at_tenth']} MB at N/10: ratio {full['rss_ratio']} "
            f"(target ≤ {RSS_TARGET})"
            if tenth
            else ""
        ),
        f"state {full['state_bytes_per_customer']} bytes per customer",
        f"Prefect task runs {full['prefect_task_runs']}; API P95 {full['api_p95_ms']} ms "
        f"(target < {P95_TARGET_MS:.0f})",
        f"wall {full['wall_s']} s",
    ]
    print("\n".join(lines))
    if args.json:
        print(json.dumps(full))


if __name__ == "__main__":
    main()
