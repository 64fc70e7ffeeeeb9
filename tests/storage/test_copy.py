"""A SQLite workspace's state copied into PostgreSQL: counts verified, refused twice."""

from __future__ import annotations

from pathlib import Path

import pytest

from compliance.suppression import SuppressionList
from storage.copy import copy_database
from storage.database import DatabaseError
from tests.postgres import PostgresServer


def test_rows_are_copied_counted_and_a_second_copy_is_refused(
    tmp_path: Path, postgres: PostgresServer
) -> None:
    source = tmp_path / "state.sqlite"
    with SuppressionList(source) as store:
        store.add([f"c{i}" for i in range(4500)], reason="unsubscribe", source="link")
    url = postgres.create_database()
    seen: list[tuple[str, int]] = []

    copied = copy_database(source, url, ["suppression"], progress=lambda t, n: seen.append((t, n)))

    assert [(c.table, c.source_rows, c.copied_rows) for c in copied] == [
        ("suppression", 4500, 4500)
    ]
    assert seen[-1] == ("suppression", 4500) and len(seen) == 3  # batches of 2000
    with SuppressionList(url) as moved:
        assert moved.ids() == {f"c{i}" for i in range(4500)}

    with pytest.raises(DatabaseError, match="already holds 4500 rows"):
        copy_database(source, url, ["suppression"])
    with SuppressionList(url) as still:
        assert len(still.ids()) == 4500
