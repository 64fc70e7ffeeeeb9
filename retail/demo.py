"""A deterministic demo retailer: catalog with drawn product images, customers, events.

The same seed always gives the same files, byte for byte, so the demo and the
tests share one fixture. The events have the structure real shops show: Zipf
popularity inside categories, customers with one or two favourite categories and
a price band, view → cart → purchase funnels, repeat purchases of consumables,
and activity at each customer's usual local hour.
"""

from __future__ import annotations

import csv
import math
import unicodedata
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypedDict
from zoneinfo import ZoneInfo

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from retail.images import draw_product

# category: (price median in EUR, consumable?, nouns, base colour)
CATEGORIES: dict[str, tuple[float, bool, tuple[str, ...], tuple[int, int, int]]] = {
    "Sneakers": (89.0, False, ("Runner", "Court Sneaker", "Trail Shoe", "Slip-On"), (226, 88, 64)),
    "Coffee": (14.0, True, ("Espresso Beans", "Filter Roast", "Decaf Blend"), (120, 78, 48)),
    "Headphones": (
        129.0,
        False,
        ("Wireless Headphones", "Studio Monitor", "Earbuds"),
        (52, 60, 84),
    ),
    "Watches": (199.0, False, ("Field Watch", "Chronograph", "Diver"), (40, 96, 120)),
    "Backpacks": (69.0, False, ("Daypack", "Commuter Pack", "Roll-Top"), (70, 110, 80)),
    "Lamps": (59.0, False, ("Desk Lamp", "Floor Lamp", "Reading Light"), (230, 180, 60)),
    "Plants": (24.0, False, ("Monstera", "Snake Plant", "Fiddle Leaf Fig"), (60, 150, 90)),
    "T-Shirts": (25.0, False, ("Organic Tee", "Pocket Tee", "Heavyweight Tee"), (90, 120, 200)),
    "Sunglasses": (79.0, False, ("Aviator", "Wayfarer", "Round Frame"), (30, 30, 30)),
    "Bottles": (29.0, True, ("Insulated Bottle", "Glass Bottle", "Sport Bottle"), (40, 170, 200)),
}
BRANDS = ("Northwind", "Aurelia", "Kestrel & Co", "Lumen", "Tidewater", "Fjord", "Solace")
ADJECTIVES = ("Classic", "Everyday", "Pro", "Lite", "Heritage", "Urban", "Nordic", "Studio")
COLOURS = ("Black", "Sand", "Olive", "Navy", "Coral", "Stone", "Forest", "Cream")

# country: (locale, time zones, opt-in jurisdiction)
MARKETS: dict[str, tuple[str, tuple[str, ...]]] = {
    "US": ("en_US", ("America/New_York", "America/Chicago", "America/Los_Angeles")),
    "GB": ("en_GB", ("Europe/London",)),
    "DE": ("de_DE", ("Europe/Berlin",)),
    "FR": ("fr_FR", ("Europe/Paris",)),
    "ES": ("es_ES", ("Europe/Madrid",)),
    "NL": ("nl_NL", ("Europe/Amsterdam",)),
    "CA": ("en_CA", ("America/Toronto", "America/Vancouver")),
    "AU": ("en_AU", ("Australia/Sydney",)),
    "JP": ("ja_JP", ("Asia/Tokyo",)),
}
MARKET_WEIGHTS = (0.3, 0.12, 0.16, 0.1, 0.07, 0.06, 0.08, 0.06, 0.05)
FIRST_NAMES = {
    "en": ("Olivia", "Liam", "Emma", "Noah", "Ava", "James", "Mia", "Lucas", "Grace", "Ethan"),
    "de": ("Lena", "Jonas", "Mia", "Finn", "Hannah", "Paul", "Lea", "Felix", "Emilia", "Ben"),
    "fr": ("Louise", "Gabriel", "Chloé", "Léo", "Inès", "Hugo", "Jade", "Louis", "Zoé", "Jules"),
    "es": ("Lucía", "Hugo", "Sofía", "Martín", "Martina", "Pablo", "Paula", "Mateo", "Alba"),
    "nl": ("Emma", "Daan", "Julia", "Sem", "Tess", "Lucas", "Sophie", "Levi", "Nora", "Finn"),
    "ja": ("Yui", "Haruto", "Aoi", "Sota", "Hina", "Yuto", "Mei", "Riku", "Sakura", "Ren"),
}
LAST_NAMES = {
    "en": ("Smith", "Johnson", "Brown", "Taylor", "Wilson", "Davies", "Clarke", "Walker"),
    "de": ("Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Becker", "Hoffmann"),
    "fr": ("Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit"),
    "es": ("García", "Fernández", "González", "Rodríguez", "López", "Martínez"),
    "nl": ("de Jong", "Jansen", "de Vries", "van den Berg", "Bakker", "Visser"),
    "ja": ("Sato", "Suzuki", "Takahashi", "Tanaka", "Watanabe", "Ito", "Yamamoto"),
}
SHOP_URL = "https://shop.example.com"


