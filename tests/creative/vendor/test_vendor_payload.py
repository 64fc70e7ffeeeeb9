"""What leaves the house for the video vendor: only the allowlist, proven at the vendor.

The batch test renders a demo retailer's customers through the simulator and then reads
every request the simulator received, byte for byte.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from compliance.pseudonym import pseudonymize
from creative import Storyboard, Template, build_storyboard
from creative.storyboard import ImagePart
from creative.vendor import PayloadError, VendorRenderer, build_payload, check_payload
from creative.vendor.simulator import VendorSimulator
from retail.demo import DemoFiles
from retail.loaders import RetailData, load_retail
from retail.types import Customer, Pick

SECRET = b"test-pseudonym-secret"
BATCH = 4


@pytest.fixture(scope="module")
def retailer(small_retailer: DemoFiles) -> RetailData:
    return load_retail(small_retailer.catalog, small_retailer.customers, small_retailer.events)


def _boards(
    data: RetailData, hero: Template, *, personalize: bool
) -> list[tuple[Customer, Storyboard]]:
    products = {p.id: p for p in data.products}
    chosen = [c for c in data.customers if c.last_name and c.phone][:BATCH]
    assert len(chosen) == BATCH
    boards = []
    for index, customer in enumerate(chosen):
        product = data.products[index % len(data.products)]
        pick = Pick(
            customer_id=customer.id,
            product_ids=(product.id,),
            scores=(1.0,),
            reasons=("test",),
            model_version="t",
        )
        board = build_storyboard(
            hero,
            pick,
            products,
            customer,
            images_root=data.catalog_dir,
            personalize=personalize,
            headline_variant=0,  # "{{ first_name }}, this one's for you"
        )
        boards.append((customer, board))
    return boards


def _render_batch(
    renderer: VendorRenderer, boards: list[tuple[Customer, Storyboard]], out_dir: Path
) -> None:
    def one(job: tuple[Customer, Storyboard]) -> None:
        customer, board = job
        subject = pseudonymize(SECRET, customer.id)
        renderer.render(board, out_dir, subject=subject, customer=customer)

    with ThreadPoolExecutor(2) as pool:
        list(pool.map(one, boards))


def _received_text(sim: VendorSimulator) -> str:
    """Everything the vendor received (bodies, paths, queries) as one text."""
    return "\n".join(
        json.dumps([r.method, r.path, r.query, r.body], ensure_ascii=False) for r in sim.received
    )


def _word(value: str) -> re.Pattern[str]:
    return re.compile(rf"(?<![\w-]){re.escape(value)}(?![\w-])", re.IGNORECASE)


@pytest.mark.slow
def test_the_vendor_never_receives_personal_data_across_a_batch(
    retailer: RetailData,
    tiny_hero: Template,
    make_renderer: Callable[..., VendorRenderer],
    simulator: tuple[VendorSimulator, str],
    out_dir: Path,
) -> None:
    sim, _ = simulator
    boards = _boards(retailer, tiny_hero, personalize=False)

    _render_batch(make_renderer(), boards, out_dir)

    assert sim.counts.created == len({b.key() for _, b in boards})
    text = _received_text(sim)
    for customer in retailer.customers:  # nobody's contact data, ids or last names
        assert str(customer.email).lower() not in text.lower()
        assert not _word(customer.id).search(text)
        if customer.last_name:
            assert not _word(customer.last_name).search(text)
        if customer.phone:
            assert re.sub(r"\D", "", customer.phone)[-8:] not in re.sub(r"\D", "", text)
    for customer, _ in boards:  # names are off by default: the batch's first names too
        assert not _word(customer.first_name).search(text)
    creates = [r.body for r in sim.received if r.method == "POST" and r.path == "/v2/renders"]
    for body in creates:
        check_payload(body)  # only allowlisted fields, in allowed shapes
        assert re.fullmatch(r"cu_[0-9a-f]{16}", body["metadata"]["subject"])
        assert body["modifications"]["headline.text"] == "This one's for you"
    # Uploads are the storyboards' own images (product photos, the brand logo), nothing else.
    images = {p.sha256 for _, b in boards for p in b.layers if isinstance(p, ImagePart)}
    uploads = {r.body["sha256"] for r in sim.received if r.path == "/v2/uploads"}
    assert uploads == images


def test_first_names_reach_the_vendor_only_when_allowed(
    retailer: RetailData,
    tiny_hero: Template,
    make_renderer: Callable[..., VendorRenderer],
    simulator: tuple[VendorSimulator, str],
    out_dir: Path,
) -> None:
    sim, _ = simulator
    boards = _boards(retailer, tiny_hero, personalize=True)[:2]

    _render_batch(make_renderer(allow_first_name=True), boards, out_dir)

    text = _received_text(sim)
    for customer, _ in boards:
        assert _word(customer.first_name).search(text)
        assert str(customer.email).lower() not in text.lower()
        assert customer.last_name is None or not _word(customer.last_name).search(text)


def test_a_personalized_storyboard_is_refused_before_anything_is_sent(
    make_board: Callable[..., Storyboard],
    make_renderer: Callable[..., VendorRenderer],
    simulator: tuple[VendorSimulator, str],
    out_dir: Path,
) -> None:
    sim, _ = simulator
    customer = Customer(id="c-77", email="zoe.quinn@example.com", first_name="Zoe")
    board = make_board(personalize=True, customer=customer)

    with pytest.raises(PayloadError, match=r"'headline.text'.*first name.*personalize=False"):
        make_renderer().render(board, out_dir, customer=customer)

    assert sim.received == []


def _payload(board: Storyboard, **context: object) -> dict:
    urls = {p.sha256: f"http://vendor/v2/uploads/{p.sha256}" for p in board.layers
            if isinstance(p, ImagePart)}  # fmt: skip
    return build_payload(board, image_urls=urls, key=board.key(), **context)  # type: ignore[arg-type]


def test_the_payload_holds_only_allowlisted_fields(
    make_board: Callable[..., Storyboard],
) -> None:
    board = make_board()
    payload = _payload(board, campaign="spring", subject="cu_0123456789abcdef")

    assert set(payload) == {"template_id", "modifications", "output_format", "metadata"}
    assert payload["template_id"] == "hero-180x320"
    assert set(payload["metadata"]) == {"key", "template_version", "campaign", "subject"}
    assert all(re.fullmatch(r"[a-z0-9_]+\.(text|source)", k) for k in payload["modifications"])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda p: p | {"email": "x"}, "'email' is not on the vendor allowlist"),
        (lambda p: p | {"metadata": p["metadata"] | {"customer_id": "c-1"}}, "'customer_id'"),
        (lambda p: p | {"metadata": p["metadata"] | {"subject": "c-1"}}, "pseudonymous"),
        (lambda p: p | {"modifications": {"headline.email": "x"}}, "'headline.email'"),
        (
            lambda p: p | {"modifications": {"headline.text": "Hi ann@example.com"}},
            "email address",
        ),
    ],
)
def test_anything_off_the_allowlist_is_refused(
    make_board: Callable[..., Storyboard], change: Callable[[dict], dict], message: str
) -> None:
    with pytest.raises(PayloadError, match=re.escape(message)):
        check_payload(change(_payload(make_board())))


def test_the_customers_own_values_are_refused_even_inside_product_text(
    make_board: Callable[..., Storyboard],
) -> None:
    customer = Customer(
        id="c-901", email="max.mustermann@example.com", first_name="Max",
        last_name="Mustermann", phone="+49 30 1234567",
    )  # fmt: skip
    for title, field in [
        ("Mustermann edition boots", "last name"),
        ("Boots 030 1234567", "phone"),
        ("Boots for c-901", "customer id"),
    ]:
        with pytest.raises(PayloadError, match=field) as caught:
            _payload(make_board(title), customer=customer, allow_first_name=True)
        assert "Mustermann" not in str(caught.value)  # the message names the field only
