"""The workspace key: made once, whole, private, and the same for everyone who asks."""

from __future__ import annotations

import multiprocessing
import stat
from pathlib import Path

import pytest

from runtime.settings import Settings


def _read_key(args: tuple[str, object]) -> bytes:
    workspace, barrier = args
    barrier.wait()  # type: ignore[attr-defined]
    return Settings(workspace=Path(workspace), pseudonym_secret=None).secret()


def test_processes_starting_together_agree_on_one_private_key(tmp_path: Path) -> None:
    context = multiprocessing.get_context("fork")
    workers = 6
    with context.Manager() as manager, context.Pool(workers) as pool:
        for round_ in range(15):
            workspace = tmp_path / f"ws{round_}"
            barrier = manager.Barrier(workers)
            keys = pool.map(_read_key, [(str(workspace), barrier)] * workers)
            assert len(set(keys)) == 1, f"round {round_}: {len(set(keys))} different keys"
            assert len(keys[0]) == 64
            key_file = workspace / "secret.key"
            assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
            assert [p.name for p in workspace.iterdir()] == ["secret.key"]  # no temp files


def test_an_existing_key_is_kept(tmp_path: Path) -> None:
    first = Settings(workspace=tmp_path, pseudonym_secret=None).secret()
    assert Settings(workspace=tmp_path, pseudonym_secret=None).secret() == first


def test_shared_state_needs_the_same_pseudonym_key_on_every_machine(tmp_path) -> None:
    from retail.errors import ReelcastError
    from runtime.settings import Settings

    settings = Settings(workspace=tmp_path, database_url="postgresql+psycopg://u@h/db")
    with pytest.raises(ReelcastError, match="REELCAST_PSEUDONYM_SECRET"):
        settings.secret()
    assert not (tmp_path / "secret.key").exists()
    keyed = Settings(
        workspace=tmp_path,
        database_url="postgresql+psycopg://u@h/db",
        pseudonym_secret="the-same-on-every-machine-0123456789",
    )
    assert keyed.secret() == b"the-same-on-every-machine-0123456789"
