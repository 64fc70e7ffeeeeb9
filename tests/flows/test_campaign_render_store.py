"""Two machines, one render store: a campaign run in a second workspace (another worker,
sharing only the S3 bucket) renders nothing the first one rendered, checks the videos it
fetched into its own cache, and keeps its gallery in the store for the tracking app
(moto's S3 server on loopback).

Dry runs: they render, check and write the gallery, and stop before the outbox.
"""

from __future__ import annotations

import pytest

from creative.render import GIF_FILE, MANIFEST_FILE, VIDEO_FILE
from creative.store import RenderStore
from delivery.gallery import Gallery
from tests.s3 import moto_s3

pytestmark = pytest.mark.slow

SECRET = "render-store-test-secret-0123456789"


def test_a_second_worker_reuses_the_first_ones_renders(
    prefect_api, campaign_params, tmp_path, monkeypatch
) -> None:
    from flows.campaign import campaign_flow

    with moto_s3() as s3:
        for name, value in s3.settings_env("campaigns").items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("REELCAST_PSEUDONYM_SECRET", SECRET)
        first = campaign_flow(campaign_params(tmp_path / "a", limit=3, dry_run=True))
        second = campaign_flow(campaign_params(tmp_path / "b", limit=3, dry_run=True))

        assert first.failed_checks == second.failed_checks == {}, "QC read the fetched videos"
        assert first.rendered >= 1 and first.rendered + first.reused_renders == 3
        assert second.rendered == 0, "the second worker rendered videos the store had"
        assert second.reused_renders == 3

        store = RenderStore(s3.url("campaigns"), **s3.options())
        made = {p.parent.name for p in (tmp_path / "a" / "renders").rglob(MANIFEST_FILE)}
        assert len(made) == first.rendered
        assert all(store.has(key) for key in made)
        # The second machine's cache holds the same files, fetched, not rendered.
        fetched = {p.parent.name for p in (tmp_path / "b" / "renders").rglob(MANIFEST_FILE)}
        assert fetched == made
        for key in made:
            for name in (VIDEO_FILE, GIF_FILE):
                a = tmp_path / "a" / "renders" / key[:2] / key / name
                b = tmp_path / "b" / "renders" / key[:2] / key / name
                assert a.read_bytes() == b.read_bytes()

        # One model: the first worker trained it, the second fetched it from the store.
        models = {p.name for p in (tmp_path / "a" / "models").iterdir()}
        assert {p.name for p in (tmp_path / "b" / "models").iterdir()} == models
        assert len(models) == 1 and store.fs.exists(f"{store.root}/models/{models.pop()}")

        # The gallery document is in the store, for the tracking app to serve, showing
        # the renders the store holds; and a page file in the workspace.
        raw = store.get_gallery("spring")
        assert raw is not None
        shown = {item.key for item in Gallery.from_json(raw).items}
        assert shown and shown <= made
        assert "/g/spring?exp=" in second.gallery_url
        assert (tmp_path / "b" / "galleries" / "spring.html").is_file(), "and a local copy"
