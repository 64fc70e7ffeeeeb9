"""The outbox as a store of the storage layer: an existing workspace's outbox is adopted
with its rows, and on PostgreSQL dispatchers claim side by side without waiting."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from delivery_support import CAMPAIGN, NOW

from compliance.suppression import SuppressionList
from delivery.outbox import Outbox, OutboxState, QueuedEmail, Reconciliation
from tests.postgres import PostgresServer

# The outbox exactly as reelcast made it before schema versions (and before `variant`).
_OLD_SCHEMA = """
CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY,
    campaign_id     TEXT    NOT NULL,
    customer_id     TEXT    NOT NULL,
    recipient       TEXT    NOT NULL,
    message         BLOB    NOT NULL,
    message_id      TEXT,
    due_at          TEXT    NOT NULL,
    state           TEXT    NOT NULL DEFAULT 'queued' CHECK (state IN
                        ('queued', 'sending', 'sent', 'failed', 'suppressed', 'unknown')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    claim           TEXT,
    claimed_at      TEXT,
    send_started_at TEXT,
    provider_id     TEXT,
    last_error      TEXT,
    created_at      TEXT    NOT NULL,
    updated_at      TEXT    NOT NULL,
    sent_at         TEXT,
    UNIQUE (campaign_id, customer_id)
);
CREATE INDEX outbox_due ON outbox (state, due_at);
INSERT INTO outbox (campaign_id, customer_id, recipient, message, due_at, state,
                    created_at, updated_at, sent_at, provider_id, attempts)
VALUES ('c', 'a', 'a@x.example', X'', '2026-05-01T10:00:00.000000Z', 'sent',
        '2026-05-01T09:00:00.000000Z', '2026-05-01T10:00:01.000000Z',
        '2026-05-01T10:00:01.000000Z', 'queue-1', 1);
