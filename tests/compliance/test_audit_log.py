"""The audit log is append-only and catches every kind of tampering, naming the record."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from compliance.audit import AuditLog


def _log(tmp_path: Path, n: int = 6) -> AuditLog:
    log = AuditLog(tmp_path / "audit.sqlite")
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
    result = AuditLog(tmp_path / "audit.sqlite").verify()
    assert not result.ok and result.first_bad == 4 and "changed" in result.problem


def test_a_deleted_record_is_named(tmp_path: Path) -> None:
    _log(tmp_path).close()
    _tamper(tmp_path, "DELETE FROM audit WHERE seq = 3")
    result = AuditLog(tmp_path / "audit.sqlite").verify()
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
    result = AuditLog(tmp_path / "audit.sqlite").verify()
    assert not result.ok and result.first_bad == 3


def test_a_cut_off_tail_is_caught_by_the_checkpoint(tmp_path: Path) -> None:
    _log(tmp_path).close()
    _tamper(tmp_path, "DELETE FROM audit WHERE seq >= 6")
    result = AuditLog(tmp_path / "audit.sqlite").verify()
    assert not result.ok and result.first_bad == 6 and "removed" in result.problem


def test_records_of_one_subject_explain_a_customer(tmp_path: Path) -> None:
    log = _log(tmp_path)
    log.record("verdict", campaign="spring", subject="cu_0002", ok=True, problems=[])
    records = log.records(subject="cu_0002")
    assert [r.kind for r in records] == ["pick", "verdict"]
    assert records[0].data == {"products": ["P2"], "reasons": ["als"]}
    assert log.verify().ok
