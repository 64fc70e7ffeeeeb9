"""The campaign email rendered in headless Chromium at phone and desktop widths.

Screenshots are kept under test-artifacts/email/ (git-ignored) for a human to look at.
The layout is measured inside an iframe of exactly the target width (headless Chromium
will not make a window narrower than 500 px, an iframe has no such floor), by a small
script whose result `--dump-dom` prints.
"""

from __future__ import annotations

import html
import json
import re
import subprocess
from collections.abc import Callable
from decimal import Decimal
from email.message import EmailMessage
from pathlib import Path

import pytest
from delivery_support import REPO, make_customer, make_product
from PIL import Image, ImageStat

from delivery.compose import preview_email

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = REPO / "test-artifacts" / "email"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--hide-scrollbars",
    "--run-all-compositor-stages-before-draw",
    "--virtual-time-budget=2000",
]

pytestmark = [
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="needs /usr/bin/chromium (apt-get install -y chromium) to render the email",
    ),
    pytest.mark.slow,
]

_PROBE = """<!DOCTYPE html><html><head><meta charset="utf-8"></head>
<body style="margin:0"><iframe id="mail" width="{width}" height="3000"
 style="border:0; display:block" srcdoc="{srcdoc}"></iframe>
<script>
document.getElementById('mail').addEventListener('load', function () {{
  var doc = this.contentDocument, win = this.contentWindow;
  function box(el) {{
    var r = el.getBoundingClientRect();
    return {{left: Math.round(r.left), top: Math.round(r.top), width: Math.round(r.width)}};
  }}
  var img = doc.querySelector('img.hero-img');
  var result = {{
    viewport: win.innerWidth,
    scrollWidth: doc.documentElement.scrollWidth,
    container: box(doc.querySelector('table.container')),
    cards: Array.prototype.map.call(doc.querySelectorAll('td.card:not(.card-spacer)'), box),
    image: {{natural: img.naturalWidth, shown: box(img).width}},
    thumbs: Array.prototype.map.call(doc.querySelectorAll('img.thumb'), function (t) {{
      return {{natural: t.naturalWidth, shown: box(t).width, alt: t.alt}};
    }}),
    cardText: Array.prototype.map.call(
      doc.querySelectorAll('td.card:not(.card-spacer)'), function (c) {{
        return c.innerText.replace(/\\s+/g, ' ').trim();
      }}),
    unsubscribe: !!Array.prototype.find.call(doc.querySelectorAll('a'), function (a) {{
      return a.textContent.trim() === 'Unsubscribe' && box(a).width > 0;
    }})
  }};
  var out = document.createElement('pre');
  out.id = 'layout';
  out.textContent = JSON.stringify(result);
  document.body.appendChild(out);
}});
</script></body></html>
"""


