"""The audit log is append-only and catches every kind of tampering, naming the record.

Every store-level test runs on both engines (`database`): a SQLite file with its
checkpoint file beside it, and PostgreSQL with the checkpoints in a table. Tampering is
done as someone with the database would do it: drop the triggers, then edit.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa

from compliance.audit import GENESIS, AuditLog, _checkpoint_mac, _keyed_digest, key_id
from compliance.errors import ComplianceError
from storage import Target, is_url
from storage.database import open_database
from tests.postgres import PostgresServer

KEY = b"k" * 32
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def target(database: Callable[[str], Target]) -> Target:
    return database("audit")


def _log(target: Target, n: int = 6) -> AuditLog:
    log = AuditLog(target, key=KEY)
    log.record("model", campaign="spring", version="svd1-abc", data_hash="d1")
    log.append(
        "pick",
        campaign="spring",
        entries=[(f"cu_{i:04d}", {"products": [f"P{i}"], "reasons": ["als"]}) for i in range(n)],
    )
    return log


@contextmanager
def _raw(target: Target) -> Iterator[sa.Connection]:
    """A write transaction on the log's database, as its owner (no guards of ours)."""
    db = open_database(target, branch="audit")
    try:
        with db.write() as conn:
            yield conn
    finally:
        db.dispose()


def _drop_guards(conn: sa.Connection, *tables: str) -> None:
    for table in tables or ("audit",):
        for event in ("update", "delete"):
            on = f" ON {table}" if conn.dialect.name == "postgresql" else ""
            conn.execute(sa.text(f"DROP TRIGGER IF EXISTS {table}_no_{event}{on}"))


def _tamper(target: Target, *statements: str) -> None:
    with _raw(target) as conn:
        _drop_guards(conn)
        for sql in statements:
            conn.execute(sa.text(sql))


def _sha256_chain(conn: sa.Connection) -> str:
    """Recompute every record's digest as the unkeyed log did (anyone can); the new head."""
    prev = GENESIS
    rows = conn.execute(
        sa.text("SELECT seq, at, kind, campaign, subject, data FROM audit ORDER BY seq")
    ).all()
    for seq, at, kind, campaign, subject, data in rows:
        fields = [prev, str(seq), at, kind, campaign, subject or "", data]
        digest = hashlib.sha256("\x1f".join(fields).encode("utf-8")).hexdigest()
        conn.execute(
            sa.text("UPDATE audit SET prev_hash = :prev, hash = :digest WHERE seq = :seq"),
            {"prev": prev, "digest": digest, "seq": seq},
        )
        prev = digest
    return prev


def _checkpoint_file(target: Target) -> Path:
    return Path(target).with_name("audit.checkpoints")


def _rewrite_checkpoints(target: Target, count: int, head: str) -> None:
    """Replace every checkpoint by one at (count, head), without a MAC."""
    at = "2026-01-01T00:00:00+00:00"
    if not is_url(target):
        line = {"count": count, "hash": head, "at": at}
        _checkpoint_file(target).write_text(json.dumps(line) + "\n")
        return
    with _raw(target) as conn:
        _drop_guards(conn, "audit_checkpoints")
        conn.execute(sa.text("DELETE FROM audit_checkpoints"))
        conn.execute(
            sa.text("INSERT INTO audit_checkpoints (records, head, at) VALUES (:c, :h, :at)"),
            {"c": count, "h": head, "at": at},
        )


def _keep_first_checkpoint(target: Target) -> None:
    if not is_url(target):
        checkpoints = _checkpoint_file(target)
        checkpoints.write_text(checkpoints.read_text().splitlines()[0] + "\n")
        return
    with _raw(target) as conn:
        _drop_guards(conn, "audit_checkpoints")
        conn.execute(
            sa.text(
                "DELETE FROM audit_checkpoints WHERE id > (SELECT MIN(id) FROM audit_checkpoints)"
            )
        )


