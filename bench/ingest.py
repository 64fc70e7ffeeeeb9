"""Events at size: how fast `load_events` reads CSV, gzipped CSV and Parquet, in how much memory.

Generates N events of a retailer (default 10,000,000; 500,000 customers, 50,000 products,
timestamps as `…Z`, `…+02:00` and `….ffffffZ`, 2 % without a product, one bad row in
100,000: a timestamp without an offset) in a temporary folder as `events.csv`,
`events.csv.gz` (gzip level 1) and `events.parquet` (row groups of 1,000,000, timestamps
typed, ids dictionary-encoded as pyarrow writes them). Each file is then loaded by
`retail.loaders.load_events(path, "skip")` in a fresh child process, so each peak resident
set size (VmHWM) is that load's alone, next to a child that only imports the loader.

Then a catalog: a Google Merchant Center RSS feed of `--items` products (default 50,000),
each with an `image_link` to a generated picture on a loopback image server
(`tests/retail/image_server.py` in a child process, ETag and Last-Modified on every
picture). The feed is
read by `retail.feeds.load_catalog`, its pictures fetched by `retail.remote_images.
fetch_images` into an empty cache (8 at a time, the default), then fetched again: the
second run asks the server about each (If-None-Match) and must download nothing
(`second_run_downloads` 0). The server waits `--latency-ms` (default 10) before each
answer, a CDN edge's round trip: on bare loopback both runs measure only CPU. Baseline:
the same fetch one at a time on the first 2,000 pictures into another empty cache;
`images_ratio` = fetched/s ÷ one-at-a-time/s.

The events baseline, in the same run: the per-row reader (`load_events(..., per_row=True)`, every
row validated as a pydantic `Event`) on the first 200,000 events of the same CSV.
`ratio` = CSV events/s ÷ per-row events/s. Targets: ≥ 1,000,000 events/s, peak ≤ 1.5 GB.

`--json` ends the output with one JSON line: {"events", "events_per_s" (CSV),
"peak_rss_mb" (the largest of the loads), "per_format": {...}, "per_row_events_per_s",
"ratio", "catalog_items", "catalog_s", "images_fetched_per_s", "images_ratio",
"second_run_downloads", ...}; `main` assembles it from the sections' dicts.

    python bench/ingest.py [--events N | --quick] [--items N] [--dir /tmp] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
REPO = _HERE.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from retail.feeds import load_catalog  # noqa: E402
from retail.remote_images import FetchPolicy, fetch_images  # noqa: E402

CHUNK = 1_000_000
SAMPLE = 200_000
TYPES = ("view", "view", "view", "view", "cart", "cart", "purchase", "open", "click")
EVENTS_PER_S_TARGET = 1_000_000
PEAK_MB_TARGET = 1_536

# The child reads its own peak from /proc (VmHWM): ru_maxrss would carry over the parent's
# peak through fork and exec (the generated columns, here).
_CHILD = """
import json, sys, time
from pathlib import Path
from retail.loaders import load_events
path, per_row = sys.argv[1], sys.argv[2] == "per_row"
result = {}
if path != "-":
    started = time.perf_counter()
    loaded = load_events(Path(path), "skip", per_row=per_row)
    result = {
        "seconds": time.perf_counter() - started,
        "kept": len(loaded.events),
        "skipped": loaded.skipped_rows,
        "problems": len(loaded.problems),
    }
