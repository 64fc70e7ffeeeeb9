"""The end-to-end budget: the campaign flow through Prefect vs the same work done directly.

One run measures both sides, each in its own fresh workspace (renders are content-addressed,
so a shared workspace would make the second side free), on the same demo retailer:

- one recommendation model is trained and approved before the clock, and each side's
  fresh workspace starts with a copy of that registry: both sides serve the same model,
  so they pick the same products and render the same videos (two trainings can differ
  in the last digits: ALS and LightGBM use threads), and "model" is loading it;
- direct ("pure work"): the same package functions the flow's tasks call, in the same
  order, without Prefect: load_retail + feedback_events, campaigns.audience.choose_audience,
  recs.training.approved_or_trained, serve_current, campaigns.plan.plan_jobs, the renderer
  of runtime.renderers.make_renderer on a ThreadPoolExecutor with as many workers as the
  flow's ThreadPoolTaskRunner, campaigns.emails.queue_emails, and runtime.sending.send_due
  (the one send path: SMTP to the local MaildirSink). No creative checks, audit log,
  gallery or artifacts: those, and Prefect, are what the budget measures.
- flow: `campaign_flow.with_options(task_runner=ThreadPoolTaskRunner(max_workers=W))`
  with auto_approve and send_now, against a temporary Prefect API
  (`prefect_test_harness`), flow heartbeat off. The server is started, and one trivial
  warm-up flow run is made, before the clock starts: neither is in `wall_s` (both are
  printed).

The direct side runs first, with no Prefect server alive, then the server starts and the
flow runs. In-process caches of the packages (lru_caches of text fitting, fonts, templates)
are cleared before each side. Both sides must render every video (none reused) and send
every email, or the benchmark fails.

Stages (seconds of wall time; they add up to the side's wall time):
load, audience, model (load the approved model), recs (serve), storyboards, render (the whole
fan-out, first submit to last result), checks (video QC + copy checks, flow only), email
(compose + enqueue), send (SMTP sink + dispatch), bookkeeping (audit log, metrics,
tracking exposures, gallery, artifacts; flow only), orchestration (the rest: Prefect
flow/task machinery and the flow body's glue). For the flow, stage times come from
timestamps around the package calls (wrappers installed by this script; the same class
wrappers are active on both sides) and from task-run timings read back from the Prefect API.

CPU during rendering: user+sys of this process, its finished children (ffmpeg) and the
Prefect server process, over the render stage, as a share of (wall × cores).

    python bench/campaign.py [--customers 300] [--workers 2] [--template NAME] [--json] [--keep]

Scene reuse is on unless REELCAST_SCENE_REUSE=false (both sides read the settings).

`--json` ends the output with one line:
{"customers", "wall_s", "pure_work_s", "ratio", "customers_per_min", "peak_rss_mb", "stages"}
where wall_s is the flow's wall time, pure_work_s the direct side's, customers_per_min is
the flow's throughput, peak_rss_mb is ru_maxrss of this process plus the largest
ru_maxrss of its children (ffmpeg, the Prefect server), and stages is
{"flow": {...}, "direct": {...}}.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import resource
import shutil
import sys
import tempfile
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

# Run as a script, this file's folder comes first on the import path, and bench/recs.py
# would hide the `recs` package.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
REPO = _HERE.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

# Before Prefect is imported: no telemetry, quiet console, no UI build for the test server.
for _name in ("REELCAST_ESP_URL", "REELCAST_SMTP_HOST", "REELCAST_WORKSPACE"):
    os.environ.pop(_name, None)  # both sides must use the local SMTP sink
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "WARNING")
os.environ.setdefault("PREFECT_UI_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_UI_ENABLED", "false")

import psutil  # noqa: E402

from bench.evalkit.measure import RssSampler  # noqa: E402

STAGES = (
    "load",
    "audience",
    "model",
    "recs",
    "storyboards",
    "render",
    "checks",
    "email",
    "send",
    "bookkeeping",
    "orchestration",
)
TARGET = 1.10


# ----------------------------------------------------------------------------- timing


class Spans:
    """Wall-clock spans of wrapped calls: (name, thread id, start, end)."""

    def __init__(self) -> None:
        self.items: list[tuple[str, int, float, float]] = []
        self._lock = threading.Lock()
        self._undo: list[tuple[Any, str, Any]] = []
        self.on = False

    def wrap(self, owner: Any, attr: str, name: str) -> None:
        original = getattr(owner, attr)

        @functools.wraps(original)
        def timed(*args: Any, **kwargs: Any) -> Any:
            if not self.on:
                return original(*args, **kwargs)
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                end = time.perf_counter()
                with self._lock:
                    self.items.append((name, threading.get_ident(), start, end))

        self._undo.append((owner, attr, original))
        setattr(owner, attr, timed)

    def restore(self) -> None:
        for owner, attr, original in reversed(self._undo):
            setattr(owner, attr, original)
        self._undo.clear()

    def reset(self) -> None:
        with self._lock:
            self.items.clear()

    def of(self, *names: str) -> list[tuple[str, int, float, float]]:
        return [s for s in self.items if s[0] in names]


def cpu_snapshot(extra: list[psutil.Process]) -> dict[str, float]:
    """CPU seconds so far: this process, its reaped children, and `extra` processes."""
    t = os.times()
    other = 0.0
    for proc in extra:
        try:
            c = proc.cpu_times()
            other += c.user + c.system
        except psutil.Error:
            pass
    machine = psutil.cpu_times()
    idle = machine.idle + getattr(machine, "iowait", 0.0)
    return {
        "self": t.user + t.system,
        "children": t.children_user + t.children_system,
        "server": other,
        "machine_busy": sum(machine) - idle,
        "machine_total": sum(machine),
        "wall": time.perf_counter(),
    }


def cpu_share(a: dict[str, float], b: dict[str, float], cores: int) -> dict[str, float]:
    wall = max(b["wall"] - a["wall"], 1e-9)
    ours = (b["self"] - a["self"]) + (b["children"] - a["children"])
    server = b["server"] - a["server"]
    machine = (b["machine_busy"] - a["machine_busy"]) / max(
        b["machine_total"] - a["machine_total"], 1e-9
    )
    return {
        "wall_s": wall,
        "ours_pct": 100 * ours / (wall * cores),
        "server_pct": 100 * server / (wall * cores),
        "self_cpu_s": b["self"] - a["self"],
        "ffmpeg_cpu_s": b["children"] - a["children"],
        "server_cpu_s": server,
        "machine_busy_pct": 100 * machine,
    }


def clear_package_caches() -> int:
    """cache_clear() every lru_cache in the reelcast packages; returns how many."""
    cleared = 0
    for name, module in list(sys.modules.items()):
        if module is None or name.split(".")[0] not in (
            "creative",
            "delivery",
            "recs",
            "retail",
            "compliance",
        ):
            continue
        for value in list(vars(module).values()):
            if callable(getattr(value, "cache_clear", None)) and hasattr(value, "cache_info"):
                value.cache_clear()
                cleared += 1
    return cleared


# ----------------------------------------------------------------------------- the sides


def pretrain(files: Any, models: Path) -> Path:
    """Train and approve the demo model once, into the registry folder `models`."""
    from recs.registry import Gate, Registry
    from recs.training import as_of, register, train
    from retail.loaders import load_retail
    from runtime.settings import Settings

    settings = Settings()
    data = load_retail(Path(files.catalog), Path(files.customers), Path(files.events), "fail")
    now = as_of(data.events)
    trained = train(data.products, data.events, [c.id for c in data.customers], now=now)
    record = register(
        Registry(models), trained, Gate(settings.recs_gate_metric, settings.recs_gate_max_drop)
    )
    if not record.approved:
        raise SystemExit(f"the demo model was not approved: {record.approval_note}")
    return models


def direct_run(files: Any, ws_root: Path, customers: int, workers: int, campaign: str) -> dict:
    """The flow's package calls, in order, without Prefect (no checks, no bookkeeping).

    The same functions the flow's tasks call (campaigns.*, recs.training, runtime.*), so
    the ratio compares Prefect against the product's own code, not against a copy of it.
    """
    from campaigns.audience import choose_audience, selected
    from campaigns.emails import due_times, queue_emails
    from campaigns.plan import plan_jobs
    from compliance.pseudonym import pseudonymize
    from creative.template import load_template
    from delivery.events_store import feedback_events
    from delivery.outbox import Outbox
    from recs.registry import Gate
    from recs.training import approved_or_trained, as_of, serve_current
    from recs.training import load as load_model
    from retail.loaders import load_retail
    from runtime.models import open_registry
    from runtime.renderers import first_names_allowed, make_renderer
    from runtime.sending import send_due
    from runtime.settings import Settings

    params = _params(files, ws_root, customers, campaign)
    stages: dict[str, float] = dict.fromkeys(STAGES, 0.0)
    cpu_start = cpu_snapshot([])
    started = time.perf_counter()

    def lap(stage: str, since: float) -> float:
        now = time.perf_counter()
        stages[stage] += now - since
        return now

    settings = Settings(workspace=ws_root)
    ws = settings.open_workspace().create()
    secret = settings.secret()
    t = time.perf_counter()
    data = load_retail(
        Path(params.catalog), Path(params.customers), Path(params.events), params.on_bad_rows,
        check_images=True,
    )  # fmt: skip
    data.events.extend(feedback_events(ws.state_db, (c.id for c in data.customers)))
    t = lap("load", t)
    audience = choose_audience(
        data.customers,
        data.events,
        campaign=params.campaign,
        holdout_share=params.holdout_share,
        rules=settings.audience_rules(),
        state_db=ws.state_db,
        now=datetime.now(UTC),
    )
    chosen = selected(audience, params.selection(), data.customers)
    t = lap("audience", t)
    registry = open_registry(settings, ws)
    gate = Gate(settings.recs_gate_metric, settings.recs_gate_max_drop)
    choice = approved_or_trained(
        registry, data.products, data.events, [c.id for c in data.customers], gate
    )
    if choice.record is None:
        raise SystemExit(f"the demo model was not approved: {choice.refusal}")
    t = lap("model", t)
    spelt, _ = params.spelt_as_in(data.products)
    picks = serve_current(
        load_model(registry, choice.record),
        data.products,
        data.events,
        [c.id for c in chosen],
        n=params.products_per_pick,
        now=as_of(data.events),
        rules=spelt.rules(),
        groups={c.id: c.locale for c in data.customers},
    )
    t = lap("recs", t)
    products = {p.id: p for p in data.products}
    template = load_template(settings.templates_dir, params.template, settings.assets_dir)
    jobs = plan_jobs(
        chosen,
        picks,
        products,
        template,
        pseudonym=lambda cid: pseudonymize(secret, cid),
        images_root=data.catalog_dir,
        first_names=first_names_allowed(settings),
        campaign=params.campaign,
    )
    t = lap("storyboards", t)
    renderer = make_renderer(settings, ws, params.campaign)
    cpu_before = cpu_snapshot([])
    with ThreadPoolExecutor(max_workers=workers) as pool:
        renders = list(
            pool.map(
                lambda job: renderer.render(
                    job.storyboard, ws.renders, subject=job.pseudonym, customer=job.customer
                ),
                jobs,
            )
        )
    renderer.close()
    cpu_after = cpu_snapshot([])
    t = lap("render", t)
    now = datetime.now(UTC)
    with Outbox(ws.state_db) as outbox:
        queued, _ = queue_emails(
            list(zip(jobs, renders, strict=True)),
            outbox=outbox,
            campaign=params.campaign,
            subjects=[s for s in (params.subject, params.subject_b) if s],
            products=products,
            letterhead=settings.letterhead(),
            due=due_times(jobs, data.events, now, send_now=True, send_hour=params.send_hour),
            now=now,
        )
    t = lap("email", t)
    report, _ = send_due(settings, ws)
    t = lap("send", t)
    wall = time.perf_counter() - started
    cpu_end = cpu_snapshot([])
    stages["orchestration"] = wall - sum(stages.values())
    return {
        "cpu_s": (cpu_end["self"] - cpu_start["self"])
        + (cpu_end["children"] - cpu_start["children"]),
        "data": data,
        "job": jobs[0],
        "render_busy_s": sum(s[3] - s[2] for s in SPANS.of("LocalRenderer.render")),
        "distinct_videos": len({r.key for r in renders}),
        "render_folders": render_folders(ws.renders),
        "wall_s": wall,
        "stages": stages,
        "selected": len(chosen),
        "rendered": sum(not r.reused for r in renders),
        "reused": sum(r.reused for r in renders),
        "queued": queued,
        "sent": report.sent,
        "render_cpu": cpu_share(cpu_before, cpu_after, psutil.cpu_count() or 1),
    }


class StageReporter:
    """runtime.progress reporter that timestamps the flow's stages (and CPU around rendering)."""

    def __init__(self, server: list[psutil.Process]) -> None:
        self.server = server
        self.starts: dict[str, float] = {}
        self.totals: dict[str, int] = {}
        self.done: dict[str, int] = defaultdict(int)
        self.last: dict[str, float] = {}
        self.cpu: dict[str, dict[str, float]] = {}
        self._lock = threading.Lock()

    def start(self, stage: str, total: int) -> None:
        with self._lock:
            self.starts[stage] = time.perf_counter()
            self.totals[stage] = total
            if stage == "render":
                self.cpu["render_start"] = cpu_snapshot(self.server)

    def advance(self, stage: str, amount: int = 1) -> None:
        with self._lock:
            self.done[stage] += amount
            self.last[stage] = time.perf_counter()
            if stage == "render" and self.done[stage] == self.totals.get(stage):
                self.cpu["render_end"] = cpu_snapshot(self.server)

    def approval_requested(self, flow_run_id: str, gallery: str) -> None:
        raise RuntimeError("the benchmark runs with auto_approve: nothing may pause")