def _remove_checkpoints(target: Target) -> str:
    """Remove every checkpoint; what verify says about it."""
    if not is_url(target):
        _checkpoint_file(target).unlink()
        return "checkpoint file is missing"
    with _raw(target) as conn:
        _drop_guards(conn, "audit_checkpoints")
        conn.execute(sa.text("DELETE FROM audit_checkpoints"))
    return "there is no checkpoint (table audit_checkpoints"


def test_an_untouched_log_verifies(target: Target) -> None:
    log = _log(target)
    result = log.verify()
    assert result.ok and result.records == 7
    assert (log.checkpoints is None) == is_url(target)


def test_update_delete_and_truncate_are_refused(target: Target) -> None:
    _log(target).close()
    with _raw(target) as conn:  # a checkpoint row to refuse changes to (on SQLite too)
        conn.execute(
            sa.text("INSERT INTO audit_checkpoints (records, head, at) VALUES (1, 'x', 'y')")
        )
    statements = [
        "UPDATE audit SET data = '{}' WHERE seq = 2",
        "DELETE FROM audit WHERE seq = 2",
        "UPDATE audit_checkpoints SET records = 2",
        "DELETE FROM audit_checkpoints",
    ]
    if is_url(target):
        statements += ["TRUNCATE audit", "TRUNCATE audit_checkpoints"]
    for sql in statements:
        with pytest.raises(sa.exc.IntegrityError, match="append-only"), _raw(target) as conn:
            conn.execute(sa.text(sql))


def test_dropped_guards_are_put_back_when_the_log_is_opened(target: Target) -> None:
    _log(target).close()
    _tamper(target)  # drops the triggers
    AuditLog(target).close()
    with pytest.raises(sa.exc.IntegrityError, match="append-only"), _raw(target) as conn:
        conn.execute(sa.text("DELETE FROM audit WHERE seq = 2"))


def test_an_edited_record_is_named(target: Target) -> None:
    _log(target).close()
    _tamper(
        target,
        """UPDATE audit SET data = '{"products":["P9"],"reasons":["als"]}'
                         WHERE seq = 4""",
    )
    result = AuditLog(target, key=KEY).verify()
    assert not result.ok and result.first_bad == 4 and "changed" in result.problem


def test_a_deleted_record_is_named(target: Target) -> None:
    _log(target).close()
    _tamper(target, "DELETE FROM audit WHERE seq = 3")
    result = AuditLog(target, key=KEY).verify()
    assert not result.ok and result.first_bad == 3


def test_reordered_records_are_caught(target: Target) -> None:
    _log(target).close()
    # Swap the contents of records 3 and 5, keeping their sequence numbers.
    _tamper(
        target,
        "UPDATE audit SET seq = -3 WHERE seq = 3",
        "UPDATE audit SET seq = 3 WHERE seq = 5",
        "UPDATE audit SET seq = 5 WHERE seq = -3",
    )
    result = AuditLog(target, key=KEY).verify()
    assert not result.ok and result.first_bad == 3


def test_a_cut_off_tail_is_caught_by_the_checkpoint(target: Target) -> None:
    _log(target).close()
    _tamper(target, "DELETE FROM audit WHERE seq >= 6")
    result = AuditLog(target, key=KEY).verify()
    assert not result.ok and result.first_bad == 6 and "removed" in result.problem


def test_records_of_one_subject_explain_a_customer(target: Target) -> None:
    log = _log(target)
    log.record("verdict", campaign="spring", subject="cu_0002", ok=True, problems=[])
    records = log.records(subject="cu_0002")
    assert [r.kind for r in records] == ["pick", "verdict"]
    assert records[0].data == {"products": ["P2"], "reasons": ["als"]}
    assert [r.seq for r in log.records(campaign="spring", subject="cu_0003")] == [5]
    assert log.records(campaign="autumn") == []
    assert log.verify().ok


