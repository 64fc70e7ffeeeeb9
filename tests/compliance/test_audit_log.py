"""The audit log is append-only and catches every kind of tampering, naming the record."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

import pytest

from compliance.audit import GENESIS, AuditLog
from compliance.errors import ComplianceError

KEY = b"k" * 32


def _log(tmp_path: Path, n: int = 6) -> AuditLog:
    log = AuditLog(tmp_path / "audit.sqlite", key=KEY)
    log.record("model", campaign="spring", version="svd1-abc", data_hash="d1")
    log.append(
        "pick",
        campaign="spring",
        entries=[(f"cu_{i:04d}", {"products": [f"P{i}"], "reasons": ["als"]}) for i in range(n)],
    )
    return log


def _tamper(tmp_path: Path, *statements: str) -> None:
    db = sqlite3.connect(tmp_path / "audit.sqlite")
    db.execute("DROP TRIGGER audit_no_update")
    db.execute("DROP TRIGGER audit_no_delete")
    for sql in statements:
        db.execute(sql)
    db.commit()
    db.close()


def test_an_untouched_log_verifies(tmp_path: Path) -> None:
    log = _log(tmp_path)
    result = log.verify()
    assert result.ok and result.records == 7


def test_update_and_delete_are_refused(tmp_path: Path) -> None:
    _log(tmp_path).close()
    db = sqlite3.connect(tmp_path / "audit.sqlite")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        db.execute("UPDATE audit SET data = '{}' WHERE seq = 2")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        db.execute("DELETE FROM audit WHERE seq = 2")


def test_an_edited_record_is_named(tmp_path: Path) -> None:
    _log(tmp_path).close()
    _tamper(
        tmp_path,
        """UPDATE audit SET data = '{"products":["P9"],"reasons":["als"]}'
                         WHERE seq = 4""",
    )
    result = AuditLog(tmp_path / "audit.sqlite", key=KEY).verify()
    assert not result.ok and result.first_bad == 4 and "changed" in result.problem


def test_a_deleted_record_is_named(tmp_path: Path) -> None:
    _log(tmp_path).close()
    _tamper(tmp_path, "DELETE FROM audit WHERE seq = 3")
    result = AuditLog(tmp_path / "audit.sqlite", key=KEY).verify()
    assert not result.ok and result.first_bad == 3


def test_reordered_records_are_caught(tmp_path: Path) -> None:
    _log(tmp_path).close()
    # Swap the contents of records 3 and 5, keeping their sequence numbers.
    _tamper(
        tmp_path,
        "UPDATE audit SET seq = -3 WHERE seq = 3",
        "UPDATE audit SET seq = 3 WHERE seq = 5",
        "UPDATE audit SET seq = 5 WHERE seq = -3",
    )
    result = AuditLog(tmp_path / "audit.sqlite", key=KEY).verify()
    assert not result.ok and result.first_bad == 3


def test_a_cut_off_tail_is_caught_by_the_checkpoint(tmp_path: Path) -> None:
    _log(tmp_path).close()
    _tamper(tmp_path, "DELETE FROM audit WHERE seq >= 6")
    result = AuditLog(tmp_path / "audit.sqlite", key=KEY).verify()
    assert not result.ok and result.first_bad == 6 and "removed" in result.problem


def test_records_of_one_subject_explain_a_customer(tmp_path: Path) -> None:
    log = _log(tmp_path)
    log.record("verdict", campaign="spring", subject="cu_0002", ok=True, problems=[])
    records = log.records(subject="cu_0002")
    assert [r.kind for r in records] == ["pick", "verdict"]
    assert records[0].data == {"products": ["P2"], "reasons": ["als"]}
    assert log.verify().ok


def _sha256_chain(db: sqlite3.Connection) -> str:
    """Recompute every record's digest as the unkeyed log did (anyone can); the new head."""
    prev = GENESIS
    rows = db.execute(
        "SELECT seq, at, kind, campaign, subject, data FROM audit ORDER BY seq"
    ).fetchall()
    for seq, at, kind, campaign, subject, data in rows:
        fields = [prev, str(seq), at, kind, campaign, subject or "", data]
        digest = hashlib.sha256("\x1f".join(fields).encode("utf-8")).hexdigest()
        db.execute("UPDATE audit SET prev_hash = ?, hash = ? WHERE seq = ?", (prev, digest, seq))
        prev = digest
    return prev


def _rewrite_checkpoints(tmp_path: Path, count: int, head: str) -> None:
    line = {"count": count, "hash": head, "at": "2026-01-01T00:00:00+00:00"}
    (tmp_path / "audit.checkpoints").write_text(json.dumps(line) + "\n")


def test_an_edit_with_the_chain_recomputed_by_the_plain_hash_is_caught(tmp_path: Path) -> None:
    _log(tmp_path).close()
    db = sqlite3.connect(tmp_path / "audit.sqlite")
    db.execute("DROP TRIGGER audit_no_update")
    db.execute("""UPDATE audit SET data = '{"products":["P9"],"reasons":["als"]}' WHERE seq = 4""")
    head = _sha256_chain(db)
    db.commit()
    db.close()
    _rewrite_checkpoints(tmp_path, 7, head)
    result = AuditLog(tmp_path / "audit.sqlite", key=KEY).verify()
    assert not result.ok and result.status == "tampered" and result.first_bad == 1


