"""Copy one database's reelcast tables into another: the move from a workspace's SQLite
files to PostgreSQL (`reelcast db migrate --from-workspace`).

Both sides are first brought to the newest schema of the given branches, so the tables
match column for column. The copy into the destination is one transaction: it lands
whole or not at all, and it refuses a destination table that already holds rows (a
second run cannot double anything). Rows keep their ids (the audit chain's hashes cover
them), then PostgreSQL's id sequences are moved past the copied ids. Counts are read back
from both sides before the transaction commits.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from storage.database import Database, DatabaseError, open_database
from storage.targets import Target

BATCH = 2000


@dataclass(frozen=True)
class CopiedTable:
    """One table's copy: rows in the source, rows in the destination after it."""

    table: str
    source_rows: int
    copied_rows: int


def copy_database(
    source: Target,
    dest: Target,
    branches: Sequence[str],
    *,
    progress: Callable[[str, int], None] | None = None,
) -> list[CopiedTable]:
    """Copy every table of `branches` from `source` into `dest`; returns the counts.

    Raises DatabaseError when a destination table is not empty or a count differs after
    the copy (then nothing was committed).
    """
    sources = [open_database(source, branch=branch) for branch in branches]
    dests = [open_database(dest, branch=branch) for branch in branches]
    src, dst = sources[0], dests[0]
    try:
        names = _tables(src)
        src_meta, dst_meta = sa.MetaData(), sa.MetaData()
        with src.read() as conn:
            src_meta.reflect(conn, only=names)
        with dst.read() as conn:
            missing = [n for n in names if not sa.inspect(conn).has_table(n)]
            if missing:
                raise DatabaseError(
                    f"database {dst.name} has no table {', '.join(missing)} after its "
                    "upgrade: the source has tables this reelcast does not make"
                )
            dst_meta.reflect(conn, only=names)
        result: list[CopiedTable] = []
        with src.read() as read, dst.write() as write:
            for name in names:
                pair = (src_meta.tables[name], dst_meta.tables[name])
                result.append(_copy_table(read, write, *pair, dst, progress))
        return result
    finally:
        for db in (*sources, *dests):
            db.dispose()


def _tables(db: Database) -> list[str]:
    """The source's reelcast tables, in a stable order (Alembic's own is left out)."""
    with db.read() as conn:
        names = sa.inspect(conn).get_table_names()
    return sorted(n for n in names if n != "alembic_version" and not n.startswith("sqlite_"))


def _count(conn: sa.Connection, table: sa.Table) -> int:
    return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def _copy_table(
    read: sa.Connection,
    write: sa.Connection,
    source: sa.Table,
    dest: sa.Table,
    dst: Database,
    progress: Callable[[str, int], None] | None,
) -> CopiedTable:
    already = _count(write, dest)
    if already:
        raise DatabaseError(
            f"table {dest.name} in {dst.name} already holds {already} rows: migrate into an "
            "empty database (nothing was copied)"
        )
    columns = [c.name for c in source.columns if c.name in dest.columns]
    order = list(source.primary_key.columns) or [source.columns[columns[0]]]
    rows = read.execution_options(yield_per=BATCH).execute(
        sa.select(*(source.columns[c] for c in columns)).order_by(*order)
    )
    copied = 0
    for batch in rows.partitions(BATCH):
        write.execute(sa.insert(dest), [dict(zip(columns, row, strict=True)) for row in batch])
        copied += len(batch)
        if progress:
            progress(dest.name, copied)
    source_rows, dest_rows = _count(read, source), _count(write, dest)
    if source_rows != dest_rows:
        raise DatabaseError(
            f"table {dest.name}: {source_rows} rows in the source but {dest_rows} after the "
            "copy (nothing was committed)"
        )
    if dst.is_postgres:
        _move_sequences(write, dest)
    return CopiedTable(dest.name, source_rows, dest_rows)


def _move_sequences(write: sa.Connection, table: sa.Table) -> None:
    """Copied ids were given explicitly: move each serial/identity sequence past them."""
    for column in table.primary_key.columns:
        sequence = write.execute(
            sa.text("SELECT pg_get_serial_sequence(:table, :column)"),
            {"table": table.name, "column": column.name},
        ).scalar_one()
        if sequence is None:
            continue
        top = write.execute(sa.select(sa.func.max(column))).scalar_one()
        write.execute(
            sa.text("SELECT setval(:sequence, :value, :called)"),
            {"sequence": sequence, "value": top or 1, "called": top is not None},
        )