@dataclass(frozen=True)
class DemoFiles:
    """Where the generated retailer was written."""

    catalog: Path
    customers: Path
    events: Path
    images: Path


def generate_retailer(
    out_dir: Path,
    *,
    seed: int = 7,
    n_products: int = 400,
    n_customers: int = 1000,
    days: int = 60,
    now: datetime | None = None,
    image_size: int = 720,
) -> DemoFiles:
    """Write catalog.csv, customers.csv, events.csv and images/ for a demo shop.

    Deterministic for a given seed and `now` (default: a fixed date, so the
    files do not change from day to day). Returns the paths written.
    """
    rng = np.random.default_rng(seed)
    now = now or datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
    out_dir = Path(out_dir)
    images = out_dir / "images"
    images.mkdir(parents=True, exist_ok=True)

    products = _products(rng, n_products)
    for p in products:
        path = images / f"{p['id']}.jpg"
        if not path.exists():
            _product_image(p, image_size, seed).save(path, quality=90)
    customers, prefs = _customers(rng, n_customers)
    events = _events(rng, products, customers, prefs, days=days, now=now)

    files = DemoFiles(
        catalog=out_dir / "catalog.csv",
        customers=out_dir / "customers.csv",
        events=out_dir / "events.csv",
        images=images,
    )
    _write(files.catalog, products)
    _write(files.customers, customers)
    _write(files.events, events)
    return files


# One CSV row: column name to cell text.
Row = dict[str, str]


class _Habits(TypedDict):
    """How one generated customer shops (not written out; drives their events)."""

    favourites: list[int]
    sessions: int
    price_factor: float
    hour: int


