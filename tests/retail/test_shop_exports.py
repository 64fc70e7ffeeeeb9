"""Shop exports: Shopify's product and customer CSVs into Products and Customers, the
consent words our own customers CSV accepts, and `reelcast recs evaluate` saying which
file's rows it left out before it says the events are unusable."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from retail.errors import RetailDataError
from retail.feeds import detect_customers_format, email_id, load_catalog, load_customers
from retail.loaders import Loaded, load_rows
from retail.types import Consent, Customer, Product

FEEDS = Path(__file__).parents[1] / "fixtures" / "feeds"
SHOP = "https://shop.example/"


def _shopify(**options: str | None) -> Loaded[Product]:
    given = {"shop_url": SHOP, "currency": "eur"} | options
    return load_catalog(
        FEEDS / "shopify_products.csv",
        "skip",
        shop_url=given["shop_url"],
        currency=given["currency"],
    )


# -- Shopify products ---------------------------------------------------------------------


def test_shopify_product_is_its_cheapest_in_stock_variant_with_compare_at_as_was_price() -> None:
    loaded = _shopify()
    tee = loaded.items[0]
    assert tee == Product(
        id="classic-tee",
        title="Classic Tee",
        brand="Weft",
        category="T-Shirts",
        # S (18.00) has no stock; M costs 20.00 and was 25.00 (Variant Compare At Price)
        price=Decimal("25.00"),
        sale_price=Decimal("20.00"),
        currency="EUR",
        image="https://cdn.shopify.example/tee-front.jpg",  # Image Position 1, on row 3
        url="https://shop.example/products/classic-tee",
        in_stock=True,
        description="Soft organic cotton. Made in Portugal.",
    )
    assert loaded.lines[0] == 2


def test_shopify_untracked_stock_category_fallback_and_html_description() -> None:
    mug = {p.id: p for p in _shopify().items}["ceramic-mug"]
    assert mug.in_stock is True  # quantity 0, but the inventory is not tracked
    assert mug.category == "Mugs"  # no Type: the last segment of Product Category
    assert (mug.price, mug.sale_price) == (Decimal("12.50"), None)  # compare-at is lower
    assert mug.description == "Holds 350 ml. Dishwasher safe & stackable."  # no script


def test_shopify_drafts_and_sold_out_products_are_kept_not_in_stock() -> None:
    products = {p.id: p for p in _shopify().items}
    assert (products["bucket-hat"].in_stock, products["bucket-hat"].price) == (
        False,  # Status draft
        Decimal("30.00"),
    )
    scarf = products["wool-scarf"]
    assert (scarf.in_stock, scarf.price) == (False, Decimal("40.00"))  # both at 0: cheapest


def test_shopify_bad_variant_row_names_the_column_and_line() -> None:
    loaded = _shopify()
    assert [p.id for p in loaded.items] == [
        "classic-tee",
        "ceramic-mug",
        "bucket-hat",
        "wool-scarf",
    ]
    path = FEEDS / "shopify_products.csv"
    assert [str(p) for p in loaded.problems] == [
        f"{path}:10: Variant Price: must be an amount written with a point for decimals, "
        "no thousands separator"
    ]
    assert loaded.skipped_rows == 1


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"shop_url": None}, "shop_url is missing"),
        ({"shop_url": "shop.example"}, r"shop_url is not an http\(s\) address"),
        ({"currency": None}, "currency is missing"),
        ({"currency": "euro"}, "currency is not an ISO 4217 code"),
    ],
)
def test_shopify_needs_shop_url_and_currency_by_name(
    options: dict[str, str | None], expected: str
) -> None:
    with pytest.raises(RetailDataError, match=expected):
        _shopify(**options)


def test_shopify_export_missing_a_column_names_it(tmp_path: Path) -> None:
    path = tmp_path / "products_export.csv"
    path.write_text("Handle,Title,Vendor,Variant Price\ntee,Tee,Weft,10.00\n")
    with pytest.raises(RetailDataError) as info:
        load_catalog(path, shop_url=SHOP, currency="EUR")
    assert [str(p) for p in info.value.problems] == [
        f"{path}:1: Image Src: missing column (required: Handle, Title, Vendor, "
        "Variant Price, Image Src)"
    ]


# -- Shopify customers --------------------------------------------------------------------


def test_shopify_customers_ids_consent_country_and_phone() -> None:
    path = FEEDS / "shopify_customers.csv"
    assert detect_customers_format(path) == "shopify"
    loaded = load_customers(path, "skip")
    ann, bo, cy, di, solo = loaded.items
    assert ann == Customer(
        id="7204331167801",  # Shopify's leading ' removed
        email="ann@example.com",
        first_name="Ann",
        last_name="Lee",
        phone="+4930123456",
        country="DE",
        marketing_consent=Consent.granted,  # "yes"
        consent_source="shopify export",
    )
    assert (ann.locale, ann.timezone) == ("en_US", "UTC")  # not in the export: defaults
    assert [c.marketing_consent for c in (bo, cy, di)] == [
        Consent.denied,  # "no"
        Consent.unknown,  # empty
        Consent.unknown,  # "pending": not a yes
    ]
    assert (bo.country, cy.country, bo.last_name) == ("FR", "US", None)
    # No first name (a guest checkout): kept, consenting, and never personalized.
    assert (solo.first_name, solo.marketing_consent) == ("", Consent.granted)
    assert ann.personalization and not solo.personalization
    assert loaded.problems == []


def test_older_shopify_customers_get_an_id_from_their_email() -> None:
    path = FEEDS / "shopify_customers_legacy.csv"
    assert detect_customers_format(path) == "shopify"
    loaded = load_customers(path, "skip")
    eve, finn = loaded.items
    assert eve.id == "c_efa23192e66ba414" == email_id(" eve.park@example.COM ")
    assert (eve.marketing_consent, eve.country) == (Consent.granted, "CA")  # Accepts Marketing
    assert (finn.marketing_consent, finn.country) == (Consent.denied, "US")
    assert [str(p) for p in loaded.problems] == [f"{path}:4: Email: is required but empty"]
    with pytest.raises(RetailDataError, match="Email: is required but empty"):
        load_customers(path)


def test_our_customers_csv_is_detected_and_read_as_before(tmp_path: Path) -> None:
    path = tmp_path / "customers.csv"
    path.write_text("id,email,first_name,marketing_consent\nC1,a@example.com,Ann,granted\n")
    assert detect_customers_format(path) == "reelcast"
    assert load_customers(path).items[0].marketing_consent is Consent.granted


# -- consent words in our own CSV ---------------------------------------------------------

CUSTOMERS = "id,email,first_name,marketing_consent\n"


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("true", Consent.granted),
        ("Yes", Consent.granted),
        ("y", Consent.granted),
        ("1", Consent.granted),
        ("subscribed", Consent.granted),
        ("opted_in", Consent.granted),
        ("Opt-In", Consent.granted),
        ("granted", Consent.granted),
        ("FALSE", Consent.denied),
        ("no", Consent.denied),
        ("n", Consent.denied),
        ("0", Consent.denied),
        ("unsubscribed", Consent.denied),
        ("opted_out", Consent.denied),
        ("not subscribed", Consent.denied),
        ("denied", Consent.denied),
        ("", Consent.unknown),
        ("unknown", Consent.unknown),
        ("pending", Consent.unknown),
        ("NULL", Consent.unknown),
    ],
)
def test_consent_words(tmp_path: Path, word: str, expected: Consent) -> None:
    path = tmp_path / "customers.csv"
    path.write_text(f"{CUSTOMERS}C1,a@example.com,Ann,{word}\n")
    assert load_rows(path, Customer).items[0].marketing_consent is expected


@pytest.mark.parametrize("word", ["maybe", "si", "2", "double_opt_in"])
def test_any_other_consent_word_is_a_bad_row_that_lists_the_accepted_ones(
    tmp_path: Path, word: str
) -> None:
    path = tmp_path / "customers.csv"
    path.write_text(f"{CUSTOMERS}C1,a@example.com,Ann,{word}\n")
    with pytest.raises(RetailDataError) as info:
        load_rows(path, Customer)
    [problem] = info.value.problems
    assert (problem.line, problem.field) == (2, "marketing_consent")
    assert "must be granted, denied or unknown (also true/false, yes/no" in problem.problem
    assert word not in problem.problem


# -- `reelcast recs evaluate` names the file whose rows it left out ----------------------


def _retailer(tmp_path: Path, consent: str) -> list[str]:
    catalog = tmp_path / "catalog.csv"
    catalog.write_text(
        "id,title,brand,category,price,currency,image,url\n"
        "P1,Mug,Acme,Kitchen,9.00,EUR,m.jpg,https://s.example/1\n"
        "P2,Cup,Acme,Kitchen,7.00,EUR,c.jpg,https://s.example/2\n"
    )
    customers = tmp_path / "customers.csv"
    customers.write_text(
        f"{CUSTOMERS}C1,a@example.com,Ann,{consent}\nC2,b@example.com,Bo,{consent}\n"
    )
    events = tmp_path / "events.csv"
    events.write_text(
        "customer_id,product_id,type,timestamp\n"
        "C1,P1,view,2026-01-01T10:00:00+00:00\n"
        "C2,P2,purchase,2026-01-02T10:00:00+00:00\n"
    )
    return ["--catalog", str(catalog), "--customers", str(customers), "--events", str(events)]


def test_evaluate_reports_the_customers_left_out_before_blaming_the_events(
    tmp_path: Path,
) -> None:
    from cli.main import app

    files = _retailer(tmp_path, "maybe")
    result = CliRunner().invoke(app, ["recs", "evaluate", *files, "--json"])
    assert result.exit_code == 2
    customers = files[3]
    lines = result.stderr.splitlines()
    assert lines[0] == f"warning: {customers}: 2 bad row(s) left out"
    assert lines[1].startswith(f"  {customers}:2: marketing_consent: value error, must be")
    assert lines[2].startswith(f"  {customers}:3: marketing_consent:")
    assert lines[-1].startswith("error: ") and "no usable events" in lines[-1]
    assert "2 event(s) name a customer or product missing" in lines[-1]
    assert result.stdout == ""


def test_evaluate_reads_true_as_consent_and_keeps_the_customers(tmp_path: Path) -> None:
    from cli.main import app

    result = CliRunner().invoke(app, ["recs", "evaluate", *_retailer(tmp_path, "true")])
    assert result.exit_code == 2  # two events are too few to hold one out, but usable
    assert "warning:" not in result.stderr
    assert "no usable events" not in result.stderr
    assert "no customer has enough events" in result.stderr
