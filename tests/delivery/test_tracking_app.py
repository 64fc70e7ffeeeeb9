"""The tracking app: signed tokens only, no open redirect, RFC 8058 unsubscribe, events."""

from __future__ import annotations

import logging
import os
import sqlite3
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psycopg
import pytest
from delivery_support import CAMPAIGN, NOW, SECRET, serving
from starlette.applications import Starlette

with warnings.catch_warnings():  # Starlette 1.x nudges towards httpx2; httpx works fine
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from compliance.suppression import SuppressionList
from delivery.events_store import TrackingEvents
from delivery.links import Links, make_token
from delivery.tracking import PIXEL_GIF, create_app, hosts_of, safe_redirect
from delivery.tracking_pages import Landing, LandingProduct, landing_page
from retail.types import Event, EventType
from storage import Target

CUSTOMER = "cust-00042"
RENDER_KEY = "ab" + "0123456789abcdef" * 3 + "0123456789abcd"
SHOP = "shop.example.com"
PRODUCT_URL = f"https://{SHOP}/p/trail-runner?utm_source=email"


class Workspace:
    def __init__(self, root: Path) -> None:
        self.state_db = root / "state.sqlite"
        self.renders = root / "renders"
        self.events = TrackingEvents(self.state_db)
        self.suppression = SuppressionList(self.state_db)
        folder = self.renders / RENDER_KEY[:2] / RENDER_KEY
        folder.mkdir(parents=True)
        self.video = os.urandom(50_000)
        (folder / "video.mp4").write_bytes(self.video)
        (folder / "poster.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
        self.clock = NOW

    def kinds(self) -> list[tuple[str, str | None]]:
        return [(str(e.type), e.product_id) for e in self.events.events()]


@pytest.fixture
def ws(tmp_path: Path) -> Iterator[Workspace]:
    workspace = Workspace(tmp_path)
    yield workspace
    workspace.events.close()


def _landing(campaign: str, customer: str) -> Landing | None:
    if customer != CUSTOMER:
        return None
    products = (
        LandingProduct("sku-1", "Trail <Runner>", "Acme", PRODUCT_URL),
        LandingProduct("sku-2", "Rain Jacket", "Acme", f"https://{SHOP}/p/rain-jacket"),
    )
    return Landing(render_key=RENDER_KEY, products=products)


@pytest.fixture
def app(ws: Workspace) -> Starlette:
    return create_app(
        secret=SECRET,
        events=ws.events,
        suppression=ws.suppression,
        renders_dir=ws.renders,
        allowed_redirect_hosts=hosts_of([PRODUCT_URL]),
        landing=_landing,
        product_ids_by_url={PRODUCT_URL: "sku-1"},
        brand="Demo Shop",
        postal_address="Demo Shop GmbH\nHauptstraße 1, Berlin",
        clock=lambda: ws.clock,
    )


@pytest.fixture
def client(app: Starlette) -> Iterator[TestClient]:
    with TestClient(app, follow_redirects=False) as test_client:
        yield test_client


@pytest.fixture
def token() -> str:
    return make_token(SECRET, CAMPAIGN, CUSTOMER)


def _tampered(token: str) -> list[str]:
    flipped = token[:-3] + ("A" if token[-3] != "A" else "B") + token[-2:]
    return [
        flipped,
        token[:-1],
        token + "A",
        make_token(b"another-secret-of-sufficient-size!", CAMPAIGN, CUSTOMER),
        "A" * len(token),
        "not-a-token",
    ]


# ------------------------------------------------------------------ tokens and enumeration


def test_forged_or_tampered_tokens_get_a_bare_404_everywhere(
    client: TestClient, token: str, ws: Workspace
) -> None:
    unknown_route = client.get("/nothing/here")
    for bad in _tampered(token):
        for method, path in [
            ("GET", f"/v/{bad}"),
            ("GET", f"/c/{bad}?u={PRODUCT_URL}"),
            ("GET", f"/o/{bad}.gif"),
            ("GET", f"/u/{bad}"),
            ("POST", f"/u/{bad}"),
        ]:
            response = client.request(
                method, path, data={"List-Unsubscribe": "One-Click"} if method == "POST" else None
            )
            assert response.status_code == 404, (method, path)
            assert response.text == unknown_route.text == "Not Found"
    assert ws.kinds() == []
    assert ws.suppression.ids() == set()


def test_a_valid_token_for_a_customer_without_a_landing_page_is_404(client: TestClient) -> None:
    other = make_token(SECRET, CAMPAIGN, "cust-99999")
    assert client.get(f"/v/{other}").status_code == 404


# --------------------------------------------------------------------------- landing page


def test_landing_page_shows_video_poster_label_and_tracked_product_links(
    client: TestClient, token: str, ws: Workspace
) -> None:
    response = client.get(f"/v/{token}")
    assert response.status_code == 200
    html = response.text
    assert f'src="/r/{RENDER_KEY}/video.mp4"' in html
    assert f'poster="/r/{RENDER_KEY}/poster.jpg"' in html
    assert "AI-generated video" in html
    assert "Trail &lt;Runner&gt;" in html and "<Runner>" not in html
    assert f'href="/c/{token}?u=https%3A%2F%2Fshop.example.com%2Fp%2Ftrail-runner' in html
    assert f'href="/u/{token}"' in html
    assert "Hauptstraße 1, Berlin" in html
    assert response.headers["referrer-policy"] == "no-referrer"
    assert "default-src 'none'" in response.headers["content-security-policy"]
    assert "no-store" in response.headers["cache-control"]
    assert ws.kinds() == [("click", None)]


# ----------------------------------------------------------------------- click redirect


def test_click_redirects_to_the_shop_and_records_the_product(
    client: TestClient, token: str, ws: Workspace
) -> None:
    response = client.get(f"/c/{token}", params={"u": PRODUCT_URL})
    assert response.status_code == 302
    assert response.headers["location"] == PRODUCT_URL
    assert ws.kinds() == [("click", "sku-1")]


def test_click_to_another_shop_page_records_no_product(
    client: TestClient, token: str, ws: Workspace
) -> None:
    response = client.get(f"/c/{token}", params={"u": f"https://{SHOP}/sale"})
    assert response.status_code == 302
    assert ws.kinds() == [("click", None)]


OPEN_REDIRECTS = [
    "https://evil.com/",
    "//evil.com",
    "//shop.example.com",
    "https://shop.example.com.evil.com/p/1",
    "https://evil.com/shop.example.com",
    "https://shop.example.com@evil.com/",
    "https://shop.example.com:443@evil.com/",
    "https://user:pw@shop.example.com/",
    "https://evil.com#@shop.example.com",
    "https://evil.com?@shop.example.com",
    "https:/\\evil.com",
    "https://shop.example.com\\@evil.com/",
    "/\\evil.com",
    "javascript:alert(1)//shop.example.com",
    "data:text/html,hi",
    "ftp://shop.example.com/",
    "https:shop.example.com",
    " https://evil.com",
    "https://evil.com\r\nX: y",
    "https://shop.example.com:99999/",
    "https://xn--shop-example.com/",
    "",
]


@pytest.mark.parametrize("target", OPEN_REDIRECTS)
def test_click_refuses_to_redirect_anywhere_but_the_shop(
    client: TestClient, token: str, ws: Workspace, target: str
) -> None:
    response = client.get(f"/c/{token}", params={"u": target})
    assert response.status_code == 400
    assert "location" not in response.headers
    assert target.strip() == "" or target not in response.text
    assert ws.kinds() == []


def test_click_without_or_with_two_targets_is_refused(client: TestClient, token: str) -> None:
    assert client.get(f"/c/{token}").status_code == 400
    both = client.get(f"/c/{token}", params=[("u", PRODUCT_URL), ("u", "https://evil.com")])
    assert both.status_code == 400


def test_safe_redirect_normalizes_host_case_and_trailing_dot() -> None:
    allowed = frozenset({SHOP})
    assert safe_redirect("https://SHOP.Example.com./p?q=1#x", allowed) == f"https://{SHOP}/p?q=1#x"
    assert safe_redirect(f"http://{SHOP}:8080", allowed) == f"http://{SHOP}:8080/"
    assert safe_redirect("https://evil.com", allowed) is None


def test_open_redirect_is_refused_by_a_real_server(app: Starlette, token: str) -> None:
    with serving(app) as base, httpx.Client(base_url=base, follow_redirects=False) as http:
        evil = http.get(f"/c/{token}", params={"u": "https://shop.example.com.evil.com/"})
        assert evil.status_code == 400
        good = http.get(f"/c/{token}", params={"u": PRODUCT_URL})
        assert good.status_code == 302
        assert good.headers["location"] == PRODUCT_URL


def test_links_click_url_round_trips_through_the_app(client: TestClient, token: str) -> None:
    links = Links("https://track.shop.example", unsubscribe_address="u@shop.example")
    url = httpx.URL(links.for_token(token).click(PRODUCT_URL))
    assert url.host == "track.shop.example"
    response = client.get(url.raw_path.decode("ascii"))
    assert response.status_code == 302
    assert response.headers["location"] == PRODUCT_URL
    assert links.for_token(token).open_pixel == f"https://track.shop.example/o/{token}.gif"


# ---------------------------------------------------------------------------- open pixel


def test_open_pixel_records_an_open(client: TestClient, token: str, ws: Workspace) -> None:
    response = client.get(f"/o/{token}.gif")
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/gif"
    assert response.content == PIXEL_GIF
    assert "no-store" in response.headers["cache-control"]
    (event,) = list(ws.events.events(campaign_id=CAMPAIGN))
    assert event == Event(customer_id=CUSTOMER, type=EventType.open, timestamp=NOW)


def test_head_requests_from_link_scanners_record_nothing(
    client: TestClient, token: str, ws: Workspace
) -> None:
    assert client.head(f"/o/{token}.gif").status_code == 200
    assert client.head(f"/v/{token}").status_code == 200
    assert ws.kinds() == []


# --------------------------------------------------------------------------- video files


def test_video_supports_range_requests(client: TestClient, ws: Workspace) -> None:
    whole = client.get(f"/r/{RENDER_KEY}/video.mp4")
    assert whole.status_code == 200
    assert whole.content == ws.video
    assert whole.headers["accept-ranges"] == "bytes"
    assert whole.headers["content-type"] == "video/mp4"
    part = client.get(f"/r/{RENDER_KEY}/video.mp4", headers={"Range": "bytes=1000-1999"})
    assert part.status_code == 206
    assert part.headers["content-range"] == f"bytes 1000-1999/{len(ws.video)}"
    assert part.content == ws.video[1000:2000]
    tail = client.get(f"/r/{RENDER_KEY}/video.mp4", headers={"Range": "bytes=-100"})
    assert tail.status_code == 206 and tail.content == ws.video[-100:]
    poster = client.get(f"/r/{RENDER_KEY}/poster.jpg")
    assert poster.status_code == 200 and poster.headers["content-type"] == "image/jpeg"


@pytest.mark.parametrize(
    "path",
    [
        "/r/" + "cd" * 32 + "/video.mp4",  # well-formed but never rendered
        f"/r/{RENDER_KEY.upper()}/video.mp4",
        f"/r/{RENDER_KEY}/render.json",
        f"/r/{RENDER_KEY}/..%2F..%2Fstate.sqlite",
        "/r/..%2F..%2Fstate.sqlite/video.mp4",
        "/r/../state.sqlite",
    ],
)
def test_only_existing_content_addressed_files_are_served(client: TestClient, path: str) -> None:
    assert client.get(path).status_code == 404


# --------------------------------------------------------------------------- unsubscribe


def test_unsubscribe_page_asks_and_changes_nothing(
    client: TestClient, token: str, ws: Workspace
) -> None:
    response = client.get(f"/u/{token}")
    assert response.status_code == 200
    assert f'<form method="post" action="/u/{token}">' in response.text
    assert 'name="List-Unsubscribe" value="One-Click"' in response.text
    assert CUSTOMER not in ws.suppression
    assert ws.kinds() == []


def _multipart(boundary: str = "----reelcast1234") -> tuple[bytes, str]:
    body = (
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="List-Unsubscribe"\r\n\r\n'
        "One-Click\r\n"
        f"--{boundary}--\r\n"
    ).encode()
    return body, f"multipart/form-data; boundary={boundary}"


def test_one_click_unsubscribe_both_encodings_on_a_real_server(
    app: Starlette, token: str, ws: Workspace
) -> None:
    other = make_token(SECRET, CAMPAIGN, "cust-00043")
    multipart, content_type = _multipart()
    with serving(app) as base, httpx.Client(base_url=base, follow_redirects=False) as http:
        form = http.post(
            f"/u/{token}",
            content=b"List-Unsubscribe=One-Click",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert form.status_code == 200
        assert "location" not in form.headers
        assert CUSTOMER in ws.suppression  # at once, before any campaign runs again
        multi = http.post(f"/u/{other}", content=multipart, headers={"Content-Type": content_type})
        assert multi.status_code == 200
        assert "location" not in multi.headers
        assert "cust-00043" in ws.suppression
        # httpx's own multipart encoder, as a mail client library would send it.
        again = http.post(f"/u/{token}", files={"List-Unsubscribe": (None, "One-Click")})
        assert again.status_code == 200
        assert "You are unsubscribed" in again.text
    assert ws.suppression.ids() == {CUSTOMER, "cust-00043"}
    unsubscribes = [e for e in ws.events.events() if e.type is EventType.unsubscribe]
    assert sorted(e.customer_id for e in unsubscribes) == [CUSTOMER, "cust-00043"]


def test_unsubscribe_is_idempotent(client: TestClient, token: str, ws: Workspace) -> None:
    for _ in range(3):
        response = client.post(f"/u/{token}", data={"List-Unsubscribe": "One-Click"})
        assert response.status_code == 200
    assert ws.suppression.ids() == {CUSTOMER}
    assert ws.kinds() == [("unsubscribe", None)]
    assert "You are unsubscribed" in client.get(f"/u/{token}").text


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"", "application/x-www-form-urlencoded"),
        (b"List-Unsubscribe=Maybe", "application/x-www-form-urlencoded"),
        (b"List-Unsubscribe=One-Click", "text/plain"),
        (b"List-Unsubscribe=One-Click", ""),
        (b"garbage", "multipart/form-data; boundary=x"),
    ],
)
def test_a_post_that_is_not_a_one_click_request_is_refused(
    client: TestClient, token: str, ws: Workspace, body: bytes, content_type: str
) -> None:
    response = client.post(f"/u/{token}", content=body, headers={"Content-Type": content_type})
    assert response.status_code == 400
    assert CUSTOMER not in ws.suppression


