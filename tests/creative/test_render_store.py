"""The render store: renders shared between workers through S3 (moto's S3 server on
loopback, spoken to by s3fs over real HTTP), and the local folder store that is today's
renders folder exactly."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from creative import LocalRenderer, Render, Storyboard, Template, build_storyboard
from creative.render import (
    GIF_FILE,
    MANIFEST_FILE,
    POSTER_FILE,
    VIDEO_FILE,
    render_dir,
)
from creative.scenes import SceneRenderer
from creative.store import RenderStore, StoredRenderer, StoreError, local_copy
from retail.types import Customer, Pick, Product
from tests.s3 import S3Server, moto_s3


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    with moto_s3() as server:
        yield server


class CountingRenderer(LocalRenderer):
    """The local renderer, counting the videos it actually makes."""

    def __init__(self) -> None:
        super().__init__()
        self.made = 0

    def _render_into(self, storyboard: Storyboard, key: str, folder: Path, out_dir: Path) -> None:
        self.made += 1
        super()._render_into(storyboard, key, folder, out_dir)


class FakeRenderer:
    """Writes a few bytes in the render layout (no ffmpeg), counting what it makes."""

    def __init__(self, content: bytes = b"fake video") -> None:
        self.content = content
        self.made = 0

    def output_keys(self, storyboard: Storyboard) -> tuple[str, ...]:
        return (storyboard.key(),)

    def render(
        self,
        storyboard: Storyboard,
        out_dir: Path,
        *,
        subject: str | None = None,
        customer: Customer | None = None,
    ) -> Render:
        key = storyboard.key()
        folder = render_dir(out_dir, key)
        reused = (folder / MANIFEST_FILE).is_file()
        if not reused:
            self.made += 1
            tmp = folder.with_name(".tmp-fake")
            tmp.mkdir(parents=True)
            for name, data in ((VIDEO_FILE, self.content), (POSTER_FILE, b"p"), (GIF_FILE, b"g")):
                (tmp / name).write_bytes(data)
            (tmp / MANIFEST_FILE).write_text(json.dumps({"key": key}))
            tmp.rename(folder)
        return Render(
            video=folder / VIDEO_FILE,
            poster=folder / POSTER_FILE,
            gif=folder / GIF_FILE,
            key=key,
            duration_s=8.0,
            width=720,
            height=1280,
            reused=reused,
        )

    def costs(self, campaign: str) -> None:
        return None

    def rendered_locally(self, campaign: str) -> dict[str, str]:
        return {}

    def close(self) -> None:
        pass


def _board(
    hero: Template,
    make_product: Callable[..., Product],
    images_root: Path,
    headline: str = "Trailblazer GTX waterproof hiking boots",
) -> Storyboard:
    product = make_product(title=headline)
    customer = Customer(id="c-1", email="a@example.com", first_name="Anna", locale="en_US")
    pick = Pick(
        customer_id="c-1", product_ids=("p1",), scores=(1.0,), reasons=("x",), model_version="m"
    )
    return build_storyboard(hero, pick, {"p1": product}, customer, images_root=images_root)


@pytest.fixture
def board(hero: Template, make_product: Callable[..., Product], images_root: Path) -> Storyboard:
    return _board(hero, make_product, images_root, f"Boots {os.urandom(4).hex()}")


@pytest.fixture(scope="module")
def published(
    s3: S3Server,
    hero: Template,
    images_root: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Storyboard, Render, CountingRenderer]:
    """One real render made by worker A and published to the S3 store."""
    from decimal import Decimal

    product = Product(
        id="p1",
        title="Trailblazer GTX waterproof hiking boots",
        brand="Alpenweg",
        category="Shoes",
        price=Decimal("149.90"),
        currency="EUR",
        image="shoes/p1.jpg",
        url="https://shop.example/p/p1",
    )
    board = _board(hero, lambda **_: product, images_root)
    worker_a = CountingRenderer()
    store = RenderStore(s3.url("shared"), **s3.options())
    render = StoredRenderer(worker_a, store).render(board, tmp_path_factory.mktemp("worker-a"))
    return board, render, worker_a


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.slow
def test_a_render_published_by_one_worker_is_reused_by_another(
    s3: S3Server,
    published: tuple[Storyboard, Render, CountingRenderer],
    tmp_path: Path,
) -> None:
    board, made, worker_a = published
    assert worker_a.made == 1 and not made.reused

    # Worker B: its own store instance (another process, another machine) and cache.
    store_b = RenderStore(s3.url("shared"), **s3.options())
    assert store_b.has(made.key)
    worker_b = CountingRenderer()
    cache_b = tmp_path / "worker-b"
    reused = StoredRenderer(worker_b, store_b).render(board, cache_b)

    assert worker_b.made == 0, "worker B rendered a video worker A had published"
    assert reused.reused and reused.key == made.key
    assert reused.video == render_dir(cache_b, made.key) / VIDEO_FILE
    for ours, theirs in ((reused.video, made.video), (reused.poster, made.poster)):
        assert _sha(ours) == _sha(theirs)
    assert reused.gif is not None and made.gif is not None and _sha(reused.gif) == _sha(made.gif)
    assert reused.content == made.content and reused.duration_s == made.duration_s
    assert not list((cache_b / made.key[:2]).glob(".tmp-*")), "no temporary folder left"


def test_a_published_render_reaches_a_machine_that_did_not_make_it(
    s3: S3Server, published: tuple[Storyboard, Render, CountingRenderer], tmp_path: Path
) -> None:
    """The flow's machine gets the bytes of a video a remote worker made (for QC and the
    email's poster/GIF) into its own cache; a local file is used as it is."""
    _, made, _ = published
    store = RenderStore(s3.url("shared"), **s3.options())
    assert local_copy(made, store, tmp_path / "unused") is made

    elsewhere = made.model_copy(
        update={
            "video": tmp_path / "gone" / VIDEO_FILE,
            "poster": tmp_path / "gone" / POSTER_FILE,
            "gif": tmp_path / "gone" / GIF_FILE,
        }
    )
    here = local_copy(elsewhere, store, tmp_path / "flow")
    assert here.video == render_dir(tmp_path / "flow", made.key) / VIDEO_FILE
    assert here.gif is not None and here.gif.read_bytes() == Path(str(made.gif)).read_bytes()
    assert here.poster.read_bytes() == made.poster.read_bytes()

    missing = elsewhere.model_copy(update={"key": "0" * 64})
    with pytest.raises(StoreError, match="neither on this machine nor in"):
        local_copy(missing, store, tmp_path / "flow")