# The calls timed on the flow side, by the module whose global the call looks up, and the
# stage each belongs to.
FLOW_WRAPS = {
    ("flows.campaign", "load_retail"): "load",
    ("campaigns.audience", "select_audience"): "audience",
    ("recs.training", "train"): "model",
    ("recs.training", "register"): "model",
    ("flows.campaign", "load_model"): "recs",
    ("flows.campaign", "serve_current"): "recs",
    ("flows.campaign", "load_template"): "storyboards",
    ("campaigns.plan", "build_storyboard"): "storyboards",
    ("campaigns.checks", "copy_problems"): "checks",
    ("campaigns.checks", "qc_video"): "checks",
    ("campaigns.emails", "compose_campaign_email"): "email",
    ("runtime.sending", "dispatch"): "send",
    ("flows.campaign", "write_gallery"): "bookkeeping",
    ("flows.campaign", "create_link_artifact"): "bookkeeping",
    ("flows.campaign", "create_progress_artifact"): "bookkeeping",
    ("flows.campaign", "update_progress_artifact"): "bookkeeping",
    ("flows.campaign", "publish"): "bookkeeping",
    ("campaigns.summary", "reason_counts"): "bookkeeping",
    ("flows.campaign", "render_all"): "render",
}
# The flow's tasks (flows.campaign): time from a task call to its body is Prefect's.
TASKS = (
    "load_files",
    "audience_for",
    "choose_model",
    "pick_products",
    "render_videos",
    "check_all",
    "queue_all",
    "send_queued",
    "record_sends",
)
# Methods wrapped on their classes (active on both sides).
CLASS_WRAPS = {
    ("compliance.audit", "AuditLog"): ("__init__", "append", "record", "close"),
    ("runtime.metrics", "Metrics"): ("__init__", "observe", "incr", "close"),
    ("delivery.events_store", "TrackingEvents"): (
        "__init__",
        "events",
        "record_exposures",
        "close",
    ),
    ("delivery.outbox", "Outbox"): ("__init__", "enqueue", "get", "close"),
    ("delivery.sink", "MaildirSink"): ("start", "stop"),
    ("creative.render", "LocalRenderer"): ("render",),
}