status = open("/proc/self/status").read().split("VmHWM:")[1]
result["peak_rss_mb"] = int(status.split()[0]) / 1024
print(json.dumps(result))
"""


@dataclass(frozen=True)
class EventFiles:
    csv: Path
    gz: Path
    parquet: Path
    sample: Path  # the first SAMPLE events, as CSV


# -- data -------------------------------------------------------------------------------------


def _chunk(rng: np.random.Generator, count: int, first: int, bad_every: int) -> pa.Table:
    """`count` events (the `first`-th event of the file first) as text and typed columns."""

    def ids(prefix: str, numbers: np.ndarray[Any, Any], width: int) -> pa.Array:
        digits = pc.utf8_lpad(pa.array(numbers).cast(pa.string()), width=width, padding="0")
        return pc.binary_join_element_wise(prefix, digits, "")

    customers = ids("C", rng.zipf(1.3, count) % 500_000, 7)
    products = ids("P", rng.integers(0, 50_000, count), 6)
    products = pc.if_else(pa.array(rng.random(count) < 0.02), "", products)
    kinds = pa.array(np.asarray(TYPES)[rng.integers(0, len(TYPES), count)])
    start = np.datetime64("2025-01-01T00:00:00", "us")
    instants = start + rng.integers(0, 400 * 86_400 * 10**6, count).astype("timedelta64[us]")
    shape = rng.random(count)
    utc = np.datetime_as_string(instants, unit="s", timezone="UTC")  # …Z
    local = np.datetime_as_string(instants + np.timedelta64(2, "h"), unit="s")
    fine = np.datetime_as_string(instants, unit="us", timezone="UTC")
    text = np.where(shape < 0.6, utc, np.char.add(local, "+02:00"))
    text = np.where(shape > 0.9, fine, text)
    rows = np.arange(first, first + count)
    if bad_every:
        bad = rows % bad_every == bad_every // 2
        text = np.where(bad, np.datetime_as_string(instants, unit="s"), text)  # no offset
    return pa.table(
        {
            "customer_id": customers,
            "product_id": products,
            "type": kinds,
            "timestamp": pa.array(text.astype(str)),
            "at": pa.array(instants, pa.timestamp("us", tz="UTC")),
        }
    )


def generate(folder: Path, events: int, bad_every: int, seed: int = 17) -> EventFiles:
    """Write the events as CSV, gzipped CSV and Parquet, a million at a time."""
    files = EventFiles(
        folder / "events.csv",
        folder / "events.csv.gz",
        folder / "events.parquet",
        folder / "sample.csv",
    )
    rng = np.random.default_rng(seed)
    csv_columns = ["customer_id", "product_id", "type", "timestamp"]
    options = pcsv.WriteOptions(quoting_style="none")
    csv_schema = pa.schema([(name, pa.string()) for name in csv_columns])
    parquet_schema = pa.schema(
        [
            *(pa.field(n, pa.string()) for n in csv_columns[:3]),
            ("timestamp", pa.timestamp("us", "UTC")),
        ]
    )
    with (
        pcsv.CSVWriter(str(files.csv), csv_schema, write_options=options) as plain,
        pa.CompressedOutputStream(str(files.gz), "gzip") as packed_stream,
        pq.ParquetWriter(str(files.parquet), parquet_schema) as parquet,
        pcsv.CSVWriter(str(files.sample), csv_schema, write_options=options) as sample,
    ):
        packed = pcsv.CSVWriter(packed_stream, csv_schema, write_options=options)
        for first in range(0, events, CHUNK):
            table = _chunk(rng, min(CHUNK, events - first), first, bad_every)
            text = table.select(csv_columns)
            plain.write_table(text)
            packed.write_table(text)
            if first < SAMPLE:
                sample.write_table(text.slice(0, SAMPLE - first))
            typed = table.select([*csv_columns[:3], "at"]).rename_columns(csv_columns)
            parquet.write_table(typed, row_group_size=CHUNK)
        packed.close()
    return files


# -- measuring -----------------------------------------------------------------------------------


def load_in_child(path: Path | None, per_row: bool = False) -> dict[str, float]:
    """One `load_events(path, "skip")` in a fresh process (None: imports only)."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            _CHILD,
            str(path) if path else "-",
            "per_row" if per_row else "fast",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        check=True,
    )
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def ingest_section(files: EventFiles, events: int) -> dict[str, Any]:
    """Each format loaded once, and the per-row baseline on the sample."""
    baseline = load_in_child(None)
    print(f"imports only        peak RSS {baseline['peak_rss_mb']:.0f} MB")
    per_format: dict[str, dict[str, float]] = {}
    for name, path in (("csv", files.csv), ("gz", files.gz), ("parquet", files.parquet)):
        load = load_in_child(path)
        rate = events / load["seconds"]
        per_format[name] = {
            "events_per_s": round(rate),
            "seconds": round(load["seconds"], 2),
            "peak_rss_mb": round(load["peak_rss_mb"], 1),
            "kept": load["kept"],
            "skipped": load["skipped"],
            "file_mb": round(path.stat().st_size / 2**20, 1),
        }
        print(
            f"{name:<8} {per_format[name]['file_mb']:>8.1f} MB  {load['seconds']:6.2f} s  "
            f"{rate:>12,.0f} events/s  peak RSS {load['peak_rss_mb']:7.1f} MB  "
            f"{load['kept']:,} kept, {load['skipped']:,} skipped"
        )
    sample_events = min(SAMPLE, events)
    per_row = load_in_child(files.sample, per_row=True)
    per_row_rate = sample_events / per_row["seconds"]
    fast_sample = load_in_child(files.sample)
    ratio = per_format["csv"]["events_per_s"] / per_row_rate
    print(
        f"per-row  {sample_events:,} events: {per_row['seconds']:.2f} s, "
        f"{per_row_rate:,.0f} events/s (the same sample, fast: "
        f"{sample_events / fast_sample['seconds']:,.0f} events/s)"
    )
    print(f"ratio    CSV events/s ÷ per-row events/s = {ratio:.1f} (same run)")
    peak = max(f["peak_rss_mb"] for f in per_format.values())
    rate = per_format["csv"]["events_per_s"]
    slowest = min(f["events_per_s"] for f in per_format.values())
    print(
        f"targets  ≥ {EVENTS_PER_S_TARGET:,} events/s: {_verdict(rate >= EVENTS_PER_S_TARGET)}"
        f" (slowest format {slowest:,}); "
        f"peak ≤ {PEAK_MB_TARGET} MB: {_verdict(peak <= PEAK_MB_TARGET)}"
    )
    return {
        "events_per_s": rate,
        "peak_rss_mb": peak,
        "imports_rss_mb": round(baseline["peak_rss_mb"], 1),
        "per_format": per_format,
        "per_row_events_per_s": round(per_row_rate),
        "per_row_sample": sample_events,
        "fast_sample_events_per_s": round(sample_events / fast_sample["seconds"]),
        "ratio": round(ratio, 2),
    }


