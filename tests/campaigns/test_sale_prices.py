"""A feed's sale price through the campaign: the video and the email show it, and the
claims check holds the struck "was" price to the feed at check time."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from babel.numbers import format_currency

import campaigns.checks as checks
from campaigns.checks import check_creatives, creative_allowlist
from campaigns.emails import Letterhead, queue_emails
from campaigns.plan import Job, plan_jobs
from compliance.claims import load_policy
from creative.render import Render
from creative.template import Template, load_template
from delivery.links import Links
from delivery.outbox import Outbox
from delivery.policy import leaf_payload
from retail.demo import DemoFiles
from retail.loaders import RetailData, load_retail
from retail.types import Pick, Product

REPO = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def data(small_retailer: DemoFiles) -> RetailData:
    return load_retail(small_retailer.catalog, small_retailer.customers, small_retailer.events)


@pytest.fixture(scope="module")
def price_drop() -> Template:
    return load_template(REPO / "templates", "price-drop", REPO / "assets")


def _with(product: Product, **changes: object) -> Product:
    return Product.model_validate(product.model_dump() | changes)


def _on_sale(data: RetailData) -> tuple[Product, dict[str, Product]]:
    regular = data.products[0]
    on_sale = _with(regular, sale_price=(regular.price * Decimal("0.8")).quantize(Decimal("0.01")))
    return on_sale, {p.id: p for p in data.products} | {on_sale.id: on_sale}


def _job(data: RetailData, template: Template, products: dict[str, Product], pid: str) -> Job:
    customer = data.customers[0]
    pick = Pick(
        customer_id=customer.id,
        product_ids=(pid,),
        scores=(0.9,),
        reasons=("on sale",),
        model_version="test-1",
    )
    [job] = plan_jobs(
        [customer],
        {customer.id: pick},
        products,
        template,
        pseudonym=lambda cid: "ps-sale",
        images_root=data.catalog_dir,
        first_names=False,
        campaign="sale",
    )
    return job


def _render(tmp: Path) -> Render:
    folder = tmp / "render"
    folder.mkdir(exist_ok=True)
    (folder / "poster.jpg").write_bytes(b"jpeg")
    return Render(
        video=folder / "video.mp4",
        poster=folder / "poster.jpg",
        key="s" * 64,
        duration_s=8.0,
        width=720,
        height=1280,
        reused=False,
    )


def test_a_product_on_sale_shows_now_and_was_and_passes_the_claims_check(
    data: RetailData, price_drop: Template, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    on_sale, products = _on_sale(data)
    job = _job(data, price_drop, products, on_sale.id)
    locale = job.customer.locale
    assert job.storyboard.struck_prices == {on_sale.id: on_sale.price}
    texts = job.storyboard.texts()
    assert on_sale.sale_price is not None
    assert format_currency(on_sale.sale_price, on_sale.currency, locale=locale) in texts
    assert format_currency(on_sale.price, on_sale.currency, locale=locale) in texts
    monkeypatch.setattr(checks, "video_problems", lambda job, render: [])

    def verdict(job: Job, products: dict[str, Product]) -> str:
        [checked] = check_creatives(
            [job],
            [_render(tmp_path)],
            products,
            allow=creative_allowlist(list(products.values()), price_drop),
            policy=load_policy(),
            workers=1,
        )
        return checked.verdict

    assert verdict(job, products) == "ok"
    # A "was" the feed does not vouch for is held back, naming the product.
    tampered = replace(
        job,
        storyboard=job.storyboard.model_copy(
            update={"struck_prices": {on_sale.id: on_sale.price + 10}}
        ),
    )
    assert f"discount: struck price of {on_sale.id} shown as" in verdict(tampered, products)
    raised = _with(on_sale, price=on_sale.price + 10)  # the feed changed after the render
    assert f"feed's regular price is {raised.price}" in verdict(job, products | {raised.id: raised})
    ended = data.products[0]  # the sale is over: the struck price is vouched for no more
    problems = verdict(job, products | {ended.id: ended})
    assert f"struck price of {ended.id} shown as {ended.price} is not vouched for" in problems


def test_without_a_sale_price_the_price_drop_template_is_back_in_stock(
    data: RetailData, price_drop: Template
) -> None:
    regular = data.products[0]
    job = _job(data, price_drop, {p.id: p for p in data.products}, regular.id)
    assert job.storyboard.struck_prices == {}
    assert "BACK IN STOCK" in job.storyboard.texts()


def test_the_email_shows_the_price_the_video_shows(
    data: RetailData, price_drop: Template, tmp_path: Path
) -> None:
    on_sale, products = _on_sale(data)
    assert on_sale.sale_price is not None
    assert data.products[1].price_now == data.products[1].price  # no sale
    assert on_sale.price_now == on_sale.sale_price
    job = _job(data, price_drop, products, on_sale.id)
    letterhead = Letterhead(
        links=Links("https://shop.example", unsubscribe_address="unsubscribe@example.com"),
        sender="Shop <shop@example.com>",
        postal_address="1 Main St, Springfield",
        templates_dir=REPO / "templates",
        secret=b"k" * 32,
    )
    with Outbox(tmp_path / "state.sqlite") as outbox:
        queue_emails(
            [(job.recipient(), _render(tmp_path))],
            outbox=outbox,
            campaign="sale",
            subjects=["On sale"],
            products=products,
            letterhead=letterhead,
            due={},
            now=NOW,
        )
        item = outbox.get("sale", job.customer.id)
    assert item is not None
    body = item.email().get_body(("plain",))
    assert body is not None
    text = leaf_payload(body).decode()
    locale = job.customer.locale
    assert format_currency(on_sale.sale_price, on_sale.currency, locale=locale) in text
    assert format_currency(on_sale.price, on_sale.currency, locale=locale) not in text
