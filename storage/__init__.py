"""reelcast's own state on one storage layer: a SQLite file per store on one machine, or
one PostgreSQL database for many machines, through the same SQLAlchemy Core code.

A store (outbox, suppression list, tracking events, audit log, metrics, vendor ledger) is
opened with `open_database(target, branch=...)`: `target` is a SQLite file path or a
database URL (`REELCAST_DATABASE_URL`); the store's tables are brought to the newest
schema revision this reelcast knows (Alembic, one branch per store), and a database with a
newer revision is refused with a clear message.
"""

from storage.database import (
    Database,
    DatabaseError,
    SchemaTooNew,
    Target,
    describe,
    is_url,
    open_database,
)

__all__ = [
    "Database",
    "DatabaseError",
    "SchemaTooNew",
    "Target",
    "describe",
    "is_url",
    "open_database",
]
