"""reelcast's own state on one storage layer: a SQLite file per store on one machine, or
one PostgreSQL database for many machines, through the same SQLAlchemy Core code.

A store (outbox, suppression list, tracking events, audit log, metrics, vendor ledger) is
opened with `open_database(target, branch=...)`: `target` is a SQLite file path or a
database URL (`REELCAST_DATABASE_URL`); the store's tables are brought to the newest
schema revision this reelcast knows (Alembic, one branch per store), and a database with a
newer revision is refused with a clear message.

The engine side is `storage.database` (SQLAlchemy, and Alembic when a schema is checked);
this package itself imports only the light `storage.targets`, so a command that never
opens a database does not pay for SQLAlchemy.
"""

from storage.targets import Target, describe, exists, is_url

__all__ = ["Target", "describe", "exists", "is_url"]
