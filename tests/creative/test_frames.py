"""Frame composition: incremental frames equal a from-scratch composite; the zoom is smooth."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from creative import Storyboard, Template, build_storyboard, load_template
from creative.frames import FrameComposer
from creative.plates import Plate, ZoomedImage, blend, draw_static
from creative.storyboard import ImagePart
from retail.types import Customer, Pick, Product


@pytest.fixture
def board(
    hero: Template,
    make_product: Callable[..., Product],
    customer: Customer,
    pick: Pick,
    images_root: Path,
) -> Storyboard:
    product = make_product()
    return build_storyboard(hero, pick, {product.id: product}, customer, images_root=images_root)


def _from_scratch(board: Storyboard) -> Callable[[float], np.ndarray]:
    """Every visible layer composited onto black at time t: no dirty rectangles, no cuts."""
    fmt = board.format
    full = (0, 0, fmt.width, fmt.height)
    drawn: list[tuple[ImagePart | None, Plate | None, ZoomedImage | None]] = []
    for part in board.layers:
        if isinstance(part, ImagePart) and part.moving:
            drawn.append((part, None, ZoomedImage(part, fmt.width, fmt.height)))
        else:
            drawn.append((None, draw_static(part, fmt.width, fmt.height), None))

    def frame(t: float) -> np.ndarray:
        canvas = np.zeros((fmt.height, fmt.width, 3), np.uint8)
        for part, (_, plate, zoom) in zip(board.layers, drawn, strict=True):
            level = round(part.timing.opacity(t) * 255)
            dx, dy = part.timing.offset(t)
            if level and zoom is not None:
                blend(canvas, zoom.mask, level, full, zoom.frame(t), dx, dy)
            elif level and plate is not None:
                blend(canvas, plate, level, full, None, dx, dy)
        return canvas

    return frame


def test_incremental_frames_equal_a_from_scratch_composite(board: Storyboard) -> None:
    # fades, slides, the zoom, the end card sliding up over the product scene
    checked = {0, 4, 9, 20, 37, 100, 144, 147, 150, 153, 156, 160, 175, 191}
    reference = _from_scratch(board)
    for index, frame in enumerate(FrameComposer(board).frames()):
        if index in checked:
            expected = reference(index / board.format.fps)
            assert np.array_equal(frame, expected), f"frame {index} differs"


@pytest.mark.parametrize(("name", "aspect"), [("carousel", "16:9"), ("price-drop", "1:1")])
def test_incremental_frames_equal_from_scratch_in_other_templates_and_aspects(
    name: str, aspect: str, images_root: Path, customer: Customer
) -> None:
    from creative.check import SAMPLE_PREVIOUS_PRICES, SAMPLE_PRODUCTS, sample_images

    repo = Path(__file__).resolve().parents[2]
    template = load_template(repo / "templates", name, repo / "assets", aspect)
    images = sample_images(images_root)
    pick = Pick(
        customer_id=customer.id, product_ids=tuple(p.id for p in SAMPLE_PRODUCTS),
        scores=(1, 1, 1), reasons=("x",) * 3, model_version="m",
    )  # fmt: skip
    board = build_storyboard(
        template, pick, {p.id: p for p in SAMPLE_PRODUCTS}, customer,
        images_root=images, previous_prices=SAMPLE_PREVIOUS_PRICES,
    )  # fmt: skip
    reference = _from_scratch(board)
    # carousel: slide transitions at 2.6 s and 5.0 s, crossfade at 7.0 s
    checked = {0, 13, 30, 63, 65, 68, 121, 124, 170, 172, 175, 190, board.format.frame_count - 1}
    for index, frame in enumerate(FrameComposer(board).frames()):
        if index in checked:
            expected = reference(index / board.format.fps)
            assert np.array_equal(frame, expected), f"frame {index} differs"


def test_zoom_moves_a_little_every_frame_without_whole_pixel_jumps(board: Storyboard) -> None:
    image = next(p for p in board.layers if isinstance(p, ImagePart) and p.moving)
    region = np.s_[image.box.y : image.box.y + image.box.h, image.box.x : image.box.x + image.box.w]
    composer = FrameComposer(board)
    steps, previous = [], None
    for index, frame in enumerate(composer.frames()):
        if 40 <= index <= 140:  # the image is fully shown and nothing else is fading
            current = frame[region].astype(np.int16)
            if previous is not None:
                steps.append(np.abs(current - previous).mean())
            previous = current
    steps_arr = np.array(steps)
    # A whole-pixel zoom repeats frames and then jumps; a sub-pixel zoom changes evenly.
    assert steps_arr.min() > 0
    assert steps_arr.max() < 1.5 * np.median(steps_arr)


def test_plate_bands_skip_transparent_rows_and_copy_opaque_ones() -> None:
    alpha = np.zeros((6, 4), np.uint8)
    alpha[1:3] = 255
    alpha[4, 1] = 128
    plate = Plate(x=0, y=0, rgb=np.full((6, 4, 3), 200, np.uint8), alpha=alpha).premultiply()
    assert plate.bands == [(1, 3, 2), (4, 5, 1)]
    dst = np.zeros((6, 4, 3), np.uint8)
    blend(dst, plate, 255, (0, 0, 4, 6))
    assert (dst[1:3] == 200).all() and dst[0].sum() == 0
    assert dst[4, 1, 0] == round(200 * 128 / 255)
