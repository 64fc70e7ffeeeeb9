"""The campaign flow: retail files in, emails out. Tasks are thin; packages decide."""

from __future__ import annotations

import time
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from prefect import flow, get_run_logger, task, unmapped
from prefect.artifacts import (
    create_link_artifact,
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from prefect.cache_policies import NO_CACHE
from prefect.context import FlowRunContext
from prefect.flow_runs import pause_flow_run
from prefect.futures import as_completed
from prefect.task_runners import ThreadPoolTaskRunner
from prefect.utilities.annotations import opaque
from pydantic import ValidationError

from campaign.params import CampaignParams
from compliance.audience import (
    Audience,
    ConsentPolicy,
    FrequencyCap,
    Holdout,
    select_audience,
    unsubscribed_in,
)
from compliance.audit import AuditLog
from compliance.claims import load_policy as load_claims_policy
from compliance.copy_checks import copy_problems
from compliance.pii import AllowList
from compliance.pseudonym import pseudonymize
from compliance.suppression import SuppressionList
from creative.errors import CreativeError
from creative.qc import Expect, qc_video
from creative.render import LocalRenderer, Render, Renderer
from creative.storyboard import Storyboard, build_storyboard
from creative.template import load_template
from delivery.compose import compose_campaign_email
from delivery.dispatch import DispatchReport, dispatch
from delivery.events_store import TrackingEvents
from delivery.links import Links, make_token
from delivery.outbox import Outbox
from delivery.sendtime import SendPolicy, schedule_customers
from flows.approval import Approval, approval_description
from flows.gallery import GalleryItem, write_gallery
from recs.pick import reason_counts
from recs.pipeline import is_current
from recs.registry import Gate, ModelRecord, Registry
from recs.training import load as load_model
from recs.training import register, serve_current, train
from retail.loaders import RetailData, load_retail
from retail.types import Customer, Event, Pick, Product
from runtime.metrics import Metrics, TimedTransport
from runtime.progress import reporter
from runtime.runners import task_runner
from runtime.settings import Settings
from runtime.transports import open_transport
from runtime.workspace import Workspace

# Customer data flows through these tasks: never cache or persist their results.
step = task(cache_policy=NO_CACHE, persist_result=False)


@dataclass
class CampaignSummary:
    """Counts of one run. No personal data: safe to print, log and publish."""

    campaign: str
    considered: int = 0
    excluded: dict[str, int] = field(default_factory=dict)
    eligible: int = 0
    selected: int = 0
    rendered: int = 0
    reused_renders: int = 0
    failed_checks: dict[str, int] = field(default_factory=dict)
    queued: int = 0
    already_queued: int = 0
    sent: int = 0
    not_sent: dict[str, int] = field(default_factory=dict)
    skipped_rows: dict[str, int] = field(default_factory=dict)
    unknown_reference_events: int = 0
    dry_run: bool = False
    model_version: str = ""
    workspace: str = ""
    maildir: str = ""
    renders: str = ""
    mail_via: str = ""
    gallery: str = ""
    approval: str = ""
    approval_note: str = ""
    blocked: str = ""
    vendor: dict[str, object] = field(default_factory=dict)
    sources: dict[str, int] = field(default_factory=dict)
    reasons: dict[str, int] = field(default_factory=dict)
    #: pseudonymous id → why the vendor could not render that customer's video
    rendered_locally: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Job:
    """One customer's way through render and checks."""

    customer: Customer
    pick: Pick
    storyboard: Storyboard
    pseudonym: str
    variant: str = ""


@step
def load_files(params: CampaignParams) -> RetailData:
    """Load and validate the three retail files."""
    data = load_retail(
        Path(params.catalog),
        Path(params.customers),
        Path(params.events),
        params.on_bad_rows,
        check_images=True,  # a missing image is a bad catalog row now, not a failed render
    )
    log = get_run_logger()
    log.info(
        "loaded %d products, %d customers, %d events",
        len(data.products),
        len(data.customers),
        len(data.events),
    )
    for problem in data.problems[:20]:
        log.warning("left out: %s", problem)
    if len(data.problems) > 20:
        log.warning(
            "… and %d more rows left out (the run's summary counts them per file)",
            len(data.problems) - 20,
        )
    return data


@step
def choose_audience(
    data: RetailData, params: CampaignParams, settings: Settings, state_db: str
) -> Audience:
    """Apply suppression, consent by country, the frequency cap and the holdout."""
    suppressed = SuppressionList(Path(state_db)).ids() | unsubscribed_in(data.events)
    since = datetime.now(UTC) - timedelta(days=settings.frequency_cap_days)
    with Outbox(Path(state_db)) as outbox:
        recent = outbox.sent_counts(since, exclude_campaign=params.campaign)
    audience = select_audience(
        data.customers,
        suppressed=suppressed,
        policy=ConsentPolicy.with_overrides(settings.consent_overrides),
        recent_sends=recent,
        cap=FrequencyCap(settings.frequency_cap_emails, settings.frequency_cap_days),
        holdout=Holdout(params.holdout_share, params.campaign, settings.holdout_salt),
    )
    get_run_logger().info(
        "%d of %d customers eligible; excluded %s",
        len(audience.eligible),
        audience.considered,
        audience.counts() or "none",
    )
    return audience


@step
def choose_model(
    data: RetailData, settings: Settings, ws: Workspace
) -> tuple[ModelRecord | None, str]:
    """(the newest approved model, "") or, when none is approved, (None, what to do).

    The first time, a model is trained and the gate decides whether it is approved.
    """
    registry = Registry(ws.models)
    record = registry.approved()
    if record is not None and is_current(record.version):
        return record, ""
    if record is not None:
        get_run_logger().info(
            "approved model %s is from an older reelcast: training a new one", record.version
        )
    now = max((e.timestamp for e in data.events), default=datetime.now(UTC))
    reporter().start("train", 1)
    trained = train(data.products, data.events, [c.id for c in data.customers], now=now)
    record = register(
        registry, trained, Gate(settings.recs_gate_metric, settings.recs_gate_max_drop)
    )
    reporter().advance("train")
    get_run_logger().info(
        "trained model %s: %s; %s",
        record.version,
        {k: round(v, 4) for k, v in record.metrics.items()},
        record.approval_note,
    )
    if not record.approved:
        return None, (
            f"no approved recommendation model: the new model {record.version} did not pass "
            f"the gate ({record.approval_note}); approve it with `reelcast recs approve "
            f"{record.version}` if it is good enough"
        )
    return record, ""


@step
def pick_products(
    data: RetailData,
    record: ModelRecord,
    customer_ids: list[str],
    params: CampaignParams,
    ws: Workspace,
) -> dict[str, Pick]:
    """Picks for every selected customer in one batch, from the approved model."""
    now = max((e.timestamp for e in data.events), default=datetime.now(UTC))
    started = time.perf_counter()
    pipeline = load_model(Registry(ws.models), record)
    params, typos = params.spelt_as_in(data.products)
    for typo in typos:
        get_run_logger().warning("%s", typo)
    groups = {c.id: c.locale for c in data.customers}
    picks = serve_current(
        pipeline,
        data.products,
        data.events,
        customer_ids,
        n=params.products_per_pick,
        now=now,
        rules=params.rules(),
        groups=groups,
    )
    with Metrics(ws.metrics_db) as metrics:
        metrics.observe("recommend", time.perf_counter() - started)
    reporter().advance("recommend", len(customer_ids))
    return picks


@task(
    cache_policy=NO_CACHE,
    persist_result=False,
    retries=1,
    retry_delay_seconds=2,
    task_run_name="render-{job.pseudonym}",
)
def render_video(job: Job, renderer: Renderer, out_dir: str, metrics_db: str) -> Render:
    """Render one customer's video (or reuse the identical one rendered before)."""
    started = time.perf_counter()
    if isinstance(renderer, LocalRenderer):
        result = renderer.render(job.storyboard, Path(out_dir))
    else:  # the vendor sees the pseudonym only; the customer is for its payload check
        result = renderer.render(
            job.storyboard, Path(out_dir), subject=job.pseudonym, customer=job.customer
        )
    # A vendor render's latency (submit, queue, poll, download) is the vendor's stage; a
    # fallback render made here is a local render.
    local = isinstance(renderer, LocalRenderer) or result.key in getattr(renderer, "fallbacks", {})
    stage = "render" if local else "vendor"
    metrics = Metrics(Path(metrics_db))
    try:
        if not result.reused:
            metrics.observe(stage, time.perf_counter() - started)
        metrics.incr("renders_reused_total" if result.reused else "renders_total")
    finally:
        metrics.close()
    reporter().advance("render")
    return result


def make_renderer(settings: Settings, ws: Workspace, campaign: str) -> Renderer:
    """The local renderer, or the vendor's API with a local fallback, as the settings say."""
    local = LocalRenderer(crf=settings.video_crf, preset=settings.video_preset)
    if settings.renderer == "local":
        return local
    from creative.vendor.config import VendorConfig
    from creative.vendor.renderer import FallbackRenderer, VendorRenderer

    if not settings.vendor_url or settings.vendor_api_key is None:
        raise CreativeError(
            "REELCAST_RENDERER=vendor needs REELCAST_VENDOR_URL and REELCAST_VENDOR_API_KEY"
        )
    config = VendorConfig(
        base_url=settings.vendor_url,
        api_key=settings.vendor_api_key,
        webhook_secret=settings.vendor_webhook_secret,
        webhook_url=settings.vendor_webhook_url,
        price_per_second=Decimal(str(settings.vendor_price_per_second)),
        allow_first_name=settings.vendor_first_names,
    )
    vendor = VendorRenderer(config, ws.root, campaign=campaign)
    return FallbackRenderer(vendor, local) if settings.vendor_fallback == "local" else vendor


def _rendered_locally(renderer: Renderer, jobs: list[Job], campaign: str) -> dict[str, str]:
    """Pseudonym → why the vendor fell back to the local renderer, for this run's jobs.

    From the vendor ledger (it survives a Dask worker's copy of the renderer). The reasons
    are the vendor client's own messages, which name requests and statuses, never a
    customer; they are shortened to one line for the artifact.
    """
    rendered_locally = getattr(renderer, "rendered_locally", None)
    if rendered_locally is None:  # the vendor without a fallback
        return {}
    reasons: dict[str, str] = rendered_locally(campaign)
    out = {}
    for job in jobs:
        reason = reasons.get(job.storyboard.key())
        if reason is not None:
            line = " ".join(reason.split()).replace("|", "/")
            out[job.pseudonym] = line if len(line) <= 200 else line[:199] + "…"
    return out


def video_problems(job: Job, render: Render) -> list[str]:
    """Video QC in one pass over the file (duration, size, codec, faststart, black or frozen
    stretches outside intended stills, loudness) and the poster."""
    verdict = qc_video(render.video, Expect.from_storyboard(job.storyboard), render.content)
    problems = [f"video: {p}" for p in verdict.problems]
    if not render.poster.is_file():
        problems.append("poster: missing")
    return problems


@step
def queue_emails(
    jobs: list[tuple[Job, Render]],
    params: CampaignParams,
    settings: Settings,
    products: dict[str, Product],
    secret: bytes,
    outbox_db: str,
    events: list[Event],
) -> tuple[int, int]:
    """Compose each email and put it in the outbox; returns (queued, already there).

    Due now with `send_now`; otherwise at each customer's own best local hour.
    """
    links = Links(settings.public_base_url, unsubscribe_address=settings.unsubscribe_mailto)
    outbox = Outbox(Path(outbox_db))
    queued = already = 0
    now = datetime.now(UTC)
    subjects = [s for s in (params.subject, params.subject_b) if s]
    due = (
        {}
        if params.send_now
        else schedule_customers(
            [(job.customer.id, job.customer.timezone) for job, _ in jobs],
            events,
            now,
            SendPolicy(default_hour=params.send_hour),
        )
    )
    try:
        for job, render in jobs:
            if outbox.get(params.campaign, job.customer.id) is not None:
                already += 1  # composing again would only be thrown away
                continue
            token = make_token(secret, params.campaign, job.customer.id)
            composed = compose_campaign_email(
                customer=job.customer,
                products=[products[pid] for pid in job.pick.product_ids],
                poster=render.poster,
                gif=getattr(render, "gif", None),
                video_url=f"{links.base_url}/r/{render.key}/video.mp4",
                links=links.for_token(token),
                sender=settings.sender,
                postal_address=settings.postal_address,
                subject=subjects,
                campaign_id=params.campaign,
                templates_dir=settings.templates_dir,
                pseudonym=job.pseudonym,
            )
            if outbox.enqueue(
                campaign_id=params.campaign,
                customer_id=job.customer.id,
                recipient=str(job.customer.email),
                message=composed.message,
                due_at=due.get(job.customer.id, now),
                variant=f"subject-{composed.variant}" if len(subjects) > 1 else job.variant,
            ):
                queued += 1
            else:
                already += 1
            reporter().advance("email")
    finally:
        outbox.close()
    return queued, already


@step
def send_due(settings: Settings, ws: Workspace) -> tuple[DispatchReport, str]:
    """Send every due message: through the email API, an SMTP relay, or the local sink."""
    with (
        Metrics(ws.metrics_db) as metrics,
        Outbox(ws.state_db) as outbox,
        open_transport(settings, ws) as (transport, via),
    ):
        suppression = SuppressionList(ws.state_db)
        report = dispatch(
            outbox,
            TimedTransport(transport, metrics),
            now=datetime.now(UTC),
            is_suppressed=suppression.__contains__,
            on_progress=lambda r: reporter().advance("send"),
        )
        _count_sends(metrics, report)
    return report, via


def _count_sends(metrics: Metrics, report: DispatchReport) -> None:
    for name, value in (
        ("emails_sent_total", report.sent),
        ("emails_failed_total", report.failed),
        ("emails_suppressed_total", report.suppressed),
        ("emails_unknown_total", report.unknown),
    ):
        if value:
            metrics.incr(name, value)


def _publish(summary: CampaignSummary, picks_rows: list[dict]) -> None:
    lines = [
        f"# Campaign `{summary.campaign}`" + (" (dry run)" if summary.dry_run else ""),
        "",
        "| stage | count |",
        "|---|---|",
        f"| customers considered | {summary.considered} |",
        f"| eligible | {summary.eligible} |",
        f"| selected (limit) | {summary.selected} |",
        f"| videos rendered | {summary.rendered} (reused {summary.reused_renders}) |",
        f"| emails queued | {summary.queued} (already queued before: {summary.already_queued}) |",
        f"| emails sent | {summary.sent} |",
        "",
        "| excluded because | customers |",
        "|---|---|",
        *[f"| {reason} | {count} |" for reason, count in sorted(summary.excluded.items())],
    ]
    if summary.failed_checks:
        lines += ["", "| creative check failed | customers |", "|---|---|"]
        lines += [f"| {k} | {v} |" for k, v in sorted(summary.failed_checks.items())]
    if summary.sources:
        lines += ["", "| candidate source (slots) | count |", "|---|---|"]
        lines += [f"| {k} | {v} |" for k, v in sorted(summary.sources.items())]
    if summary.reasons:
        lines += ["", "| why a product was picked | slots |", "|---|---|"]
        lines += [f"| {k} | {v} |" for k, v in sorted(summary.reasons.items())]
    if summary.vendor:
        lines += ["", "| video vendor | |", "|---|---|"]
        lines += [f"| {k} | {v} |" for k, v in summary.vendor.items()]
    if summary.rendered_locally:
        lines += ["", "| rendered locally instead of at the vendor (customer) | why |", "|---|---|"]
        lines += [f"| {k} | {v} |" for k, v in sorted(summary.rendered_locally.items())]
    if summary.approval:
        note = f" — {summary.approval_note}" if summary.approval_note else ""
        lines += ["", f"Approval: **{summary.approval}**{note}"]
    if summary.blocked:
        lines += ["", f"Stopped: {summary.blocked}"]
    lines += ["", f"Model version: `{summary.model_version}`"]
    create_markdown_artifact(
        "\n".join(lines),
        key=_key(summary.campaign, "summary"),
        description="Campaign summary (counts only)",
    )
    if picks_rows:
        create_table_artifact(
            picks_rows,
            key=_key(summary.campaign, "picks"),
            description="Picks by pseudonymous customer id",
        )


def _key(campaign: str, what: str) -> str:
    # Artifact keys allow lowercase letters, digits and dashes only.
    safe = "".join(c if c.isalnum() else "-" for c in campaign.lower())
    return f"campaign-{safe}-{what}"


def _default_runner():  # type: ignore[no-untyped-def]
    # A worker imports this module to run a deployment: honour REELCAST_DASK_ADDRESS and
    # REELCAST_RENDER_WORKERS there too. Bad settings are reported when the flow runs.
    try:
        return task_runner(Settings())
    except ValidationError:
        return ThreadPoolTaskRunner(max_workers=2)


@flow(name="campaign", task_runner=_default_runner(), log_prints=False)
def campaign_flow(params: CampaignParams) -> CampaignSummary:
    """Run one campaign: load, choose the audience, pick, render, check, queue, send."""
    if not params.campaign:
        params = params.model_copy(update={"campaign": f"campaign-{datetime.now(UTC):%Y-%m-%d}"})
    settings = Settings(**({"workspace": params.workspace} if params.workspace else {}))
    ws = Workspace(settings.workspace).create()
    secret = settings.secret()
    log = get_run_logger()
    summary = CampaignSummary(
        campaign=params.campaign,
        dry_run=params.dry_run,
        workspace=str(ws.root),
        maildir=str(ws.maildir),
        renders=str(ws.renders),
    )

    data = load_files(params)
    if settings.unsubscribe_maildir is not None:  # who asked by mail is out before the audience
        from flows.operations import honour_unsubscribe_mail

        honour_unsubscribe_mail(settings, ws)
    # The feedback loop: opens, clicks and unsubscribes from earlier campaigns.
    known = {c.id for c in data.customers}
    with TrackingEvents(ws.state_db) as tracking:
        data.events.extend(e for e in tracking.events() if e.customer_id in known)
    summary.skipped_rows = data.skipped_rows
    summary.unknown_reference_events = data.unknown_reference_events
    audience = choose_audience(opaque(data), params, settings, str(ws.state_db))
    summary.considered, summary.excluded = audience.considered, audience.counts()
    summary.eligible = len(audience.eligible)
    chosen = audience.eligible[: params.limit] if params.limit else audience.eligible
    summary.selected = len(chosen)
    audit = AuditLog(ws.audit_db)
    audit.append(
        "exclusion",
        campaign=params.campaign,
        entries=[
            (pseudonymize(secret, cid), {"reason": str(why)})
            for cid, why in audience.excluded.items()
        ],
    )
    if not chosen:
        log.warning("no eligible customers: nothing to render or send")
        _publish(summary, [])
        return summary

    record, blocked = choose_model(opaque(data), settings, ws)
    if record is None:
        log.warning("%s", blocked)
        summary.blocked = blocked
        _publish(summary, [])
        return summary
    reporter().start("recommend", len(chosen))
    picks = pick_products(opaque(data), record, [c.id for c in chosen], params, ws)
    summary.sources, summary.reasons = reason_counts(picks)
    summary.model_version = next(iter(picks.values())).model_version if picks else ""
    products = {p.id: p for p in data.products}
    template = load_template(settings.templates_dir, params.template, settings.assets_dir)
    # First names only where the settings allow them (and may reach the renderer), and only
    # for customers who have not opted out of personalization.
    names_allowed = settings.personalize and (
        settings.renderer != "vendor" or settings.vendor_first_names
    )
    jobs = [
        Job(
            customer=c,
            pick=picks[c.id],
            storyboard=build_storyboard(
                template,
                picks[c.id],
                products,
                c,
                images_root=data.catalog_dir,
                personalize=names_allowed and c.personalization,
                headline_variant=_variant(pseudonymize(secret, c.id), template),
            ),
            pseudonym=pseudonymize(secret, c.id),
            variant=f"headline-{_variant(pseudonymize(secret, c.id), template)}",
        )
        for c in chosen
        if c.id in picks
    ]

    audit.record(
        "model",
        campaign=params.campaign,
        version=record.version,
        data_hash=record.data_hash,
        approved_by=record.approved_by,
        metrics=record.metrics,
    )
    audit.record(
        "holdout",
        campaign=params.campaign,
        share=params.holdout_share,
        held_out=len(audience.held_out()),
    )
    audit.record("template", campaign=params.campaign, name=template.name, version=template.version)
    audit.append(
        "pick",
        campaign=params.campaign,
        entries=[
            (
                job.pseudonym,
                {
                    "products": list(job.pick.product_ids),
                    "scores": [round(x, 6) for x in job.pick.scores],
                    "reasons": list(job.pick.reasons),
                    "model_version": job.pick.model_version,
                },
            )
            for job in jobs
        ],
    )
    renderer = make_renderer(settings, ws, params.campaign)
    reporter().start("render", len(jobs))
    futures = render_video.map(
        jobs,
        renderer=unmapped(renderer),
        out_dir=unmapped(str(ws.renders)),
        metrics_db=unmapped(str(ws.metrics_db)),
    )
    renders = _wait_with_progress(futures, params.campaign)
    summary.rendered = sum(not r.reused for r in renders)
    summary.reused_renders = sum(r.reused for r in renders)
    if not isinstance(renderer, LocalRenderer):
        vendor = getattr(renderer, "primary", renderer)
        costs = vendor.costs(params.campaign)
        summary.rendered_locally = _rendered_locally(renderer, jobs, params.campaign)
        for pseudonym, reason in summary.rendered_locally.items():
            log.warning("customer %s: rendered locally, not at the vendor: %s", pseudonym, reason)
        summary.vendor = {
            "renders": costs.renders,
            "seconds": round(costs.seconds, 1),
            "cost": str(costs.amount),
            "rendered locally instead": costs.local_fallbacks,
        }
        vendor.close()

    passed: list[tuple[Job, Render]] = []
    failed: Counter[str] = Counter()
    # Brand and store names are not personal data even when they look like names.
    allow = AllowList([p.brand for p in data.products] + [template.spec.brand.name])
    claims_policy = (
        load_claims_policy(settings.claims_policy)
        if settings.claims_policy
        else (load_claims_policy())
    )
    rows = []
    # Same render key, same video: decode it once. Checks run on the render workers'
    # threads (each decode is an ffmpeg process), not one after another.
    video_checks: dict[str, Future[list[str]]] = {}
    with ThreadPoolExecutor(max_workers=settings.render_workers) as pool:
        for job, render in zip(jobs, renders, strict=True):
            if render.key not in video_checks:
                video_checks[render.key] = pool.submit(video_problems, job, render)
        checked = [
            sorted(
                set(
                    video_checks[r.key].result()
                    + copy_problems(
                        job.storyboard.texts(),
                        customer=job.customer,
                        products=[products[pid] for pid in job.pick.product_ids],
                        allow=allow,
                        policy=claims_policy,
                    )
                )
            )
            for job, r in zip(jobs, renders, strict=True)
        ]
    for (job, render), problems in zip(zip(jobs, renders, strict=True), checked, strict=True):
        for problem in problems:
            failed[problem] += 1
        if problems:
            log.warning("customer %s: creative not sent: %s", job.pseudonym, "; ".join(problems))
        else:
            passed.append((job, render))
        rows.append(
            {
                "customer": job.pseudonym,
                "products": ", ".join(job.pick.product_ids),
                "scores": ", ".join(f"{s:.3f}" for s in job.pick.scores),
                "reasons": ", ".join(job.pick.reasons),
                "video": render.key[:12],
                "check": "ok" if not problems else "; ".join(problems),
            }
        )
    summary.failed_checks = dict(failed)
    audit.append(
        "render",
        campaign=params.campaign,
        entries=[
            (
                job.pseudonym,
                {"key": r.key, "reused": r.reused}
                | (
                    {"rendered_locally": summary.rendered_locally[job.pseudonym]}
                    if job.pseudonym in summary.rendered_locally
                    else {}
                ),
            )
            for job, r in zip(jobs, renders, strict=True)
        ],
    )
    audit.append(
        "verdict",
        campaign=params.campaign,
        entries=[
            (row["customer"], {"ok": row["check"] == "ok", "check": row["check"]}) for row in rows
        ],
    )

    stages = {
        "considered": summary.considered,
        "eligible": summary.eligible,
        "selected": summary.selected,
        "rendered": len(renders),
        "passed checks": len(passed),
    }
    gallery = write_gallery(
        ws.root / "galleries" / f"{params.campaign}.html",
        campaign=params.campaign,
        items=[
            GalleryItem(
                job.pseudonym,
                job.pick.product_ids,
                r.video,
                r.poster,
                getattr(r, "gif", None),
                check,
            )
            for (job, r), check in list(
                zip(zip(jobs, renders, strict=True), [row["check"] for row in rows], strict=True)
            )[:12]
        ],
        stages=stages,
        excluded=summary.excluded,
        asks_approval=not (params.auto_approve or params.dry_run),
    )
    create_link_artifact(
        gallery.resolve().as_uri(),
        link_text="Preview gallery",
        key=_key(params.campaign, "gallery"),
        description="Sample creatives by pseudonymous id",
    )
    summary.gallery = str(gallery)
    if not params.dry_run and passed:
        decision = _approval(params, gallery, stages)
        summary.approval = "approved" if decision.approve else "rejected"
        summary.approval_note = decision.note
        audit.record(
            "approval",
            campaign=params.campaign,
            approved=decision.approve,
            note=decision.note,
            by="auto" if params.auto_approve else "operator",
        )
    if not params.dry_run and summary.approval != "rejected":
        reporter().start("email", len(passed))
        summary.queued, summary.already_queued = queue_emails(
            opaque(passed),
            params,
            settings,
            opaque(products),
            secret,
            str(ws.state_db),
            opaque(data.events),
        )
        reporter().start("send", summary.queued)
        report, summary.mail_via = send_due(settings, ws)
        summary.sent = report.sent
        exposures = []
        with Outbox(ws.state_db) as outbox:
            for job, _ in passed:
                item = outbox.get(params.campaign, job.customer.id)
                if item is not None and item.state == "sent" and item.sent_at is not None:
                    exposures.append((job.customer.id, item.sent_at, item.variant))
        with TrackingEvents(ws.state_db) as tracking:
            tracking.record_exposures(params.campaign, exposures)
        with Outbox(ws.state_db) as outbox:
            audit.append(
                "send",
                campaign=params.campaign,
                entries=[
                    (job.pseudonym, {"state": str(item.state), "provider_id": item.provider_id})
                    for job, _ in passed
                    if (item := outbox.get(params.campaign, job.customer.id)) is not None
                ],
            )
        summary.not_sent = {
            k: v
            for k, v in {
                "failed": report.failed,
                "suppressed at send time": report.suppressed,
                "outcome unknown": report.unknown,
                "deferred": report.deferred,
            }.items()
            if v
        }
    audit.close()
    _publish(summary, rows)
    log.info("campaign %s: %d sent, %d queued", params.campaign, summary.sent, summary.queued)
    return summary


def _wait_with_progress(futures, campaign: str) -> list[Render]:  # type: ignore[no-untyped-def]
    """Results in input order, with a Prefect progress artifact updated as renders finish."""
    total = len(futures)
    artifact_id = create_progress_artifact(
        0.0, key=_key(campaign, "render-progress"), description="Videos rendered"
    )
    last = 0.0
    for done, _ in enumerate(as_completed(futures), start=1):
        share = 100.0 * done / total
        if share - last >= 5 or done == total:  # a few updates, not one API call per video
            update_progress_artifact(artifact_id, share)
            last = share
    return [f.result() for f in futures]


def _approval(params: CampaignParams, gallery: Path, stages: dict[str, int]) -> Approval:
    """Auto-approve, or pause the run until someone approves or rejects it."""
    if params.auto_approve:
        get_run_logger().info("campaign %s auto-approved", params.campaign)
        return Approval(approve=True, note="auto-approved")
    context = FlowRunContext.get()
    flow_run_id = context.flow_run.id if context and context.flow_run else None
    reporter().approval_requested(str(flow_run_id), str(gallery))
    form = Approval.with_initial_data(
        description=approval_description(params.campaign, str(gallery), stages), approve=False
    )
    decision = pause_flow_run(
        wait_for_input=form, timeout=params.approval_timeout_s, poll_interval=2, key="approval"
    )
    return decision


def _variant(pseudonym: str, template: object) -> int:
    """Deterministic headline variant per customer (hash of the pseudonym)."""
    count = len(template.spec.headlines)  # type: ignore[attr-defined]
    return int(pseudonym[-4:], 16) % max(count, 1)
