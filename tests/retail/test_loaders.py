"""The loaders name file, physical line and field for every bad row, and never echo PII."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from retail.errors import RetailDataError, RowProblem
from retail.loaders import NOT_UTF8, load_retail, load_rows
from retail.types import Customer, Product

PRODUCT_HEADER = "id,title,brand,category,price,currency,image,url,in_stock,description\n"
CUSTOMER_HEADER = (
    "id,email,first_name,last_name,phone,locale,timezone,country,marketing_consent,"
    "consent_timestamp,consent_source\n"
)


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def _product(pid: str, price: str = "9.99") -> str:
    return f"{pid},Mug,Acme,Kitchen,{price},EUR,images/{pid}.jpg,https://shop.example/{pid},true,\n"


def _customer(cid: str, email: str = "ann@example.com", tz: str = "Europe/Berlin") -> str:
    return f"{cid},{email},Ann,Lee,,de_DE,{tz},DE,granted,2025-01-01T00:00:00+00:00,checkout\n"


def test_demo_retailer_loads_without_problems(small_retailer) -> None:
    data = load_retail(small_retailer.catalog, small_retailer.customers, small_retailer.events)
    assert len(data.products) == 60
    assert len(data.customers) == 120
    assert data.events
    assert data.problems == []


def test_missing_column_names_file_header_line_and_column(tmp_path: Path) -> None:
    path = _write(tmp_path / "catalog.csv", "id,title,brand,category,currency\n")
    with pytest.raises(RetailDataError) as info:
        load_rows(path, Product)
    message = str(info.value)
    assert f"{path}:1: price: missing column" in message
    assert f"{path}:1: url: missing column" in message


def test_wrong_type_names_physical_line_and_field(tmp_path: Path) -> None:
    path = _write(tmp_path / "catalog.csv", PRODUCT_HEADER + _product("P1") + _product("P2", "abc"))
    with pytest.raises(RetailDataError) as info:
        load_rows(path, Product)
    assert f"{path}:3: price:" in str(info.value)


def test_line_numbers_count_physical_lines_of_multiline_cells(tmp_path: Path) -> None:
    multiline = 'P1,"Mug\nwith two lines",Acme,Kitchen,9.99,EUR,a.jpg,https://s.example/1,true,\n'
    path = _write(tmp_path / "catalog.csv", PRODUCT_HEADER + multiline + _product("P2", "-1"))
    with pytest.raises(RetailDataError) as info:
        load_rows(path, Product)
    assert f"{path}:4: price:" in str(info.value)


def test_bad_email_is_reported_without_echoing_the_address(tmp_path: Path) -> None:
    path = _write(tmp_path / "customers.csv", CUSTOMER_HEADER + _customer("C1", "ann.at.example"))
    with pytest.raises(RetailDataError) as info:
        load_rows(path, Customer)
    message = str(info.value)
    assert f"{path}:2: email:" in message
    assert "ann.at.example" not in message


def test_bad_timezone_names_row_and_field(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "customers.csv",
        CUSTOMER_HEADER + _customer("C1") + _customer("C2", "bo@example.com", "Mars/Olympus"),
    )
    with pytest.raises(RetailDataError) as info:
        load_rows(path, Customer)
    assert f"{path}:3: timezone: value error, unknown time zone" in str(info.value)


def test_skip_mode_keeps_good_rows_and_counts_bad_ones(tmp_path: Path) -> None:
    text = PRODUCT_HEADER + _product("P1") + _product("P2", "x") + "P3,only,three\n"
    loaded = load_rows(_write(tmp_path / "catalog.csv", text), Product, "skip")
    assert [p.id for p in loaded.items] == ["P1"]
    assert loaded.skipped_rows == 2
    assert {(p.line, p.field) for p in loaded.problems} == {(3, "price"), (4, "row")}


def _retailer_copy(small_retailer, tmp_path: Path) -> tuple[Path, Path, Path]:
    paths = []
    for src in (small_retailer.catalog, small_retailer.customers, small_retailer.events):
        paths.append(Path(shutil.copy(src, tmp_path / src.name)))
    return paths[0], paths[1], paths[2]


def test_unknown_ids_in_events_are_reported_and_left_out(small_retailer, tmp_path: Path) -> None:
    catalog, customers, events = _retailer_copy(small_retailer, tmp_path)
    with events.open("a") as handle:
        handle.write("C00001,NOPE,view,2026-10-01T10:00:00+00:00\n")
        handle.write("GHOST,P0001,view,2026-10-01T10:00:00+00:00\n")
    lines = len(events.read_text().splitlines())
    data = load_retail(catalog, customers, events)
    assert data.unknown_reference_events == 2
    rendered = [str(p) for p in data.problems]
    assert f"{events}:{lines - 1}: product_id: unknown product id 'NOPE'" in rendered
    assert f"{events}:{lines}: customer_id: unknown customer id" in rendered
    assert all(e.product_id != "NOPE" and e.customer_id != "GHOST" for e in data.events)


def test_duplicate_ids_stop_the_load_by_default(small_retailer, tmp_path: Path) -> None:
    catalog, customers, events = _retailer_copy(small_retailer, tmp_path)
    first_row = catalog.read_text().splitlines()[1]
    with catalog.open("a") as handle:
        handle.write(first_row + "\n")
    with pytest.raises(RetailDataError, match="id: duplicate id"):
        load_retail(catalog, customers, events)
    data = load_retail(catalog, customers, events, on_bad_rows="skip")
    assert data.skipped_rows["catalog"] == 1


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(RetailDataError, match="not found"):
        load_rows(tmp_path / "nope.csv", Product)


def test_naive_timestamp_is_rejected_with_a_hint(tmp_path: Path) -> None:
    from retail.types import Event

    path = _write(
        tmp_path / "events.csv", "customer_id,product_id,type,timestamp\nC1,P1,view,2026-01-01\n"
    )
    with pytest.raises(RetailDataError, match=r"events.csv:2: timestamp: .*UTC offset"):
        load_rows(path, Event)


def test_personalization_column_is_optional_and_reads_yes_no_words(tmp_path: Path) -> None:
    rows = [
        _customer(cid).rstrip("\n") + f",{value}\n"
        for cid, value in (
            ("C1", "no"),
            ("C2", "YES"),
            ("C3", "0"),
            ("C4", "true"),
            ("C5", ""),
            ("C6", "  "),
            ("C7", "off"),
        )
    ]
    path = _write(
        tmp_path / "customers.csv",
        CUSTOMER_HEADER.rstrip("\n") + ",personalization\n" + "".join(rows),
    )
    loaded = load_rows(path, Customer)
    assert [c.personalization for c in loaded.items] == [
        False,
        True,
        False,
        True,
        True,
        True,
        False,
    ]
    without = load_rows(_write(tmp_path / "old.csv", CUSTOMER_HEADER + _customer("C1")), Customer)
    assert without.items[0].personalization is True


def test_bad_personalization_value_names_file_line_and_field(tmp_path: Path) -> None:
    header = CUSTOMER_HEADER.rstrip("\n") + ",personalization\n"
    good = _customer("C1").rstrip("\n") + ",false\n"
    bad = _customer("C2", "bo@example.com").rstrip("\n") + ",Perhaps\n"
    path = _write(tmp_path / "customers.csv", header + good + bad)
    with pytest.raises(RetailDataError) as info:
        load_rows(path, Customer)
    message = str(info.value)
    assert f"{path}:3: personalization: value error, must be true or false" in message
    assert "Perhaps" not in message


def test_a_missing_product_image_is_a_bad_catalog_row_when_images_matter(
    small_retailer, tmp_path: Path
) -> None:
    catalog, customers, events = _retailer_copy(small_retailer, tmp_path)
    shutil.copytree(small_retailer.catalog.parent / "images", tmp_path / "images")
    rows = catalog.read_text().splitlines()
    header = rows[0].split(",")
    cells = rows[3].split(",")
    product_id = cells[header.index("id")]
    cells[header.index("image")] = "images/nope.jpg"
    rows[3] = ",".join(cells)
    catalog.write_text("\n".join(rows) + "\n")

    assert len(load_retail(catalog, customers, events).products) == len(rows) - 1  # training
    with pytest.raises(RetailDataError) as stopped:
        load_retail(catalog, customers, events, check_images=True)
    assert f"{catalog}:4: image: file not found (images/nope.jpg in " in str(stopped.value)
    assert "--on-bad-rows skip" in str(stopped.value)
    data = load_retail(catalog, customers, events, on_bad_rows="skip", check_images=True)
    assert product_id not in {p.id for p in data.products}
    assert data.skipped_rows["catalog"] == 1
    assert all(e.product_id != product_id for e in data.events)


def test_a_semicolon_separated_file_gets_one_problem_that_says_so(tmp_path: Path) -> None:
    path = _write(tmp_path / "customers.csv", CUSTOMER_HEADER.replace(",", ";"))
    with pytest.raises(RetailDataError) as stopped:
        load_rows(path, Customer)
    message = str(stopped.value)
    assert f"{path}:1: header: the columns are separated by ';', not commas" in message
    assert "missing column" not in message and "CSV (comma delimited)" in message


def _png_header_only(path: Path, width: int, height: int) -> Path:
    """A tiny PNG file whose header promises width × height pixels (a decompression bomb)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )
    return path


