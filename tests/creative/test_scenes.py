"""Scene reuse (creative/scenes.py): videos joined from segments made once and shared.

Real encodes throughout: segments are x264 files, joined by ffmpeg with stream copy, and
the result is compared with a whole render of the same storyboard, frame by frame.
"""

from __future__ import annotations

import itertools
import json
from decimal import Decimal
from pathlib import Path

import av
import numpy as np
import pytest

from bench.evalkit.video import psnr_per_frame
from creative import load_template
from creative.frames import FrameComposer
from creative.qc import Expect, qc_video
from creative.render import MANIFEST_FILE, LocalRenderer, render_dir
from creative.scenes import SEGMENT_FILE, SceneRenderer, gif_key, plan
from creative.store import PIECE_MARKER, RenderStore
from creative.storyboard import Storyboard, build_storyboard
from retail.types import Customer, Pick, Product

REPO = Path(__file__).resolve().parents[2]


def _board(
    images_root: Path,
    name: str,
    *,
    template: str = "greeting",
    product: str = "p1",
    personalize: bool = True,
) -> Storyboard:
    products = {
        "p1": Product(
            id="p1", title="Trailblazer GTX waterproof hiking boots", brand="Alpenweg",
            category="Shoes", price=Decimal("149.90"), currency="EUR", image="shoes/p1.jpg",
            url="https://shop.example/p/p1",
        ),
        "p2": Product(
            id="p2", title="Merino crew socks, three pairs", brand="Alpenweg",
            category="Socks", price=Decimal("24.00"), currency="EUR", image="p2.png",
            url="https://shop.example/p/p2",
        ),
    }  # fmt: skip
    customer = Customer(id=f"c-{name}", email=f"{name}@example.com", first_name=name)
    pick = Pick(
        customer_id=customer.id, product_ids=(product,), scores=(0.9,), reasons=("t",),
        model_version="t",
    )  # fmt: skip
    return build_storyboard(
        load_template(REPO / "templates", template, REPO / "assets"),
        pick,
        products,
        customer,
        images_root=images_root,
        personalize=personalize,
        previous_prices={"p1": Decimal("199.00")},
    )


def test_only_the_opening_differs_between_names(images_root: Path) -> None:
    anna, ben = _board(images_root, "Anna"), _board(images_root, "Ben")
    a, b = plan(anna), plan(ben)
    frames = anna.format.frame_count
    assert a[0].first == 0 and a[-1].stop == frames
    assert all(x.stop == y.first for x, y in itertools.pairwise(a)), "contiguous"
    personal = [s.personal for s in a]
    assert personal == [True, True, False, False, False], "opening and its transition"
    assert [s.key for s in a][2:] == [s.key for s in b][2:], "shared past the opening"
    assert all(x.key != y.key for x, y in zip(a[:2], b[:2], strict=True))
    assert sum(s.frames for s in a if s.personal) / frames < 0.25
    assert gif_key(anna, a) == gif_key(ben, b), "the GIF shows the product scene only"
    assert sum(s.poster for s in a) == 1 and not next(s for s in a if s.poster).personal
    other = plan(_board(images_root, "Anna", product="p2"))
    assert other[0].key == a[0].key, "the opening shows no product: shared by every Anna"
    assert other[2].key != a[2].key


def test_without_personalization_nothing_is_personal(images_root: Path) -> None:
    segments = plan(_board(images_root, "Anna", personalize=False))
    assert not any(s.personal for s in segments)
    assert segments[0].key == plan(_board(images_root, "Ben", personalize=False))[0].key


def test_a_layer_outside_a_segment_cannot_change_its_key(images_root: Path) -> None:
    board = _board(images_root, "Anna")
    segments = plan(board)
    composer = FrameComposer(board)
    for segment in segments:
        shown = {
            layer.index
            for index in range(segment.first, segment.stop)
            for layer, _ in composer._shown(index / board.format.fps)
        }
        hidden = [i for i in range(len(board.layers)) if i not in shown]
        if not hidden:
            continue
        layers = list(board.layers)
        victim = layers[hidden[0]]
        moved = victim.box.model_copy(update={"x": victim.box.x + 7})
        layers[hidden[0]] = victim.model_copy(update={"box": moved})
        changed = plan(board.model_copy(update={"layers": tuple(layers)}))
        assert changed[segments.index(segment)].key == segment.key


