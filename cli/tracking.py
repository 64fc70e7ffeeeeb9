"""`reelcast track serve` (the tracking web app) and `reelcast report CAMPAIGN`."""

from __future__ import annotations

import json
import logging
from email.utils import parseaddr
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from cli.common import EncodingOpt, WorkspaceOpt, context, fail

console = Console()
err = Console(stderr=True)
log = logging.getLogger("reelcast.tracking")

track_app = typer.Typer(
    help="The tracking web app: landing pages, clicks, opens, one-click unsubscribe.",
    no_args_is_help=True,
)


@track_app.callback()
def _track() -> None:
    """The tracking web app: landing pages, clicks, opens, one-click unsubscribe."""


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
) -> None:
    """Serve the tracking app that email links point to (REELCAST_PUBLIC_BASE_URL)."""
    import uvicorn

    from compliance.suppression import SuppressionList
    from delivery.events_store import TrackingEvents
    from delivery.tracking import create_app, hosts_of
    from delivery.tracking_landing import AuditLanding
    from retail.errors import RetailDataError
    from retail.loaders import load_rows
    from retail.types import Product
    from runtime.reports import demo_file

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    settings, ws = context(workspace)
    ws.create()
    if not settings.public_base_url.startswith("https://"):
        log.warning(
            "REELCAST_PUBLIC_BASE_URL is %s: fine for the demo, but production needs an "
            "https URL (RFC 8058 one-click unsubscribe and mailbox providers require it)",
            settings.public_base_url,
        )
    catalog = catalog or demo_file(ws, "catalog.csv")
    products: list[Product] = []
    if catalog is not None:
        try:
            products = load_rows(catalog, Product, "skip").items
        except RetailDataError as exc:
            raise fail(str(exc)) from None
    allowed = hosts_of(p.url for p in products) | {h.strip().lower() for h in allow_host or []}
    if not allowed:
        log.warning("no catalog and no --allow-host: every click redirect will be refused")
    secret = settings.secret()
    brand = parseaddr(settings.sender)[0] or parseaddr(settings.sender)[1]
    landing = AuditLanding(ws.audit_db, secret, {p.id: p for p in products})
    events = TrackingEvents(ws.state_db)
    app = create_app(
        secret=secret,
        events=events,
        suppression=SuppressionList(ws.state_db),
        renders_dir=ws.renders,
        allowed_redirect_hosts=allowed,
        landing=landing,
        product_ids_by_url={p.url: p.id for p in products},
        brand=brand,
        postal_address=settings.postal_address,
    )
    log.info("tracking app for %s on http://%s:%d", settings.public_base_url, host, port)
    try:
        # No access log: paths carry tokens. The app logs route shapes and statuses itself.
        uvicorn.run(app, host=host, port=port, access_log=False, server_header=False)
    finally:
        landing.close()
        events.close()


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
            help="Events CSV with the purchases since the campaign (for conversion). "
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
) -> None:
    """Sends, opens, clicks and CTR per variant; conversion lift over the holdout."""
    from delivery.report_chart import draw_chart
    from retail.errors import RetailDataError
    from runtime.reports import campaign_report

    settings, ws = context(workspace)
    if not ws.state_db.exists():
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
    if png is not None:
        draw_chart(result, png)
    if json_out:
        console.print_json(json.dumps(result.to_dict(), default=str))
    else:
        # The markdown as is: it is what the Prefect artifact shows, and a wide table
        # would be cut off by a terminal renderer.
        console.print(result.to_markdown(), markup=False, highlight=False, soft_wrap=True)
        if png is not None:
            console.print(f"chart: {png}")
