"""Storyboards: texts resolved literally, prices per locale, personalization, keys."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from PIL import Image

from creative import (
    CreativeError,
    Storyboard,
    Template,
    TemplateError,
    build_storyboard,
    load_template,
)
from creative.plates import draw_static
from creative.storyboard import ImagePart
from retail.image_files import ImageFiles
from retail.types import Customer, Pick, Product

MakeProduct = Callable[..., Product]
Edit = Callable[[Callable[[dict[str, Any]], None]], Path]
ASSETS = Path(__file__).resolve().parents[2] / "assets"


def _board(
    hero: Template,
    product: Product,
    customer: Customer,
    pick: Pick,
    images_root: Path | ImageFiles,
    **options: object,
) -> Storyboard:
    return build_storyboard(
        hero, pick, {product.id: product}, customer, images_root=images_root, **options
    )


@pytest.mark.parametrize(
    "title",
    [
        "{{ 7*7 }} boots",
        "{% for x in range(3) %}loop{% endfor %}",
        "{{ ''.__class__.__mro__ }}",
        "key: [a, b] # not: yaml",
        "<b>Bold</b> &amp; <script>alert(1)</script>",
    ],
)
def test_title_with_template_or_markup_syntax_is_shown_literally(
    hero: Template,
    make_product: MakeProduct,
    customer: Customer,
    pick: Pick,
    images_root: Path,
    title: str,
) -> None:
    board = _board(hero, make_product(title=title), customer, pick, images_root)
    assert title in board.texts()


def test_first_name_with_template_syntax_is_shown_literally(
    hero: Template, make_product: MakeProduct, customer: Customer, pick: Pick, images_root: Path
) -> None:
    sneaky = customer.model_copy(update={"first_name": "{{ price }}"})
    board = _board(hero, make_product(), sneaky, pick, images_root)
    assert "{{ price }}, this one's for you" in board.texts()


def _edited_hero(template_copy: Edit, field: str, text: str) -> tuple[Template, str]:
    """A hero copy whose `title` layer `field` ("text" or "fallback") is `text`."""
    where: list[str] = []

    def edit(data: dict[str, Any]) -> None:
        index = next(i for i, la in enumerate(data["layers"]) if la.get("id") == "title")
        data["layers"][index][field] = text
        where.append(f"layers[{index}].{field}")

    return load_template(template_copy(edit), "hero", ASSETS), where[0]


@pytest.mark.parametrize(
    "text",
    [
        "{{ title.__class__.__mro__ }}",
        "{{ title.__class__.__mro__[1].__subclasses__() }}",
        "{{ title.format.__globals__ }}",
    ],
)
def test_the_sandbox_refuses_unsafe_access_in_a_template_text(
    template_copy: Edit,
    make_product: MakeProduct,
    customer: Customer,
    pick: Pick,
    images_root: Path,
    text: str,
) -> None:
    # A plain jinja2.Environment renders these (e.g. "(<class 'str'>, <class 'object'>)").
    template, field = _edited_hero(template_copy, "text", text)
    with pytest.raises(TemplateError) as caught:
        _board(template, make_product(), customer, pick, images_root)
    message = str(caught.value)
    assert "unsafe" in message
    assert message.startswith(f"hero/template.yaml: {field}: "), message


@pytest.mark.parametrize(
    ("field", "text", "detail"),
    [
        ("text", "{{ 1/0 }}", "(ZeroDivisionError)"),
        ("text", "{{ range(10**9)|list|length }}", "OverflowError"),
        ("text", "{% if title %}{{ title|no_such_filter }}{% endif %}", "no_such_filter"),
        ("fallback", "{{ title[999] }}", "no element 999"),
    ],
)
def test_runtime_errors_in_a_template_text_name_the_file_and_field(
    template_copy: Edit,
    make_product: MakeProduct,
    customer: Customer,
    pick: Pick,
    images_root: Path,
    field: str,
    text: str,
    detail: str,
) -> None:
    template, where = _edited_hero(template_copy, field, text)
    with pytest.raises(TemplateError) as caught:
        _board(template, make_product(), customer, pick, images_root, personalize=False)
    message = str(caught.value)
    assert message.startswith(f"hero/template.yaml: {where}: "), message
    assert detail in message


def test_a_text_failing_on_a_customers_name_does_not_quote_it(
    template_copy: Edit,
    make_product: MakeProduct,
    customer: Customer,
    pick: Pick,
    images_root: Path,
) -> None:
    # The personalized headline holds the first name; Python's message would quote it
    # ("could not convert string to float: 'Anna, this one's for you'").
    template, where = _edited_hero(template_copy, "text", "{{ headline|filesizeformat }}")
    with pytest.raises(TemplateError) as caught:
        _board(template, make_product(), customer, pick, images_root, personalize=True)
    message = str(caught.value)
    assert message == f"hero/template.yaml: {where}: cannot render the text (ValueError)"
    assert customer.first_name not in message


def test_price_is_formatted_for_the_customers_locale(
    hero: Template, make_product: MakeProduct, customer: Customer, pick: Pick, images_root: Path
) -> None:
    product = make_product(price="1299.90")
    german = _board(hero, product, customer, pick, images_root)
    american = _board(
        hero, product, customer.model_copy(update={"locale": "en_US"}), pick, images_root
    )
    assert "1.299,90\u00a0€" in german.texts()
    assert "€1,299.90" in american.texts()


def test_personalization_off_shows_no_first_name(
    hero: Template, make_product: MakeProduct, customer: Customer, pick: Pick, images_root: Path
) -> None:
    on = _board(hero, make_product(), customer, pick, images_root)
    off = _board(hero, make_product(), customer, pick, images_root, personalize=False)
    assert "Anna, this one's for you" in on.texts()
    assert not any("Anna" in text for text in off.texts())
    assert "This one's for you" in off.texts()


def test_headline_variant_picks_the_templates_headline(
    hero: Template, make_product: MakeProduct, customer: Customer, pick: Pick, images_root: Path
) -> None:
    board = _board(hero, make_product(), customer, pick, images_root, headline_variant=1)
    assert "Picked for you, Anna" in board.texts()
    with pytest.raises(CreativeError, match="headline_variant 7 is out of range"):
        _board(hero, make_product(), customer, pick, images_root, headline_variant=7)


def test_storyboard_holds_no_contact_data_of_the_customer(
    hero: Template, make_product: MakeProduct, customer: Customer, pick: Pick, images_root: Path
) -> None:
    dumped = _board(hero, make_product(), customer, pick, images_root).model_dump_json()
    for private in (customer.email, "Schmidt", "1234567", customer.id):
        assert private not in dumped


def test_storyboard_shows_its_label_and_a_call_to_action(
    hero: Template, make_product: MakeProduct, customer: Customer, pick: Pick, images_root: Path
) -> None:
    texts = _board(hero, make_product(), customer, pick, images_root).texts()
    assert "Shop now" in texts
    assert any("Personalized video" in text for text in texts)
    assert not any("AI" in text.split() for text in texts), "no generated media, no AI claim"


def test_a_different_title_gives_a_different_key(
    hero: Template, make_product: MakeProduct, customer: Customer, pick: Pick, images_root: Path
) -> None:
    first = _board(hero, make_product(), customer, pick, images_root)
    again = _board(hero, make_product(), customer, pick, images_root)
    other = _board(hero, make_product(title="Trailblazer GTX boots"), customer, pick, images_root)
    assert first.key() == again.key()
    assert first.key() != other.key()


def test_unpersonalized_videos_share_a_key_across_customers(
    hero: Template, make_product: MakeProduct, customer: Customer, pick: Pick, images_root: Path
) -> None:
    other = customer.model_copy(update={"id": "c-7", "first_name": "Ben"})
    other_pick = pick.model_copy(update={"customer_id": "c-7"})
    a = _board(hero, make_product(), customer, pick, images_root, personalize=False)
    b = _board(hero, make_product(), other, other_pick, images_root, personalize=False)
    assert a.key() == b.key()


def test_key_follows_image_content_not_image_location(
    hero: Template,
    make_product: MakeProduct,
    customer: Customer,
    pick: Pick,
    images_root: Path,
    tmp_path: Path,
    make_photo: Callable[..., Path],
) -> None:
    moved = tmp_path / "moved"
    shutil.copytree(images_root, moved)
    original = _board(hero, make_product(), customer, pick, images_root)
    assert _board(hero, make_product(), customer, pick, moved).key() == original.key()
    make_photo(moved / "shoes" / "p1.jpg", hue=120)
    assert _board(hero, make_product(), customer, pick, moved).key() != original.key()


def test_encode_settings_are_part_of_the_key(
    hero: Template, make_product: MakeProduct, customer: Customer, pick: Pick, images_root: Path
) -> None:
    board = _board(hero, make_product(), customer, pick, images_root)
    assert board.with_encode(board.encode.model_copy(update={"crf": 28})).key() != board.key()


def test_a_picture_url_is_drawn_from_its_fetched_copy(
    hero: Template, make_product: MakeProduct, customer: Customer, pick: Pick, images_root: Path
) -> None:
    url = "https://cdn.example/p1.jpg?token=secret"
    product = make_product(image=url)
    # Not fetched: the video cannot be made, and the message does not repeat the URL.
    with pytest.raises(CreativeError, match=r"product 'p1'.*not fetched") as caught:
        _board(hero, product, customer, pick, images_root)
    assert "secret" not in str(caught.value)
    fetched = ImageFiles(images_root, {url: images_root / "shoes" / "p1.jpg"})
    board = _board(hero, product, customer, pick, fetched)
    local = _board(hero, make_product(image="shoes/p1.jpg"), customer, pick, images_root)
    # The same picture, whichever way the catalog names it: the same video.
    assert board.key() == local.key()


@pytest.mark.parametrize(
    ("image", "message"),
    [("shoes/missing.jpg", "file not found"), ("../../etc/passwd", "leaves the images folder")],
)
def test_bad_image_paths_name_the_product(
    hero: Template,
    make_product: MakeProduct,
    customer: Customer,
    pick: Pick,
    images_root: Path,
    image: str,
    message: str,
) -> None:
    with pytest.raises(CreativeError, match=f"product 'p1'.*{message}"):
        _board(hero, make_product(image=image), customer, pick, images_root)


def test_unreadable_image_is_reported(
    hero: Template, make_product: MakeProduct, customer: Customer, pick: Pick, tmp_path: Path
) -> None:
    (tmp_path / "broken.jpg").write_bytes(b"not an image")
    with pytest.raises(CreativeError, match="not a readable image"):
        _board(hero, make_product(image="broken.jpg"), customer, pick, tmp_path)


def test_pick_naming_an_unknown_product_is_reported(
    hero: Template, make_product: MakeProduct, customer: Customer, images_root: Path
) -> None:
    pick = Pick(
        customer_id="c-42",
        product_ids=("gone",),
        scores=(1.0,),
        reasons=("x",),
        model_version="m",
    )
    with pytest.raises(CreativeError, match=r"names product 'gone'.*not in the catalog"):
        _board(hero, make_product(), customer, pick, images_root)


def test_brand_logo_is_optional_and_drawn_when_the_kit_has_one(
    hero: Template,
    make_product: MakeProduct,
    customer: Customer,
    pick: Pick,
    images_root: Path,
    tmp_path: Path,
) -> None:
    assets = tmp_path / "assets"
    shutil.copytree(hero.assets_dir, assets)
    Image.new("RGBA", (300, 100), (255, 181, 71, 255)).save(assets / "logo.png")
    templates = tmp_path / "templates"
    shutil.copytree(hero.folder, templates / "hero")
    file = templates / "hero" / "template.yaml"
    data = yaml.safe_load(file.read_text(encoding="utf-8"))
    data["brand"]["logo"] = None  # a template may drop the kit's logo
    data["layers"].append(
        {"id": "wide_logo", "type": "logo", "box": {"x": 0.4, "y": 0.8, "w": 0.2, "h": 0.05}}
    )
    file.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")

    without = _board(
        load_template(templates, "hero", assets), make_product(), customer, pick, images_root
    )
    assert not {"logo", "wide_logo"} & {part.id for part in without.layers}

    data["brand"]["logo"] = "logo.png"
    file.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    with_logo = _board(
        load_template(templates, "hero", assets), make_product(), customer, pick, images_root
    )
    logo = next(part for part in with_logo.layers if part.id == "wide_logo")
    assert isinstance(logo, ImagePart) and logo.fit == "contain"
    plate = draw_static(logo, 720, 1280)
    assert plate is not None and plate.width == logo.box.w  # 3:1 logo fills the 3:1 box width