def _decoded(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


@pytest.mark.slow
@pytest.mark.parametrize("template", ["greeting", "price-drop"])
def test_a_joined_video_is_the_whole_render(
    images_root: Path, tmp_path: Path, template: str
) -> None:
    board = _board(images_root, "Anna", template=template)
    whole = LocalRenderer().render(board, tmp_path / "whole")
    joined = SceneRenderer().render(board, tmp_path / "joined")
    assert joined.key == whole.key and not joined.reused
    # The statistics QC relies on are exact: the same as measured on the whole render.
    assert joined.content == whole.content
    verdict = qc_video(joined.video, Expect.from_storyboard(board), joined.content)
    assert verdict.ok, verdict.problems
    full_scan = qc_video(joined.video, Expect.from_storyboard(board))  # decoded in full
    assert full_scan.ok, full_scan.problems
    psnr = psnr_per_frame(joined.video, whole.video)
    assert len(psnr) == board.format.frame_count
    assert min(psnr) >= 40, f"worst frame {min(psnr):.1f} dB"
    # No seam: across each cut the picture changes as much as the designed frames do.
    source = [f.copy() for f in FrameComposer(board).frames()]
    decoded = _decoded(joined.video)
    for segment in plan(board)[1:]:
        c = segment.first
        designed = np.abs(source[c].astype(int) - source[c - 1]).mean()
        shown = np.abs(decoded[c].astype(int) - decoded[c - 1]).mean()
        assert abs(shown - designed) < 1.0, f"seam at frame {c}: {shown:.2f} vs {designed:.2f}"
    manifest = json.loads((joined.video.parent / MANIFEST_FILE).read_text())
    assert manifest["joined"] and len(manifest["pieces"]) >= 3
    assert (joined.gif is not None) and joined.gif.stat().st_size > 0
    assert joined.poster.read_bytes() == whole.poster.read_bytes(), "the same poster frame"


@pytest.mark.slow
def test_a_second_name_renders_only_its_opening(images_root: Path, tmp_path: Path) -> None:
    made: list[tuple[int, int]] = []

    class Counting(SceneRenderer):
        def _make_segment(self, storyboard, segment, folder):  # type: ignore[no-untyped-def]
            made.append((segment.first, segment.stop))
            return super()._make_segment(storyboard, segment, folder)

    renderer = Counting()
    anna = _board(images_root, "Anna")
    renderer.render(anna, tmp_path)
    assert len(made) == len(plan(anna))
    made.clear()
    ben = renderer.render(_board(images_root, "Ben"), tmp_path)
    assert made == [(s.first, s.stop) for s in plan(anna) if s.personal]
    assert qc_video(ben.video, Expect.from_storyboard(_board(images_root, "Ben")), ben.content).ok


@pytest.mark.slow
def test_a_damaged_segment_is_made_again_not_joined(images_root: Path, tmp_path: Path) -> None:
    board = _board(images_root, "Anna")
    renderer = SceneRenderer()
    first = renderer.render(board, tmp_path / "a")
    shared = plan(board)[2]
    damaged = render_dir(tmp_path / "a", shared.key) / SEGMENT_FILE
    damaged.write_bytes(damaged.read_bytes()[: damaged.stat().st_size // 2])
    again = SceneRenderer().render(_board(images_root, "Ben"), tmp_path / "a")
    assert qc_video(again.video, Expect.from_storyboard(board), again.content).ok
    assert damaged.stat().st_size > 0 and first.video.is_file()
    marker = json.loads((damaged.parent / PIECE_MARKER).read_text())
    assert marker["files"][SEGMENT_FILE]["bytes"] == damaged.stat().st_size


@pytest.mark.slow
def test_segments_are_shared_through_the_render_store(images_root: Path, tmp_path: Path) -> None:
    store = RenderStore(tmp_path / "store")
    made: list[str] = []

    class Counting(SceneRenderer):
        def _make_segment(self, storyboard, segment, folder):  # type: ignore[no-untyped-def]
            made.append(segment.key)
            return super()._make_segment(storyboard, segment, folder)

    Counting(store=store).render(_board(images_root, "Anna"), tmp_path / "worker-a")
    assert all(store.has(s.key, PIECE_MARKER) for s in plan(_board(images_root, "Anna")))
    made.clear()
    ben = _board(images_root, "Ben")
    video = Counting(store=store).render(ben, tmp_path / "worker-b")
    assert made == [s.key for s in plan(ben) if s.personal], "worker b fetched the rest"
    assert qc_video(video.video, Expect.from_storyboard(ben), video.content).ok


def test_template_check_says_what_a_name_costs() -> None:
    from creative.check import scene_reuse_cost

    templates, assets = REPO / "templates", REPO / "assets"
    greeting = scene_reuse_cost(load_template(templates, "greeting", assets))
    assert greeting.warnings == () and 0 < greeting.share < 0.25
    hero = scene_reuse_cost(load_template(templates, "hero", assets))
    assert hero.share > 0.7
    assert any("headline" in w and "not marked personal" in w for w in hero.warnings)
    assert any("rendered for every name" in w for w in hero.warnings)


def test_a_scene_renderer_goes_to_another_process(tmp_path: Path) -> None:
    """Dask sends the renderer to its workers: it pickles, without its locks."""
    import pickle

    renderer = SceneRenderer(store=RenderStore(tmp_path / "store"))
    copy = pickle.loads(pickle.dumps(renderer))
    assert copy.store is not None and copy.store.url == renderer.store.url
    assert copy.encode == renderer.encode and copy._checked == {}
    assert len(copy._making) == len(renderer._making), "locks made anew"