def test_an_edit_with_the_chain_recomputed_by_the_plain_hash_is_caught(target: Target) -> None:
    _log(target).close()
    with _raw(target) as conn:
        _drop_guards(conn)
        conn.execute(
            sa.text(
                """UPDATE audit SET data = '{"products":["P9"],"reasons":["als"]}'"""
                " WHERE seq = 4"
            )
        )
        head = _sha256_chain(conn)
    _rewrite_checkpoints(target, 7, head)
    result = AuditLog(target, key=KEY).verify()
    assert not result.ok and result.status == "tampered" and result.first_bad == 1


def test_making_a_keyed_log_look_unkeyed_does_not_pass(target: Target) -> None:
    _log(target).close()
    with _raw(target) as conn:
        _drop_guards(conn)
        conn.execute(
            sa.text(
                """UPDATE audit SET data = '{"products":["P9"],"reasons":["als"]}'"""
                " WHERE seq = 4"
            )
        )
        head = _sha256_chain(conn)
        conn.execute(sa.text("DROP TABLE audit_meta"))
    _rewrite_checkpoints(target, 7, head)
    result = AuditLog(target, key=KEY).verify()
    assert not result.ok and result.status == "unkeyed"


def test_missing_checkpoints_fail(target: Target) -> None:
    _log(target).close()
    said = _remove_checkpoints(target)
    result = AuditLog(target, key=KEY).verify()
    assert not result.ok and said in result.problem


def test_a_checkpoint_behind_the_head_fails(target: Target) -> None:
    _log(target).close()
    _keep_first_checkpoint(target)  # after record 1 of 7
    result = AuditLog(target, key=KEY).verify()
    assert not result.ok and result.first_bad == 2 and "without a checkpoint" in result.problem


def test_a_checkpoint_without_the_key_fails(target: Target) -> None:
    log = _log(target)
    head = log.records()[-1].hash
    log.close()
    _rewrite_checkpoints(target, 7, head)  # right count and head, no MAC
    result = AuditLog(target, key=KEY).verify()
    assert not result.ok and "checkpoint" in result.problem


def test_another_key_is_named_as_such_and_refused_for_writing(target: Target) -> None:
    _log(target).close()
    other = AuditLog(target, key=b"o" * 32)
    result = other.verify()
    assert not result.ok and result.status == "wrong-key" and "REELCAST_AUDIT_KEY" in result.problem
    with pytest.raises(ComplianceError, match="another audit key"):
        other.record("model", campaign="spring", version="v2")
    assert AuditLog(target, key=KEY).verify().ok


def test_reading_needs_no_key_but_writing_and_verifying_do(target: Target) -> None:
    _log(target).close()
    reader = AuditLog(target)
    assert len(reader.records()) == 7
    with pytest.raises(ValueError, match="without the audit key"):
        reader.record("model", campaign="spring")
    with pytest.raises(ValueError, match="without the audit key"):
        reader.verify()


def _unkeyed_log(target: Target) -> None:
    """A log as reelcast wrote it before the audit key: plain SHA-256, checkpoints unsigned."""
    _log(target).close()
    with _raw(target) as conn:
        _drop_guards(conn)
        head = _sha256_chain(conn)
        conn.execute(sa.text("DROP TABLE audit_meta"))
    _rewrite_checkpoints(target, 7, head)


def test_an_unkeyed_log_is_reported_as_such_not_as_tampered(target: Target) -> None:
    _unkeyed_log(target)
    result = AuditLog(target, key=KEY).verify()
    assert not result.ok and result.status == "unkeyed" and "older reelcast" in result.problem
    assert result.unkeyed_records == 7


def test_an_unkeyed_log_is_keyed_by_its_next_append_and_old_edits_are_caught(
    target: Target,
) -> None:
    _unkeyed_log(target)
    with AuditLog(target, key=KEY) as log:
        assert log.record("model", campaign="summer", version="v2") is None
        kinds = [r.kind for r in log.records()]
        assert kinds[7:] == ["audit-key", "model"]
        result = log.verify()
        assert result.ok and result.records == 9 and result.unkeyed_records == 7
        assert not log.seal()  # keyed already
    # From now on the old records cannot be rewritten with the plain hash either.
    with _raw(target) as conn:
        _drop_guards(conn)
        conn.execute(
            sa.text(
                """UPDATE audit SET data = '{"products":["P9"],"reasons":["als"]}'"""
                " WHERE seq = 4"
            )
        )
        _sha256_chain(conn)
    result = AuditLog(target, key=KEY).verify()
    assert not result.ok and result.status == "tampered"