"""


def _old_outbox(path: Path, *, with_variant: bool) -> None:
    with sqlite3.connect(path) as db:
        db.executescript(_OLD_SCHEMA)
        if with_variant:
            db.execute("ALTER TABLE outbox ADD COLUMN variant TEXT")
            db.execute("UPDATE outbox SET variant = 'subject-a'")
    db.close()


def _versions(path: Path) -> set[str]:
    with sqlite3.connect(path) as db:
        versions = {row[0] for row in db.execute("SELECT version_num FROM alembic_version")}
    db.close()
    return versions


def test_a_workspace_outbox_from_before_schema_versions_is_adopted_with_its_rows(
    tmp_path: Path,
) -> None:
    state = tmp_path / "state.sqlite"
    _old_outbox(state, with_variant=True)
    with Outbox(state) as outbox:
        [old] = outbox.items()
        assert (old.customer_id, old.state, old.provider_id) == ("a", OutboxState.sent, "queue-1")
        assert old.variant == "subject-a" and old.sent_at is not None
        assert outbox.enqueue(
            campaign_id="c", customer_id="a", recipient="a@x.example", message=b"x", due_at=NOW
        ) is False  # fmt: skip
        assert outbox.enqueue(
            campaign_id="c", customer_id="b", recipient="b@x.example", message=b"x", due_at=NOW
        )  # fmt: skip
    # The suppression list lives in the same file: each store is its own schema branch.
    SuppressionList(state).close()
    assert _versions(state) == {"outbox_0001", "suppression_0001"}
    with Outbox(state) as again:
        assert [i.customer_id for i in again.items()] == ["a", "b"]


def test_an_outbox_from_before_the_variant_column_gets_it(tmp_path: Path) -> None:
    state = tmp_path / "state.sqlite"
    _old_outbox(state, with_variant=False)
    with Outbox(state) as outbox, Outbox(state) as second_opener:
        old = outbox.get("c", "a")
        assert old is not None and old.variant is None
        outbox.enqueue(
            campaign_id="c",
            customer_id="b",
            recipient="b@x.example",
            message=b"x",
            due_at=NOW,
            variant="subject-b",
        )
        new = second_opener.get("c", "b")
        assert new is not None and new.variant == "subject-b"
    assert _versions(state) == {"outbox_0001"}


def test_a_new_sqlite_outbox_keeps_the_send_start_safe_and_gives_space_back(
    tmp_path: Path,
) -> None:
    with Outbox(tmp_path / "state.sqlite") as outbox:
        assert outbox.db_path == tmp_path / "state.sqlite" and not outbox.is_postgres
        engine = outbox._db.engine
        with engine.connect() as conn:
            pragma = {
                name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()
                for name in ("auto_vacuum", "synchronous", "journal_mode")
            }
    # 2 = INCREMENTAL, 2 = FULL: the "send started" mark survives a power cut.
    assert pragma == {"auto_vacuum": 2, "synchronous": 2, "journal_mode": "wal"}


# ---------------------------------------------------------------- PostgreSQL: many dispatchers


@pytest.fixture
def pg_outbox(postgres: PostgresServer) -> Iterator[Outbox]:
    with Outbox(postgres.create_database()) as box:
        assert box.is_postgres and box.db_path is None
        yield box


def _queue(outbox: Outbox, n: int) -> None:
    outbox.enqueue_many(
        [
            QueuedEmail(CAMPAIGN, f"c{i:04d}", f"u{i}@mail.example", b"Subject: hi\r\n\r\nhi", NOW)
            for i in range(n)
        ]
    )


def test_dispatchers_claiming_at_once_on_postgresql_get_disjoint_rows(pg_outbox: Outbox) -> None:
    _queue(pg_outbox, 300)
    claimed: list[list[int]] = [[] for _ in range(6)]
    errors: list[BaseException] = []
    start = threading.Barrier(len(claimed))

    def dispatcher(mine: list[int]) -> None:
        try:
            with Outbox(pg_outbox.target) as own:  # its own connections, like another host
                start.wait()
                while batch := own.claim_due(NOW, 7):
                    mine.extend(item.id for item in batch)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=dispatcher, args=(mine,)) for mine in claimed]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    every = [row for mine in claimed for row in mine]
    assert len(every) == len(set(every)) == 300  # each row claimed once, none left over
    assert sum(1 for mine in claimed if mine) >= 2  # they really claimed side by side
    assert pg_outbox.counts()[OutboxState.sending] == 300


def _in_thread(work: Callable[[], object], within: float) -> object:
    """`work()`'s result, or a failure if it did not return within `within` seconds."""
    result: list[object] = []
    worker = threading.Thread(target=lambda: result.append(work()), daemon=True)
    started = time.monotonic()
    worker.start()
    worker.join(timeout=within)
    assert result, f"still waiting after {time.monotonic() - started:.1f} s: it blocked"
    return result[0]


def test_a_claim_takes_the_next_rows_instead_of_waiting_for_locked_ones(
    pg_outbox: Outbox,
) -> None:
    _queue(pg_outbox, 10)
    earlier = [item.id for item in pg_outbox.claim_due(NOW, 3)]  # a dispatcher's batch
    queued = [item.id for item in pg_outbox.items(state=OutboxState.queued)]
    held = sorted([*earlier, *queued[:2]])
    other = sa.create_engine(str(pg_outbox.target))
    try:
        with other.connect() as holder, holder.begin():
            # Another transaction holds five rows: three claimed ones (their dispatcher is
            # recording them) and the two earliest queued ones (another claim, mid-way).
            holder.execute(
                sa.text("SELECT id FROM outbox WHERE id = ANY(:ids) FOR UPDATE"), {"ids": held}
            )
            claimed = _in_thread(lambda: pg_outbox.claim_due(NOW, 5), within=5.0)
            assert isinstance(claimed, list)
            ids = sorted(item.id for item in claimed)
            assert len(ids) == 5 and not set(ids) & set(held)  # the next five, at once

            # A reconcile leaves rows someone holds to them, and does not wait either.
            stale = _in_thread(lambda: pg_outbox.reconcile(NOW + timedelta(hours=1)), 5.0)
            assert isinstance(stale, Reconciliation)
            assert [i.id for i in stale.requeued] == ids and stale.unknown == []
        # Released: the next reconcile takes back the earlier batch's stale claims.
        again = pg_outbox.reconcile(NOW + timedelta(hours=1))
        assert [i.id for i in again.requeued] == sorted(earlier)
        assert pg_outbox.counts()[OutboxState.queued] == 10
    finally:
        other.dispose()
