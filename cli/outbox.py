"""`reelcast outbox …`: see what was sent, send what is due, settle `unknown` messages.

Customers are shown by pseudonymous id unless `--show-ids` is given.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from cli.common import WorkspaceOpt, command_group, context, fail
from storage.targets import exists

if TYPE_CHECKING:
    from delivery.esp import EspTransport
    from delivery.outbox import Outbox
    from runtime.settings import Settings
    from runtime.workspace import Workspace

console = Console()
err = Console(stderr=True)

outbox_app = command_group(
    help="The outbox: every campaign email, sent exactly once.",
    no_args_is_help=True,
)

EspUrlOpt = Annotated[
    str | None,
    typer.Option(
        "--esp-url",
        envvar="REELCAST_ESP_URL",
        help="Base URL of a SendGrid-v3-style email API; unset: SMTP (settings) or the "
        "local Maildir sink.",
        show_default=False,
    ),
]
EspKeyOpt = Annotated[
    str | None,
    typer.Option(
        "--esp-api-key",
        envvar="REELCAST_ESP_API_KEY",
        help="API key of the email API (prefer the environment variable).",
        show_default=False,
        show_envvar=True,
    ),
]


def _open_outbox(workspace: Path | None) -> tuple[Settings, Workspace, Outbox]:
    from delivery.outbox import Outbox

    settings, ws = _with_outbox(workspace)
    return settings, ws, Outbox(ws.state_db)


def _with_outbox(workspace: Path | None) -> tuple[Settings, Workspace]:
    """(settings, workspace) of a workspace that has an outbox; else one clean error."""
    settings, ws = context(workspace)
    if not exists(ws.state_db):
        raise fail(f"no outbox in {ws.root} (run a campaign first)")
    return settings, ws


def _esp(url: str, key: str | None) -> EspTransport:
    """The email API's client, for commands that ask it about messages."""
    from delivery.esp import EspTransport

    if not key:
        raise fail("--esp-url needs an API key: set REELCAST_ESP_API_KEY")
    return EspTransport(url, key)


@outbox_app.command("status")
def status(
    campaign: Annotated[
        str | None, typer.Option("--campaign", help="Only this campaign.", show_default=False)
    ] = None,
    show_ids: Annotated[
        bool,
        typer.Option(
            "--show-ids", help="List unknown messages by raw customer id (personal data)."
        ),
    ] = False,
    workspace: WorkspaceOpt = None,
) -> None:
    """Messages per campaign and state; lists the `unknown` ones that need a decision."""
    from compliance.pseudonym import pseudonymize
    from delivery.outbox import OutboxState

    settings, _, outbox = _open_outbox(workspace)
    with outbox:
        campaigns = [campaign] if campaign else outbox.campaigns()
        table = Table(title="Outbox")
        table.add_column("campaign")
        for state in OutboxState:
            table.add_column(str(state), justify="right")
        for name in campaigns:
            counts = outbox.counts(name)
            table.add_row(name, *(str(counts[s]) for s in OutboxState))
        unknown = [
            item
            for name in campaigns
            for item in outbox.items(campaign_id=name, state=OutboxState.unknown)
        ]
    console.print(table)
    if not unknown:
        return
    secret = settings.secret()
    console.print(
        f"\n{len(unknown)} message(s) with unknown outcome — never re-sent automatically. "
        "Ask the provider (`reelcast outbox reconcile`) or, once you know they were not "
        "delivered, `reelcast outbox resend --campaign C --customer ID`."
    )
    for item in unknown:
        who = item.customer_id if show_ids else pseudonymize(secret, item.customer_id)
        console.print(f"  {item.campaign_id}  {who}  {item.last_error or ''}", highlight=False)