def test_the_presigned_url_serves_the_video_over_http(
    s3: S3Server, published: tuple[Storyboard, Render, CountingRenderer]
) -> None:
    _, made, _ = published
    store = RenderStore(s3.url("shared"), **s3.options())
    url = store.video_url(made.key, expires_s=120)
    assert url.startswith(s3.endpoint) and "X-Amz-Signature=" in url, url
    located = store.locate(made.key)
    assert isinstance(located, str) and located.startswith(s3.endpoint), "redirect there"

    whole = httpx.get(url)
    assert whole.status_code == 200
    assert whole.content == made.video.read_bytes()
    assert whole.headers["content-type"] == "video/mp4"
    assert "immutable" in whole.headers.get("cache-control", "")

    part = httpx.get(url, headers={"Range": "bytes=100-199"})  # players seek like this
    assert part.status_code == 206
    assert part.content == made.video.read_bytes()[100:200]

    unsigned = httpx.get(url.split("?", 1)[0])
    assert unsigned.status_code == 403, "the bucket is private: only signed URLs work"

    poster = httpx.get(store.file_url(made.key, POSTER_FILE))
    assert poster.content == made.poster.read_bytes()
    with store.open(made.key) as handle:  # for an app that streams instead of redirecting
        handle.seek(100)
        assert handle.read(100) == made.video.read_bytes()[100:200]
    assert store.locate("f" * 64) is None


def test_a_half_published_render_is_not_there(
    s3: S3Server, board: Storyboard, tmp_path: Path
) -> None:
    """A worker killed while uploading leaves files without the manifest: nobody reuses
    them, and the next render of the key publishes a whole one over them."""
    store = RenderStore(s3.url("half"), **s3.options())
    key = board.key()
    for name in (VIDEO_FILE, POSTER_FILE, GIF_FILE):  # everything but the marker
        store.fs.pipe_file(store.path(key, name), b"half")

    assert not store.has(key)
    assert not store.exists(key, VIDEO_FILE)
    assert store.locate(key) is None
    assert not store.fetch(key, render_dir(tmp_path / "peek", key))
    assert not (tmp_path / "peek").exists() or not any((tmp_path / "peek").rglob("*.mp4"))
    with pytest.raises(FileNotFoundError):
        store.open(key)

    renderer = FakeRenderer(b"the whole video")
    made = StoredRenderer(renderer, store).render(board, tmp_path / "cache")
    assert renderer.made == 1 and not made.reused
    assert store.has(key)
    assert store.fs.cat_file(store.path(key, VIDEO_FILE)) == b"the whole video"