@pytest.mark.parametrize(
    ("size", "reason"),
    [
        ((60_000, 60_000), "decompression bomb"),  # Pillow's own limit refuses it
        ((9_000, 6_000), "9000×6000 pixels is over the 40-megapixel limit"),
    ],
)
def test_a_hostile_product_image_is_one_bad_row_not_a_stopped_campaign(
    small_retailer, tmp_path: Path, size: tuple[int, int], reason: str
) -> None:
    catalog, customers, events = _retailer_copy(small_retailer, tmp_path)
    shutil.copytree(small_retailer.catalog.parent / "images", tmp_path / "images")
    rows = catalog.read_text().splitlines()
    header = rows[0].split(",")
    cells = rows[2].split(",")
    product_id = cells[header.index("id")]
    _png_header_only(tmp_path / cells[header.index("image")], *size)

    with pytest.raises(RetailDataError) as stopped:
        load_retail(catalog, customers, events, check_images=True)
    assert f"{catalog}:3: image: " in str(stopped.value) and reason in str(stopped.value)
    data = load_retail(catalog, customers, events, on_bad_rows="skip", check_images=True)
    assert product_id not in {p.id for p in data.products}
    assert len(data.products) == len(rows) - 2  # the header and that one product


def test_a_bomb_reaching_a_storyboard_is_a_creative_error_naming_the_product(
    small_retailer, tmp_path: Path
) -> None:
    from creative.errors import CreativeError
    from creative.template import load_template
    from retail.types import Pick

    repo = Path(__file__).resolve().parents[2]
    data = load_retail(small_retailer.catalog, small_retailer.customers, small_retailer.events)
    images = tmp_path / "images"
    shutil.copytree(small_retailer.catalog.parent / "images", images)
    product = data.products[0]
    _png_header_only(tmp_path / product.image, 60_000, 60_000)
    from creative.storyboard import build_storyboard

    template = load_template(repo / "templates", "hero", repo / "assets")
    pick = Pick(
        customer_id=data.customers[0].id,
        product_ids=(product.id,),
        scores=(1.0,),
        reasons=("test",),
        model_version="t",
    )
    with pytest.raises(CreativeError, match=f"product {product.id!r} image.*decompression bomb"):
        build_storyboard(
            template,
            pick,
            {p.id: p for p in data.products},
            data.customers[0],
            images_root=tmp_path,
        )