# ---------------------------------------------------------------------- events and logs


def test_events_read_back_as_retail_events(client: TestClient, token: str, ws: Workspace) -> None:
    ws.events.record_exposures(CAMPAIGN, [(CUSTOMER, NOW - timedelta(minutes=5), "subject-a")])
    client.get(f"/o/{token}.gif")
    ws.clock = NOW + timedelta(minutes=1)
    client.get(f"/v/{token}")
    client.get(f"/c/{token}", params={"u": PRODUCT_URL})
    client.post(f"/u/{token}", data={"List-Unsubscribe": "One-Click"})
    events = list(ws.events.events())
    assert all(isinstance(e, Event) for e in events)
    assert [(e.type, e.product_id) for e in events] == [
        (EventType.exposure, None),
        (EventType.open, None),
        (EventType.click, None),
        (EventType.click, "sku-1"),
        (EventType.unsubscribe, None),
    ]
    assert all(e.customer_id == CUSTOMER and e.timestamp.tzinfo is UTC for e in events)
    assert ws.events.counts(CAMPAIGN) == {"click": 2, "exposure": 1, "open": 1, "unsubscribe": 1}
    assert list(ws.events.events(campaign_id="another")) == []
    assert len(list(ws.events.events(since=NOW + timedelta(seconds=30)))) == 3