@pytest.mark.slow
def test_a_broken_published_render_is_made_again_and_replaced(
    s3: S3Server, published: tuple[Storyboard, Render, CountingRenderer], tmp_path: Path
) -> None:
    """A published video that does not match its manifest's fingerprint (a bad copy) is
    rendered again rather than mailed, and the good one replaces it in the store."""
    board, made, _ = published
    store = RenderStore(s3.url("broken"), **s3.options())
    assert store.publish(made.key, made.video.parent)
    assert not store.publish(made.key, made.video.parent), "published once only"
    store.fs.pipe_file(store.path(made.key, VIDEO_FILE), b"not the video")

    worker = CountingRenderer()
    again = StoredRenderer(worker, store).render(board, tmp_path / "cache")
    assert worker.made == 1 and not again.reused
    assert store.fs.cat_file(store.path(made.key, VIDEO_FILE)) == again.video.read_bytes()


def test_deleting_a_render_removes_the_marker_first(
    s3: S3Server, board: Storyboard, tmp_path: Path
) -> None:
    store = RenderStore(s3.url("erase"), **s3.options())
    made = StoredRenderer(FakeRenderer(), store).render(board, tmp_path / "cache")
    assert store.has(made.key)
    assert store.delete(made.key)
    assert not store.has(made.key) and not store.fs.exists(store.path(made.key, VIDEO_FILE))
    assert not store.delete(made.key)


def test_a_gallery_document_is_kept_in_the_store(s3: S3Server) -> None:
    store = RenderStore(s3.url("shared"), **s3.options())
    assert store.get_gallery("spring") is None
    store.put_gallery("spring", b'{"campaign": "spring"}')
    store.put_gallery("spring", b'{"campaign": "spring", "again": true}')
    assert store.get_gallery("spring") == b'{"campaign": "spring", "again": true}'
    # Another worker with the same bucket reads it.
    assert RenderStore(s3.url("shared"), **s3.options()).get_gallery("spring") is not None


def test_an_unreachable_store_is_an_error_naming_it(board: Storyboard, tmp_path: Path) -> None:
    store = RenderStore(
        "s3://nowhere/renders",
        endpoint_url="http://127.0.0.1:9",  # discard port: nothing listens
        key_id="k",
        secret="s",
        region="us-east-1",
        storage_options={
            "config_kwargs": {
                "signature_version": "s3v4",
                "connect_timeout": 1,
                "retries": {"max_attempts": 1},
            }
        },
    )
    with pytest.raises(StoreError, match="s3://nowhere/renders"):
        StoredRenderer(FakeRenderer(), store).render(board, tmp_path)


def test_s3_without_the_extra_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "s3fs" else real(name, *a)
    )
    with pytest.raises(StoreError, match=r"reelcast\[s3\]"):
        RenderStore("s3://bucket/renders")


def test_the_local_store_is_the_renders_folder_itself(board: Storyboard, tmp_path: Path) -> None:
    """The default: nothing copied, the same paths, the same folder the renderer writes."""
    renders = tmp_path / "renders"
    store = RenderStore(renders)
    assert store.is_local and store.holds(renders) and not store.holds(tmp_path)
    made = FakeRenderer().render(board, renders)
    folder = made.video.parent

    assert store.has(made.key)
    assert not store.publish(made.key, folder), "nothing to copy onto itself"
    assert store.fetch(made.key, folder)
    assert store.local_path(made.key) == made.video
    assert store.locate(made.key) == made.video
    assert store.locate(made.key, POSTER_FILE) == made.poster
    assert store.locate("e" * 64) is None
    assert store.video_url(made.key) == made.video.resolve().as_uri()
    assert local_copy(made, store, renders) is made
    assert sorted(p.name for p in renders.rglob("*") if p.is_file()) == sorted(
        [VIDEO_FILE, POSTER_FILE, GIF_FILE, MANIFEST_FILE]
    )
    with pytest.raises(ValueError, match="not a render key"):
        store.path("../../etc")


