"""The campaign flow: retail files in, emails out. Wiring only: each task calls package
functions (`campaign`, `recs`, `creative`, `delivery`) and logs; the packages decide."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar, cast
from uuid import UUID

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
from prefect.futures import PrefectFuture, as_completed
from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner
from prefect.utilities.annotations import opaque
from pydantic import ValidationError

from campaigns.audience import choose_audience, selected
from campaigns.audit import CampaignAudit
from campaigns.checks import Checked, check_creatives, creative_allowlist, split_renders
from campaigns.emails import due_times, queue_emails, record_exposures
from campaigns.params import CampaignParams
from campaigns.plan import (
    Job,
    Recipient,
    RenderBatch,
    chunks,
    plan_jobs,
    render_batches,
    share_renders,
)
from campaigns.summary import (
    CampaignSummary,
    artifact_key,
    fallback_reasons,
    picks_rows,
    preview_gallery,
    progress_note,
    stage_counts,
    summary_markdown,
    vendor_facts,
)
from compliance.audience import Audience
from compliance.audit import AuditLog
from compliance.pii import AllowList
from compliance.pseudonym import pseudonymize
from creative.errors import CreativeError
from creative.render import Render, Renderer
from creative.store import RenderStore, StoreError, local_copy
from creative.template import Template, load_template, video_label
from delivery.dispatch import DispatchReport
from delivery.events_store import feedback_events
from delivery.gallery import approval_markdown, gallery_link, poster_url, write_gallery
from delivery.outbox import Outbox
from flows.approval import Approval
from flows.operations import honour_unsubscribe_mail
from recs.registry import Gate, ModelRecord
from recs.training import approved_or_trained, as_of, serve_current
from recs.training import load as load_model
from retail.loaders import ImageFetch, RetailData, load_retail
from retail.types import Customer, Event, Pick, Product
from runtime.metrics import Metrics
from runtime.models import open_registry
from runtime.progress import reporter
from runtime.renderers import first_names_allowed, make_renderer, open_render_store
from runtime.runners import task_runner
from runtime.sending import send_due
from runtime.settings import Settings
from runtime.workspace import Workspace

# Customer data flows through these tasks: never cache or persist their results.
step = task(cache_policy=NO_CACHE, persist_result=False)

T = TypeVar("T")

#: rows of the picks table artifact: a sample for the UI, not 100,000 rows (the audit log
#: holds every customer's picks)
PICKS_SHOWN = 500
#: posters shown inline in the preview artifact and the approval form
POSTERS_INLINE = 4


def whole(value: T) -> T:
    """`value` as a task argument Prefect passes on as is, without walking into it (the
    retail data holds every event: walking it costs seconds per task call). The task
    receives `value` itself, so it is typed as `value`."""
    return cast(T, opaque(value))


@step
def load_files(params: CampaignParams, settings: Settings, ws: Workspace) -> RetailData:
    """Load and validate the three retail files (fetching the pictures given by URL into
    the workspace's image cache), plus the tracked feedback of earlier campaigns (opens,
    clicks, unsubscribes) for the customers in them."""
    data = load_retail(
        Path(params.catalog),
        Path(params.customers),
        Path(params.events),
        params.on_bad_rows,
        check_images=True,  # a missing image is a bad catalog row, not a failed render
        encoding=params.encoding,
        catalog_source=params.catalog_source(),
        customers_format=None if params.customers_format == "auto" else params.customers_format,
        fetch=ImageFetch(ws.image_cache, settings.image_fetch_policy()),
    )
    data.events.extend(feedback_events(ws.state_db, (c.id for c in data.customers)))
    log = get_run_logger()
    if data.fetch_report is not None:
        log.info("product pictures by URL: %s", data.fetch_report.summary())
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
def audience_for(
    data: RetailData, params: CampaignParams, settings: Settings, ws: Workspace
) -> Audience:
    """Suppression, consent by country, the frequency cap and the holdout."""
    audience = choose_audience(
        data.customers,
        data.events,
        campaign=params.campaign,
        holdout_share=params.holdout_share,
        rules=settings.audience_rules(),
        state_db=ws.state_db,
        now=datetime.now(UTC),
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
    """(the approved model, "") or (None, what to do); the first time, one is trained."""
    registry = open_registry(settings, ws)
    if registry.approved() is None:
        reporter().start("train", 1)
    gate = Gate(settings.recs_gate_metric, settings.recs_gate_max_drop)
    choice = approved_or_trained(
        registry, data.products, data.events, [c.id for c in data.customers], gate
    )
    log = get_run_logger()
    if choice.outdated:
        log.info("approved model %s is from an older reelcast: trained a new one", choice.outdated)
    if choice.trained is not None:
        reporter().advance("train")
        metrics = {k: round(v, 4) for k, v in choice.trained.metrics.items()}
        log.info(
            "trained model %s: %s; %s",
            choice.trained.version,
            metrics,
            choice.trained.approval_note,
        )
    return choice.record, choice.refusal


@step
def pick_products(
    data: RetailData,
    record: ModelRecord,
    customers: Sequence[Customer],
    params: CampaignParams,
    settings: Settings,
    ws: Workspace,
) -> dict[str, Pick]:
    """Picks for a chunk of selected customers in one batch, from the approved model
    (fetched into this machine's cache when it was trained on another)."""
    started = time.perf_counter()
    picks = serve_current(
        load_model(open_registry(settings, ws), record),
        data.products,
        data.events,
        [c.id for c in customers],
        n=params.products_per_pick,
        now=as_of(data.events),
        rules=params.rules(),
        groups={c.id: c.locale for c in customers},
    )
    with Metrics(ws.metrics_db) as metrics:
        metrics.observe("recommend", time.perf_counter() - started)
    reporter().advance("recommend", len(customers))
    return picks


@task(
    cache_policy=NO_CACHE,
    persist_result=False,
    retries=1,
    retry_delay_seconds=2,
    task_run_name="render-{batch.name}",
)
def render_videos(
    batch: RenderBatch, renderer: Renderer, out_dir: str, metrics_db: str
) -> list[Render | CreativeError]:
    """Render a batch of distinct videos (or reuse identical ones rendered before); a
    retry redoes only what is not on disk yet. A video that cannot be made (a full disk,
    a broken image) is that video's CreativeError, not the whole batch's failure.

    The vendor sees each video's pseudonym only; the customer is for its payload check.
    """
    results: list[Render | CreativeError] = []
    with Metrics(metrics_db) as metrics:
        for job in batch.jobs:
            started = time.perf_counter()
            try:
                result = renderer.render(
                    job.storyboard, Path(out_dir), subject=job.pseudonym, customer=job.customer
                )
            except CreativeError as exc:
                results.append(exc)
                reporter().advance("render")
                continue
            # A vendor render's latency (submit, queue, poll, download) is the vendor's
            # stage; a fallback render made here is a local render.
            if not result.reused:
                stage = "vendor" if result.origin == "vendor" else "render"
                metrics.observe(stage, time.perf_counter() - started)
            metrics.incr("renders_reused_total" if result.reused else "renders_total")
            reporter().advance("render")
            results.append(result)
    return results


@step
def check_all(
    jobs: list[Job],
    renders: list[Render],
    products: dict[str, Product],
    allow: AllowList,
    settings: Settings,
) -> list[Checked]:
    """Video QC and copy checks of every creative; a failed one is not sent."""
    checked = check_creatives(
        jobs,
        renders,
        products,
        allow=allow,
        policy=settings.claims(),
        workers=settings.render_workers,
    )
    for c in checked:
        if not c.ok:
            get_run_logger().warning(
                "customer %s: creative not sent: %s", c.job.pseudonym, c.verdict
            )
    return checked


@step
def queue_all(
    passed: Sequence[tuple[Recipient, Render]],
    params: CampaignParams,
    settings: Settings,
    products: dict[str, Product],
    events: Sequence[Event],
    state_db: str,
    images_root: Path,
    label: str,
) -> tuple[int, int]:
    """Compose and queue each email (product pictures from the catalog's folder
    `images_root`): due now with `send_now`, else at the customer's best local hour.
    Returns (queued, already there)."""
    now = datetime.now(UTC)
    with Outbox(state_db) as outbox:
        return queue_emails(
            passed,
            outbox=outbox,
            campaign=params.campaign,
            subjects=[s for s in (params.subject, params.subject_b) if s],
            products=products,
            letterhead=settings.letterhead(),
            due=due_times(
                [job for job, _ in passed],
                events,
                now,
                send_now=params.send_now,
                send_hour=params.send_hour,
            ),
            now=now,
            on_queued=lambda: reporter().advance("email"),
            images_root=images_root,
            label=label,
        )


@step
def send_queued(settings: Settings, ws: Workspace) -> tuple[DispatchReport, str]:
    """Send every due message: through the email API, an SMTP relay, or the local sink."""
    return send_due(settings, ws, on_progress=lambda r: reporter().advance("send"))


@step
def record_sends(jobs: list[Recipient], campaign: str, state_db: str) -> None:
    """Who was shown what, for the report and the next training."""
    record_exposures(jobs, campaign, state_db)


def _default_runner() -> TaskRunner[Any]:
    # A worker imports this module to run a deployment: honour REELCAST_DASK_ADDRESS and
    # REELCAST_RENDER_WORKERS there too. Bad settings are reported when the flow runs.
    try:
        return task_runner(Settings())
    except ValidationError:
        return ThreadPoolTaskRunner(max_workers=2)


@flow(name="campaign", task_runner=_default_runner(), log_prints=False)
def campaign_flow(params: CampaignParams) -> CampaignSummary:
    """Run one campaign: load, choose the audience, pick, render, check, queue, send."""
    params = params.dated(datetime.now(UTC))
    settings = Settings.for_workspace(params.workspace)
    ws = settings.open_workspace().create()
    secret = settings.secret()
    summary = CampaignSummary(
        params.campaign,
        dry_run=params.dry_run,
        workspace=str(ws.root),
        maildir=str(ws.maildir),
        renders=str(ws.renders),
    )
    if settings.unsubscribe_maildir is not None:  # who asked by mail is out before the audience
        honour_unsubscribe_mail(settings, ws)
    data = load_files(params, settings, ws)
    audience = audience_for(whole(data), params, settings, ws)
    chosen = selected(audience, params.selection(), data.customers)
    summary.count_audience(data, audience, chosen)
    audit = CampaignAudit(AuditLog(ws.audit_db, key=settings.audit_log_key()), params.campaign)
    audit.exclusions(audience, lambda cid: pseudonymize(secret, cid))
    if not chosen:
        return _stop(summary, audit, "no eligible customers: nothing to render or send")
    record, refusal = choose_model(whole(data), settings, ws)
    if record is None:
        return _stop(summary, audit, refusal, blocked=True)
    template = load_template(settings.templates_dir, params.template, settings.assets_dir)
    store = open_render_store(settings, ws)
    products = {p.id: p for p in data.products}
    label = video_label(template, settings.ai_label)
    audit.plan(
        record,
        holdout_share=params.holdout_share,
        held_out=len(audience.held_out()),
        template=template,
        label=label,
        selection=params.selection(),
        rules=params.rules(),
    )
    checked = make_creatives(
        data, chosen, record, products, template, params, settings, ws, store, summary, audit
    )
    summary.count_checks(checked)
    reused = summary.reused_renders
    reporter().finish("render", f"{reused} reused" if reused else "")
    audit.creatives(checked, summary.rendered_locally)
    stages = stage_counts(summary, checked)
    preview = _gallery(ws, store, params, settings, checked, stages, summary)
    passed = [(c.job, c.render) for c in checked if c.ok]
    if not params.dry_run and passed:
        _approval(params, preview, summary, audit)
    if not params.dry_run and summary.approval != "rejected":
        reporter().start("email", len(passed))
        reporter().start("send", len(passed))
        for part in chunks(passed, settings.campaign_chunk):
            queued, already = queue_all(
                whole(part),
                params,
                settings,
                whole(products),
                whole(data.events),
                str(ws.state_db),
                data.catalog_dir,
                label,
            )
            summary.queued += queued
            summary.already_queued += already
            report, summary.mail_via = send_queued(settings, ws)
            summary.count_sends(report)
        earlier = summary.already_queued
        reporter().finish("email", f"{earlier} already queued" if earlier else "")
        reporter().finish("send", progress_note(summary))
        recipients = [job for job, _ in passed]
        record_sends(whole(recipients), params.campaign, str(ws.state_db))
        audit.sends(recipients, ws.state_db)
    audit.log.close()
    publish(summary, checked)
    get_run_logger().info(
        "campaign %s: %d sent, %d queued", params.campaign, summary.sent, summary.queued
    )
    return summary


def _stop(
    summary: CampaignSummary, audit: CampaignAudit, why: str, *, blocked: bool = False
) -> CampaignSummary:
    """End the run early: say why (in the summary too when something `blocked` it), and
    publish what is known."""
    get_run_logger().warning("%s", why)
    summary.blocked = why if blocked else ""
    audit.log.close()
    publish(summary, [])
    return summary


def make_creatives(
    data: RetailData,
    chosen: Sequence[Customer],
    record: ModelRecord,
    products: dict[str, Product],
    template: Template,
    params: CampaignParams,
    settings: Settings,
    ws: Workspace,
    store: RenderStore,
    summary: CampaignSummary,
    audit: CampaignAudit,
) -> list[Checked]:
    """Pick, plan, render and check, a chunk of customers at a time (the
    `campaign_chunk` setting): a chunk's storyboards are let go once its creatives are
    checked, so what the run holds grows with the chunk, not with the list. Returns every
    customer's checked creative; the picks, render failures and fallbacks go into the
    summary and the audit log as each chunk ends."""
    params, typos = params.spelt_as_in(data.products)
    for typo in typos:
        get_run_logger().warning("%s", typo)
    secret = settings.secret()
    allow = creative_allowlist(data.products, template)
    renderer = make_renderer(settings, ws, summary.campaign, store)
    progress = RenderProgress(summary.campaign, len(chosen))
    reporter().start("recommend", len(chosen))
    reporter().start("render", len(chosen))
    checked: list[Checked] = []
    try:
        for chunk in chunks(chosen, settings.campaign_chunk):
            picks = pick_products(whole(data), record, whole(chunk), params, settings, ws)
            summary.count_picks(picks)
            jobs = plan_jobs(
                chunk,
                picks,
                products,
                template,
                pseudonym=lambda cid: pseudonymize(secret, cid),
                images_root=data.image_files,
                first_names=first_names_allowed(settings),
                campaign=params.campaign,
            )
            audit.picks(jobs)
            made = render_all(jobs, renderer, settings, ws, store, summary, progress)
            jobs, renders, failed = split_renders(jobs, made)
            for pseudonym, why in failed.items():
                get_run_logger().warning("customer %s: no video, nothing sent: %s", pseudonym, why)
            summary.count_render_failures(failed)
            audit.render_failures(failed)
            checked += check_all(
                whole(jobs), whole(renders), whole(products), whole(allow), settings
            )
        costs = renderer.costs(summary.campaign)
    finally:
        renderer.close()
    summary.vendor = vendor_facts(costs) if costs is not None else {}
    return checked


def render_all(
    jobs: list[Job],
    renderer: Renderer,
    settings: Settings,
    ws: Workspace,
    store: RenderStore,
    summary: CampaignSummary,
    progress: RenderProgress,
) -> list[Render | BaseException]:
    """Every job's video (or why it could not be made), in the jobs' order: each distinct
    storyboard rendered once, in batches on the task runner (customers with the same
    storyboard share the video, which counts as reused for all but the first). A video
    a worker on another machine made is fetched from the render `store` into this
    machine's renders folder, for the checks and the emails. The vendor's fallbacks for
    these jobs go into the summary."""
    batches = render_batches(jobs, workers=settings.render_workers)
    futures = render_videos.map(
        batches,
        renderer=unmapped(renderer),
        out_dir=unmapped(str(ws.renders)),
        metrics_db=unmapped(str(ws.metrics_db)),
    )
    progress.follow(list(futures), len(jobs))
    made: dict[str, Render | BaseException] = {}
    for batch, future in zip(batches, futures, strict=True):
        outcome = future.result(raise_on_failure=False)
        results = outcome if isinstance(outcome, list) else [outcome] * len(batch.jobs)
        for job, result in zip(batch.jobs, results, strict=True):
            made[job.storyboard.key()] = _here(result, store, ws.renders)
    # The render tasks advance the bar once per video; customers sharing one count too.
    reporter().advance("render", len(jobs) - sum(len(b.jobs) for b in batches))
    fallbacks = fallback_reasons(renderer.rendered_locally(summary.campaign), jobs)
    for pseudonym, reason in fallbacks.items():
        get_run_logger().warning(
            "customer %s: rendered locally, not at the vendor: %s", pseudonym, reason
        )
    summary.rendered_locally.update(fallbacks)
    return share_renders(jobs, made)


def _here(
    result: Render | BaseException, store: RenderStore, cache: Path
) -> Render | BaseException:
    """A render with its files on this machine (see `local_copy`), or why it cannot be."""
    if not isinstance(result, Render):
        return result
    try:
        return local_copy(result, store, cache)
    except CreativeError as exc:
        return exc


class RenderProgress:
    """The render progress artifact of a campaign, over all its chunks: updated as
    batches finish (every 5 %, not one API call per video)."""

    def __init__(self, campaign: str, customers: int) -> None:
        self.customers = max(customers, 1)
        self.done = 0  # customers whose chunk has finished rendering
        self.shown = 0.0
        artifact_id = create_progress_artifact(
            0.0, key=artifact_key(campaign, "render-progress"), description="Videos rendered"
        )
        assert isinstance(artifact_id, UUID)  # called from sync code: the id, not a coroutine
        self.artifact_id = artifact_id

    def follow(
        self, futures: list[PrefectFuture[list[Render | CreativeError]]], customers: int
    ) -> None:
        """Wait for one chunk's render batches (`customers` customers), updating the bar."""
        for finished, _ in enumerate(as_completed(futures), start=1):
            share = 100.0 * (self.done + customers * finished / len(futures)) / self.customers
            if share - self.shown >= 5 or share >= 100.0:
                update_progress_artifact(self.artifact_id, share)
                self.shown = share
        self.done += customers


def _gallery(
    ws: Workspace,
    store: RenderStore,
    params: CampaignParams,
    settings: Settings,
    checked: list[Checked],
    stages: dict[str, int],
    summary: CampaignSummary,
) -> str:
    """Write the preview gallery of a sample of creatives: a document in the render store
    that the tracking app serves at a signed link (good as long as the run may wait for
    approval, at least `gallery_link_hours`), and a page file in the workspace. The run
    links the gallery and shows a few posters inline, in its artifacts. Returns the
    markdown for the approval form."""
    gallery = preview_gallery(
        summary,
        checked,
        stages,
        subjects=[s for s in (params.subject, params.subject_b) if s],
        asks_approval=not (params.auto_approve or params.dry_run),
        template=params.template,
    )
    page = write_gallery(ws.root / "galleries" / f"{params.campaign}.html", gallery, ws.renders)
    summary.gallery = str(page)
    try:
        store.put_gallery(params.campaign, gallery.to_json())
    except StoreError as exc:  # the page file still shows the run's creatives
        get_run_logger().warning("preview gallery not published: %s", exc)
        return approval_markdown(params.campaign, page.resolve().as_uri(), stages, [])
    hours = max(settings.gallery_link_hours, params.approval_timeout_s / 3600)
    link = gallery_link(
        settings.public_base_url,
        settings.secret(),
        params.campaign,
        datetime.now(UTC) + timedelta(hours=hours),
    )
    summary.gallery_url = link
    create_link_artifact(
        link,
        link_text="Preview gallery",
        key=artifact_key(params.campaign, "gallery"),
        description=f"Sample creatives by pseudonymous id (link valid {hours:g} h)",
    )
    posters = [
        (c.job.pseudonym, poster_url(settings.public_base_url, c.render.key))
        for c in checked[:POSTERS_INLINE]
    ]
    markdown = approval_markdown(params.campaign, link, stages, posters)
    create_markdown_artifact(
        markdown,
        key=artifact_key(params.campaign, "preview"),
        description="What is about to go out: a few posters and the gallery link",
    )
    return markdown


def publish(summary: CampaignSummary, checked: Sequence[Checked]) -> None:
    """The summary (counts only) and the picks table (pseudonyms only, the first
    `PICKS_SHOWN` customers) as artifacts."""
    rows = picks_rows(checked[:PICKS_SHOWN])
    create_markdown_artifact(
        summary_markdown(summary),
        key=artifact_key(summary.campaign, "summary"),
        description="Campaign summary (counts only)",
    )
    if rows:
        create_table_artifact(
            rows,
            key=artifact_key(summary.campaign, "picks"),
            description="Picks by pseudonymous customer id"
            + (f" (the first {len(rows)} of {len(checked)})" if len(checked) > len(rows) else ""),
        )


def _approval(
    params: CampaignParams, preview: str, summary: CampaignSummary, audit: CampaignAudit
) -> None:
    """Auto-approve, or pause the run until someone approves or rejects it (the form
    shows `preview`, markdown); the decision goes into the summary and the audit log."""
    if params.auto_approve:
        get_run_logger().info("campaign %s auto-approved", params.campaign)
        approved, note, by = True, "auto-approved", "auto"
    else:
        context = FlowRunContext.get()
        flow_run_id = context.flow_run.id if context and context.flow_run else None
        where = summary.gallery
        if summary.gallery_url:  # the link works while `reelcast track serve` runs
            where = f"{summary.gallery_url}\n  (or open the file {summary.gallery})"
        reporter().approval_requested(str(flow_run_id), where)
        form = Approval.with_initial_data(description=preview, approve=False)
        decision = pause_flow_run(
            wait_for_input=form, timeout=params.approval_timeout_s, poll_interval=2, key="approval"
        )
        # Who decided: the person named in the form (the open-source Prefect server knows
        # no users), or by `campaign run --approver` when the terminal answered.
        approved, note, by = decision.approve, decision.note, decision.approver
    summary.approval = "approved" if approved else "rejected"
    summary.approval_note = note
    audit.approval(approved=approved, note=note, by=by)
    if not approved:  # the run ends here, cleanly: nothing is queued or sent
        get_run_logger().info(
            "campaign %s rejected by %s: nothing queued%s",
            params.campaign,
            by,
            f" ({note})" if note else "",
        )