def test_exposures_are_recorded_once(ws: Workspace) -> None:
    sends = [(f"cust-{i}", NOW, None) for i in range(5)]
    assert ws.events.record_exposures(CAMPAIGN, sends) == 5
    assert ws.events.record_exposures(CAMPAIGN, sends) == 0
    assert ws.events.counts(CAMPAIGN)["exposure"] == 5


def test_erase_removes_a_customers_events(ws: Workspace) -> None:
    ws.events.record(CAMPAIGN, CUSTOMER, EventType.open, at=NOW)
    ws.events.record(CAMPAIGN, "cust-1", EventType.open, at=NOW)
    assert ws.events.erase(CUSTOMER) == 1
    assert [e.customer_id for e in ws.events.events()] == ["cust-1"]


def test_logs_name_no_token_customer_or_target(
    client: TestClient, token: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="reelcast.tracking"):
        client.get(f"/v/{token}")
        client.get(f"/c/{token}", params={"u": PRODUCT_URL})
        client.get(f"/o/{token}.gif")
        client.post(f"/u/{token}", data={"List-Unsubscribe": "One-Click"})
        client.get(f"/r/{RENDER_KEY}/video.mp4")
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "GET /c/… 302" in text and "POST /u/… 200" in text
    for secret_part in (token, CUSTOMER, CAMPAIGN, SHOP, RENDER_KEY):
        assert secret_part not in text