# -- catalog and pictures --------------------------------------------------------------------

CATEGORIES = ("Shoes", "Jackets", "Bags", "Lamps", "Mugs", "Watches", "Headphones", "Chairs")
BASELINE_IMAGES = 2_000


def write_feed(path: Path, items: int, image_url: Any) -> None:
    """A Merchant Center RSS 2.0 feed of `items` products, one picture each."""
    rng = np.random.default_rng(5)
    with path.open("w", encoding="utf-8") as out:
        out.write(
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            '<rss version="2.0" xmlns:g="http://base.google.com/ns/1.0"><channel>\n'
            "<title>Bench Store</title><link>https://shop.example</link>\n"
        )
        for i in range(items):
            price = 5 + int(rng.integers(0, 500))
            category = CATEGORIES[i % len(CATEGORIES)]
            out.write(
                f"<item><g:id>P{i:06d}</g:id><title>{category} model {i}</title>"
                f"<link>https://shop.example/p/{i}</link>"
                f"<description>A fine {category.lower()[:-1]}, number {i}.</description>"
                f"<g:image_link>{image_url(i)}</g:image_link>"
                f"<g:price>{price}.00 EUR</g:price><g:availability>in stock</g:availability>"
                f"<g:brand>Brand {i % 300}</g:brand>"
                f"<g:product_type>Home &gt; {category}</g:product_type></item>\n"
            )
        out.write("</channel></rss>\n")


_SERVER = """
import sys
from tests.retail.image_server import ImageServer
items, latency_s = int(sys.argv[1]), float(sys.argv[2])
with ImageServer(n_images=items, latency_s=latency_s) as server:
    for i in range(items):  # drawn before the clock starts: drawing is not measured
        server.image_bytes(i)
    print(server.base_url, flush=True)
    sys.stdin.read()  # until the parent closes it
    print(server.ok, server.not_modified, flush=True)
"""