def install_wraps(spans: Spans) -> None:
    import importlib

    import flows.campaign as fc

    for (module, name), _ in FLOW_WRAPS.items():
        owner = importlib.import_module(module)
        if not hasattr(owner, name):
            raise SystemExit(f"bench/campaign.py: {module}.{name} is gone; update FLOW_WRAPS")
        spans.wrap(owner, name, f"{module}.{name}")
    for name in TASKS:
        spans.wrap(getattr(fc, name), "fn", f"task.{name}")
    for (module, cls), methods in CLASS_WRAPS.items():
        owner = getattr(importlib.import_module(module), cls)
        for method in methods:
            if hasattr(owner, method):
                spans.wrap(owner, method, f"{cls}.{method}")


def flow_stages(spans: Spans, main: int, start: float, end: float, rep: StageReporter) -> dict:
    """Split the flow's wall time into the same stages as the direct side.

    render = from the reporter's start("render") to the end of render_all (all results
    in). Every other stage is the sum of its calls' spans on the flow's own thread
    outside that window. Whatever is left is orchestration.
    """
    stages: dict[str, float] = dict.fromkeys(STAGES, 0.0)
    waits = spans.of("flows.campaign.render_all")
    r0 = rep.starts.get("render", start)
    r1 = waits[-1][3] if waits else r0
    stages["render"] = r1 - r0
    stage_of = {f"{m}.{k}": v for (m, k), v in FLOW_WRAPS.items() if v != "render"}
    stage_of.update(
        {
            "AuditLog.__init__": "bookkeeping",
            "AuditLog.append": "bookkeeping",
            "AuditLog.record": "bookkeeping",
            "AuditLog.close": "bookkeeping",
            "Metrics.__init__": "bookkeeping",
            "Metrics.observe": "bookkeeping",
            "Metrics.incr": "bookkeeping",
            "Metrics.close": "bookkeeping",
            "TrackingEvents.__init__": "bookkeeping",
            "TrackingEvents.events": "bookkeeping",
            "TrackingEvents.record_exposures": "bookkeeping",
            "TrackingEvents.close": "bookkeeping",
            "Outbox.enqueue": "email",
            "MaildirSink.start": "send",
            "MaildirSink.stop": "send",
            "Outbox.get": "bookkeeping",
        }
    )
    # Outermost spans only (a wrapped call inside another wrapped call counts once).
    mine = sorted(
        (
            s
            for s in spans.items
            if s[1] == main and start <= s[2] and s[3] <= end and not s[0].startswith("task.")
        ),
        key=lambda s: (s[2], -s[3]),
    )
    outer_end = -1.0
    for name, _, s0, s1 in mine:
        if s1 <= outer_end:
            continue  # nested in the previous outermost span
        outer_end = s1
        if name not in stage_of or (r0 <= s0 < r1):
            continue
        stages[stage_of[name]] += s1 - s0
    stages["orchestration"] = (end - start) - sum(stages.values())
    return stages