def test_event_timestamps_are_timezone_aware(ws: Workspace) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        ws.events.record(CAMPAIGN, CUSTOMER, EventType.open, at=datetime(2026, 5, 1))


def test_audit_landing_reads_the_pick_and_render_the_campaign_audited(tmp_path: Path) -> None:
    from delivery_support import make_product

    from compliance.audit import AuditLog
    from compliance.pseudonym import pseudonymize
    from delivery.tracking_landing import AuditLanding

    audit_db = tmp_path / "audit.sqlite"
    subject = pseudonymize(SECRET, CUSTOMER)
    with AuditLog(audit_db, key=b"audit-key-for-tests") as audit:
        audit.record("pick", campaign=CAMPAIGN, subject=subject, products=["sku-2", "sku-gone"])
        audit.record("render", campaign=CAMPAIGN, subject=subject, key=RENDER_KEY, reused=False)
        audit.record("pick", campaign="other", subject=subject, products=["sku-1"])
        audit.record("template", campaign=CAMPAIGN, name="greeting", label="Personalized video")
    products = {p.id: p for p in (make_product(1), make_product(2))}
    landing = AuditLanding(audit_db, SECRET, products)
    try:
        page = landing(CAMPAIGN, CUSTOMER)
        assert page is not None
        assert page.render_key == RENDER_KEY
        assert [p.product_id for p in page.products] == ["sku-2"]  # sku-gone left the catalog
        assert page.label == "Personalized video", "the label the campaign's template gave"
        html = landing_page(
            token="t", landing=page, brand="Shop", ai_label="AI-generated video", postal_address=""
        )
        assert "Personalized video" in html and "AI-generated" not in html
        older = landing("other", CUSTOMER)  # audited before templates said: the app's default
        assert older is not None and older.label is None
        assert landing(CAMPAIGN, "cust-00001") is None
    finally:
        landing.close()
    assert AuditLanding(tmp_path / "missing.sqlite", SECRET, products)(CAMPAIGN, CUSTOMER) is None


