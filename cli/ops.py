"""Operator commands: the audit log, the suppression list, and erasure requests."""

from __future__ import annotations

import csv
import json
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from cli.common import WorkspaceOpt, command_group, context, fail
from storage.targets import exists

if TYPE_CHECKING:
    from creative.store import RenderStore

console = Console()
err = Console(stderr=True)

audit_app = command_group(help="Check and read the tamper-evident audit log.", no_args_is_help=True)
suppress_app = command_group(
    help="The suppression list: customers never to be mailed again.",
    no_args_is_help=True,
)


@audit_app.command("verify")
def audit_verify(workspace: WorkspaceOpt = None) -> None:
    """Check the whole audit chain and its checkpoints; name the first bad record.

    Uses the audit key (REELCAST_AUDIT_KEY, else derived from the workspace key): an
    edited, missing or reordered record, a missing checkpoint file, or a checkpoint
    behind or ahead of the log's last record fails, with exit code 1.
    """
    from compliance.audit import AuditLog

    settings, ws = context(workspace)
    if not exists(ws.audit_db):
        raise fail(f"no audit log in {ws.root} (run a campaign first)")
    with AuditLog(ws.audit_db, key=settings.audit_log_key()) as log:
        result = log.verify()
    if result.ok:
        console.print(
            f"audit log OK: {result.records} records, chain and checkpoints intact",
            highlight=False,
        )
        if result.unkeyed_records:
            console.print(
                f"  records 1–{result.unkeyed_records} were written before the audit key and "
                "are protected from the record that keyed the log on",
                highlight=False,
            )
        return
    if result.status == "unkeyed":
        raise fail(
            f"audit log {ws.audit_db} is not keyed: {result.problem}. Run `reelcast audit "
            "seal` (or any campaign) to key it from now on with the audit key "
            "(REELCAST_AUDIT_KEY, else derived from the workspace key)",
            code=1,
        )
    if result.status == "wrong-key":
        raise fail(f"audit log {ws.audit_db} cannot be checked: {result.problem}", code=1)
    where = f" at record {result.first_bad}" if result.first_bad is not None else ""
    raise fail(f"audit log BROKEN{where}: {result.problem}", code=1)


@audit_app.command("seal")
def audit_seal(workspace: WorkspaceOpt = None) -> None:
    """Key an audit log written by an older reelcast (without an audit key) from now on.

    Appends a keyed record that chains onto the old ones: from then on they cannot be
    rewritten undetected either. A campaign does this on its first write; this command is
    for a workspace that runs none. A log that does not verify is left as it is.
    """
    from compliance.audit import AuditLog

    settings, ws = context(workspace)
    if not exists(ws.audit_db):
        raise fail(f"no audit log in {ws.root} (run a campaign first)")
    with AuditLog(ws.audit_db, key=settings.audit_log_key()) as log:
        before = log.verify()
        if before.status not in ("unkeyed", "ok"):
            raise fail(
                f"audit log {ws.audit_db} does not verify, not sealing it: {before.problem}",
                code=1,
            )
        sealed = log.seal()
    if sealed:
        console.print(f"audit log keyed from record {before.records + 1} on", highlight=False)
    else:
        console.print("audit log already keyed: nothing to do")


@audit_app.command("show")
def audit_show(
    customer: Annotated[
        str, typer.Option("--customer", help="The customer's id (as in customers.csv).")
    ],
    workspace: WorkspaceOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per record.")] = False,
) -> None:
    """Explain why a customer got (or did not get) what they got: every recorded decision.

    The log names customers by pseudonymous id only; this command computes it from the
    id you give, so it prints no personal data.
    """
    from compliance.audit import AuditLog
    from compliance.pseudonym import pseudonymize

    settings, ws = context(workspace)
    if not exists(ws.audit_db):
        raise fail(f"no audit log in {ws.root} (run a campaign first)")
    subject = pseudonymize(settings.secret(), customer)
    with AuditLog(ws.audit_db) as log:
        records = log.records(subject=subject)
    if as_json:
        for r in records:
            console.print_json(
                json.dumps(
                    {
                        "seq": r.seq,
                        "at": r.at,
                        "kind": r.kind,
                        "campaign": r.campaign,
                        "data": r.data,
                    }
                )
            )
        return
    if not records:
        console.print(f"no decisions recorded for this customer ({subject})")
        return
    table = Table(title=f"Decisions about {subject}")
    for column in ("#", "when", "campaign", "what", "details"):
        table.add_column(column)
    for r in records:
        details = ", ".join(f"{k}={v}" for k, v in r.data.items())
        table.add_row(str(r.seq), r.at[:19], r.campaign, r.kind, details)
    console.print(table)


@suppress_app.command("add")
def suppress_add(
    customer_ids: Annotated[list[str], typer.Argument(help="Customer ids to suppress.")],
    reason: Annotated[
        str, typer.Option(help="unsubscribe, bounce, complaint, request…")
    ] = "request",
    workspace: WorkspaceOpt = None,
) -> None:
    """Suppress customers: no campaign will render or send anything for them."""
    from compliance.suppression import SuppressionList

    _, ws = context(workspace)
    added = SuppressionList(ws.state_db).add(customer_ids, reason=reason, source="cli")
    console.print(f"suppressed {added} new customer(s) ({len(customer_ids) - added} already were)")


