"""`reelcast db …`: the schema of reelcast's own state, and the move to PostgreSQL.

State lives in SQLite files in the workspace unless REELCAST_DATABASE_URL names a
PostgreSQL database. Every command opens the stores, which brings their schema up to
date; a database upgraded by a newer reelcast is refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from cli.common import WorkspaceOpt, command_group, context, fail

console = Console()

db_app = command_group(
    help="reelcast's own state: schema upgrades, and the move from SQLite to PostgreSQL.",
    no_args_is_help=True,
)


@db_app.command("upgrade")
def db_upgrade(workspace: WorkspaceOpt = None) -> None:
    """Bring every store to the newest schema this reelcast knows (run after an upgrade
    of reelcast; every command also does it for the stores it opens)."""
    from runtime.workspace import STORES
    from storage import describe
    from storage.database import DatabaseError, open_database

    _, ws = context(workspace)
    table = Table("store", "where", "schema")
    for store in STORES:
        target = ws.target(store)
        for branch in store.branches:
            try:
                open_database(target, branch=branch).dispose()
            except DatabaseError as exc:
                raise fail(str(exc)) from None
        table.add_row(store.name, describe(target), "up to date")
    console.print(table)


@db_app.command("migrate")
def db_migrate(
    from_workspace: Annotated[
        Path,
        typer.Option(
            "--from-workspace",
            help="Workspace folder whose SQLite state is copied (its files are only read "
            "and brought to the newest schema).",
            exists=True,
            file_okay=False,
        ),
    ],
    workspace: WorkspaceOpt = None,
) -> None:
    """Copy a SQLite workspace's state (outbox, suppression list, tracking events, audit
    log, metrics, vendor ledger) into the PostgreSQL database of REELCAST_DATABASE_URL.

    Each store is copied in one transaction, into empty tables only; the rows of every
    table are counted on both sides and must match. Renders, models and mail are files:
    move them with the render store (REELCAST_RENDER_STORE) or by copying the folders.
    """
    from compliance.audit import AuditLog
    from runtime.workspace import STORES, Workspace
    from storage import describe
    from storage.copy import copy_database
    from storage.database import DatabaseError

    _, ws = context(workspace)
    if ws.database_url is None:
        raise fail(
            "REELCAST_DATABASE_URL is not set: name the PostgreSQL database to copy into, "
            "e.g. postgresql+psycopg://reelcast:…@db-host:5432/reelcast"
        )
    source = Workspace(from_workspace)
    table = Table("store", "table", "rows in the workspace", "rows copied")
    for store in STORES:
        path = source.target(store)
        if not Path(path).exists():
            table.add_row(store.name, "—", "no file", "—")
            continue
        try:
            with console.status(f"copying {store.name}…"):
                copied = copy_database(path, ws.database_url, store.branches)
        except DatabaseError as exc:
            raise fail(f"{store.name}: {exc}") from None
        for entry in copied:
            table.add_row(store.name, entry.table, str(entry.source_rows), str(entry.copied_rows))
        checkpoints = Path(path).with_name("audit.checkpoints")
        if "audit" in store.branches and checkpoints.is_file():
            # A SQLite log keeps its checkpoints in a file; on a server they are a table.
            with AuditLog(ws.database_url) as log:
                added = log.import_checkpoints(checkpoints)
            table.add_row(store.name, "audit_checkpoints (from audit.checkpoints)", "", str(added))
    console.print(table)
    console.print(
        f"copied into {describe(ws.database_url)}; every count matched. Check the audit "
        "chain there with `reelcast audit verify`.",
        highlight=False,
    )