# ------------------------------------------------- noise: repeats, machines, limits (#12)

BROWSER = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/124.0 Safari/537.36"
SCANNERS = [
    "Mozilla/5.0 (compatible; BingPreview/1.0b) Barracuda Sentinel",
    "Mozilla/5.0 Proofpoint URL Defense",
    "python-requests/2.32.3",
    "curl/8.5.0",
    "",
]


def _clicks(ws: Workspace) -> list[tuple[str, str | None]]:
    return [k for k in ws.kinds() if k[0] != "exposure"]


def test_a_scanner_agents_click_and_a_head_are_not_training_events(
    client: TestClient, token: str, ws: Workspace
) -> None:
    for agent in SCANNERS:
        hop = client.get(f"/c/{token}", params={"u": PRODUCT_URL}, headers={"User-Agent": agent})
        assert hop.status_code == 302  # a scanner is not told it was spotted
        assert client.get(f"/o/{token}.gif", headers={"User-Agent": agent}).status_code == 200
    assert client.head(f"/c/{token}", params={"u": PRODUCT_URL}).status_code == 302
    assert client.head(f"/v/{token}").status_code == 200
    assert ws.kinds() == []  # training sees none of it
    # Gmail's image proxy loads the pixel when a person opens the mail: a person's open.
    gmail = (
        "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"
    )
    client.get(f"/o/{token}.gif", headers={"User-Agent": gmail})
    client.get(f"/c/{token}", params={"u": PRODUCT_URL}, headers={"User-Agent": gmail})
    assert ws.kinds() == [("open", None)]
    hits = ws.events.machine_hits(CAMPAIGN)  # per reason of the first hit of a window
    assert sum(hits.values()) == 2 * len(SCANNERS) + 3 and set(hits) == {"agent", "head"}


