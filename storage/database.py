"""One database behind a SQLAlchemy engine: a SQLite file or a PostgreSQL URL.

Every store runs the same SQLAlchemy Core statements on both engines. What differs is
kept here: SQLite's pragmas and `BEGIN IMMEDIATE` for writers (so two writers queue for
the lock instead of failing halfway), the PostgreSQL driver, and schema versions
(Alembic, one branch per store, upgraded under a lock when a store is opened).
"""

from __future__ import annotations

import functools
import os
import threading
import time
import weakref
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.sql import Insert, TableClause

from retail.errors import ReelcastError
from storage.targets import Target, describe, is_url

if TYPE_CHECKING:  # Alembic is imported when a schema is checked, not by every command
    from alembic.config import Config
    from alembic.script import ScriptDirectory

MIGRATIONS = Path(__file__).resolve().parent / "migrations"

#: One lock id for every schema upgrade on a PostgreSQL database ("reel" in ASCII).
_UPGRADE_LOCK = 0x7265656C

_engines: weakref.WeakSet[Engine] = weakref.WeakSet()
_engines_lock = threading.Lock()


class DatabaseError(ReelcastError):
    """A database cannot be opened or used; the message names it (never its password)."""


class SchemaTooNew(DatabaseError):
    """The database was upgraded by a newer reelcast than this one."""


class Database:
    """An engine and the few things that differ between SQLite and PostgreSQL."""

    def __init__(self, engine: Engine, target: Target) -> None:
        self.engine = engine
        self.target = target
        self.name = describe(target)

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @property
    def is_postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A write transaction: committed on success, rolled back on any exception. On
        SQLite it takes the write lock at once (`BEGIN IMMEDIATE`), so a read-then-write
        never fails on a lock upgrade; a busy database is waited for (busy timeout)."""
        with self.engine.connect() as conn:
            conn.execution_options(reelcast_immediate=True)
            with conn.begin():
                yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read transaction (a consistent snapshot; nothing is locked on SQLite WAL)."""
        with self.engine.connect() as conn, conn.begin():
            yield conn

    def insert(self, table: TableClause) -> Any:
        """`INSERT` with this engine's `ON CONFLICT` support (`.on_conflict_do_nothing`)."""
        module = postgresql if self.is_postgres else sqlite
        result: Insert = module.insert(table)
        return result

    def dispose(self) -> None:
        """Close the pooled connections."""
        self.engine.dispose()


def open_database(
    target: Target,
    *,
    branch: str,
    sqlite_pragmas: Mapping[str, str] | None = None,
    pool_size: int = 5,
) -> Database:
    """Open `target` and bring `branch` (one store's tables) to the newest schema.

    `sqlite_pragmas` are set on every new SQLite connection, after the defaults (WAL, a
    30 s busy timeout, synchronous=NORMAL). Raises DatabaseError, naming the database and
    what to do, when it cannot be reached, and SchemaTooNew when a newer reelcast wrote it.
    """
    engine = _engine(target, dict(sqlite_pragmas or {}), pool_size)
    db = Database(engine, target)
    try:
        _upgrade(db, branch)
    except OperationalError as exc:
        engine.dispose()
        raise DatabaseError(
            f"database {db.name} cannot be used: {_first_line(exc)}; check the path or "
            "REELCAST_DATABASE_URL, and that the server is running"
        ) from None
    except BaseException:
        engine.dispose()
        raise
    return db


def _first_line(exc: BaseException) -> str:
    detail = getattr(exc, "orig", None) or exc
    return str(detail).strip().splitlines()[0] if str(detail).strip() else type(exc).__name__


