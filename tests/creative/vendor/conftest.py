"""Fixtures for the vendor backend: a tiny copy of the hero template, the simulator on
loopback, and vendor renderers with short waits.

The tiny template (a quarter of hero's sizes, 8 fps, a short GIF) keeps every real render
at the simulator short, and the simulators of a session share one render cache, so a
storyboard is encoded once. The client and the simulator load the same template copy, so
the vendor rebuilds exactly the storyboard the client sent.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from creative import Storyboard, Template, build_storyboard, load_template
from creative.vendor import VendorConfig, VendorRenderer
from creative.vendor.serve import ServerThread
from creative.vendor.simulator import Knobs, VendorSimulator
from retail.types import Customer, Pick, Product

REPO = Path(__file__).resolve().parents[3]
ASSETS = REPO / "assets"
API_KEY = "test-key"
WEBHOOK_SECRET = "test-webhook-secret"
PRICE = Decimal("0.05")


@pytest.fixture(scope="session")
def tiny_templates(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("vendor-templates")
    shutil.copytree(REPO / "templates" / "hero", root / "hero")
    file = root / "hero" / "template.yaml"
    data = yaml.safe_load(file.read_text(encoding="utf-8"))
    for aspect in data["aspects"].values():  # a quarter of every size
        canvas = aspect["canvas"]
        canvas["width"], canvas["height"] = canvas["width"] // 4, canvas["height"] // 4
    data["fps"] = 8
    data["gif"] = {"start": 0.6, "duration": 1, "fps": 4, "width": 120}
    file.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), "utf-8")
    return root


@pytest.fixture(scope="session")
def tiny_hero(tiny_templates: Path) -> Template:
    return load_template(tiny_templates, "hero", ASSETS)


@pytest.fixture
def make_board(tiny_hero: Template, images_root: Path) -> Callable[..., Storyboard]:
    """make_board(title=..., personalize=False, customer=None): a tiny hero storyboard."""

    def make(
        title: str = "Trailblazer boots",
        *,
        personalize: bool = False,
        customer: Customer | None = None,
        image: str = "shoes/p1.jpg",
    ) -> Storyboard:
        who = customer or Customer(id="c-1", email="ann.lee@example.com", first_name="Ann")
        product = Product(
            id="p1",
            title=title,
            brand="Alpenweg",
            category="Shoes",
            price=Decimal("149.90"),
            currency="EUR",
            image=image,
            url="https://shop.example/p/p1",
        )
        pick = Pick(
            customer_id=who.id,
            product_ids=("p1",),
            scores=(0.9,),
            reasons=("test",),
            model_version="t",
        )
        return build_storyboard(
            tiny_hero, pick, {"p1": product}, who, images_root=images_root, personalize=personalize
        )

    return make


@pytest.fixture(scope="session")
def vendor_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("vendor-render-cache")


@pytest.fixture
def simulator(
    tmp_path: Path, tiny_templates: Path, vendor_cache: Path
) -> Iterator[tuple[VendorSimulator, str]]:
    """A running simulator (API key test-key) and its base URL."""
    sim = VendorSimulator(
        tmp_path / "vendor",
        tiny_templates,
        ASSETS,
        Knobs(api_key=API_KEY, webhook_secret=WEBHOOK_SECRET),
        renders_dir=vendor_cache,
    )
    with ServerThread(sim.app()) as server:
        yield sim, server.url


@pytest.fixture
def make_renderer(
    tmp_path: Path, simulator: tuple[VendorSimulator, str]
) -> Iterator[Callable[..., VendorRenderer]]:
    """make_renderer(**config): a VendorRenderer on the simulator with short waits."""
    made: list[VendorRenderer] = []

    def make(workspace: Path | None = None, campaign: str = "spring", **overrides: Any):
        settings: dict[str, Any] = {
            "base_url": simulator[1],
            "api_key": API_KEY,
            "webhook_secret": WEBHOOK_SECRET,
            "price_per_second": PRICE,
            "request_timeout_s": 3.0,
            "attempts": 4,
            "backoff_s": 0.05,
            "backoff_max_s": 0.2,
            "poll_s": 0.05,
            "poll_max_s": 0.2,
            "slow_poll_s": 5.0,
            "render_timeout_s": 30.0,
        }
        renderer = VendorRenderer(
            VendorConfig(**(settings | overrides)),
            workspace or tmp_path / "workspace",
            campaign=campaign,
        )
        made.append(renderer)
        return renderer

    yield make
    for renderer in made:
        renderer.close()


@pytest.fixture
def out_dir(tmp_path: Path) -> Path:
    return tmp_path / "workspace" / "renders"