def test_a_click_two_seconds_after_delivery_is_machine_traffic(
    client: TestClient, token: str, ws: Workspace
) -> None:
    ws.events.record_exposures(CAMPAIGN, [(CUSTOMER, NOW, "subject-a")])
    ws.clock = NOW + timedelta(seconds=2)
    headers = {"User-Agent": BROWSER}
    assert client.get(f"/c/{token}", params={"u": PRODUCT_URL}, headers=headers).status_code == 302
    assert client.get(f"/o/{token}.gif", headers=headers).status_code == 200
    assert _clicks(ws) == []
    assert ws.events.machine_hits(CAMPAIGN) == {"soon": 2}
    ws.clock = NOW + timedelta(minutes=3)  # the person, later
    client.get(f"/c/{token}", params={"u": PRODUCT_URL}, headers=headers)
    assert _clicks(ws) == [("click", "sku-1")]


def test_ten_clicks_of_one_token_on_one_product_are_one_event(
    client: TestClient, token: str, ws: Workspace
) -> None:
    for i in range(10):
        ws.clock = NOW + timedelta(seconds=20 * i)
        response = client.get(f"/c/{token}", params={"u": PRODUCT_URL})
        assert response.status_code == 302
        client.get(f"/o/{token}.gif")
    assert ws.kinds() == [("click", "sku-1"), ("open", None)]
    client.get(f"/c/{token}", params={"u": f"https://{SHOP}/sale"})  # another target: its own
    ws.clock = NOW + timedelta(hours=1, minutes=1)  # a new window: a new event
    client.get(f"/c/{token}", params={"u": PRODUCT_URL})
    assert ws.kinds() == [("click", "sku-1"), ("open", None), ("click", None), ("click", "sku-1")]
    with sqlite3.connect(ws.state_db) as db:  # the repeats are counted, not stored as events
        repeats = db.execute(
            "SELECT repeats FROM tracking_events WHERE type = 'click' AND product_id = 'sku-1'"
            " ORDER BY at LIMIT 1"
        ).fetchall()
    db.close()
    assert repeats == [(9,)]


def test_a_token_hammering_the_app_gets_429_while_another_token_is_served(
    client: TestClient, token: str, ws: Workspace
) -> None:
    statuses = [client.get(f"/c/{token}", params={"u": PRODUCT_URL}).status_code for _ in range(60)]
    assert statuses[0] == 302 and statuses[-1] == 429
    assert 10 <= statuses.index(429) <= 50  # the limit, not the first request
    refused = client.get(f"/o/{token}.gif")
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
    other = make_token(SECRET, CAMPAIGN, "cust-00043")
    assert client.get(f"/c/{other}", params={"u": PRODUCT_URL}).status_code == 302
    # The hammered token's recipient can still unsubscribe, at once (RFC 8058).
    done = client.post(f"/u/{token}", data={"List-Unsubscribe": "One-Click"})
    assert done.status_code == 200 and "location" not in done.headers
    assert CUSTOMER in ws.suppression


