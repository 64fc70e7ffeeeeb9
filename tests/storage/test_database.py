"""The storage layer on both engines: schema versions, upgrades, refusals, locking."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

from compliance.suppression import SuppressionList
from storage import Target, describe
from storage.database import DatabaseError, SchemaTooNew, open_database


def test_a_store_opens_at_its_newest_schema_and_keeps_its_rows(
    database: Callable[[str], Target],
) -> None:
    target = database("state")
    with SuppressionList(target) as first:
        assert first.add(["c1", "c2", "c1"], reason="unsubscribe", source="test") == 2
        assert first.add(["c2", "c3"], reason="bounce", source="test") == 1
    with SuppressionList(target) as again:  # opening twice upgrades nothing, loses nothing
        assert again.ids() == {"c1", "c2", "c3"}
        assert "c3" in again and "c4" not in again and 7 not in again


def test_a_database_written_by_a_newer_reelcast_is_refused(
    database: Callable[[str], Target],
) -> None:
    target = database("state")
    SuppressionList(target).close()
    db = open_database(target, branch="suppression")
    with db.write() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = 'suppression_9999'"))
    db.dispose()

    with pytest.raises(SchemaTooNew, match=r"suppression_9999.*Upgrade reelcast"):
        SuppressionList(target)


def test_a_workspace_from_before_schema_versions_is_adopted_with_its_rows(
    tmp_path: Path,
) -> None:
    path = tmp_path / "state.sqlite"
    with sqlite3.connect(path) as old:  # exactly what the earlier code made
        old.execute(
            "CREATE TABLE suppression (customer_id TEXT PRIMARY KEY, reason TEXT NOT NULL,"
            " source TEXT NOT NULL, added_at TEXT NOT NULL)"
        )
        old.execute("INSERT INTO suppression VALUES ('c9', 'unsubscribe', 'link', 'then')")
    old.close()

    with SuppressionList(path) as store:
        assert store.ids() == {"c9"}
    with sqlite3.connect(path) as check:
        versions = [r[0] for r in check.execute("SELECT version_num FROM alembic_version")]
    check.close()
    assert versions == ["suppression_0001"]


def test_stores_opened_at_once_by_many_threads_all_find_one_schema(
    database: Callable[[str], Target],
) -> None:
    target = database("state")
    errors: list[BaseException] = []
    barrier = threading.Barrier(6)

    def open_and_add(i: int) -> None:
        try:
            barrier.wait()
            with SuppressionList(target) as store:
                store.add([f"c{i}"], reason="test", source="thread")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_and_add, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with SuppressionList(target) as store:
        assert store.ids() == {f"c{i}" for i in range(6)}


def test_an_unreachable_server_is_one_clear_error_without_the_password() -> None:
    url = "postgresql+psycopg://reelcast:hunter2@127.0.0.1:1/reelcast"
    with pytest.raises(DatabaseError) as caught:
        open_database(url, branch="suppression")
    assert "hunter2" not in str(caught.value)
    assert "127.0.0.1:1/reelcast" in str(caught.value)
    assert "REELCAST_DATABASE_URL" in str(caught.value)


def test_only_postgresql_and_sqlite_urls_are_taken() -> None:
    with pytest.raises(DatabaseError, match="PostgreSQL"):
        open_database("mysql://u:p@localhost/x", branch="suppression")
    assert describe("postgresql://u:secret@h/db") == "postgresql://u:***@h/db"
