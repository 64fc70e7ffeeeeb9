"""Where each store lives: SQLite files in the workspace, or one database URL for all."""

from __future__ import annotations

from pathlib import Path

from runtime.settings import Settings
from runtime.workspace import STORES, Workspace


def test_without_a_database_url_each_store_is_a_file_in_the_workspace(tmp_path: Path) -> None:
    ws = Settings(workspace=tmp_path).open_workspace()
    assert ws.state_db == tmp_path / "state.sqlite"
    assert ws.tracking_db == tmp_path / "tracking.sqlite"
    assert [ws.target(s) for s in STORES] == [tmp_path / s.file_name for s in STORES]


def test_with_a_database_url_every_store_shares_it_and_no_repr_shows_it(tmp_path: Path) -> None:
    url = "postgresql+psycopg://reelcast:s3cret@db.internal:5432/reelcast"
    ws = Settings(workspace=tmp_path, database_url=url).open_workspace()
    assert {ws.state_db, ws.tracking_db, ws.audit_db, ws.metrics_db} == {url}
    assert {ws.target(s) for s in STORES} == {url}
    assert ws.renders == tmp_path / "renders"  # files stay in the folder
    assert "s3cret" not in repr(ws) and "s3cret" not in repr(Workspace(tmp_path, url))