def test_seal_keys_an_unkeyed_log_without_new_decisions(target: Target) -> None:
    _unkeyed_log(target)
    with AuditLog(target, key=KEY) as log:
        assert log.seal()
        assert [r.kind for r in log.records()][-1] == "audit-key"
        assert log.verify().ok


def test_an_empty_log_verifies(target: Target) -> None:
    assert AuditLog(target, key=KEY).verify().ok


def test_a_checkpoint_file_can_be_named_for_a_log_in_a_database(
    database: Callable[[str], Target], tmp_path: Path
) -> None:
    target = database("audit")
    elsewhere = tmp_path / "kept-elsewhere" / "audit.checkpoints"
    elsewhere.parent.mkdir()
    with AuditLog(target, key=KEY, checkpoints=elsewhere) as log:
        log.record("model", campaign="spring", version="v1")
        log.record("model", campaign="spring", version="v2")
        assert len(elsewhere.read_text().splitlines()) == 2
        assert log.verify().ok
    elsewhere.unlink()
    result = AuditLog(target, key=KEY, checkpoints=elsewhere).verify()
    assert not result.ok and "checkpoint file is missing" in result.problem


def test_appends_by_many_threads_with_their_own_logs_make_one_chain(target: Target) -> None:
    threads, batches = 6, 8
    barrier = threading.Barrier(threads)
    errors: list[BaseException] = []

    def append(worker: int) -> None:
        try:
            with AuditLog(target, key=KEY) as log:
                barrier.wait()
                for batch in range(batches):
                    log.append(
                        "pick",
                        campaign=f"w{worker}",
                        entries=[(f"cu_{worker}_{batch}_{i}", {"i": i}) for i in range(3)],
                    )
        except BaseException as exc:
            errors.append(exc)

    running = [threading.Thread(target=append, args=(w,)) for w in range(threads)]
    for t in running:
        t.start()
    for t in running:
        t.join()
    assert errors == []
    with AuditLog(target, key=KEY) as log:
        result = log.verify()
        assert result.ok, result.problem
        assert result.records == threads * batches * 3
        records = log.records()
    # Batches are whole: the three records of one append are next to each other.
    for first in range(0, len(records), 3):
        assert len({(r.campaign, r.at) for r in records[first : first + 3]}) == 1


_APPENDER = """
import sys
import time
from pathlib import Path
from compliance.audit import AuditLog

target, worker, batches, go = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4])
target = target if "://" in target else Path(target)
with AuditLog(target, key=b"k" * 32) as log:
    print("ready", flush=True)
    while not go.exists():
        time.sleep(0.005)
    for batch in range(batches):
        log.append(
            "pick",
            campaign=f"p{worker}",
            entries=[(f"cu_{worker}_{batch}_{i}", {"i": i}) for i in range(2)],
        )
"""


def test_appends_by_many_processes_at_once_make_one_chain(target: Target, tmp_path: Path) -> None:
    AuditLog(target).close()  # the schema made once, not raced for by the appenders
    workers, batches = 4, 15
    go = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _APPENDER, str(target), str(w), str(batches), str(go)],
            cwd=REPO,
            env=os.environ | {"PYTHONPATH": str(REPO)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in range(workers)
    ]
    try:
        for proc in procs:
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "ready", proc.stderr
        go.touch()  # all of them append at once from here
        for proc in procs:
            _, err = proc.communicate(timeout=180)
            assert proc.returncode == 0, err
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    with AuditLog(target, key=KEY) as log:
        result = log.verify()
        assert result.ok, result.problem
        assert result.records == workers * batches * 2
        assert {r.campaign for r in log.records()} == {f"p{w}" for w in range(workers)}
        if is_url(target):  # one checkpoint per batch, in the table, in chain order
            with log._db.read() as conn:
                counts = conn.execute(
                    sa.text("SELECT records FROM audit_checkpoints ORDER BY id")
                ).scalars()
                assert list(counts) == [2 * (i + 1) for i in range(workers * batches)]


