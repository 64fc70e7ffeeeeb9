"""Aspect variants from one template, the price-drop/back-in-stock switch, the carousel."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from creative import CreativeError, Template, TemplateError, build_storyboard, load_template
from creative.check import SAMPLE_PRODUCTS, sample_images
from creative.storyboard import TextPart
from retail.types import Customer, Pick

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return sample_images(tmp_path_factory.mktemp("samples"))


def _board(template: Template, images: Path, count: int = 3, **kwargs):  # type: ignore[no-untyped-def]
    products = SAMPLE_PRODUCTS[:count]
    customer = Customer(id="c", email="c@example.com", first_name="Ann", locale="en_US")
    pick = Pick(
        customer_id="c", product_ids=tuple(p.id for p in products), scores=(1.0,) * count,
        reasons=("x",) * count, model_version="m",
    )  # fmt: skip
    return build_storyboard(
        template, pick, {p.id: p for p in products}, customer, images_root=images, **kwargs
    )


def _texts(board) -> dict[str, TextPart]:  # type: ignore[no-untyped-def]
    return {p.id: p for p in board.layers if isinstance(p, TextPart)}


def test_one_template_gives_three_aspects_with_regions_and_overrides(hero: Template) -> None:
    sizes = {a: (hero.variant(a).spec.canvas.width, hero.variant(a).spec.canvas.height)
             for a in hero.aspects}  # fmt: skip
    assert sizes == {"9:16": (720, 1280), "1:1": (720, 720), "16:9": (1280, 720)}
    wide = hero.variant("16:9").spec
    image = next(layer for layer in wide.layers if layer.id == "product_image")
    title = next(layer for layer in wide.layers if layer.id == "title")
    assert image.box.x + image.box.w < title.box.x  # image left, copy right
    assert title.max_lines == 3  # the per-aspect override
    assert title.size.max == pytest.approx(0.04 * 1.45)  # text_scale
    with pytest.raises(TemplateError, match="no 4:3 variant"):
        load_template(REPO / "templates", "hero", REPO / "assets", "4:3")


def test_a_variant_keys_its_own_render(hero: Template, samples: Path) -> None:
    tall, wide = (_board(hero.variant(a), samples, 1) for a in ("9:16", "16:9"))
    assert tall.key() != wide.key()
    assert (wide.format.width, wide.format.height) == (1280, 720)
    assert wide.gif.width == 320 and tall.gif.width == 240


def test_price_drop_shows_the_old_price_struck_and_the_saving(samples: Path) -> None:
    template = load_template(REPO / "templates", "price-drop", REPO / "assets")
    board = _board(template, samples, 1, previous_prices={"sample-1": Decimal("1699.00")})
    texts = _texts(board)
    assert texts["old_price"].text == "€1,699.00" and texts["old_price"].strike is not None
    assert texts["new_price"].text == "€1,249.99"
    assert texts["badge_drop"].text == "PRICE DROP −26 %"
    assert "badge_back" not in texts and "stock_note" not in texts
    assert board.audio is not None and board.audio.loudness == -16


@pytest.mark.parametrize("previous", [None, {"sample-1": Decimal("999.00")}])
def test_without_a_higher_previous_price_it_is_back_in_stock(
    samples: Path, previous: dict[str, Decimal] | None
) -> None:
    template = load_template(REPO / "templates", "price-drop", REPO / "assets")
    texts = _texts(_board(template, samples, 1, previous_prices=previous))
    assert texts["badge_back"].text == "BACK IN STOCK"
    assert not {"old_price", "new_price", "badge_drop", "end_old_price"} & set(texts)
    assert not any("old_price" in p.text or "−" in p.text for p in texts.values())


def test_old_price_outside_a_price_drop_layer_is_rejected(template_copy) -> None:  # type: ignore[no-untyped-def]
    def edit(data):  # type: ignore[no-untyped-def]
        next(la for la in data["layers"] if la.get("id") == "title")["text"] = "{{ old_price }}"

    with pytest.raises(TemplateError, match="only in layers with `when: price_drop`"):
        load_template(template_copy(edit), "hero", REPO / "assets")


def test_carousel_shows_each_product_of_the_pick_in_turn(samples: Path) -> None:
    template = load_template(REPO / "templates", "carousel", REPO / "assets")
    board = _board(template, samples, 3)
    texts = _texts(board)
    assert [texts[f"title{i}"].text for i in (1, 2, 3)] == [p.title for p in SAMPLE_PRODUCTS]
    starts = [texts[f"title{i}"].timing.start for i in (1, 2, 3)]
    assert starts == pytest.approx([0.4, 3.0, 5.4])  # scene starts 0, 2.6, 5.0 + 0.4
    with pytest.raises(CreativeError, match="has 1"):
        _board(template, samples, 1)


def _on_sale(index: int, sale: str):  # type: ignore[no-untyped-def]
    product = SAMPLE_PRODUCTS[index]
    return product.model_validate(product.model_dump() | {"sale_price": Decimal(sale)})


def test_a_feed_sale_price_is_now_and_the_regular_price_was(samples: Path) -> None:
    template = load_template(REPO / "templates", "price-drop", REPO / "assets")
    on_sale = _on_sale(0, "999.00")  # regular price €1,249.99
    customer = Customer(id="c", email="c@example.com", first_name="Ann", locale="en_US")
    pick = Pick(customer_id="c", product_ids=(on_sale.id,), scores=(1.0,), reasons=("x",),
                model_version="m")  # fmt: skip
    # The feed's was/now wins over an observed previous price for a product on sale.
    for previous in (None, {on_sale.id: Decimal("1699.00")}):
        board = build_storyboard(
            template, pick, {on_sale.id: on_sale}, customer, images_root=samples,
            previous_prices=previous,
        )  # fmt: skip
        texts = _texts(board)
        assert texts["new_price"].text == "€999.00"
        assert texts["old_price"].text == "€1,249.99" and texts["old_price"].strike is not None
        assert texts["end_old_price"].text == "€1,249.99"
        assert texts["badge_drop"].text == "PRICE DROP −20 %"
        assert "badge_back" not in texts
        assert board.struck_prices == {on_sale.id: Decimal("1249.99")}


def test_a_sale_price_is_the_price_of_a_template_without_a_was(
    hero: Template, samples: Path
) -> None:
    on_sale = _on_sale(0, "999.00")
    customer = Customer(id="c", email="c@example.com", first_name="Ann", locale="en_US")
    pick = Pick(customer_id="c", product_ids=(on_sale.id,), scores=(1.0,), reasons=("x",),
                model_version="m")  # fmt: skip
    board = build_storyboard(hero, pick, {on_sale.id: on_sale}, customer, images_root=samples)
    assert "€999.00" in board.texts() and "€1,249.99" not in " ".join(board.texts())
    assert board.struck_prices == {}, "nothing struck, nothing claimed"


def test_without_a_sale_price_a_previous_price_is_the_struck_one(samples: Path) -> None:
    template = load_template(REPO / "templates", "price-drop", REPO / "assets")
    board = _board(template, samples, 1, previous_prices={"sample-1": Decimal("1699.00")})
    assert board.struck_prices == {"sample-1": Decimal("1699.00")}
    assert _board(template, samples, 1).struck_prices == {}
    # What the check needs to know is not part of the render key.
    assert board.key() == board.model_copy(update={"struck_prices": {}}).key()