def _engine(target: Target, pragmas: dict[str, str], pool_size: int) -> Engine:
    if is_url(target):
        try:
            url = make_url(str(target))
        except ArgumentError:
            raise DatabaseError(
                f"database URL {describe(target)} is not a valid URL; expected e.g. "
                "postgresql+psycopg://user:password@host:5432/reelcast"
            ) from None
        if url.drivername == "postgresql":
            url = url.set(drivername="postgresql+psycopg")
        if url.get_backend_name() not in ("postgresql", "sqlite"):
            raise DatabaseError(
                f"database URL {describe(target)}: reelcast keeps its state on PostgreSQL "
                "(postgresql+psycopg://…) or SQLite (sqlite:///path)"
            )
        if url.get_backend_name() == "postgresql":
            engine = create_engine(
                url, pool_pre_ping=True, pool_size=pool_size, max_overflow=pool_size
            )
        else:
            engine = _sqlite_engine(url.render_as_string(hide_password=False), pragmas)
    else:
        path = Path(target)
        path.parent.mkdir(parents=True, exist_ok=True)
        engine = _sqlite_engine(f"sqlite:///{path}", pragmas)
    with _engines_lock:
        _engines.add(engine)
    return engine


def _sqlite_engine(url: str, pragmas: dict[str, str]) -> Engine:
    engine = create_engine(
        url, connect_args={"timeout": 30.0, "check_same_thread": False}, pool_size=8
    )
    settings = {"busy_timeout": "30000", "synchronous": "NORMAL", **pragmas}
    # auto_vacuum first: it only takes effect before the first table is made.
    order = sorted(settings, key=lambda name: name != "auto_vacuum")

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Transactions are ours to begin (below): pysqlite's own would begin too late.
        dbapi_connection.isolation_level = None
        for name in order:
            dbapi_connection.execute(f"PRAGMA {name}={settings[name]}")
        _wal(dbapi_connection)

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get("reelcast_immediate")
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def _wal(dbapi_connection: Any) -> None:
    """Put the file in WAL mode (once per file: the mode persists). Switching needs the
    file to itself and SQLite may answer "locked" at once, without waiting, while other
    connections open it at the same moment: so wait here, up to the busy timeout."""
    import sqlite3

    (mode,) = dbapi_connection.execute("PRAGMA journal_mode").fetchone()
    deadline = time.monotonic() + 30.0
    while str(mode).lower() != "wal":
        try:
            (mode,) = dbapi_connection.execute("PRAGMA journal_mode=WAL").fetchone()
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


@functools.cache
def _scripts() -> ScriptDirectory:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_config())


@functools.cache
def _wanted(branch: str) -> str:
    """The newest revision of `branch` this reelcast knows."""
    from alembic.util.exc import CommandError

    try:
        (wanted,) = _scripts().get_revisions(f"{branch}@head")
    except (CommandError, ValueError):
        raise DatabaseError(f"no schema for the store {branch!r}") from None
    assert wanted is not None
    return wanted.revision


def _config() -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def _heads(conn: Connection) -> set[str]:
    if not inspect(conn).has_table("alembic_version"):
        return set()
    return set(conn.execute(text("SELECT version_num FROM alembic_version")).scalars())


def _upgrade(db: Database, branch: str) -> None:
    wanted = _wanted(branch)
    with db.read() as conn:
        if wanted in _heads(conn):
            return
    from alembic import command
    from alembic.util.exc import CommandError

    scripts = _scripts()
    with db.write() as conn:
        if db.is_postgres:  # one upgrader at a time; the others then find it done
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _UPGRADE_LOCK})
        heads = _heads(conn)
        for head in sorted(heads):
            try:
                scripts.get_revision(head)
            except CommandError:
                raise SchemaTooNew(
                    f"database {db.name} has schema revision {head}, which this reelcast "
                    "does not know: a newer reelcast upgraded it. Upgrade reelcast "
                    "(pip install -U reelcast) before using this database"
                ) from None
        if wanted in heads:
            return
        config = _config()
        config.attributes["connection"] = conn
        command.upgrade(config, f"{branch}@head")


def _forget_pools_after_fork() -> None:
    # A forked child must not share the parent's sockets or SQLite handles: it opens its
    # own connections, and leaves the parent's to the parent.
    for engine in list(_engines):
        engine.dispose(close=False)


os.register_at_fork(after_in_child=_forget_pools_after_fork)