def task_runs(flow_run_id: Any, expected: int) -> list[Any]:
    """The flow's finished task runs from the Prefect API: at least `expected`, and no new
    one for 3 s (the server records them from events, a little after the flow ends)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    deadline = time.monotonic() + 30
    runs: list[Any] = []
    seen, stable = -1, 0
    with get_client(sync_client=True) as client:
        while True:
            runs, offset = [], 0
            while True:
                page = client.read_task_runs(
                    flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])),
                    limit=200,
                    offset=offset,
                )
                runs += page
                offset += len(page)
                if len(page) < 200:
                    break
            finished = [r for r in runs if r.end_time is not None and r.start_time is not None]
            stable = stable + 1 if len(finished) == seen else 0
            seen = len(finished)
            if (seen >= expected and stable >= 3) or time.monotonic() > deadline:
                return finished
            time.sleep(1)


def flow_run(files: Any, ws_root: Path, customers: int, workers: int, campaign: str) -> dict:
    """Start the temporary Prefect API, warm up, then time the campaign flow."""
    from prefect import flow, task
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
    from prefect.task_runners import ThreadPoolTaskRunner
    from prefect.testing.utilities import prefect_test_harness

    from flows.campaign import campaign_flow
    from runtime.progress import reporting

    t = time.perf_counter()
    with prefect_test_harness(server_startup_timeout=120):
        server_start_s = time.perf_counter() - t
        with temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):

            @task
            def _one(x: int) -> int:
                return x + 1

            @flow(task_runner=ThreadPoolTaskRunner(max_workers=workers))
            def _warmup() -> int:
                return sum(f.result() for f in _one.map([1, 2, 3]))

            t = time.perf_counter()
            _warmup()
            warmup_s = time.perf_counter() - t
            server = [
                p
                for p in psutil.Process().children(recursive=True)
                if "ffmpeg" not in (p.name() or "")
            ]
            spans = SPANS
            rep = StageReporter(server)
            params = _params(files, ws_root, customers, campaign)
            runner = campaign_flow.with_options(
                task_runner=ThreadPoolTaskRunner(max_workers=workers)
            )
            spans.reset()
            spans.on = True
            main = threading.get_ident()
            with reporting(rep):
                cpu_start = cpu_snapshot(server)
                start = time.perf_counter()
                state = runner(params, return_state=True)
                end = time.perf_counter()
                cpu_end = cpu_snapshot(server)
            spans.on = False
            summary = state.result()
            flow_run_id = state.state_details.flow_run_id
            runs = task_runs(flow_run_id, expected=7)
    return {
        "render_folders": render_folders(ws_root / "renders"),
        "cpu_s": (cpu_end["self"] - cpu_start["self"])
        + (cpu_end["children"] - cpu_start["children"]),
        "server_cpu_s": cpu_end["server"] - cpu_start["server"],
        "wall_s": end - start,
        "start": start,
        "end": end,
        "main": main,
        "server_start_s": server_start_s,
        "warmup_s": warmup_s,
        "summary": summary,
        "reporter": rep,
        "task_runs": runs,
        "stages": flow_stages(spans, main, start, end, rep),
        "render_cpu": (
            cpu_share(rep.cpu["render_start"], rep.cpu["render_end"], psutil.cpu_count() or 1)
            if "render_end" in rep.cpu
            else {}
        ),
    }


def render_folders(renders: Path) -> int:
    """Finished render folders (one per distinct video) in a workspace's renders/."""
    return sum(1 for d in renders.glob("*/*/render.json") if not d.parent.name.startswith("."))


