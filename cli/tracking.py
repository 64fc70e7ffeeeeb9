"""`reelcast track serve` (the tracking web app) and `reelcast report CAMPAIGN`."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from email.utils import parseaddr
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from cli.common import EncodingOpt, WorkspaceOpt, command_group, context, fail
from storage import exists

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from runtime.settings import Settings
    from runtime.workspace import Workspace

console = Console()
err = Console(stderr=True)
log = logging.getLogger("reelcast.tracking")
_LOG_FORMAT = "%(asctime)s %(name)s %(levelname)s %(message)s"

#: uvicorn's bounds for the public tracking app: connections and tasks at once (503
#: beyond), idle keep-alive seconds, the size of a request's head (h11), the listen
#: backlog and the shutdown grace. Bodies are bounded by the app (64 KiB, 10 s).
LIMIT_CONCURRENCY = 200
TIMEOUT_KEEP_ALIVE = 5
MAX_REQUEST_HEAD = 16 * 1024
BACKLOG = 256
GRACEFUL_SHUTDOWN = 10

track_app = command_group(
    help="The tracking web app: landing pages, clicks, opens, one-click unsubscribe.",
    no_args_is_help=True,
)


@track_app.callback()
def _track() -> None:
    """The tracking web app: landing pages, clicks, opens, one-click unsubscribe."""


#: How `track serve --workers N` hands its options to the worker processes (uvicorn
#: starts each one afresh and calls `worker_app` there).
_WORKER_OPTIONS = "_REELCAST_TRACK_SERVE"


@dataclass(frozen=True)
class _ServeOptions:
    """What the tracking app is made of, beside the settings: JSON-able for the workers."""

    workspace: str
    catalog: str | None
    allow_host: list[str]
    per_token: int
    per_address: int
    dedup_minutes: float
    too_soon: float


@track_app.command("serve")
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8010,
    workspace: WorkspaceOpt = None,
    catalog: Annotated[
        Path | None,
        typer.Option(
            help="Catalog CSV: product pages for the landing page and the hosts clicks may "
            "redirect to (default: the demo retailer's catalog in the workspace).",
            show_default=False,
        ),
    ] = None,
    allow_host: Annotated[
        list[str] | None,
        typer.Option(help="Another host clicks may redirect to (repeatable)."),
    ] = None,
    limit_concurrency: Annotated[
        int,
        typer.Option(min=1, help="Connections and tasks at once; beyond, uvicorn answers 503."),
    ] = LIMIT_CONCURRENCY,
    per_token: Annotated[
        int, typer.Option(min=1, help="Requests per minute one email's links may make (429).")
    ] = 30,
    per_address: Annotated[
        int, typer.Option(min=1, help="Requests per minute one client address may make (429).")
    ] = 600,
    dedup_minutes: Annotated[
        float,
        typer.Option(min=0.01, help="One open per email, one click per product, per window."),
    ] = 60.0,
    too_soon: Annotated[
        float,
        typer.Option(min=0.0, help="Hits this many seconds after delivery are machine traffic."),
    ] = 10.0,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            help="Processes serving the app (uvicorn workers). Opens, clicks and "
            "unsubscribes are still stored once; the rate limits apply per process.",
        ),
    ] = 1,
) -> None:
    """Serve the tracking app that email links point to (REELCAST_PUBLIC_BASE_URL).

    Tracking events go to tracking.sqlite in the workspace (moved there from state.sqlite
    once, for workspaces from before). Repeats, scanners and prefetchers are kept out of
    training and the report; see docs/operations.md for the limits.
    """
    import uvicorn

    from runtime.reports import demo_file

    logging.basicConfig(level=logging.INFO, format=_LOG_FORMAT)
    settings, ws = context(workspace)
    ws.create()
    if not settings.public_base_url.startswith("https://"):
        log.warning(
            "REELCAST_PUBLIC_BASE_URL is %s: fine for the demo, but production needs an "
            "https URL (RFC 8058 one-click unsubscribe and mailbox providers require it)",
            settings.public_base_url,
        )
    catalog = catalog or demo_file(ws, "catalog.csv")
    options = _ServeOptions(
        workspace=str(ws.root),
        catalog=None if catalog is None else str(catalog),
        allow_host=list(allow_host or []),
        per_token=per_token,
        per_address=per_address,
        dedup_minutes=dedup_minutes,
        too_soon=too_soon,
    )
    # Made here also with several workers: a bad catalog is one error before any worker
    # starts, and the stores are upgraded (and old events moved) once, not by each worker.
    app, close = _tracking_app(settings, ws, options, warn=True)
    bounds: dict[str, Any] = {
        "host": host,
        "port": port,
        # No access log: paths carry tokens. The app logs route shapes and statuses itself.
        "access_log": False,
        "server_header": False,
        "limit_concurrency": limit_concurrency,
        "timeout_keep_alive": TIMEOUT_KEEP_ALIVE,
        "h11_max_incomplete_event_size": MAX_REQUEST_HEAD,
        "backlog": BACKLOG,
        "timeout_graceful_shutdown": GRACEFUL_SHUTDOWN,
    }
    log.info(
        "tracking app for %s on http://%s:%d (%d %s)",
        settings.public_base_url,
        host,
        port,
        workers,
        "process" if workers == 1 else "processes",
    )
    if workers > 1:
        close()
        os.environ[_WORKER_OPTIONS] = json.dumps(asdict(options))
        uvicorn.run(f"{__name__}:worker_app", factory=True, workers=workers, **bounds)
        return
    try:
        uvicorn.run(app, **bounds)
    finally:
        close()


def worker_app() -> Starlette:
    """The tracking app in one worker process of `track serve --workers N` (uvicorn's
    factory): made from the options the serving command left in the environment. Its
    stores stay open for the life of the process."""
    logging.basicConfig(level=logging.INFO, format=_LOG_FORMAT)
    raw = os.environ.get(_WORKER_OPTIONS)
    if raw is None:
        raise RuntimeError(f"{_WORKER_OPTIONS} is not set: start workers with `track serve`")
    options = _ServeOptions(**json.loads(raw))
    settings, ws = context(Path(options.workspace))
    app, _close = _tracking_app(settings, ws, options, warn=False)
    return app


def _tracking_app(
    settings: Settings, ws: Workspace, options: _ServeOptions, *, warn: bool
) -> tuple[Starlette, Callable[[], None]]:
    """The app over the workspace's stores, and what closes them."""
    from datetime import datetime, timedelta

    from sqlalchemy.exc import OperationalError

    from compliance.suppression import SuppressionList
    from delivery.events_store import TrackingEvents
    from delivery.outbox import Outbox
    from delivery.tracking import create_app, hosts_of
    from delivery.tracking_landing import AuditLanding
    from delivery.traffic import RateLimit, TrafficPolicy
    from retail.errors import RetailDataError
    from retail.loaders import load_rows
    from retail.types import Product
    from runtime.renderers import open_render_store

    products: list[Product] = []
    if options.catalog is not None:
        try:
            products = load_rows(Path(options.catalog), Product, "skip").items
        except RetailDataError as exc:
            raise fail(str(exc)) from None
    allowed = hosts_of(p.url for p in products) | {h.strip().lower() for h in options.allow_host}
    if not allowed and warn:
        log.warning("no catalog and no --allow-host: every click redirect will be refused")
    secret = settings.secret()
    brand = parseaddr(settings.sender)[0] or parseaddr(settings.sender)[1]
    landing = AuditLanding(ws.audit_db, secret, {p.id: p for p in products})
    events = TrackingEvents.beside(ws.state_db)
    outbox = Outbox(ws.state_db)
    suppression = SuppressionList(ws.state_db)
    busy = OperationalError  # a busy or unreachable outbox, on either engine

    def delivered_at(campaign_id: str, customer_id: str) -> datetime | None:
        # Before the flow records the exposure: when the send started (or finished).
        # A read of the WAL state: a dispatch's write transaction does not block it.
        try:
            item = outbox.get(campaign_id, customer_id)
        except busy:
            return None
        return None if item is None else item.sent_at or item.send_started_at

    store = open_render_store(settings, ws)
    app = create_app(
        secret=settings.signing_keys(),
        events=events,
        suppression=suppression,
        locate_render=store.locate,
        galleries=store.get_gallery,
        gallery_secret=secret,
        allowed_redirect_hosts=allowed,
        landing=landing,
        product_ids_by_url={p.url: p.id for p in products},
        brand=brand,
        postal_address=settings.postal_address,
        traffic=TrafficPolicy(
            dedup_window=timedelta(minutes=options.dedup_minutes),
            too_soon=timedelta(seconds=options.too_soon),
        ),
        per_token=RateLimit(per_minute=options.per_token, burst=options.per_token),
        per_address=RateLimit(
            per_minute=options.per_address, burst=max(1, options.per_address // 2)
        ),
        delivered_at=delivered_at,
    )

    def close() -> None:
        landing.close()
        outbox.close()
        events.close()
        suppression.close()

    return app, close


def report(
    campaign: Annotated[str, typer.Argument(help="Campaign id, as given to `campaign run`.")],
    workspace: WorkspaceOpt = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    attribution_days: Annotated[
        float, typer.Option(min=0.01, help="Purchases this many days after the send count.")
    ] = 7.0,
    png: Annotated[
        Path | None, typer.Option(help="Also draw the chart into this PNG file.")
    ] = None,
    customers: Annotated[
        Path | None,
        typer.Option(
            help="The customers CSV the campaign ran on (for the holdout). "
            "Default for campaign `demo`: the demo retailer's.",
            show_default=False,
        ),
    ] = None,
    events: Annotated[
        Path | None,
        typer.Option(
            help="Events (CSV, .gz or .parquet) with the purchases since the campaign "
            "(for conversion). "
            "Default for campaign `demo`: the demo retailer's.",
            show_default=False,
        ),
    ] = None,
    holdout_share: Annotated[
        float | None,
        typer.Option(
            min=0.0,
            max=0.49,
            help="The campaign's holdout share (default: as recorded in the audit log).",
            show_default=False,
        ),
    ] = None,
    encoding: EncodingOpt = "utf-8",
    counterfactual_model: Annotated[
        str | None,
        typer.Option(
            "--counterfactual",
            metavar="MODEL_VERSION",
            help="Also estimate the click (and conversion) rate this registered model "
            "would have reached in the exploration slot, off-policy from the logged "
            "propensities (IPS and self-normalized IPS, 95 % intervals, effective "
            "sample size; no estimate when the overlap is too small).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Sends, opens, clicks and CTR per variant; conversion lift over the holdout."""
    from delivery.report_chart import draw_chart
    from retail.errors import RetailDataError
    from runtime.reports import campaign_report

    settings, ws = context(workspace)
    if not exists(ws.state_db):
        raise fail(f"no campaign state in {ws.root} (run a campaign first)")
    try:
        result = campaign_report(
            settings,
            ws,
            campaign,
            customers=customers,
            events=events,
            holdout_share=holdout_share,
            attribution_days=attribution_days,
            encoding=encoding,
        )
    except RetailDataError as exc:
        raise fail(str(exc)) from None
    counterfactual = None
    if counterfactual_model is not None:
        from recs.errors import RecsError
        from runtime.reports import counterfactual_report

        try:
            counterfactual = counterfactual_report(
                settings,
                ws,
                campaign,
                counterfactual_model,
                events=events,
                attribution_days=attribution_days,
                encoding=encoding,
            )
        except (RecsError, RetailDataError) as exc:
            raise fail(str(exc)) from None
    if png is not None:
        draw_chart(result, png)
    if json_out:
        data = result.to_dict()
        if counterfactual is not None:
            data["counterfactual"] = counterfactual.to_dict()
        console.print_json(json.dumps(data, default=str))
    else:
        # The markdown as is: it is what the Prefect artifact shows, and a wide table
        # would be cut off by a terminal renderer.
        console.print(result.to_markdown(), markup=False, highlight=False, soft_wrap=True)
        if counterfactual is not None:
            console.print(
                counterfactual.to_markdown(), markup=False, highlight=False, soft_wrap=True
            )
        if png is not None:
            console.print(f"chart: {png}")


gallery_app = command_group(
    help="A campaign's preview gallery, served by the tracking app.",
    no_args_is_help=True,
)


@gallery_app.callback()
def _gallery() -> None:
    """A campaign's preview gallery, served by the tracking app."""


@gallery_app.command("link")
def gallery_link_command(
    campaign: Annotated[str, typer.Argument(help="Campaign id, as given to `campaign run`.")],
    hours: Annotated[
        float | None,
        typer.Option(
            min=0.1,
            max=24 * 366,
            help="How long the link works (default: REELCAST_GALLERY_LINK_HOURS).",
            show_default=False,
        ),
    ] = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Print a new signed link to a campaign's preview gallery (for whoever approves it,
    when the one in the Prefect UI has expired). `reelcast track serve` serves it."""
    from datetime import UTC, datetime, timedelta

    from creative.store import StoreError
    from delivery.gallery import gallery_link
    from runtime.renderers import open_render_store

    settings, ws = context(workspace)
    try:
        found = open_render_store(settings, ws).get_gallery(campaign)
    except ValueError:
        raise fail(f"{campaign!r} is not a campaign id (letters, digits, _ . -)") from None
    except StoreError as exc:
        raise fail(str(exc)) from None
    if found is None:
        raise fail(f"campaign {campaign} has no preview gallery yet: run the campaign first")
    expires = datetime.now(UTC) + timedelta(hours=hours or settings.gallery_link_hours)
    console.print(
        gallery_link(settings.public_base_url, settings.secret(), campaign, expires),
        soft_wrap=True,
        highlight=False,
    )
