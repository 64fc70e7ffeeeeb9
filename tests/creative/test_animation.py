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
            {"type": "text", "role": "ai_label", "text": "AI", "font": "body", "color": "white",
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


def test_still_spans_are_the_held_stretches_of_the_design(tmp_path: Path) -> None:
    board = _board(tmp_path, [{**WHITE_RECT, "start": 1.0, "fade_in": 1.0}])
    assert board.still_spans() == [(0.0, 1.1), (2.0, 3.9)]