def test_a_shared_folder_store_copies_whole_folders(board: Storyboard, tmp_path: Path) -> None:
    """A store folder other than the renders folder (a network mount): renders are copied
    into it whole (renamed into place) and fetched from it like from S3."""
    store = RenderStore(tmp_path / "shared")
    made = StoredRenderer(FakeRenderer(), store).render(board, tmp_path / "a")
    assert store.has(made.key) and store.local_path(made.key) != made.video
    assert not list((tmp_path / "shared").rglob(".tmp-*"))
    other = FakeRenderer()
    again = StoredRenderer(other, store).render(board, tmp_path / "b")
    assert other.made == 0 and again.reused
    assert store.delete(made.key) and not store.has(made.key)
    shutil.rmtree(tmp_path / "a")


def test_settings_choose_the_store_and_wrap_the_renderer(
    s3: S3Server, board: Storyboard, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from runtime.renderers import make_renderer, open_render_store
    from runtime.settings import Settings

    for name in list(os.environ):
        if name.startswith("REELCAST_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    settings = Settings(workspace=tmp_path / "ws")
    ws = settings.open_workspace()
    default = open_render_store(settings, ws)
    assert default.holds(ws.renders)
    local = make_renderer(settings, ws, "spring")
    assert type(local) is SceneRenderer and local.store is None, "pieces in the renders folder"
    monkeypatch.setenv("REELCAST_SCENE_REUSE", "false")
    assert type(make_renderer(Settings(workspace=tmp_path / "ws"), ws, "spring")) is LocalRenderer
    monkeypatch.delenv("REELCAST_SCENE_REUSE")

    for name, value in s3.settings_env("from-settings").items():
        monkeypatch.setenv(name, value)
    settings = Settings(workspace=tmp_path / "ws")
    assert "reelcast-test-secret" not in repr(settings)
    store = open_render_store(settings, ws)
    assert store.is_s3 and not store.holds(ws.renders)
    renderer = make_renderer(settings, ws, "spring", store)
    assert isinstance(renderer, StoredRenderer) and isinstance(renderer.inner, SceneRenderer)
    assert renderer.inner.store is store, "segments are shared through the store too"
    made = FakeRenderer().render(board, ws.renders)
    assert store.publish(made.key, made.video.parent)
    assert RenderStore(s3.url("from-settings"), **s3.options()).has(made.key)


def test_the_tracking_app_redirects_videos_to_the_store_and_says_when_it_is_down(
    s3: S3Server, published: tuple[Storyboard, Render, CountingRenderer], tmp_path: Path
) -> None:
    from starlette.testclient import TestClient

    from compliance.suppression import SuppressionList
    from delivery.events_store import TrackingEvents
    from delivery.tracking import create_app

    _, made, _ = published
    store = RenderStore(s3.url("shared"), **s3.options())
    down = RenderStore(
        "s3://nowhere/renders",
        endpoint_url="http://127.0.0.1:9",
        key_id="k",
        secret="s",
        region="us-east-1",
        storage_options={"config_kwargs": {"connect_timeout": 1, "retries": {"max_attempts": 1}}},
    )
    with TrackingEvents(tmp_path / "t.sqlite") as events:
        suppression = SuppressionList(tmp_path / "s.sqlite")

        def app(locate: Callable[[str, str], Path | str | None]) -> TestClient:
            made_app = create_app(
                secret=b"0123456789abcdef0123456789abcdef",
                events=events,
                suppression=suppression,
                allowed_redirect_hosts=["shop.example"],
                locate_render=locate,
            )
            return TestClient(made_app, follow_redirects=False)

        with app(store.locate) as client:
            moved = client.get(f"/r/{made.key}/video.mp4")
            assert moved.status_code == 307
            assert moved.headers["cache-control"] == "private, no-store"
            assert httpx.get(moved.headers["location"]).content == made.video.read_bytes()
            assert client.get(f"/r/{'e' * 64}/video.mp4").status_code == 404
        with app(down.locate) as client:
            unavailable = client.get(f"/r/{made.key}/video.mp4")
            assert unavailable.status_code == 503 and unavailable.headers["retry-after"] == "30"
        suppression.close()