@suppress_app.command("import")
def suppress_import(
    file: Annotated[
        Path, typer.Argument(help="CSV with a customer_id column, or one id per line.")
    ],
    reason: Annotated[str, typer.Option(help="Reason recorded for every id.")] = "import",
    workspace: WorkspaceOpt = None,
) -> None:
    """Suppress every customer id in a file."""
    from compliance.suppression import SuppressionList

    if not file.is_file():
        raise fail(f"{file}: file not found")
    try:
        lines = file.read_text(encoding="utf-8-sig").splitlines()
    except UnicodeDecodeError:
        raise fail(f"{file}: not UTF-8: save it as 'CSV UTF-8'") from None
    if lines and "customer_id" in lines[0].split(","):
        ids = [row["customer_id"].strip() for row in csv.DictReader(lines)]
    else:
        ids = [line.strip() for line in lines]
    ids = [i for i in ids if i]
    if not ids:
        raise fail(f"{file}: no customer ids found")
    _, ws = context(workspace)
    added = SuppressionList(ws.state_db).add(ids, reason=reason, source=f"import:{file.name}")
    console.print(f"suppressed {added} new customer(s) from {file} ({len(ids)} ids read)")


@suppress_app.command("mailbox")
def suppress_mailbox(
    maildir: Annotated[
        Path,
        typer.Argument(
            help="The Maildir your unsubscribe address (REELCAST_UNSUBSCRIBE_MAILTO) is "
            "delivered to."
        ),
    ],
    workspace: WorkspaceOpt = None,
) -> None:
    """Honour unsubscribe requests sent by mail (the List-Unsubscribe mailto: link).

    Suppresses the customer each request's token names and moves the message to cur/
    (seen). Messages without a valid token are flagged for a person to read. Run it as
    often as the mail arrives (e.g. every few minutes beside `outbox dispatch`).
    """
    from delivery.errors import DeliveryError
    from delivery.unsubscribe_mail import honour_unsubscribe_mail

    settings, ws = context(workspace)
    ws.create()
    try:
        done = honour_unsubscribe_mail(
            maildir, state_db=ws.state_db, secret=settings.signing_keys()
        )
    except DeliveryError as exc:
        raise fail(str(exc)) from None
    console.print(f"unsubscribe mail: {done}")
    if done.for_a_person:
        err.print(
            f"read the flagged message(s) in {maildir}/cur and suppress the senders with "
            "`reelcast suppress add CUSTOMER_ID --reason unsubscribe`"
        )


@suppress_app.command("list")
def suppress_list(workspace: WorkspaceOpt = None) -> None:
    """Print the suppressed customer ids (raw ids, as in your customer file)."""
    from compliance.suppression import SuppressionList

    _, ws = context(workspace)
    for cid in sorted(SuppressionList(ws.state_db).ids()):
        console.print(cid, highlight=False)


def forget(
    customer: Annotated[str, typer.Argument(help="The customer's id (as in customers.csv).")],
    workspace: WorkspaceOpt = None,
) -> None:
    """Right to erasure: remove a customer's personal data from the workspace.

    Blanks their address and emails in the outbox, deletes the videos made for them alone
    and the mails to their exact address in the local mailbox, and suppresses the id so
    no later campaign mails them. The
    audit log keeps only the pseudonymous id and stays valid. Remove the customer from
    your own source files (customers.csv, events.csv) as well.
    """
    from compliance.audit import AuditLog
    from compliance.pseudonym import pseudonymize
    from delivery.erasure import erase_customer
    from runtime.renderers import open_render_store

    settings, ws = context(workspace)
    if not ws.root.is_dir():
        raise fail(f"no workspace at {ws.root}")
    store = open_render_store(settings, ws)
    subject = pseudonymize(settings.secret(), customer)
    with AuditLog(ws.audit_db, key=settings.audit_log_key()) as log:
        done = erase_customer(
            customer,
            subject,
            state_db=ws.state_db,
            audit=log,
            maildir=ws.maildir,
            renders=ws.renders,
            delete_render=None if store.holds(ws.renders) else store.delete,
            read_manifest=None if store.holds(ws.renders) else partial(_manifest, store),
        )
    shared = (
        f"; {done.shared_videos} video(s) kept: other recipients received the same one"
        if done.shared_videos
        else ""
    )
    console.print(
        f"erased {subject}: {done.outbox_rows} outbox row(s) blanked, {done.mails} mail(s) "
        f"and {done.videos} video(s) deleted{shared}; suppressed for future campaigns",
        highlight=False,
    )


def metrics(workspace: WorkspaceOpt = None) -> None:
    """Print counters and P50/P95/P99 latencies per stage (Prometheus text format).

    Point a Prometheus node-exporter textfile collector at this output, or just read it.
    """
    from runtime.metrics import Metrics

    _, ws = context(workspace)
    if not exists(ws.metrics_db):
        raise fail(f"no metrics in {ws.root} yet (run a campaign first)")
    with Metrics(ws.metrics_db) as store:
        typer.echo(store.prometheus_text(), nl=False)


def _manifest(store: RenderStore, key: str) -> bytes | None:
    """A render's manifest as the store has it (None when it has no such render)."""
    try:
        with store.open(key, "render.json") as handle:
            return handle.read()
    except FileNotFoundError:
        return None