def test_an_address_over_its_limit_gets_429_but_one_click_unsubscribe_still_works(
    ws: Workspace,
) -> None:
    from delivery.traffic import RateLimit

    app = create_app(
        secret=SECRET,
        events=ws.events,
        suppression=ws.suppression,
        renders_dir=ws.renders,
        allowed_redirect_hosts=hosts_of([PRODUCT_URL]),
        per_address=RateLimit(per_minute=5, burst=5),
        clock=lambda: ws.clock,
    )
    tokens = [make_token(SECRET, CAMPAIGN, f"cust-{n:05d}") for n in range(10)]
    with TestClient(app, follow_redirects=False) as client:
        statuses = [client.get(f"/o/{t}.gif").status_code for t in tokens]
        assert statuses == [200] * 5 + [429] * 5
        assert client.get(f"/o/{tokens[0]}.gif").headers["retry-after"] == "12"
        for t in tokens:  # a mailbox provider's server, unsubscribing many recipients
            posted = client.post(f"/u/{t}", data={"List-Unsubscribe": "One-Click"})
            assert posted.status_code == 200
        assert len(ws.suppression.ids()) == 10
        # Guessing tokens by POST is limited like everything else.
        assert (
            client.post("/u/not-a-token", data={"List-Unsubscribe": "One-Click"}).status_code == 429
        )


def test_an_oversized_body_is_refused_before_it_is_read(client: TestClient, token: str) -> None:
    response = client.post(
        f"/u/{token}",
        content=b"List-Unsubscribe=One-Click&" + b"x" * 70_000,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 413


@contextmanager
def _write_locked(target: Target) -> Iterator[None]:
    """Another writer holding the tracking table: SQLite's write lock, or on PostgreSQL a
    table lock that lets readers through but makes every insert and update wait."""
    if isinstance(target, Path):
        blocker = sqlite3.connect(target, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        return
    url = str(target).replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url) as pg:
        pg.execute("LOCK TABLE tracking_events IN EXCLUSIVE MODE")
        try:
            yield
        finally:
            pg.rollback()


def test_a_busy_event_store_does_not_fail_the_click(
    database: Callable[[str], Target],
    tmp_path: Path,
    token: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    target = database("tracking")
    with TrackingEvents(target, timeout=0.05) as events:
        app = create_app(
            secret=SECRET,
            events=events,
            suppression=SuppressionList(database("state")),
            renders_dir=tmp_path / "renders",
            allowed_redirect_hosts=hosts_of([PRODUCT_URL]),
            clock=lambda: NOW,
        )
        with TestClient(app, follow_redirects=False) as client:
            assert events.counts()["click"] == 0  # connected before the lock is taken
            with _write_locked(target), caplog.at_level(logging.WARNING, "reelcast.tracking"):
                started = time.monotonic()
                response = client.get(f"/c/{token}", params={"u": PRODUCT_URL})
                assert response.status_code == 302
                took = time.monotonic() - started  # the store's 50 ms, not the default 2 s
                assert took < 1.5, f"the click waited {took:.2f} s for the other writer"
                pixel = client.get(f"/o/{token}.gif")
                assert pixel.status_code == 200 and pixel.content == PIXEL_GIF
                posted = client.post(f"/u/{token}", data={"List-Unsubscribe": "One-Click"})
                assert posted.status_code == 200  # suppressed; only the event was dropped
            assert events.counts() == {"click": 0, "exposure": 0, "open": 0, "unsubscribe": 0}
            dropped = [r.getMessage() for r in caplog.records if "not recorded" in r.message]
            assert len(dropped) == 3
            assert not any(CUSTOMER in m or CAMPAIGN in m for m in dropped)  # no ids in logs
            # Once the other writer is done, hits are stored again.
            assert client.get(f"/c/{token}", params={"u": PRODUCT_URL}).status_code == 302
            assert events.counts()["click"] == 1
