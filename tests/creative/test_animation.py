"""Each animation at chosen times, checked on pixels: fade, slide, scene transitions, zoom."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from PIL import Image

from creative import Storyboard, build_storyboard, load_template
from creative.frames import FrameComposer
from creative.storyboard import ease
from retail.types import Customer, Pick, Product

ASSETS = Path(__file__).resolve().parents[2] / "assets"
W, H = 200, 200


def _board(tmp_path: Path, layers: list[dict[str, Any]], **extra: Any) -> Storyboard:
    """A tiny one-aspect template (black canvas) with the given layers, as a storyboard."""
    spec = {
        "name": "anim",
        "canvas": {"width": W, "height": H},
        "duration_s": 4,
        "fps": 10,
        "brand": {
            "name": "Shop",
            "colors": {"white": "#FFFFFF"},
            "fonts": {"body": "DejaVuSans.ttf"},
        },
        "headlines": [{"text": "Hi"}],
        "layers": [
            {"type": "rect", "box": {"x": 0, "y": 0, "w": 1, "h": 1}, "color": "#000000"},
            *layers,
            {"type": "text", "role": "ai_label", "text": "Yours", "font": "body", "color": "white",
             "box": {"x": 0.05, "y": 0.9, "w": 0.3, "h": 0.06}, "size": {"max": 0.04, "min": 0.03},
             "start": 3.9},
        ],
        **extra,
    }  # fmt: skip
    folder = tmp_path / "templates" / "anim"
    folder.mkdir(parents=True)
    (folder / "template.yaml").write_text(yaml.safe_dump(spec), encoding="utf-8")
    images = tmp_path / "images"
    images.mkdir()
    # A white square of 40 px in the middle of a black 200 px image: its size shows the zoom.
    photo = np.zeros((H, W, 3), np.uint8)
    photo[80:120, 80:120] = 255
    Image.fromarray(photo).save(images / "p.png")
    template = load_template(tmp_path / "templates", "anim", ASSETS)
    product = Product(
        id="p", title="T", brand="B", category="C", price="1.00", currency="EUR",
        image="p.png", url="https://shop.example/p",
    )  # fmt: skip
    customer = Customer(id="c", email="c@example.com", first_name="Ann")
    pick = Pick(
        customer_id="c", product_ids=("p",), scores=(1.0,), reasons=("x",), model_version="m"
    )
    return build_storyboard(template, pick, {"p": product}, customer, images_root=images)


def _frame(board: Storyboard, t: float) -> np.ndarray:
    """The incremental composer's frame at `t` (the path a render takes)."""
    index = round(t * board.format.fps)
    for i, frame in enumerate(FrameComposer(board).frames()):
        if i == index:
            return frame.copy()
    raise AssertionError(t)


WHITE_RECT = {"type": "rect", "color": "white", "box": {"x": 0.25, "y": 0.25, "w": 0.5, "h": 0.5}}


def test_fade_in_is_smoothstep_eased(tmp_path: Path) -> None:
    board = _board(tmp_path, [{**WHITE_RECT, "start": 1.0, "fade_in": 1.0}])
    assert _frame(board, 0.9)[100, 100, 0] == 0
    assert _frame(board, 1.5)[100, 100, 0] == 128  # smoothstep(0.5) = 0.5
    assert _frame(board, 1.2)[100, 100, 0] == round(255 * (0.2**2 * (3 - 0.4)))  # 0.104
    assert _frame(board, 2.0)[100, 100, 0] == 255


def test_slide_in_moves_the_layer_with_ease_out(tmp_path: Path) -> None:
    slide = {"side": "left", "distance": 0.5, "duration": 1.0, "ease": "out"}
    board = _board(tmp_path, [{**WHITE_RECT, "start": 1.0, "slide": slide}])
    for t in (1.0, 1.5, 2.0):
        offset = round(-100 * (1 - ease("out", t - 1.0)))  # 0.5 of the width, from the left
        row = _frame(board, t)[100, :, 0]
        left = int(np.argmax(row > 128))
        assert left == max(0, 50 + offset), t
    assert round(-100 * (1 - ease("out", 0.5))) == -12  # most of the way after half the time


