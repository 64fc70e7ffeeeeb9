"""`reelcast audit verify` on a workspace's log: keyed chain, checkpoints, older logs.

The log is written through the CLI itself (`reelcast forget` records an erasure), so the
commands are checked end to end, as an operator runs them.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

GENESIS = "0" * 64


def _reelcast(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("REELCAST_")}
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args],
        capture_output=True,
        text=True,
        env=clean | {"COLUMNS": "200"} | (env or {}),
        timeout=120,
        check=False,
    )


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """A workspace whose audit log holds three records (three erasures)."""
    ws = tmp_path / "ws"
    ws.mkdir()
    for customer in ("C1", "C2", "C3"):
        assert _reelcast("forget", customer, "--workspace", str(ws)).returncode == 0
    ok = _reelcast("audit", "verify", "--workspace", str(ws))
    assert ok.returncode == 0 and "OK: 3 records" in ok.stdout, ok.stderr
    return ws


def _verify(ws: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return _reelcast("audit", "verify", "--workspace", str(ws), env=env)


def _one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def _recompute_with_plain_hash(db_path: Path) -> str:
    """What anyone who can write the workspace could do to an unkeyed chain."""
    db = sqlite3.connect(db_path)
    db.execute("DROP TRIGGER IF EXISTS audit_no_update")
    prev = GENESIS
    rows = db.execute("SELECT seq, at, kind, campaign, subject, data FROM audit ORDER BY seq")
    for seq, at, kind, campaign, subject, data in rows.fetchall():
        fields = [prev, str(seq), at, kind, campaign, subject or "", data]
        digest = hashlib.sha256("\x1f".join(fields).encode("utf-8")).hexdigest()
        db.execute("UPDATE audit SET prev_hash = ?, hash = ? WHERE seq = ?", (prev, digest, seq))
        prev = digest
    db.commit()
    db.close()
    return prev


def _checkpoint(ws: Path, count: int, head: str) -> None:
    line = {"count": count, "hash": head, "at": "2026-01-01T00:00:00+00:00"}
    (ws / "audit.checkpoints").write_text(json.dumps(line) + "\n")


def test_an_edit_hidden_by_recomputing_the_chain_is_caught(workspace: Path) -> None:
    db = sqlite3.connect(workspace / "audit.sqlite")
    db.execute("DROP TRIGGER audit_no_update")
    db.execute('UPDATE audit SET data = \'{"mails":0,"outbox_rows":0,"videos":9}\' WHERE seq = 2')
    db.commit()
    db.close()
    head = _recompute_with_plain_hash(workspace / "audit.sqlite")
    _checkpoint(workspace, 3, head)
    assert "BROKEN at record 1" in _one_error_line(_verify(workspace))


def test_a_deleted_checkpoint_file_fails(workspace: Path) -> None:
    (workspace / "audit.checkpoints").unlink()
    line = _one_error_line(_verify(workspace))
    assert "checkpoint file is missing" in line and "audit.checkpoints" in line


def test_a_checkpoint_behind_the_head_fails(workspace: Path) -> None:
    checkpoints = workspace / "audit.checkpoints"
    checkpoints.write_text(checkpoints.read_text().splitlines()[0] + "\n")
    line = _one_error_line(_verify(workspace))
    assert "BROKEN at record 2" in line and "records 2–3" in line


def test_a_checkpoint_ahead_of_the_head_fails(workspace: Path) -> None:
    db = sqlite3.connect(workspace / "audit.sqlite")
    db.execute("DROP TRIGGER audit_no_delete")
    db.execute("DELETE FROM audit WHERE seq = 3")
    db.commit()
    db.close()
    assert "records 3–3 were removed" in _one_error_line(_verify(workspace))


def test_the_audit_key_setting_keys_the_log_and_another_key_is_named(workspace: Path) -> None:
    other = {"REELCAST_AUDIT_KEY": "a-key-kept-outside-the-workspace"}
    line = _one_error_line(_verify(workspace, other))
    assert "another audit key" in line and "REELCAST_AUDIT_KEY" in line
    fresh = workspace.parent / "fresh"
    fresh.mkdir()
    assert _reelcast("forget", "C1", "--workspace", str(fresh), env=other).returncode == 0
    assert _verify(fresh, other).returncode == 0
    assert "another audit key" in _one_error_line(_verify(fresh))


def test_a_log_from_before_the_key_is_named_as_such_and_sealed(workspace: Path) -> None:
    head = _recompute_with_plain_hash(workspace / "audit.sqlite")
    db = sqlite3.connect(workspace / "audit.sqlite")
    db.execute("DROP TABLE audit_meta")  # as an older reelcast left it
    db.commit()
    db.close()
    _checkpoint(workspace, 3, head)
    line = _one_error_line(_verify(workspace))
    assert "older reelcast without an audit key" in line and "reelcast audit seal" in line
    assert "BROKEN" not in line
    sealed = _reelcast("audit", "seal", "--workspace", str(workspace))
    assert sealed.returncode == 0 and "keyed from record 4" in sealed.stdout, sealed.stderr
    ok = _verify(workspace)
    assert ok.returncode == 0 and "records 1–3 were written before the audit key" in ok.stdout
