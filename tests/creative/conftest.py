"""Fixtures for creative/: the shipped hero template, small product photos, a Pick."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from PIL import Image, ImageDraw

from creative import Template, load_template
from retail.types import Customer, Pick, Product

REPO = Path(__file__).resolve().parents[2]
TEMPLATES = REPO / "templates"
ASSETS = REPO / "assets"


@pytest.fixture(scope="session")
def hero() -> Template:
    return load_template(TEMPLATES, "hero", ASSETS)


def _product_photo(path: Path, size: tuple[int, int] = (900, 1100), hue: int = 0) -> Path:
    """A product-like photo: a soft backdrop with a few bold shapes and fine detail."""
    w, h = size
    ys = np.linspace(0, 1, h)[:, None, None]
    xs = np.linspace(0, 1, w)[None, :, None]
    backdrop = np.array([238, 230, 220]) * (1 - 0.2 * ys) + np.array([20, 10, 0]) * xs
    image = Image.fromarray(np.broadcast_to(backdrop, (h, w, 3)).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    draw.ellipse((w * 0.2, h * 0.35, w * 0.8, h * 0.75), fill=((200 + hue) % 256, 60, 50))
    draw.rounded_rectangle((w * 0.3, h * 0.3, w * 0.7, h * 0.55), radius=60, fill=(40, 90, 160))
    for x in range(0, w, 23):
        draw.line((x, h * 0.8, x + 150, h), fill=(170, 160, 150), width=2)
    image.save(path, quality=90)
    return path


@pytest.fixture(scope="session")
def images_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("images")
    (root / "shoes").mkdir()
    _product_photo(root / "shoes" / "p1.jpg")
    _product_photo(root / "p2.png", (640, 640), hue=80)
    return root


@pytest.fixture(scope="session")
def make_photo() -> Callable[..., Path]:
    """Writes a product-like photo: make_photo(path, size=(w, h), hue=0)."""
    return _product_photo


@pytest.fixture
def make_product() -> Callable[..., Product]:
    def make(**fields: Any) -> Product:
        base: dict[str, Any] = {
            "id": "p1",
            "title": "Trailblazer GTX waterproof hiking boots",
            "brand": "Alpenweg",
            "category": "Shoes",
            "price": Decimal("149.90"),
            "currency": "EUR",
            "image": "shoes/p1.jpg",
            "url": "https://shop.example/p/p1",
        }
        return Product(**(base | fields))

    return make


@pytest.fixture
def customer() -> Customer:
    return Customer(
        id="c-42",
        email="anna.schmidt@example.com",
        first_name="Anna",
        last_name="Schmidt",
        phone="+49 30 1234567",
        locale="de_DE",
        timezone="Europe/Berlin",
        country="DE",
    )


@pytest.fixture
def pick() -> Pick:
    return Pick(
        customer_id="c-42",
        product_ids=("p1",),
        scores=(0.93,),
        reasons=("viewed similar",),
        model_version="test-1",
    )


@pytest.fixture
def template_copy(tmp_path: Path) -> Callable[[Callable[[dict[str, Any]], None]], Path]:
    """Copy templates/hero to a temp folder, let the test edit its YAML, return the folder."""

    def copy(edit: Callable[[dict[str, Any]], None]) -> Path:
        templates = tmp_path / "templates"
        shutil.copytree(TEMPLATES / "hero", templates / "hero")
        file = templates / "hero" / "template.yaml"
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
        edit(data)
        file.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), "utf-8")
        return templates

    return copy