def test_scene_slide_transition_moves_the_whole_scene_in_from_the_right(tmp_path: Path) -> None:
    slide = {"type": "slide_left", "duration": 0.5, "ease": "linear"}
    scenes = [
        {"id": "a", "start": 0, "end": 2.5},
        {"id": "b", "start": 2.0, "end": 4, "transition": slide},
    ]
    layers = [
        {"type": "rect", "scene": "a", "color": "#FF0000", "box": {"x": 0, "y": 0, "w": 1, "h": 1}},
        {"type": "rect", "scene": "b", "color": "#0000FF", "box": {"x": 0, "y": 0, "w": 1, "h": 1}},
    ]
    board = _board(tmp_path, layers, scenes=scenes)
    middle = _frame(board, 2.2)  # 40 % in: scene b covers the right 40 % of the frame
    assert tuple(middle[50, 100]) == (255, 0, 0) and tuple(middle[50, 130]) == (0, 0, 255)
    assert int(np.argmax(middle[50, :, 2] > 128)) == 120
    assert tuple(_frame(board, 2.6)[50, 10]) == (0, 0, 255)


def test_scene_fade_transition_crossfades(tmp_path: Path) -> None:
    fade = {"type": "fade", "duration": 1.0, "ease": "linear"}
    scenes = [
        {"id": "a", "start": 0, "end": 3},
        {"id": "b", "start": 2.0, "end": 4, "transition": fade},
    ]
    layers = [
        {"type": "rect", "scene": "a", "color": "#FF0000", "box": {"x": 0, "y": 0, "w": 1, "h": 1}},
        {"type": "rect", "scene": "b", "color": "#0000FF", "box": {"x": 0, "y": 0, "w": 1, "h": 1}},
    ]
    r, _, b = _frame(_board(tmp_path, layers, scenes=scenes), 2.5)[50, 50]
    assert (int(r), int(b)) == (127, 128)


def _two_scenes(tmp_path: Path, transition: dict[str, Any]) -> Storyboard:
    """Scene a (red, 0–2.5 s), then scene b (blue, from 2 s) coming in with `transition`."""
    scenes = [
        {"id": "a", "start": 0, "end": 2.5},
        {"id": "b", "start": 2.0, "end": 4, "transition": transition},
    ]
    layers = [
        {"type": "rect", "scene": "a", "color": "#FF0000", "box": {"x": 0, "y": 0, "w": 1, "h": 1}},
        {"type": "rect", "scene": "b", "color": "#0000FF", "box": {"x": 0, "y": 0, "w": 1, "h": 1}},
    ]
    return _board(tmp_path, layers, scenes=scenes)


def test_scene_slide_up_transition_moves_the_whole_scene_in_from_below(tmp_path: Path) -> None:
    board = _two_scenes(tmp_path, {"type": "slide_up", "duration": 0.5, "ease": "linear"})
    assert tuple(_frame(board, 1.9)[199, 50]) == (255, 0, 0)  # not started: all red
    middle = _frame(board, 2.2)  # 40 % in: scene b covers the bottom 40 % (rows 120 …)
    column = middle[:, 50]
    assert tuple(column[119]) == (255, 0, 0) and tuple(column[120]) == (0, 0, 255)
    assert int(np.argmax(column[:, 2] > 128)) == 120
    assert tuple(middle[150, 0]) == tuple(middle[150, 199]) == (0, 0, 255)  # full width
    assert tuple(_frame(board, 2.4)[39, 50]) == (255, 0, 0)  # 80 % in: rows 40 …
    assert tuple(_frame(board, 2.4)[40, 50]) == (0, 0, 255)
    assert tuple(_frame(board, 2.5)[0, 50]) == (0, 0, 255)  # done


def test_scene_cut_transition_switches_on_the_scene_start_frame(tmp_path: Path) -> None:
    # A cut ignores its duration: no fade, no slide, the frame at 2.0 s is all scene b.
    board = _two_scenes(tmp_path, {"type": "cut", "duration": 0.5, "ease": "linear"})
    before, at, later = (_frame(board, t) for t in (1.9, 2.0, 2.2))
    assert (before[:, :, 0] == 255).all() and (before[:, :, 2] == 0).all()
    for frame in (at, later):
        assert (frame[:, :, 2] == 255).all() and (frame[:, :, 0] == 0).all()