@contextmanager
def image_server(
    items: int, latency_s: float = 0.0
) -> Iterator[tuple[str, Callable[[], tuple[int, int]]]]:
    """The loopback image server in a child process (its own interpreter: its threads do
    not share the fetching process's GIL): its base URL, and a call that stops it and
    returns (200s, 304s) it answered."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    child = subprocess.Popen(
        [sys.executable, "-c", _SERVER, str(items), str(latency_s)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=REPO,
    )
    assert child.stdin is not None and child.stdout is not None
    base_url = child.stdout.readline().strip()
    answered: list[tuple[int, int]] = []

    def stop() -> tuple[int, int]:
        if not answered:
            assert child.stdin is not None and child.stdout is not None
            child.stdin.close()
            ok, not_modified = child.stdout.readline().split()
            answered.append((int(ok), int(not_modified)))
            child.wait(timeout=60)
        return answered[0]

    try:
        yield base_url, stop
    finally:
        if child.poll() is None:
            child.kill()


def catalog_section(folder: Path, items: int, latency_ms: float = 10.0) -> dict[str, Any]:
    """The feed read, its pictures fetched twice, and the one-at-a-time baseline; the
    server waits `latency_ms` before each answer (a CDN's round trip)."""
    policy = FetchPolicy(allow_private=True)  # the image server is on loopback
    with image_server(items, latency_ms / 1000) as (base_url, stop):
        feed = folder / "catalog.xml"
        write_feed(feed, items, lambda i: f"{base_url}/images/{i}.jpg")
        started = time.perf_counter()
        catalog = load_catalog(feed)
        catalog_s = time.perf_counter() - started
        urls = [str(product.image) for product in catalog.items]
        print(
            f"catalog  {len(catalog.items):,} products from a {feed.stat().st_size / 2**20:.1f} "
            f"MB Merchant RSS feed in {catalog_s:.2f} s ({len(catalog.items) / catalog_s:,.0f}/s)"
        )

        started = time.perf_counter()
        first = fetch_images(urls, folder / "cache", policy)
        first_s = time.perf_counter() - started
        rate = first.downloaded / first_s
        print(f"images   first run: {first.summary()} in {first_s:.1f} s, {rate:,.0f}/s")

        started = time.perf_counter()
        second = fetch_images(urls, folder / "cache", policy)
        second_s = time.perf_counter() - started
        print(f"images   second run: {second.summary()} in {second_s:.1f} s")

        sample = urls[:BASELINE_IMAGES]
        one = FetchPolicy(allow_private=True, concurrency=1)
        started = time.perf_counter()
        alone = fetch_images(sample, folder / "cache-one-at-a-time", one)
        alone_rate = alone.downloaded / (time.perf_counter() - started)
        ok, not_modified = stop()
    ratio = rate / alone_rate
    print(f"server   answered {ok:,} with a picture and {not_modified:,} with 304 Not Modified")
    print(
        f"images   one at a time ({len(sample):,}): {alone_rate:,.0f}/s; "
        f"ratio {ratio:.1f} (same run); second run downloads {second.downloaded}: "
        f"{_verdict(second.downloaded == 0)}"
    )
    return {
        "catalog_items": len(catalog.items),
        "catalog_s": round(catalog_s, 2),
        "catalog_problems": len(catalog.problems),
        "images_fetched_per_s": round(rate),
        "images_problems": len(first.problems),
        "images_one_at_a_time_per_s": round(alone_rate),
        "images_ratio": round(ratio, 2),
        "second_run_downloads": second.downloaded,
        "second_run_revalidated": second.revalidated,
        "second_run_s": round(second_s, 2),
        "latency_ms": latency_ms,
        "server_200": ok,
        "server_304": not_modified,
    }


def _verdict(met: bool) -> str:
    return "met" if met else "MISSED"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--quick", action="store_true", help="1,000,000 events, 5,000 items")
    parser.add_argument("--items", type=int, default=50_000, help="products in the feed")
    parser.add_argument(
        "--latency-ms", type=float, default=10.0, help="the image server's wait per answer"
    )
    parser.add_argument("--bad-every", type=int, default=100_000, help="0: no bad rows")
    parser.add_argument("--dir", type=Path, default=None, help="where the files go (temporary)")
    parser.add_argument("--json", action="store_true", help="end with one JSON line")
    args = parser.parse_args()
    events = 1_000_000 if args.quick else args.events

    with tempfile.TemporaryDirectory(dir=args.dir, prefix="reelcast-ingest-") as folder:
        started = time.perf_counter()
        files = generate(Path(folder), events, args.bad_every)
        print(f"wrote {events:,} events in 3 formats in {time.perf_counter() - started:.1f} s")
        figures: dict[str, Any] = {"events": events}
        figures.update(ingest_section(files, events))
        files.csv.unlink()  # room for the catalog's pictures
        items = 5_000 if args.quick else args.items
        figures.update(catalog_section(Path(folder), items, args.latency_ms))
    if args.json:
        print(json.dumps(figures))


if __name__ == "__main__":
    main()