@outbox_app.command("resend")
def resend(
    campaign: Annotated[str, typer.Option("--campaign", help="The campaign id.")],
    customer: Annotated[
        list[str] | None,
        typer.Option("--customer", help="Customer id to resend (repeat for several)."),
    ] = None,
    all_unknown: Annotated[
        bool, typer.Option("--all-unknown", help="Every unknown message of the campaign.")
    ] = False,
    yes: Annotated[
        bool,
        typer.Option("--yes", help="Confirm they were not delivered, without asking."),
    ] = False,
    workspace: WorkspaceOpt = None,
) -> None:
    """Queue `unknown` messages again, once you know they were NOT delivered.

    A message is `unknown` when sending started but its result was lost (a crash, a
    dropped connection): it may have arrived. Check the provider's log or the mailbox
    first; this command never touches messages in any other state. Then run
    `reelcast outbox dispatch`.
    """
    from delivery.errors import DeliveryError
    from delivery.resend import resend_unknown

    if bool(customer) == all_unknown:
        raise fail("give either --customer ID (repeatable) or --all-unknown")
    _, _, outbox = _open_outbox(workspace)
    with outbox:
        if not yes and not typer.confirm(
            "Have you checked that these messages were NOT delivered?", default=False
        ):
            raise fail("nothing changed", code=1)
        try:
            result = resend_unknown(
                outbox,
                campaign,
                "all" if all_unknown else list(customer or []),
                confirmed_not_delivered=True,
                now=datetime.now(UTC),
            )
        except DeliveryError as exc:
            raise fail(str(exc)) from None
    console.print(f"queued again: {len(result.requeued)}")
    for cid, state in result.skipped.items():
        console.print(f"  left alone (state {state}): {cid}", highlight=False)
    for cid in result.missing:
        console.print(f"  not in campaign {campaign}: {cid}", highlight=False)
    if result.requeued:
        console.print("Send them with `reelcast outbox dispatch`.")
    if result.missing:
        raise typer.Exit(1)


@outbox_app.command("dispatch")
def dispatch_due(
    limit: Annotated[
        int | None, typer.Option("--limit", min=1, help="Send at most N messages.")
    ] = None,
    esp_url: EspUrlOpt = None,
    esp_api_key: EspKeyOpt = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Send every message that is due now (suppression is checked again for each)."""
    from pydantic import SecretStr

    from runtime.sending import send_due
    from runtime.transports import TransportSettingsError

    settings, ws = _with_outbox(workspace)
    if esp_url:
        settings = settings.model_copy(
            update={
                "esp_url": esp_url,
                "esp_api_key": SecretStr(esp_api_key) if esp_api_key else settings.esp_api_key,
            }
        )
    try:
        report, via = send_due(settings, ws, limit=limit)
    except TransportSettingsError as exc:
        raise fail(str(exc)) from None
    console.print(
        f"sent {report.sent}, failed {report.failed}, suppressed {report.suppressed}, "
        f"retry later {report.retried}, unknown {report.unknown}, deferred {report.deferred} "
        f"(via {via})",
        highlight=False,
    )
    if report.reconciled_unknown:
        console.print(
            f"{len(report.reconciled_unknown)} interrupted send(s) marked unknown: "
            "see `reelcast outbox status`."
        )
    if report.transport_error:
        raise fail(report.transport_error, code=1)


@outbox_app.command("prune")
def prune(
    older_than_days: Annotated[
        float,
        typer.Option(
            "--older-than-days",
            min=0,
            help="Drop the bodies of emails sent, failed or suppressed more than this many "
            "days ago (0: all of them).",
        ),
    ] = 0.0,
    vacuum: Annotated[
        bool, typer.Option("--vacuum", help="Then give the space back to the disk (VACUUM).")
    ] = False,
    workspace: WorkspaceOpt = None,
) -> None:
    """Drop stored bodies of finished emails; keys, states and ids stay (exactly-once, the
    report and the audit need nothing more). Queued and unknown emails keep theirs."""
    from datetime import timedelta

    _, _, outbox = _open_outbox(workspace)
    with outbox:
        done = outbox.prune_bodies(datetime.now(UTC) - timedelta(days=older_than_days))
        if vacuum:
            outbox.vacuum()
    console.print(
        f"dropped {done.rows} email bodies ({done.bytes / 1e6:.1f} MB)"
        + ("; space returned to the disk" if vacuum else ""),
        highlight=False,
    )


@outbox_app.command("reconcile")
def reconcile(
    esp_url: EspUrlOpt = None,
    esp_api_key: EspKeyOpt = None,
    campaign: Annotated[
        str | None, typer.Option("--campaign", help="Only this campaign.", show_default=False)
    ] = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Ask the email API about every `unknown` message and settle what it knows.

    It has the message → sent. It has no record of it (15 minutes after the send
    started) → queued again. Otherwise the message stays unknown.
    """
    from delivery.resend import reconcile_with_provider

    if esp_url is None:
        raise fail("reconcile asks the email API: give --esp-url (or REELCAST_ESP_URL)")
    _, _, outbox = _open_outbox(workspace)
    with outbox, _esp(esp_url, esp_api_key) as esp:
        result = reconcile_with_provider(outbox, esp, now=datetime.now(UTC), campaign=campaign)
    console.print(
        f"provider has them (now sent): {len(result.sent)}; not delivered (queued again): "
        f"{len(result.requeued)}; still unknown: {len(result.undecided)}"
    )