def _chromium(*args: str, images: bool = True) -> str:
    flags = FLAGS if images else [*FLAGS, "--blink-settings=imagesEnabled=false"]
    done = subprocess.run(
        [str(CHROMIUM), *flags, *args], capture_output=True, text=True, timeout=90, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def _layout(email_html: Path, width: int, *, images: bool = True) -> dict:
    probe = email_html.with_name(f"probe-{width}.html")
    srcdoc = html.escape(email_html.read_text(), quote=True)
    probe.write_text(_PROBE.format(width=width, srcdoc=srcdoc))
    dom = _chromium("--window-size=1024,800", "--dump-dom", probe.as_uri(), images=images)
    found = re.search(r'<pre id="layout">(.*?)</pre>', dom, re.S)
    assert found, "the layout probe did not run"
    return json.loads(html.unescape(found.group(1)))


def _screenshot(email_html: Path, width: int, *, images: bool = True) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / f"campaign-email-{width}px{'' if images else '-images-blocked'}.png"
    shot.unlink(missing_ok=True)
    _chromium(
        f"--window-size={width},1400", f"--screenshot={shot}", email_html.as_uri(), images=images
    )
    assert shot.is_file()
    return shot


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("email")
    poster = folder / "poster.jpg"
    # A poster with some structure, like a real video frame: not a flat colour.
    image = Image.new("RGB", (360, 640), (30, 30, 60))
    image.paste((220, 60, 40), (40, 80, 320, 400))
    image.save(poster, "JPEG")
    (folder / "images").mkdir()
    for n, colour in ((1, (200, 40, 40)), (2, (40, 140, 60)), (3, (40, 60, 200))):
        picture = Image.new("RGB", (600, 600), (250, 250, 250))
        picture.paste(colour, (100, 150, 500, 450))
        picture.save(folder / "images" / f"{n}.jpg", "JPEG")
    return folder


def _compose(folder: Path, compose: Callable[..., EmailMessage]) -> Path:
    products = [
        make_product(1, title="Trail Runner Pro with an unusually long product name"),
        make_product(2, price=Decimal("19.99")),
        make_product(3, title="Rain Jacket", brand="Northwind"),
    ]
    msg = compose(
        make_customer(first_name="Ann"),
        products=products,
        poster=folder / "poster.jpg",
        images_root=folder,
    )
    return preview_email(msg, folder / "email.html")


def test_email_fits_a_phone_and_stacks_the_product_cards(
    folder: Path, compose: Callable[..., EmailMessage]
) -> None:
    page = _compose(folder, compose)
    layout = _layout(page, 375)
    assert layout["viewport"] == 375
    assert layout["scrollWidth"] <= 375, "the email scrolls sideways on a phone"
    cards = layout["cards"]
    assert len(cards) == 3
    assert len({c["left"] for c in cards}) == 1  # one column
    assert [c["top"] for c in cards] == sorted({c["top"] for c in cards})
    assert all(c["width"] >= 300 for c in cards)
    assert layout["image"]["natural"] > 0 and 0 < layout["image"]["shown"] <= 375
    assert layout["unsubscribe"]

    shot = _screenshot(page, 375)
    _assert_not_blank(shot, 375)


def test_email_on_a_desktop_is_a_centred_600px_column_with_two_cards_a_row(
    folder: Path, compose: Callable[..., EmailMessage]
) -> None:
    page = _compose(folder, compose)
    layout = _layout(page, 800)
    assert layout["scrollWidth"] <= 800
    container = layout["container"]
    assert container["width"] == 600
    assert abs(container["left"] - (800 - 600) / 2) <= 2
    first, second, third = layout["cards"]
    assert first["top"] == second["top"] and first["left"] < second["left"]
    assert third["top"] > first["top"]
    assert layout["image"]["shown"] == 300
    assert layout["unsubscribe"]
    # Each card leads with its product's picture: 240 px shown at 120, for retina screens.
    assert [t["natural"] for t in layout["thumbs"]] == [240, 240, 240]
    assert [t["shown"] for t in layout["thumbs"]] == [120, 120, 120]
    assert layout["thumbs"][2]["alt"] == "Rain Jacket"

    shot = _screenshot(page, 800)
    _assert_not_blank(shot, 800)


def test_with_images_blocked_the_cards_still_read(
    folder: Path, compose: Callable[..., EmailMessage]
) -> None:
    """Many clients block images until asked: the cards keep brand, title and price, and
    each picture's box says what it shows (its alt text)."""
    page = _compose(folder, compose)
    layout = _layout(page, 375, images=False)
    assert [t["natural"] for t in layout["thumbs"]] == [0, 0, 0], "images were not blocked"
    assert layout["scrollWidth"] <= 375
    third = layout["cardText"][2]
    assert "NORTHWIND" in third and "Rain Jacket" in third and "€1,234.50" in third
    assert layout["unsubscribe"]
    _screenshot(page, 375, images=False)


def _assert_not_blank(shot: Path, width: int) -> None:
    with Image.open(shot) as image:
        assert image.width == width
        rgb = image.convert("RGB")
        stat = ImageStat.Stat(rgb)
        assert max(stat.stddev) > 20, f"{shot} looks blank"
        colours = rgb.resize((width // 4, rgb.height // 4)).getcolors(maxcolors=1 << 16)
        assert colours is None or len(colours) > 20, f"{shot} has almost no content"