def _params(files: Any, ws_root: Path, customers: int, campaign: str) -> Any:
    from campaigns.params import CampaignParams

    return CampaignParams(
        campaign=campaign,
        catalog=str(files.catalog),
        customers=str(files.customers),
        events=str(files.events),
        limit=customers,
        workspace=str(ws_root),
        auto_approve=True,
        send_now=True,
        **({"template": TEMPLATE[0]} if TEMPLATE else {}),
    )


SPANS = Spans()
TEMPLATE: list[str] = []  # --template, when given


# ----------------------------------------------------------------------------- analysis


def overhead_details(flow: dict, direct: dict, workers: int) -> list[str]:
    """Where the flow's extra time goes, from the spans and the Prefect task runs."""
    lines: list[str] = []
    main, start, end = flow["main"], flow["start"], flow["end"]
    in_flow = [s for s in SPANS.items if start <= s[2] and s[3] <= end]

    def total(name: str, thread: str = "any") -> tuple[int, float]:
        xs = [
            s
            for s in in_flow
            if s[0] == name and (thread == "any" or (s[1] == main) == (thread == "main"))
        ]
        return len(xs), sum(s[3] - s[2] for s in xs)

    renders = [s for s in in_flow if s[0] == "LocalRenderer.render"]
    r_mean = sum(s[3] - s[2] for s in renders) / max(len(renders), 1)
    runs = [r for r in flow["task_runs"] if r.name.startswith("render-")]
    if runs:
        walls = sorted((r.end_time - r.start_time).total_seconds() for r in runs)
        t_mean = sum(walls) / len(walls)
        lines.append(
            f"render tasks (API): {len(runs)} runs, mean wall {t_mean:.3f} s vs "
            f"LocalRenderer.render mean {r_mean:.3f} s → per-task overhead "
            f"≈ {1000 * (t_mean - r_mean):.0f} ms (×{len(runs)}/{workers} workers ≈ "
            f"{(t_mean - r_mean) * len(runs) / workers:.1f} s of render-stage wall)"
        )
        first_start = min(r.start_time for r in runs)
        last_end = max(r.end_time for r in runs)
        lines.append(
            f"render tasks span (API): {(last_end - first_start).total_seconds():.1f} s; "
            f"render stage (submit → all results): {flow['stages']['render']:.1f} s"
        )
    busy_flow = sum(s[3] - s[2] for s in renders)
    for side, busy, wall in (
        ("flow", busy_flow, flow["stages"]["render"]),
        ("direct", direct["render_busy_s"], direct["stages"]["render"]),
    ):
        lines.append(
            f"render workers busy in LocalRenderer.render ({side}): "
            f"{100 * busy / max(wall * workers, 1e-9):.1f} % of {workers} × {wall:.1f} s; "
            f"mean render {busy / max(len(renders), 1):.2f} s"
        )
    bodies = [s for s in in_flow if s[0] == "task.render_videos"]
    if bodies:
        extra = sum(s[3] - s[2] for s in bodies) - busy_flow
        lines.append(
            f"render task bodies beyond LocalRenderer.render (metrics, progress): "
            f"{1000 * extra / len(bodies):.1f} ms per task"
        )
    for name in ("Metrics.__init__", "Metrics.observe", "Metrics.incr", "Metrics.close"):
        n, s = total(name, "worker")
        if n:
            lines.append(
                f"{name} in render tasks: {n} calls, {s:.2f} s thread time "
                f"({1000 * s / n:.1f} ms each; ≈ {s / workers:.2f} s of render wall)"
            )
    for name in (
        "flows.campaign.create_progress_artifact",
        "flows.campaign.update_progress_artifact",
    ):
        n, s = total(name)
        if n:
            lines.append(f"{name}: {n} calls, {s:.2f} s on the flow thread (overlaps rendering)")
    for name in (
        "campaigns.checks.copy_problems",
        "campaigns.checks.qc_video",
        "AuditLog.__init__",
        "AuditLog.append",
        "AuditLog.record",
        "AuditLog.close",
        "flows.campaign.write_gallery",
        "flows.campaign.create_link_artifact",
        "flows.campaign.publish",
        "campaigns.summary.reason_counts",
        "TrackingEvents.events",
        "TrackingEvents.record_exposures",
        "Outbox.get",
        "Metrics.observe",
        "Metrics.incr",
    ):
        n, s = total(name, "main")
        if n:
            lines.append(f"{name} (flow thread): {n} calls, {s:.2f} s ({1000 * s / n:.1f} ms each)")
    # Non-render tasks: API wall vs package work inside.
    for r in sorted(
        (r for r in flow["task_runs"] if not r.name.startswith("render-")),
        key=lambda r: r.start_time,
    ):
        lines.append(
            f"task {r.name}: {(r.end_time - r.start_time).total_seconds():.2f} s (API wall)"
        )
    # Gaps on the flow's thread: time between consecutive timed calls (outermost spans).
    mine = sorted((s for s in in_flow if s[1] == main), key=lambda s: (s[2], -s[3]))
    outer: list[tuple[str, int, float, float]] = []
    for s in mine:
        if outer and s[3] <= outer[-1][3]:
            continue
        outer.append(s)
    gaps = []
    previous_name, previous_end = "flow call", start
    for name, _, s0, s1 in outer:
        gaps.append((s0 - previous_end, previous_name, name))
        previous_name, previous_end = name, s1
    gaps.append((end - previous_end, previous_name, "flow returns"))
    for gap, before, after in sorted(gaps, reverse=True)[:8]:
        if gap >= 0.05:
            lines.append(f"untimed on the flow thread: {gap:.2f} s between {before} and {after}")
    # Task call → task body on the flow thread (Prefect's per-call work, mostly the two
    # recursive walks of the arguments: task-input lineage and future resolution).
    calls = sorted((s for s in in_flow if s[1] == main), key=lambda s: s[2])
    for i, (name, _, s0, _) in enumerate(calls):
        if not name.startswith("task.") or i == 0:
            continue
        before = max((c[3] for c in calls[:i] if c[3] <= s0), default=start)
        lines.append(f"before {name} body (flow thread, untimed): {s0 - before:.2f} s")
    first = [s for s in in_flow if s[0] == "flows.campaign.load_retail"]
    if first:
        lines.append(f"flow call → first package call (load_retail): {first[0][2] - start:.2f} s")
    last = [s for s in in_flow if s[0] == "flows.campaign.publish"]
    if last:
        lines.append(f"publish end → flow call returns: {end - last[-1][3]:.2f} s")
    lines.append(
        "stage deltas flow − direct: "
        + ", ".join(
            f"{k} {flow['stages'][k] - direct['stages'][k]:+.1f}"
            for k in STAGES
            if abs(flow["stages"][k] - direct["stages"][k]) >= 0.05
        )
    )
    return lines


