"""Both local engines render every shipped template into a video that passes QC.

Our compositor (whole, and joined from scene segments) and MoviePy 2 make the same
storyboards; what reaches a customer must pass the same checks whichever made it.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from creative import load_template
from creative.moviepy_render import MoviePyRenderer
from creative.qc import Expect, qc_video
from creative.render import LocalRenderer
from creative.scenes import SceneRenderer
from creative.storyboard import build_storyboard
from retail.types import Customer, Pick, Product

REPO = Path(__file__).resolve().parents[2]
TEMPLATES = ("greeting", "hero", "price-drop", "carousel")


def _board(images_root: Path, template: str):  # type: ignore[no-untyped-def]
    products = {
        f"p{k}": Product(
            id=f"p{k}", title=f"Trailblazer GTX waterproof hiking boots {k}", brand="Alpenweg",
            category="Shoes", price=Decimal("149.90"), currency="EUR", image="shoes/p1.jpg",
            url=f"https://shop.example/p/p{k}",
        )
        for k in range(3)
    }  # fmt: skip
    customer = Customer(id="c-1", email="anna@example.com", first_name="Anna", locale="de_DE")
    pick = Pick(
        customer_id="c-1", product_ids=("p0", "p1", "p2"), scores=(1.0, 0.9, 0.8),
        reasons=("t",) * 3, model_version="t",
    )  # fmt: skip
    spec = load_template(REPO / "templates", template, REPO / "assets")
    return build_storyboard(
        spec, pick, products, customer, images_root=images_root,
        previous_prices={"p0": Decimal("199.00")},
    )  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("template", TEMPLATES)
def test_moviepy_renders_pass_the_same_qc(images_root: Path, tmp_path: Path, template: str) -> None:
    board = _board(images_root, template)
    made = MoviePyRenderer().render(board, tmp_path)
    assert made.key != LocalRenderer().key(board), "other pixels, another key"
    expect = Expect.from_storyboard(board)
    verdict = qc_video(made.video, expect, made.content)
    assert verdict.ok, verdict.problems
    decoded = qc_video(made.video, expect)  # every frame decoded and measured
    assert decoded.ok, decoded.problems
    assert made.poster.stat().st_size > 0 and made.gif is not None and made.gif.is_file()
    again = MoviePyRenderer().render(board, tmp_path)
    assert again.reused and again.key == made.key


@pytest.mark.slow
@pytest.mark.parametrize("template", ["hero", "carousel"])
def test_scene_reuse_renders_pass_the_same_qc(
    images_root: Path, tmp_path: Path, template: str
) -> None:
    board = _board(images_root, template)
    made = SceneRenderer().render(board, tmp_path)
    decoded = qc_video(made.video, Expect.from_storyboard(board))
    assert decoded.ok, decoded.problems


def test_moviepy_as_a_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from runtime.renderers import make_renderer
    from runtime.settings import Settings

    monkeypatch.setenv("REELCAST_RENDERER", "moviepy")
    settings = Settings(workspace=tmp_path / "ws")
    assert type(make_renderer(settings, settings.open_workspace(), "spring")) is MoviePyRenderer