def test_a_log_written_before_schema_versions_is_adopted_with_its_records(
    tmp_path: Path,
) -> None:
    path = tmp_path / "audit.sqlite"
    old = sqlite3.connect(path)  # exactly what the earlier code made, and two records
    old.executescript(
        """
        CREATE TABLE IF NOT EXISTS audit (
            seq INTEGER PRIMARY KEY, at TEXT NOT NULL, kind TEXT NOT NULL,
            campaign TEXT NOT NULL, subject TEXT, data TEXT NOT NULL,
            prev_hash TEXT NOT NULL, hash TEXT NOT NULL
        );
        CREATE INDEX IF NOT EXISTS audit_subject ON audit (subject);
        CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
        CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
        CREATE TABLE IF NOT EXISTS audit_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
        """
    )
    old.executemany(
        "INSERT INTO audit_meta VALUES (?, ?)", [("keyed_from", "1"), ("key_id", key_id(KEY))]
    )
    prev, at = GENESIS, "2026-11-01T00:00:00+00:00"
    for seq in (1, 2):
        data = json.dumps({"version": f"v{seq}"}, separators=(",", ":"))
        digest = _keyed_digest(KEY, prev, seq, at, "model", "spring", None, data)
        old.execute(
            "INSERT INTO audit VALUES (?, ?, 'model', 'spring', NULL, ?, ?, ?)",
            (seq, at, data, prev, digest),
        )
        line = {"count": seq, "hash": digest, "at": at}
        line["mac"] = _checkpoint_mac(KEY, seq, digest, at)
        with (tmp_path / "audit.checkpoints").open("a") as checkpoints:
            checkpoints.write(json.dumps(line) + "\n")
        prev = digest
    old.commit()
    old.close()

    with AuditLog(path, key=KEY) as log:
        assert log.verify().ok
        log.record("model", campaign="spring", version="v3")
        assert [r.data for r in log.records()] == [{"version": f"v{i}"} for i in (1, 2, 3)]
        assert log.verify().ok
    check = sqlite3.connect(path)
    versions = [r[0] for r in check.execute("SELECT version_num FROM alembic_version")]
    check.close()
    assert versions == ["audit_0001"]


def test_on_postgresql_a_role_that_may_only_insert_appends_and_cannot_cut(
    postgres: PostgresServer,
) -> None:
    """What docs/operations.md advises: reelcast's role owns nothing of the log."""
    url = postgres.create_database()
    _log(url).close()  # made by the owner
    appender = f"appender_{url.rsplit('/', 1)[1]}"  # roles are the cluster's, not the database's
    with _raw(url) as conn:
        conn.execute(sa.text(f"CREATE ROLE {appender} LOGIN"))
        conn.execute(
            sa.text(
                f"GRANT SELECT, INSERT ON audit, audit_meta, audit_checkpoints TO {appender};"
                f" GRANT USAGE ON SEQUENCE audit_checkpoints_id_seq TO {appender};"
                f" GRANT SELECT ON alembic_version TO {appender}"
            )
        )
    as_appender = url.replace(f"//{postgres.user}@", f"//{appender}@")
    with AuditLog(as_appender, key=KEY) as log:
        log.record("model", campaign="spring", version="v2")
        assert log.verify().ok and log.verify().records == 8
    for sql in ("DROP TRIGGER audit_no_delete ON audit", "DELETE FROM audit_checkpoints"):
        with (
            pytest.raises(sa.exc.ProgrammingError, match=r"owner|permission"),
            _raw(as_appender) as conn,
        ):
            conn.execute(sa.text(sql))
