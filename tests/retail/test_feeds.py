"""Catalog feeds: Merchant Center text and XML feeds, mapped CSVs, our CSV's sale price,
and format detection, each into the Products a campaign uses; bad rows name file, line
and the feed's own column, never a cell's value."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from retail.errors import RetailDataError
from retail.feeds import detect_catalog_format, load_catalog
from retail.types import Product

FEEDS = Path(__file__).parents[1] / "fixtures" / "feeds"
JANUARY = datetime(2026, 1, 15, tzinfo=UTC)
MARCH = datetime(2026, 3, 1, tzinfo=UTC)


def _by_id(products: list[Product]) -> dict[str, Product]:
    return {p.id: p for p in products}


def _messages(problems: list[object]) -> list[str]:
    return [str(p) for p in problems]


# -- our own CSV: the sale price --------------------------------------------------------

CSV_HEADER = "id,title,brand,category,price,sale_price,currency,image,url\n"


def test_our_csv_reads_an_optional_sale_price_and_an_empty_cell_as_no_sale(
    tmp_path: Path,
) -> None:
    path = tmp_path / "catalog.csv"
    path.write_text(
        CSV_HEADER
        + "P1,Mug,Acme,Kitchen,12.00,9.50,EUR,m.jpg,https://s.example/1\n"
        + "P2,Cup,Acme,Kitchen,8.00,,EUR,c.jpg,https://s.example/2\n"
    )
    products = _by_id(load_catalog(path).items)
    assert products["P1"].sale_price == Decimal("9.50")
    assert products["P2"].sale_price is None


def test_a_sale_price_not_below_the_price_is_a_bad_row(tmp_path: Path) -> None:
    path = tmp_path / "catalog.csv"
    path.write_text(
        CSV_HEADER
        + "P1,Mug,Acme,Kitchen,12.00,12.00,EUR,m.jpg,https://s.example/1\n"
        + "P2,Cup,Acme,Kitchen,8.00,8.001,EUR,c.jpg,https://s.example/2\n"
    )
    loaded = load_catalog(path, "skip")
    assert loaded.items == []
    messages = _messages(loaded.problems)
    assert messages[0] == f"{path}:2: sale_price: value error, must be below price"
    assert messages[1].startswith(f"{path}:3: sale_price: decimal input should have no more")


def test_the_catalog_without_a_sale_price_column_still_loads(tmp_path: Path) -> None:
    path = tmp_path / "catalog.csv"
    path.write_text(
        "id,title,brand,category,price,currency,image,url\n"
        "P1,Mug,Acme,Kitchen,12.00,EUR,m.jpg,https://s.example/1\n"
    )
    assert load_catalog(path).items[0].sale_price is None


# -- Merchant Center text feeds -----------------------------------------------------------


def test_text_feed_maps_attributes_prices_and_the_last_product_type_segment() -> None:
    loaded = load_catalog(FEEDS / "merchant_feed.tsv", now=JANUARY)
    assert loaded.problems == []
    lamp = _by_id(loaded.items)["LAMP-1"]
    assert lamp == Product(
        id="LAMP-1",
        title="Arc Floor Lamp",
        brand="Lumen",
        category="Floor Lamps",  # product_type "Home > Lighting > Floor Lamps"
        price=Decimal("149.00"),
        sale_price=Decimal("119.00"),
        currency="USD",
        image="https://shop.example/img/lamp-1.jpg",
        url="https://shop.example/lamp-1",
        in_stock=True,
        description="A brass lamp that bends over the sofa.",
    )
    boot = _by_id(loaded.items)["BOOT-1"]
    assert (boot.price, boot.currency) == (Decimal("89.90"), "USD")  # written "USD 89.90"
    assert boot.in_stock is False  # preorder: not something to recommend today


def test_variants_join_into_the_cheapest_in_stock_variant_under_the_group_id() -> None:
    loaded = load_catalog(FEEDS / "merchant_feed.tsv", now=JANUARY)
    assert [p.id for p in loaded.items] == ["LAMP-1", "TEE", "MUG", "BOOT-1"]
    tee = _by_id(loaded.items)["TEE"]
    # TEE-S (18.00) is out of stock; TEE-M (20.00) beats TEE-L (22.00, "in stock")
    assert (tee.price, tee.title, tee.in_stock) == (Decimal("20.00"), "Linen Tee - M", True)
    assert tee.url == "https://shop.example/tee?size=m"
    assert loaded.lines[loaded.items.index(tee)] == 4  # the chosen variant's line


def test_a_group_with_every_variant_out_of_stock_is_its_cheapest_not_in_stock() -> None:
    mug = _by_id(load_catalog(FEEDS / "merchant_feed.tsv", now=JANUARY).items)["MUG"]
    assert (mug.price, mug.in_stock) == (Decimal("10.00"), False)  # backorder is not stock
    assert mug.category == "Mugs"  # no product_type: google_product_category's last segment
    assert mug.image == "https://shop.example/img/mug-blue.jpg"


def test_variants_keep_makes_each_item_a_product() -> None:
    loaded = load_catalog(FEEDS / "merchant_feed.tsv", variants="keep", now=JANUARY)
    ids = [p.id for p in loaded.items]
    assert ids == ["LAMP-1", "TEE-S", "TEE-M", "TEE-L", "MUG-RED", "MUG-BLUE", "BOOT-1"]
    assert _by_id(loaded.items)["TEE-L"].in_stock is True  # "in stock" with a space


def test_g_prefixed_and_spaced_comma_separated_headers_and_their_bad_rows() -> None:
    path = FEEDS / "merchant_gprefix.csv"
    assert detect_catalog_format(path) == "merchant_text"
    loaded = load_catalog(path, "skip")
    assert [(p.id, p.price, p.currency, p.category) for p in loaded.items] == [
        ("SOCK-1", Decimal("9.50"), "EUR", "Socks")
    ]
    assert _messages(loaded.problems) == [
        f'{path}:3: price: must be an amount and a currency code, as "19.99 USD" '
        "(a point for decimals, no thousands separator)",
        f"{path}:4: Image Link: string should have at least 1 character",
    ]
    assert loaded.skipped_rows == 2


def test_unknown_availability_and_missing_category_are_bad_rows(tmp_path: Path) -> None:
    path = tmp_path / "feed.tsv"
    header = ["id", "title", "link", "image_link", "price", "availability", "brand"]
    row = ["X1", "Lamp", "https://s.example/x", "https://s.example/x.jpg", "5.00 USD"]
    path.write_text("\t".join(header) + "\n" + "\t".join([*row, "limited", "Lumen"]) + "\n")
    with pytest.raises(RetailDataError) as info:
        load_catalog(path)
    assert _messages(info.value.problems) == [
        f"{path}:2: availability: must be in_stock, out_of_stock, preorder or backorder",
        f"{path}:2: product_type: missing: give product_type or google_product_category "
        "(as Home > Lighting > Lamps)",
    ]
    assert "limited" not in str(info.value)  # the cell itself is never repeated


@pytest.fixture
def no_brand_feed(tmp_path: Path) -> Path:
    path = tmp_path / "feed.tsv"
    path.write_text("id\ttitle\tlink\timage_link\tprice\tavailability\nX1\tLamp\n")
    return path


def test_a_text_feed_missing_a_column_is_refused_naming_it(no_brand_feed: Path) -> None:
    with pytest.raises(RetailDataError) as info:
        load_catalog(no_brand_feed, "skip", format="merchant_text")
    assert [str(p) for p in info.value.problems] == [
        f"{no_brand_feed}:1: brand: missing column (required: id, title, link, image_link, "
        "price, availability, brand)"
    ]


# -- Merchant Center XML feeds ------------------------------------------------------------


def test_rss_feed_items_with_plain_and_g_elements() -> None:
    path = FEEDS / "merchant_rss.xml"
    loaded = load_catalog(path, "skip", now=JANUARY)
    chair = loaded.items[0]
    assert chair.id == "CHAIR-1" and chair.title == "Oak Chair"
    assert chair.description == "Solid oak, oiled by hand."  # tags of the CDATA removed
    # <g:shipping><g:price> is nested: the item's own price stands
    assert (chair.price, chair.sale_price, chair.currency) == (
        Decimal("240.00"),
        Decimal("199.00"),
        "EUR",
    )
    assert (chair.brand, chair.category) == ("Grain & Co", "Chairs")
    assert loaded.lines == [7]  # the line of <item>


def test_rss_bad_items_name_the_item_start_line_and_attribute() -> None:
    path = FEEDS / "merchant_rss.xml"
    loaded = load_catalog(path, "skip", now=JANUARY)
    assert _messages(loaded.problems) == [
        f"{path}:25: image_link: missing",
        f"{path}:35: sale_price: in EUR, the price in GBP: use one currency",
        f"{path}:35: product_type: missing, and google_product_category is a numeric id: "
        "give product_type (as Home > Lighting > Lamps)",
    ]
    assert loaded.skipped_rows == 2
    with pytest.raises(RetailDataError, match=r"merchant_rss\.xml:25: image_link: missing"):
        load_catalog(path, now=JANUARY)


def test_a_sale_outside_its_effective_dates_is_the_regular_price() -> None:
    chair = load_catalog(FEEDS / "merchant_rss.xml", "skip", now=MARCH).items[0]
    assert (chair.price, chair.sale_price) == (Decimal("240.00"), None)


def test_atom_feed_reads_atom_title_link_href_and_summary() -> None:
    loaded = load_catalog(FEEDS / "merchant_atom.xml", now=JANUARY)
    kettle, steel = loaded.items
    assert kettle.id == "KETTLE-1"  # <g:id>, not the entry's <id> URI
    assert kettle.title == "Enamel Kettle"
    assert kettle.url == "https://shop.example/kettle-1"  # not the rel="enclosure" link
    assert kettle.description == "Whistles when ready."
    assert (kettle.category, kettle.in_stock) == ("Kettles", True)
    assert (steel.title, steel.url, steel.in_stock) == (
        "Steel Kettle",
        "https://shop.example/kettle-2",
        False,  # preorder
    )
    assert loaded.lines == [6, 19]


ITEM = (
    "<item><g:id>A1</g:id><title>Lamp{text}</title><link>https://s.example/a</link>"
    "<g:image_link>https://s.example/a.jpg</g:image_link><g:price>5.00 USD</g:price>"
    "<g:availability>in_stock</g:availability><g:brand>B</g:brand>"
    "<g:product_type>Lamps</g:product_type></item>"
)
RSS = '<rss version="2.0" xmlns:g="http://base.google.com/ns/1.0"><channel>{items}</channel></rss>'


def test_a_doctype_with_entities_is_refused_before_any_expansion(tmp_path: Path) -> None:
    path = tmp_path / "feed.xml"
    laughs = "".join(f'<!ENTITY l{n} "{f"&l{n - 1};" * 10}">\n' for n in range(1, 10))
    path.write_text(
        '<?xml version="1.0"?>\n<!DOCTYPE rss [\n<!ENTITY l0 "lol">\n'
        + laughs
        + "]>\n"
        + RSS.format(items=ITEM.format(text="&l9;"))
    )
    with pytest.raises(RetailDataError) as info:
        load_catalog(path, "skip")
    [problem] = info.value.problems
    assert (problem.line, problem.field) == (2, "xml")
    assert problem.problem.startswith("a DOCTYPE declaration is not allowed")


def test_an_external_entity_doctype_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "feed.xml"
    path.write_text(
        '<?xml version="1.0"?>\n<!DOCTYPE rss [<!ENTITY x SYSTEM "file:///etc/passwd">]>\n'
        + RSS.format(items=ITEM.format(text="&x;"))
    )
    with pytest.raises(RetailDataError, match=r"feed.xml:2: xml: a DOCTYPE"):
        load_catalog(path, "skip")


def test_malformed_xml_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "feed.xml"
    path.write_text(RSS.format(items="\n" + ITEM.format(text="") + "\n<item><g:id>B</item>"))
    with pytest.raises(RetailDataError) as info:
        load_catalog(path, "skip")
    assert str(info.value.problems[0]) == f"{path}:3: xml: not well-formed XML (mismatched tag)"


def test_xml_in_its_declared_encoding(tmp_path: Path) -> None:
    path = tmp_path / "feed.xml"
    text = '<?xml version="1.0" encoding="windows-1252"?>\n' + RSS.format(
        items=ITEM.format(text=" café")
    )
    path.write_bytes(text.encode("cp1252"))
    assert load_catalog(path).items[0].title == "Lamp café"


def test_xml_items_stream_and_keep_their_lines(tmp_path: Path) -> None:
    path = tmp_path / "feed.xml"
    items = "\n".join(ITEM.format(text="").replace("A1", f"A{n}") for n in range(3000))
    path.write_text(RSS.format(items="\n" + items))  # ~1.3 MB: many parser chunks
    loaded = load_catalog(path)
    assert len(loaded.items) == 3000
    assert (loaded.items[2999].id, loaded.lines[2999]) == ("A2999", 3001)


# -- detection ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("merchant_feed.tsv", "merchant_text"),
        ("merchant_gprefix.csv", "merchant_text"),
        ("merchant_rss.xml", "merchant_xml"),
        ("merchant_atom.xml", "merchant_xml"),
        ("shopify_products.csv", "shopify"),
        ("partner_catalog.csv", "reelcast"),
    ],
)
def test_detect_catalog_format(name: str, expected: str) -> None:
    assert detect_catalog_format(FEEDS / name) == expected


def test_detect_reads_our_csv_with_a_byte_order_mark(tmp_path: Path) -> None:
    path = tmp_path / "catalog.csv"
    path.write_bytes(b"\xef\xbb\xbf" + CSV_HEADER.encode())
    assert detect_catalog_format(path) == "reelcast"


def test_xml_of_another_kind_is_refused_by_detection(tmp_path: Path) -> None:
    path = tmp_path / "products.xml"
    path.write_text('<?xml version="1.0"?>\n<!-- <rss> -->\n<products><p/></products>')
    with pytest.raises(RetailDataError, match=r"root element is <products>"):
        detect_catalog_format(path)
    with pytest.raises(RetailDataError, match=r"products.xml:3: xml: the root element"):
        load_catalog(path, format="merchant_xml")


# -- mapping files ------------------------------------------------------------------------


def test_a_mapped_csv_with_decimal_commas_and_availability_words() -> None:
    path = FEEDS / "partner_catalog.csv"
    loaded = load_catalog(path, "skip", mapping=FEEDS / "partner_mapping.yaml")
    kanne, tasse = loaded.items
    assert kanne == Product(
        id="A-100",
        title="Teekanne",
        brand="Kiln",
        category="Kannen",  # category_separator ">": the last segment
        price=Decimal("1299.00"),  # "1.299,00"
        sale_price=Decimal("999.00"),
        currency="EUR",
        image="https://partner.example/img/a100.jpg",
        url="https://partner.example/a100",
        in_stock=True,  # "verfügbar"
        description="Gusseisen.",
    )
    assert (tasse.price, tasse.in_stock) == (Decimal("12.50"), False)  # "ausverkauft"
    assert _messages(loaded.problems) == [
        f"{path}:4: Preis: must be an amount written with a comma for decimals and a point "
        "between thousands",
        f"{path}:4: Lager: must be one of: verfügbar, yes, ausverkauft, no",
    ]


def _mapping(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "mapping.yaml"
    path.write_text(text)
    return path


FIELDS = (
    "fields: {id: SKU, title: Name, brand: Brand, category: Cat, price: Price, "
    "image: Img, url: URL}\n"
)


def test_a_mapping_naming_an_unknown_field_lists_the_valid_ones(tmp_path: Path) -> None:
    mapping = _mapping(tmp_path, FIELDS.replace("url: URL", "url: URL, colour: Farbe"))
    with pytest.raises(RetailDataError) as info:
        load_catalog(FEEDS / "partner_catalog.csv", mapping=mapping)
    assert _messages(info.value.problems) == [
        f"{mapping}: fields: unknown field colour (valid: id, title, brand, category, price, "
        "image, url, sale_price, currency, in_stock, description)"
    ]


def test_mapping_file_mistakes_name_the_file_and_key(tmp_path: Path) -> None:
    mapping = _mapping(
        tmp_path,
        FIELDS.replace("url: URL", "sale_price: Price")
        + "price: {format: amount_eur, decimal: ','}\ncolour: red\n",
    )
    with pytest.raises(RetailDataError) as info:
        load_catalog(FEEDS / "partner_catalog.csv", mapping=mapping)
    messages = _messages(info.value.problems)
    assert messages[0] == (
        f"{mapping}: fields: url not mapped (required: id, title, brand, category, price, "
        "image, url)"
    )
    assert messages[1].startswith(f"{mapping}: price.format: input should be 'amount' or")
    assert messages[2] == f"{mapping}: colour: extra inputs are not permitted"


def test_a_mapping_without_a_currency_says_where_to_give_one(tmp_path: Path) -> None:
    mapping = _mapping(tmp_path, FIELDS)
    with pytest.raises(RetailDataError, match=r"mapping.yaml: price.currency: missing"):
        load_catalog(FEEDS / "partner_catalog.csv", mapping=mapping)


def test_a_mapping_naming_a_column_the_file_lacks(tmp_path: Path) -> None:
    csv_path = tmp_path / "c.csv"
    csv_path.write_text("SKU,Name,Brand,Cat,Price,Img\nA,B,C,D,1.00,x.jpg\n")
    mapping = _mapping(tmp_path, FIELDS + "price: {currency: EUR}\n")
    with pytest.raises(RetailDataError) as info:
        load_catalog(csv_path, mapping=mapping)
    assert _messages(info.value.problems) == [
        f"{csv_path}:1: URL: missing column (required: SKU, Name, Brand, Cat, Price, Img, URL)"
    ]


def test_a_mapped_row_names_the_files_column(tmp_path: Path) -> None:
    csv_path = tmp_path / "c.csv"
    csv_path.write_text(
        "SKU,Name,Brand,Cat,Price,Img,URL,id\n"  # an unmapped column named like a field
        "A,Mug,Acme,Kitchen,1.00,m.jpg,ftp://nope,x\n"
    )
    mapping = _mapping(tmp_path, FIELDS + "price: {currency: EUR}\n")
    with pytest.raises(RetailDataError) as info:
        load_catalog(csv_path, mapping=mapping)
    [problem] = info.value.problems
    assert (problem.line, problem.field) == (2, "URL")


def test_invalid_yaml_names_its_line(tmp_path: Path) -> None:
    mapping = _mapping(tmp_path, "fields:\n  id: [SKU\n")
    with pytest.raises(RetailDataError, match=r"mapping.yaml:3: yaml: not valid YAML"):
        load_catalog(FEEDS / "partner_catalog.csv", mapping=mapping)


def test_format_and_mapping_together_are_refused(tmp_path: Path) -> None:
    with pytest.raises(RetailDataError, match="a mapping file reads a plain CSV"):
        load_catalog(FEEDS / "partner_catalog.csv", format="shopify", mapping=tmp_path / "m")


# -- encodings: the loaders' own handling -------------------------------------------------


def test_a_windows_1252_text_feed_is_refused_as_utf8_and_read_when_asked(
    tmp_path: Path,
) -> None:
    path = tmp_path / "feed.tsv"
    header = "id\ttitle\tlink\timage_link\tprice\tavailability\tbrand\tproduct_type\n"
    cells = ["X1", "Café Mug", "https://s.example/x", "https://s.example/x.jpg", "5.00 EUR"]
    row = "\t".join([*cells, "in_stock", "Acme", "Mugs"]) + "\n"
    path.write_bytes((header + row).encode("cp1252"))
    with pytest.raises(RetailDataError, match="looks like Windows-1252"):
        load_catalog(path)
    assert load_catalog(path, encoding="cp1252").items[0].title == "Café Mug"


def test_a_shopify_export_with_a_byte_order_mark(tmp_path: Path) -> None:
    path = tmp_path / "products_export.csv"
    text = (FEEDS / "shopify_products.csv").read_text(encoding="utf-8")
    path.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    assert detect_catalog_format(path) == "shopify"
    loaded = load_catalog(path, "skip", shop_url="https://shop.example", currency="EUR")
    assert [p.id for p in loaded.items][:2] == ["classic-tee", "ceramic-mug"]
