"""The model registry shared through a store: a model trained on one worker is seen,
fetched and used by another (moto's S3 server on loopback, spoken to by s3fs over real
HTTP), approvals travel both ways, and a store that cannot be reached says so."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from recs.errors import RecsError
from recs.registry import Gate, Registry
from recs.store import ModelStore
from tests.s3 import KEY_ID, REGION, SECRET, S3Server, moto_s3


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    with moto_s3() as server:
        yield server


def _store(s3: S3Server, prefix: str) -> ModelStore:
    return ModelStore(
        s3.url(prefix),
        storage_options={
            "endpoint_url": s3.endpoint,
            "key": KEY_ID,
            "secret": SECRET,
            "client_kwargs": {"region_name": REGION},
            "use_listings_cache": False,
        },
    )


def _save(text: str, extra: str | None = None):
    def save(folder: Path) -> None:
        (folder / "model.bin").write_text(text)
        if extra is not None:
            (folder / "parts").mkdir()
            (folder / "parts" / "index.bin").write_text(extra)

    return save


def test_a_model_trained_on_one_worker_is_used_by_another(s3: S3Server, tmp_path: Path) -> None:
    a = Registry(tmp_path / "a", _store(s3, "shared-1"))
    b = Registry(tmp_path / "b", _store(s3, "shared-1"))
    assert b.all() == [] and b.approved() is None

    record = a.register(
        "v1",
        _save("weights", extra="index"),
        data_hash="d1",
        params={"k": 1},
        metrics={"ndcg@10": 0.3, "baseline_ndcg@10": 0.1},
        gate=Gate(),
    )
    assert record.approved
    assert b.get("v1") == record and b.all() == [record] and b.approved() == record
    assert not (tmp_path / "b" / "v1").exists(), "records come from the store, not files"

    folder = b.path("v1")  # what recs.training.load reads from
    assert folder == tmp_path / "b" / "v1"
    assert (folder / "model.bin").read_text() == "weights"
    assert (folder / "parts" / "index.bin").read_text() == "index"
    assert (folder / "model.json").is_file()
    assert [p.name for p in (tmp_path / "b").iterdir()] == ["v1"], "no temporary folder left"
    assert b.path("v1") == folder  # cached: not fetched again

    # B's gate compares against the model A trained.
    time.sleep(0.01)
    worse = b.register(
        "v2", _save("w2"), data_hash="d2", params={}, metrics={"ndcg@10": 0.1}, gate=Gate()
    )
    assert not worse.approved and "below" in worse.approval_note
    assert [r.version for r in a.all()] == ["v1", "v2"]
    assert a.register("v2", _save("other"), data_hash="d2", params={}, metrics={}) == worse


def test_an_approval_on_one_worker_is_seen_by_the_other(s3: S3Server, tmp_path: Path) -> None:
    a = Registry(tmp_path / "a", _store(s3, "shared-2"))
    b = Registry(tmp_path / "b", _store(s3, "shared-2"))
    a.register("v1", _save("1"), data_hash="d", params={}, metrics={"ndcg@10": 0.3}, gate=Gate())
    time.sleep(0.01)
    a.register("v2", _save("2"), data_hash="d", params={}, metrics={"ndcg@10": 0.1}, gate=Gate())
    assert b.approved().version == "v1"  # read once: a cache would now go stale

    b.approve("v2", by="operator", note="the new catalog")
    current = a.approved()
    assert current.version == "v2" and current.approved_by == "operator"
    assert (a.path("v2") / "model.bin").read_text() == "2"
    with pytest.raises(RecsError, match="no model 'v9' in s3://"):
        a.approve("v9", by="operator")
    with pytest.raises(RecsError, match="no model 'v9'"):
        a.path("v9")


def test_a_half_published_model_is_not_listed(s3: S3Server, tmp_path: Path) -> None:
    store = _store(s3, "shared-3")
    store.fs.pipe_file(f"{store.root}/v1/model.bin", b"half")  # files, no model.json yet
    registry = Registry(tmp_path, store)
    assert registry.all() == [] and registry.get("v1") is None
    with pytest.raises(RecsError, match="no model 'v1'"):
        registry.path("v1")
    assert not (tmp_path / "v1").exists()


def test_an_unreachable_store_is_an_error_naming_it(tmp_path: Path) -> None:
    store = ModelStore(
        "s3://nowhere/shop",
        storage_options={
            "endpoint_url": "http://127.0.0.1:9",  # discard port: nothing listens
            "key": "k",
            "secret": "s",
            "client_kwargs": {"region_name": "us-east-1"},
            "config_kwargs": {"connect_timeout": 1, "retries": {"max_attempts": 1}},
        },
    )
    registry = Registry(tmp_path, store)
    for call in (
        registry.all,
        registry.approved,
        lambda: registry.get("v1"),
        lambda: registry.path("v1"),
        lambda: registry.register("v1", _save("x"), data_hash="d", params={}, metrics={}),
    ):
        with pytest.raises(RecsError, match="s3://nowhere/shop/models"):
            call()


def test_a_folder_store_shares_models_too(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    a = Registry(tmp_path / "a", str(shared))
    b = Registry(tmp_path / "b", str(shared))
    a.register("v1", _save("m", extra="i"), data_hash="d", params={}, metrics={"ndcg@10": 0.2})
    assert (shared / "models" / "v1" / "model.json").is_file()
    assert [r.version for r in b.all()] == ["v1"]
    assert (b.path("v1") / "parts" / "index.bin").read_text() == "i"


def test_the_runtime_keeps_models_beside_the_renders(
    s3: S3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    from runtime.models import open_registry
    from runtime.settings import Settings

    for name in list(os.environ):
        if name.startswith("REELCAST_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    settings = Settings(workspace=tmp_path / "a")
    local = open_registry(settings, settings.open_workspace())
    assert local.store is None and local.root == tmp_path / "a" / "models", "today's registry"

    for name, value in s3.settings_env("shop").items():
        monkeypatch.setenv(name, value)
    registries = []
    for name in ("a", "b"):
        settings = Settings(workspace=tmp_path / name)
        registries.append(open_registry(settings, settings.open_workspace()))
    a, b = registries
    assert a.store is not None and a.store.url == s3.url("shop/models")
    assert b.root == tmp_path / "b" / "models"
    a.register("v1", _save("m"), data_hash="d", params={}, metrics={"ndcg@10": 0.2}, gate=Gate())
    assert b.approved().version == "v1"
    assert (b.path("v1") / "model.bin").read_text() == "m"
    assert _store(s3, "shop").read_meta("v1") is not None
