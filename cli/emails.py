"""`reelcast email …`: look at the campaign email a customer got (or will get)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from cli.common import command_group
from cli.outbox import WorkspaceOpt, context, fail
from storage.targets import exists

console = Console()

email_app = command_group(help="Preview campaign emails.", no_args_is_help=True)


@email_app.callback()
def _group() -> None:
    """Preview campaign emails."""
    # A callback keeps `preview` a subcommand even while it is the only one.


@email_app.command("preview")
def preview(
    customer: Annotated[
        str, typer.Option("--customer", help="The customer's id (as in customers.csv).")
    ],
    campaign: Annotated[
        str | None,
        typer.Option(
            "--campaign", help="Campaign id (default: the customer's latest).", show_default=False
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="HTML file to write (default: <workspace>/previews/<campaign>-<pseudonym>.html).",
            show_default=False,
        ),
    ] = None,
    inline_images: Annotated[
        bool,
        typer.Option("--inline-images", help="Embed images as data: URIs instead of files."),
    ] = False,
    workspace: WorkspaceOpt = None,
) -> None:
    """Write the HTML of the email queued for a customer, to open in a browser.

    The file holds that customer's personal email (name, links): keep it private. Inline
    images are written beside it.
    """
    from compliance.pseudonym import pseudonymize
    from delivery.compose import preview_email
    from delivery.errors import DeliveryError
    from delivery.outbox import Outbox

    settings, ws = context(workspace)
    if not exists(ws.state_db):
        raise fail(f"no outbox in {ws.root} (run a campaign first)")
    with Outbox(ws.state_db) as outbox:
        if campaign is not None:
            item = outbox.get(campaign, customer)
        else:
            rows = outbox.for_customer(customer)
            item = rows[0] if rows else None
    where = f"campaign {campaign}" if campaign else "any campaign"
    if item is None:
        raise fail(f"no email for customer {customer} in {where} (see `reelcast outbox status`)")
    if not item.message:
        raise fail(f"the email for customer {customer} was erased (right to erasure)")
    name = f"{item.campaign_id}-{pseudonymize(settings.secret(), customer)}.html"
    target = out or ws.root / "previews" / name
    try:
        path = preview_email(item.message, target, inline_images=inline_images)
    except DeliveryError as exc:
        raise fail(str(exc)) from None
    console.print(f"preview of campaign {item.campaign_id} ({item.state}): {path}")