def traversal_costs(direct: dict) -> list[str]:
    """What Prefect's two walks over a task's arguments cost for the flow's real arguments.

    Every task call walks each argument twice, recursively: collect_task_run_inputs_sync
    (task-input lineage for the UI) and the future/state resolution of
    TaskRunEngine._resolve_parameters (which also rebuilds the containers). Measured here
    in this process with no API involved: best of 3.
    """
    from prefect.utilities.annotations import quote
    from prefect.utilities.collections import visit_collection
    from prefect.utilities.engine import collect_task_run_inputs_sync, resolve_to_final_result

    def walks(value: Any) -> float:
        best = float("inf")
        for _ in range(3):
            t = time.perf_counter()
            collect_task_run_inputs_sync(value)
            visit_collection(
                value,
                visit_fn=resolve_to_final_result,
                return_data=True,
                max_depth=-1,
                remove_annotations=True,
                context={"parameter_name": "x"},
            )
            best = min(best, time.perf_counter() - t)
        return best

    data, job = direct["data"], direct["job"]
    lines = []
    for label, value in (
        (f"RetailData ({len(data.events)} events, {len(data.customers)} customers)", data),
        (f"data.events ({len(data.events)} Event models)", data.events),
        ("one Job (customer, pick, storyboard)", job),
        ("quote(RetailData)", quote(data)),
    ):
        lines.append(f"Prefect argument walks, {label}: {1000 * walks(value):.1f} ms per task call")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=300, help="customers to render and mail")
    parser.add_argument(
        "--workers", type=int, default=None, help="render workers (default: settings, 2)"
    )
    parser.add_argument("--seed", type=int, default=7, help="demo retailer seed")
    parser.add_argument("--template", help="video template (default: the campaign's, greeting)")
    parser.add_argument("--json", action="store_true", help="end with one JSON line")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()
    if args.template:
        TEMPLATE.append(args.template)

    from retail.demo import generate_retailer
    from runtime.settings import Settings

    workers = args.workers or Settings().render_workers
    cores = psutil.cpu_count() or 1
    root = Path(tempfile.mkdtemp(prefix="reelcast-bench-campaign-"))
    os.environ.setdefault("PREFECT_HOME", str(root / "prefect-home"))
    # One pseudonym key for both sides: the headline variant is drawn from the pseudonym,
    # so with a key per workspace the sides rendered different videos (246 vs 226).
    os.environ["REELCAST_PSEUDONYM_SECRET"] = "bench-campaign-secret-0123456789abcdef"
    print(f"workspace root: {root}  (cores: {cores}, render workers: {workers})", flush=True)
    try:
        t = time.perf_counter()
        n_customers = max(1000, args.customers * 3)
        files = generate_retailer(root / "data", seed=args.seed, n_customers=n_customers)
        print(
            f"demo retailer ({n_customers} customers) generated in {time.perf_counter() - t:.1f} s",
            flush=True,
        )
        import flows.campaign  # noqa: F401  (imports prefect: not timed on either side)

        t = time.perf_counter()
        models = pretrain(files, root / "models")
        print(f"model trained and approved in {time.perf_counter() - t:.1f} s", flush=True)
        for side in ("ws-direct", "ws-flow"):
            shutil.copytree(models, root / side / "models")
        install_wraps(SPANS)
        with RssSampler() as rss_direct:
            print(f"clearing {clear_package_caches()} package caches; direct run…", flush=True)
            SPANS.on = True
            direct = direct_run(files, root / "ws-direct", args.customers, workers, "bench")
            SPANS.on = False
        print(f"direct: {direct['wall_s']:.1f} s", flush=True)
        clear_package_caches()
        print("starting the temporary Prefect API; flow run…", flush=True)
        with RssSampler() as rss_flow:
            flow = flow_run(files, root / "ws-flow", args.customers, workers, "bench")
        print(f"flow: {flow['wall_s']:.1f} s", flush=True)
        SPANS.restore()
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)

    summary = flow["summary"]
    problems = []
    if direct["selected"] != args.customers:
        problems.append(f"only {direct['selected']} eligible customers (wanted {args.customers})")
    # Fresh workspaces: nothing can come from the other side. Customers whose storyboards
    # are identical (same picks, same copy) share one video inside a run: content
    # addressing at work. Two identical storyboards rendering at the same moment on the
    # two workers are both rendered (the second rename loses), so counts may differ a bit.
    for side, rendered, reused, folders in (
        ("direct", direct["rendered"], direct["reused"], direct["render_folders"]),
        ("flow", summary.rendered, summary.reused_renders, flow["render_folders"]),
    ):
        if rendered + reused != args.customers or rendered < folders or not folders:
            problems.append(
                f"{side}: rendered {rendered}, reused {reused}, {folders} videos on disk; "
                "expected every distinct video rendered in this run"
            )
    if direct["sent"] != direct["selected"]:
        problems.append(f"direct sent {direct['sent']} of {direct['selected']}")
    if summary.sent != summary.selected:
        problems.append(
            f"flow sent {summary.sent} of {summary.selected} (failed checks: "
            f"{summary.failed_checks or 'none'})"
        )

    ratio = flow["wall_s"] / direct["wall_s"]
    self_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    child_rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print()
    print(
        f"Campaign, {args.customers} customers, {workers} render workers, {cores} cores "
        f"(Prefect server start {flow['server_start_s']:.1f} s and a warm-up flow "
        f"{flow['warmup_s']:.1f} s are not in the flow's wall time)"
    )
    print(f"{'stage':<14}{'flow s':>9}{'direct s':>10}{'flow−direct':>13}")
    for k in STAGES:
        f, d = flow["stages"][k], direct["stages"][k]
        print(f"{k:<14}{f:>9.2f}{d:>10.2f}{f - d:>+13.2f}")
    print(
        f"{'total (wall)':<14}{flow['wall_s']:>9.2f}{direct['wall_s']:>10.2f}"
        f"{flow['wall_s'] - direct['wall_s']:>+13.2f}"
    )
    print(
        f"ratio flow / direct: {ratio:.3f} (target ≤ {TARGET:.2f}: "
        f"{'met' if ratio <= TARGET else 'NOT met'})"
    )
    cpm_flow = 60 * summary.sent / flow["wall_s"]
    cpm_direct = 60 * direct["sent"] / direct["wall_s"]
    print(f"customers per minute: flow {cpm_flow:.1f}, direct {cpm_direct:.1f}")
    print(
        f"videos: {args.customers} customers share {direct['render_folders']} distinct videos "
        f"(direct) / {flow['render_folders']} (flow; the same model serves both sides); "
        f"rendered in this run: direct {direct['rendered']}, flow {summary.rendered} (the rest "
        "are identical storyboards reused within the same run; workspaces are fresh)"
    )
    # Machine load drift between the sides (other jobs) shows as a different mean render.
    renders_flow = [
        s for s in SPANS.items if s[0] == "LocalRenderer.render" and s[2] >= flow["start"]
    ]
    mean_flow = sum(s[3] - s[2] for s in renders_flow) / max(len(renders_flow), 1)
    mean_direct = direct["render_busy_s"] / max(direct["rendered"] + direct["reused"], 1)
    render_overhead = flow["stages"]["render"] - sum(s[3] - s[2] for s in renders_flow) / workers
    flow_only = (
        flow["stages"]["checks"]
        + flow["stages"]["bookkeeping"]
        + flow["stages"]["orchestration"]
        + max(render_overhead, 0.0)
    )
    print(
        f"flow-only time inside the flow run (checks {flow['stages']['checks']:.1f} s + "
        f"bookkeeping {flow['stages']['bookkeeping']:.1f} s + orchestration "
        f"{flow['stages']['orchestration']:.1f} s + render-stage time beyond "
        f"LocalRenderer.render {render_overhead:.1f} s) = {flow_only:.1f} s → within-run "
        f"overhead ratio {flow['wall_s'] / (flow['wall_s'] - flow_only):.3f}"
    )
    drift = mean_flow / max(mean_direct, 1e-9)
    if not 0.87 <= drift <= 1.15:
        print(
            f"WARNING: the mean render took {mean_flow:.2f} s in the flow run and "
            f"{mean_direct:.2f} s in the direct run (×{drift:.2f}): the machine's load changed "
            "between the runs, and the wall ratio measures that more than Prefect. Trust the "
            "CPU ratio and the within-run overhead ratio below, or rerun on a quiet machine."
        )
    for side, res in (("flow", flow), ("direct", direct)):
        c = res["render_cpu"]
        if c:
            print(
                f"CPU during rendering ({side}): {c['ours_pct']:.0f} % of {cores} cores by this "
                f"process + ffmpeg (self {c['self_cpu_s']:.0f} s, ffmpeg {c['ffmpeg_cpu_s']:.0f} s"
                + (f", Prefect server {c['server_pct']:.1f} %" if side == "flow" else "")
                + f" over {c['wall_s']:.0f} s); machine busy {c['machine_busy_pct']:.0f} %"
            )
    print(
        f"peak memory: this process {self_rss:.0f} MB (ru_maxrss), largest child "
        f"{child_rss:.0f} MB; process tree sampled: direct {rss_direct.peak / 2**20:.0f} MB, "
        f"flow (incl. Prefect server) {rss_flow.peak / 2**20:.0f} MB"
    )
    print("where the flow's time goes:")
    for line in overhead_details(flow, direct, workers) + traversal_costs(direct):
        print(f"  {line}")
    print(
        f"CPU seconds (this process + ffmpeg): flow {flow['cpu_s']:.0f} s + Prefect server "
        f"{flow['server_cpu_s']:.0f} s, direct {direct['cpu_s']:.0f} s → CPU ratio "
        f"{(flow['cpu_s'] + flow['server_cpu_s']) / direct['cpu_s']:.3f} (less sensitive than "
        "wall time to other jobs on the machine)"
    )
    for p in problems:
        print(f"PROBLEM: {p}")
    if args.json:
        print(
            json.dumps(
                {
                    "customers": args.customers,
                    "wall_s": round(flow["wall_s"], 2),
                    "pure_work_s": round(direct["wall_s"], 2),
                    "ratio": round(ratio, 3),
                    "customers_per_min": round(cpm_flow, 1),
                    "peak_rss_mb": round(self_rss + child_rss, 1),
                    "stages": {
                        "flow": {k: round(v, 2) for k, v in flow["stages"].items()},
                        "direct": {k: round(v, 2) for k, v in direct["stages"].items()},
                    },
                }
            )
        )
    if problems:
        sys.exit(1)


if __name__ == "__main__":
    main()