def test_making_a_keyed_log_look_unkeyed_does_not_pass(tmp_path: Path) -> None:
    _log(tmp_path).close()
    db = sqlite3.connect(tmp_path / "audit.sqlite")
    db.execute("DROP TRIGGER audit_no_update")
    db.execute("""UPDATE audit SET data = '{"products":["P9"],"reasons":["als"]}' WHERE seq = 4""")
    head = _sha256_chain(db)
    db.execute("DROP TABLE audit_meta")
    db.commit()
    db.close()
    _rewrite_checkpoints(tmp_path, 7, head)
    result = AuditLog(tmp_path / "audit.sqlite", key=KEY).verify()
    assert not result.ok and result.status == "unkeyed"


def test_a_missing_checkpoint_file_fails(tmp_path: Path) -> None:
    _log(tmp_path).close()
    (tmp_path / "audit.checkpoints").unlink()
    result = AuditLog(tmp_path / "audit.sqlite", key=KEY).verify()
    assert not result.ok and "checkpoint file is missing" in result.problem


def test_a_checkpoint_behind_the_head_fails(tmp_path: Path) -> None:
    _log(tmp_path).close()
    checkpoints = tmp_path / "audit.checkpoints"
    first = checkpoints.read_text().splitlines()[0]  # after record 1 of 7
    checkpoints.write_text(first + "\n")
    result = AuditLog(tmp_path / "audit.sqlite", key=KEY).verify()
    assert not result.ok and result.first_bad == 2 and "without a checkpoint" in result.problem


def test_a_checkpoint_without_the_key_fails(tmp_path: Path) -> None:
    log = _log(tmp_path)
    head = log.records()[-1].hash
    log.close()
    _rewrite_checkpoints(tmp_path, 7, head)  # right count and head, no MAC
    result = AuditLog(tmp_path / "audit.sqlite", key=KEY).verify()
    assert not result.ok and "checkpoint" in result.problem


def test_another_key_is_named_as_such_and_refused_for_writing(tmp_path: Path) -> None:
    _log(tmp_path).close()
    other = AuditLog(tmp_path / "audit.sqlite", key=b"o" * 32)
    result = other.verify()
    assert not result.ok and result.status == "wrong-key" and "REELCAST_AUDIT_KEY" in result.problem
    with pytest.raises(ComplianceError, match="another audit key"):
        other.record("model", campaign="spring", version="v2")
    assert AuditLog(tmp_path / "audit.sqlite", key=KEY).verify().ok


def test_reading_needs_no_key_but_writing_and_verifying_do(tmp_path: Path) -> None:
    _log(tmp_path).close()
    reader = AuditLog(tmp_path / "audit.sqlite")
    assert len(reader.records()) == 7
    with pytest.raises(ValueError, match="without the audit key"):
        reader.record("model", campaign="spring")
    with pytest.raises(ValueError, match="without the audit key"):
        reader.verify()


def _unkeyed_log(tmp_path: Path) -> None:
    """A log as reelcast wrote it before the audit key: plain SHA-256, checkpoints unsigned."""
    _log(tmp_path).close()
    db = sqlite3.connect(tmp_path / "audit.sqlite")
    db.execute("DROP TRIGGER audit_no_update")
    head = _sha256_chain(db)
    db.execute("DROP TABLE audit_meta")
    db.commit()
    db.close()
    _rewrite_checkpoints(tmp_path, 7, head)


def test_an_unkeyed_log_is_reported_as_such_not_as_tampered(tmp_path: Path) -> None:
    _unkeyed_log(tmp_path)
    result = AuditLog(tmp_path / "audit.sqlite", key=KEY).verify()
    assert not result.ok and result.status == "unkeyed" and "older reelcast" in result.problem
    assert result.unkeyed_records == 7


def test_an_unkeyed_log_is_keyed_by_its_next_append_and_old_edits_are_caught(
    tmp_path: Path,
) -> None:
    _unkeyed_log(tmp_path)
    with AuditLog(tmp_path / "audit.sqlite", key=KEY) as log:
        assert log.record("model", campaign="summer", version="v2") is None
        kinds = [r.kind for r in log.records()]
        assert kinds[7:] == ["audit-key", "model"]
        result = log.verify()
        assert result.ok and result.records == 9 and result.unkeyed_records == 7
        assert not log.seal()  # keyed already
    # From now on the old records cannot be rewritten with the plain hash either.
    db = sqlite3.connect(tmp_path / "audit.sqlite")
    db.execute("DROP TRIGGER audit_no_update")
    db.execute("""UPDATE audit SET data = '{"products":["P9"],"reasons":["als"]}' WHERE seq = 4""")
    _sha256_chain(db)
    db.commit()
    db.close()
    result = AuditLog(tmp_path / "audit.sqlite", key=KEY).verify()
    assert not result.ok and result.status == "tampered"


def test_seal_keys_an_unkeyed_log_without_new_decisions(tmp_path: Path) -> None:
    _unkeyed_log(tmp_path)
    with AuditLog(tmp_path / "audit.sqlite", key=KEY) as log:
        assert log.seal()
        assert [r.kind for r in log.records()][-1] == "audit-key"
        assert log.verify().ok


def test_an_empty_log_verifies(tmp_path: Path) -> None:
    assert AuditLog(tmp_path / "audit.sqlite", key=KEY).verify().ok