@pytest.mark.parametrize("zoom_ease", ["linear", "in_out"])
def test_ken_burns_zoom_follows_its_easing_with_sub_pixel_steps(
    tmp_path: Path, zoom_ease: str
) -> None:
    image = {
        "type": "image", "box": {"x": 0, "y": 0, "w": 1, "h": 1}, "end": 4,
        "zoom": {"start": 1.0, "end": 2.0, "ease": zoom_ease},
    }  # fmt: skip
    board = _board(tmp_path, [image])
    part = next(p for p in board.layers if getattr(p, "moving", False))
    for t in (0.0, 1.0, 2.0, 3.0):
        zoom = 2.0 ** ease(zoom_ease, t / 4)
        assert part.zoom(t) == pytest.approx(zoom)
        row = _frame(board, t)[100, :, 0].astype(float)
        width = row.sum() / 255  # area-averaged edges count as fractions of a pixel
        assert width == pytest.approx(40 * zoom, abs=1.0), t
    frames = [
        f[100, :, 0].astype(float).sum() / 255 for f in map(np.copy, FrameComposer(board).frames())
    ]
    expected = np.diff([40 * part.zoom(i / 10) for i in range(len(frames))])
    steps = np.diff(frames)
    # Every frame grows by what the easing says, to a fraction of a pixel: no whole-pixel
    # stepping (a box filter would alternate between ~0 and ~1 px here).
    assert np.abs(steps - expected).max() < 0.25


def test_easing_curves_start_and_end_in_place() -> None:
    for kind in ("linear", "in", "out", "in_out"):
        assert ease(kind, 0) == 0 and ease(kind, 1) == 1
    assert ease("in", 0.5) < 0.5 < ease("out", 0.5)
    assert ease("in_out", 0.5) == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("kind", "x", "expected"),
    [
        # Cubic curves (templates/README.md): in = x³, out = 1 - (1 - x)³, in_out = 4x³ up
        # to the middle, then its mirror image. Numbers written out, not recomputed by ease().
        ("linear", 0.25, 0.25),
        ("linear", 0.7, 0.7),
        ("in", 0.5, 0.125),
        ("in", 0.25, 0.015625),
        ("out", 0.5, 0.875),
        ("out", 0.25, 0.578125),
        ("in_out", 0.25, 0.0625),
        ("in_out", 0.5, 0.5),
        ("in_out", 0.75, 0.9375),
        ("in_out", 0.1, 0.004),
        ("in", -0.5, 0.0),  # clamped to [0, 1]
        ("out", 1.5, 1.0),
    ],
)
def test_easing_curves_are_the_documented_cubics(kind: str, x: float, expected: float) -> None:
    assert ease(kind, x) == pytest.approx(expected, abs=1e-12)


def test_slide_position_at_a_chosen_time_is_pinned(tmp_path: Path) -> None:
    # The white rect (x 50 … 149) slides in from 100 px to the left over 1 s with ease
    # "out": at t = 1.3 (x = 0.3) it has covered 1 - 0.7³ = 65.7 %, so it is
    # 100 × 0.343 = 34.3 px short: it spans x = 16 … 115 (linear would give 20 … 119).
    slide = {"side": "left", "distance": 0.5, "duration": 1.0, "ease": "out"}
    board = _board(tmp_path, [{**WHITE_RECT, "start": 1.0, "slide": slide}])
    row = _frame(board, 1.3)[100, :, 0]
    assert (row[15], row[16], row[115], row[116]) == (0, 255, 255, 0)


def test_ken_burns_zoom_at_a_chosen_time_is_pinned(tmp_path: Path) -> None:
    # Zoom 1 → 2 over 4 s with ease "in": at t = 2 s the eased progress is 0.5³ = 0.125,
    # the zoom 2^0.125 = 1.0905, so the 40 px white square is 43.62 px wide.
    image = {
        "type": "image", "box": {"x": 0, "y": 0, "w": 1, "h": 1}, "end": 4,
        "zoom": {"start": 1.0, "end": 2.0, "ease": "in"},
    }  # fmt: skip
    board = _board(tmp_path, [image])
    part = next(p for p in board.layers if getattr(p, "moving", False))
    assert part.zoom(2.0) == pytest.approx(1.0905077, abs=1e-6)
    width = _frame(board, 2.0)[100, :, 0].astype(float).sum() / 255
    assert width == pytest.approx(43.62, abs=0.5)


def test_still_spans_are_the_held_stretches_of_the_design(tmp_path: Path) -> None:
    board = _board(tmp_path, [{**WHITE_RECT, "start": 1.0, "fade_in": 1.0}])
    assert board.still_spans() == [(0.0, 1.1), (2.0, 3.9)]
