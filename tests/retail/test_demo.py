"""The demo retailer is a deterministic fixture with real structure."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from PIL import Image

from retail.demo import generate_retailer
from retail.loaders import load_retail


def test_same_seed_gives_identical_files(tmp_path: Path) -> None:
    a = generate_retailer(tmp_path / "a", seed=3, n_products=20, n_customers=30, image_size=64)
    b = generate_retailer(tmp_path / "b", seed=3, n_products=20, n_customers=30, image_size=64)
    for x, y in ((a.catalog, b.catalog), (a.customers, b.customers), (a.events, b.events)):
        assert x.read_bytes() == y.read_bytes()
    assert (a.images / "P0001.jpg").read_bytes() == (b.images / "P0001.jpg").read_bytes()


def test_has_mixed_consent_zones_and_cold_start_customers(small_retailer) -> None:
    data = load_retail(small_retailer.catalog, small_retailer.customers, small_retailer.events)
    consent = Counter(c.marketing_consent for c in data.customers)
    assert len(consent) == 3
    assert len({c.timezone for c in data.customers}) >= 4
    active = {e.customer_id for e in data.events}
    assert 0 < len(active) < len(data.customers)


def test_popularity_is_skewed_and_images_exist(small_retailer) -> None:
    data = load_retail(small_retailer.catalog, small_retailer.customers, small_retailer.events)
    views = Counter(e.product_id for e in data.events if e.type == "view")
    top, *_, bottom = sorted(views.values(), reverse=True)
    assert top > 4 * bottom
    image = Image.open(small_retailer.catalog.parent / data.products[0].image)
    assert image.size == (360, 360)


def test_some_customers_opted_out_of_personalization(small_retailer) -> None:
    data = load_retail(small_retailer.catalog, small_retailer.customers, small_retailer.events)
    opted_out = sum(not c.personalization for c in data.customers)
    assert 0 < opted_out < len(data.customers) / 4


def test_the_demo_events_as_gzip_and_parquet_load_as_the_csv(small_retailer, tmp_path) -> None:
    """A warehouse dump of the same events (gzipped CSV, Parquet with typed timestamps)
    gives the campaign the same data as the CSV."""
    import gzip

    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    files = small_retailer
    gz = tmp_path / "events.csv.gz"
    gz.write_bytes(gzip.compress(files.events.read_bytes()))
    table = pcsv.read_csv(
        files.events, convert_options=pcsv.ConvertOptions(column_types={"timestamp": pa.string()})
    )
    instants = pc.cast(
        pc.strptime(table["timestamp"], format="%Y-%m-%dT%H:%M:%S%z", unit="us"),
        pa.timestamp("us", tz="UTC"),
    )
    parquet = tmp_path / "events.parquet"
    pq.write_table(table.set_column(3, "timestamp", instants), parquet)

    as_csv = load_retail(files.catalog, files.customers, files.events)
    for events in (gz, parquet):
        data = load_retail(files.catalog, files.customers, events)
        assert list(data.events) == list(as_csv.events)
        assert data.problems == as_csv.problems