def _write(path: Path, rows: list[Row]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def _products(rng: np.random.Generator, n: int) -> list[Row]:
    names = list(CATEGORIES)
    rows = []
    for i in range(n):
        category = names[i % len(names)]
        median, _, nouns, _ = CATEGORIES[category]
        brand = BRANDS[int(rng.integers(len(BRANDS)))]
        title = (
            f"{ADJECTIVES[int(rng.integers(len(ADJECTIVES)))]} "
            f"{nouns[int(rng.integers(len(nouns)))]} – {COLOURS[int(rng.integers(len(COLOURS)))]}"
        )
        price = max(3.0, median * math.exp(rng.normal(0, 0.35)))
        price = math.floor(price) + 0.99 if price > 10 else round(price, 2)
        pid = f"P{i + 1:04d}"
        rows.append(
            {
                "id": pid,
                "title": title,
                "brand": brand,
                "category": category,
                "price": f"{price:.2f}",
                "currency": "EUR",
                "image": f"images/{pid}.jpg",
                "url": f"{SHOP_URL}/p/{pid.lower()}",
                "in_stock": "false" if rng.random() < 0.05 else "true",
                "description": f"{title} by {brand}. {category} made to last.",
            }
        )
    return rows


def _customers(rng: np.random.Generator, n: int) -> tuple[list[Row], list[_Habits]]:
    countries = list(MARKETS)
    rows: list[Row] = []
    prefs: list[_Habits] = []
    start = datetime(2024, 1, 1, tzinfo=UTC)
    for i in range(n):
        country = countries[int(rng.choice(len(countries), p=MARKET_WEIGHTS))]
        locale, zones = MARKETS[country]
        lang = locale.split("_")[0]
        first = FIRST_NAMES[lang][int(rng.integers(len(FIRST_NAMES[lang])))]
        last = LAST_NAMES[lang][int(rng.integers(len(LAST_NAMES[lang])))]
        cid = f"C{i + 1:05d}"
        roll = rng.random()
        consent = "granted" if roll < 0.62 else ("unknown" if roll < 0.85 else "denied")
        consent_at = start + timedelta(days=int(rng.integers(0, 600)))
        local = _ascii(f"{first}.{last}").lower().replace(" ", "")
        rows.append(
            {
                "id": cid,
                "email": f"{local}.{i + 1}@example.com",
                "first_name": first,
                "last_name": last if rng.random() < 0.9 else "",
                "phone": f"+1 555 01{i % 100:02d}" if rng.random() < 0.5 else "",
                "locale": locale,
                "timezone": zones[int(rng.integers(len(zones)))],
                "country": country,
                "marketing_consent": consent,
                "consent_timestamp": consent_at.isoformat() if consent == "granted" else "",
                "consent_source": ("checkout", "newsletter-form", "account-settings")[
                    int(rng.integers(3))
                ]
                if consent == "granted"
                else "",
                # About one customer in ten asked not to be greeted by name. From the id, not
                # the random stream, so every other column stays as it was.
                "personalization": "false" if zlib.crc32(cid.encode()) % 10 == 0 else "true",
            }
        )
        n_fav = 1 if rng.random() < 0.6 else 2
        favs = rng.choice(len(CATEGORIES), size=n_fav, replace=False)
        prefs.append(
            {
                "favourites": [int(f) for f in favs],
                # Some customers never did anything: they exercise the cold-start path.
                "sessions": 0 if rng.random() < 0.12 else int(rng.poisson(7)) + 1,
                "price_factor": float(math.exp(rng.normal(0, 0.3))),
                "hour": int(np.clip(rng.normal(19, 3), 6, 23)),
            }
        )
    return rows, prefs


def _ascii(text: str) -> str:
    text = text.replace("ß", "ss")
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()


def _events(
    rng: np.random.Generator,
    products: list[Row],
    customers: list[Row],
    prefs: list[_Habits],
    *,
    days: int,
    now: datetime,
) -> list[Row]:
    names = list(CATEGORIES)
    by_category: dict[int, list[int]] = {c: [] for c in range(len(names))}
    for idx, p in enumerate(products):
        by_category[names.index(p["category"])].append(idx)
    # Zipf popularity inside each category: a few hits, a long tail.
    weights = {
        c: np.array([1.0 / (rank + 1) ** 1.1 for rank in range(len(ids))])
        for c, ids in by_category.items()
    }
    prices_by_category = {
        c: np.array([float(products[i]["price"]) for i in ids]) for c, ids in by_category.items()
    }
    rows: list[Row] = []
    for customer, pref in zip(customers, prefs, strict=True):
        zone = ZoneInfo(customer["timezone"])
        bought: list[int] = []
        for _ in range(pref["sessions"]):
            day = int(rng.integers(0, days))
            local = (now - timedelta(days=day)).astimezone(zone)
            hour = int(np.clip(pref["hour"] + rng.normal(0, 1.5), 0, 23))
            at = local.replace(hour=hour, minute=int(rng.integers(60)), second=0, microsecond=0)
            if at > now:
                at -= timedelta(days=1)
            fav = pref["favourites"]
            category = (
                fav[int(rng.integers(len(fav)))]
                if rng.random() < 0.8
                else int(rng.integers(len(names)))
            )
            ids = by_category[category]
            # Price band: the customer leans to items near their usual price level.
            median = CATEGORIES[names[category]][0] * pref["price_factor"]
            prices = prices_by_category[category]
            band = np.exp(-((np.log(prices / median)) ** 2) / 0.5)
            w = weights[category] * band
            w = w / w.sum()
            for step in range(int(rng.integers(1, 5))):
                item = ids[int(rng.choice(len(ids), p=w))]
                t = at + timedelta(minutes=3 * step)
                rows.append(_event(customer["id"], products[item]["id"], "view", t))
                if rng.random() < 0.3:
                    rows.append(_event(customer["id"], products[item]["id"], "cart", t))
                    if rng.random() < 0.45:
                        rows.append(_event(customer["id"], products[item]["id"], "purchase", t))
                        bought.append(item)
        # Consumables come back: coffee and bottles are bought again.
        for item in bought:
            if CATEGORIES[products[item]["category"]][1] and rng.random() < 0.5:
                t = now - timedelta(days=int(rng.integers(0, max(1, days // 3))), hours=3)
                rows.append(_event(customer["id"], products[item]["id"], "purchase", t))
        if pref["sessions"] and rng.random() < 0.03:
            t = now - timedelta(days=int(rng.integers(0, days)))
            rows.append(_event(customer["id"], "", "unsubscribe", t))
    rows.sort(key=lambda r: (r["timestamp"], r["customer_id"]))
    return rows


def _event(customer_id: str, product_id: str, kind: str, at: datetime) -> Row:
    return {
        "customer_id": customer_id,
        "product_id": product_id,
        "type": kind,
        "timestamp": at.astimezone(UTC).isoformat(),
    }


def _product_image(product: Row, size: int, seed: int) -> Image.Image:
    """A studio-style product shot: soft gradient backdrop, shadow, drawn object."""
    _, _, _, base = CATEGORIES[product["category"]]
    rng = np.random.default_rng([seed, zlib.crc32(product["id"].encode())])
    tint = tuple(int(np.clip(c + rng.integers(-40, 41), 0, 255)) for c in base)
    backdrop = _gradient(size, _mix(tint, (255, 255, 255), 0.85), _mix(tint, (255, 255, 255), 0.6))
    shadow = Image.new("L", (size, size), 0)
    ImageDraw.Draw(shadow).ellipse((size * 0.2, size * 0.78, size * 0.8, size * 0.88), fill=110)
    shadow = shadow.filter(ImageFilter.GaussianBlur(size / 40))
    backdrop.paste((0, 0, 0), mask=shadow)
    draw_product(backdrop, product["category"], tint)
    return backdrop


def _gradient(size: int, top: tuple[int, ...], bottom: tuple[int, ...]) -> Image.Image:
    t = np.linspace(0.0, 1.0, size)[:, None, None]
    rows = (1 - t) * np.array(top)[None, None, :] + t * np.array(bottom)[None, None, :]
    return Image.fromarray(np.repeat(rows, size, axis=1).astype(np.uint8), "RGB")


def _mix(a: tuple[int, ...], b: tuple[int, ...], amount: float) -> tuple[int, ...]:
    return tuple(int(x * (1 - amount) + y * amount) for x, y in zip(a, b, strict=True))