# -- encodings (issue 12, defect 9) ------------------------------------------------------


def _bytes(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_a_stray_byte_is_one_bad_row_and_the_rows_after_it_still_load(tmp_path: Path) -> None:
    rows = [_product(f"P{n}") for n in range(1, 6)]
    data = (PRODUCT_HEADER + "".join(rows[:2])).encode()
    data += rows[2].replace("Mug", "Mu\xffg").encode("latin-1") + "".join(rows[3:]).encode()
    path = _bytes(tmp_path / "catalog.csv", data)
    with pytest.raises(RetailDataError) as stopped:
        load_rows(path, Product)
    assert f"{path}:4: title: not valid UTF-8 text (byte 0xFF)" in str(stopped.value)
    loaded = load_rows(path, Product, "skip")
    assert [p.id for p in loaded.items] == ["P1", "P2", "P4", "P5"]
    assert loaded.skipped_rows == 1 and [p.line for p in loaded.problems] == [4]


def test_skip_counts_every_undecodable_row_not_the_rest_of_the_file_as_one(
    tmp_path: Path,
) -> None:
    # Valid UTF-8 letters elsewhere: the file is UTF-8 with damaged rows, not Windows-1252.
    rows = [_product(f"P{n}").replace("Mug", "Tasse à café") for n in range(1, 9)]
    data = PRODUCT_HEADER.encode()
    for n, row in enumerate(rows):
        data += row.encode("latin-1") if n in (1, 4, 5) else row.encode()
    loaded = load_rows(_bytes(tmp_path / "catalog.csv", data), Product, "skip")
    assert [p.id for p in loaded.items] == ["P1", "P3", "P4", "P7", "P8"]
    assert loaded.skipped_rows == 3
    assert [p.line for p in loaded.problems] == [3, 6, 7]
    assert {p.field for p in loaded.problems} == {"title"}


def test_a_windows_1252_file_is_refused_in_one_line_or_read_when_asked(tmp_path: Path) -> None:
    text = PRODUCT_HEADER + _product("P1").replace("Mug", "Café crème") + _product("P2", "12.50")
    path = _bytes(tmp_path / "catalog.csv", text.replace("EUR", "EUR").encode("cp1252"))
    for mode in ("fail", "skip"):  # skip must not load the ASCII rows and drop the rest
        with pytest.raises(RetailDataError) as refused:
            load_rows(path, Product, mode)  # type: ignore[arg-type]
        assert refused.value.problems == [RowProblem(path, 0, "encoding", NOT_UTF8)]
        assert f"{path}: not UTF-8 (looks like Windows-1252" in str(refused.value)
        assert "--encoding cp1252" in str(refused.value)
    loaded = load_rows(path, Product, encoding="cp1252")
    assert [p.title for p in loaded.items] == ["Café crème", "Mug"]


def test_windows_1252_found_only_past_the_first_bytes_is_still_refused_whole(
    tmp_path: Path,
) -> None:
    ascii_rows = "".join(_product(f"P{n}") for n in range(1, 2000))  # > SNIFF_BYTES
    late = _product("P9999").replace("Mug", "Crème brûlée €")
    path = _bytes(tmp_path / "c.csv", (PRODUCT_HEADER + ascii_rows + late).encode("cp1252"))
    with pytest.raises(RetailDataError) as refused:
        load_rows(path, Product, "skip")
    assert [p.problem for p in refused.value.problems] == [NOT_UTF8]


def test_with_cp1252_utf8_text_stays_utf8_and_only_other_bytes_are_cp1252(
    tmp_path: Path,
) -> None:
    # A catalog from the shop (UTF-8) and a spreadsheet's customers (Windows-1252) share one
    # setting; a UTF-8 file is never garbled into "CafÃ©".
    utf8 = _product("P1").replace("Mug", "Café").encode()
    cp1252 = _product("P2").replace("Mug", "Crème €").encode("cp1252")
    undefined = _product("P3").replace("Mug", "M\x81g").encode("latin-1")  # not in cp1252
    path = _bytes(tmp_path / "catalog.csv", PRODUCT_HEADER.encode() + utf8 + cp1252 + undefined)
    loaded = load_rows(path, Product, "skip", encoding="cp1252")
    assert [p.title for p in loaded.items] == ["Café", "Crème €"]
    assert [str(p) for p in loaded.problems] == [
        f"{path}:4: title: not valid UTF-8 or Windows-1252 text (byte 0x81): "
        "save the file as 'CSV UTF-8'"
    ]
    assert load_rows(path, Product, "skip", encoding="latin-1").items[2].title == "M\x81g"


@pytest.mark.parametrize("codec", ["utf-8-sig", "utf-16"])
def test_files_with_a_byte_order_mark_are_read_as_it_says(tmp_path: Path, codec: str) -> None:
    text = PRODUCT_HEADER + _product("P1").replace("Mug", "Crème € 😀")
    path = _bytes(tmp_path / "catalog.csv", text.encode(codec))
    assert [p.title for p in load_rows(path, Product).items] == ["Crème € 😀"]


def test_utf16_without_a_byte_order_mark_is_refused_clearly(tmp_path: Path) -> None:
    path = _bytes(tmp_path / "catalog.csv", (PRODUCT_HEADER + _product("P1")).encode("utf-16-le"))
    with pytest.raises(RetailDataError, match="UTF-16 without a byte-order mark"):
        load_rows(path, Product)


def test_an_overlong_cell_is_one_bad_row(tmp_path: Path) -> None:
    text = PRODUCT_HEADER + _product("P1").replace("Mug", "x" * 1_000_000) + _product("P2")
    loaded = load_rows(_write(tmp_path / "catalog.csv", text), Product, "skip")
    assert [p.id for p in loaded.items] == ["P2"]
    assert [(p.line, p.field) for p in loaded.problems] == [(2, "row")]
    assert "longer than 131,072 characters" in loaded.problems[0].problem


def test_loading_streams_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No whole-file reads: the loader never calls read_text/read_bytes/readlines."""
    path = _write(tmp_path / "catalog.csv", PRODUCT_HEADER + _product("P1") + _product("P2"))

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("read the whole file")

    monkeypatch.setattr(Path, "read_text", refuse)
    monkeypatch.setattr(Path, "read_bytes", refuse)
    assert len(load_rows(path, Product).items) == 2


def test_an_email_written_with_a_display_name_is_stored_as_the_bare_address(
    tmp_path: Path,
) -> None:
    """`Ann Lee <ann@x.example>` in customers.csv: the address is kept, the name dropped
    (the name columns are where names go); a cell that is no address at all is refused."""
    path = _write(
        tmp_path / "customers.csv",
        'id,email,first_name\nc1,"Ann Lee <ann@x.example>",Ann\n',
    )
    (customer,) = load_rows(path, Customer).items
    assert customer.email == "ann@x.example"
    bad = _write(tmp_path / "bad.csv", "id,email,first_name\nc1,Ann Lee,Ann\n")
    with pytest.raises(RetailDataError) as caught:
        load_rows(bad, Customer)
    assert "bad.csv:2: email:" in str(caught.value)
