"""Peak memory and speed of the CSV loader on a large generated events file.

Writes an events file of `--rows` rows (customer, product, type, timestamp; about 60 bytes a
row), then loads it in a fresh child process per measurement, so each peak resident set size
(ru_maxrss) is that load's alone:

- `baseline`: the child imports the loader and reads nothing (the interpreter, pydantic);
- `models`: `retail.loaders.load_rows(path, Event)`, every row kept as a pydantic `Event`
  in a list (how `load_retail` held events before `EventTable`): the reference;
- `table`: `retail.loaders.load_events(path)`, what `load_retail` uses: every row
  validated as an `Event`, kept as `EventTable` columns. `per_row` = (peak − baseline) /
  rows for both, and the table's columns' own bytes (`held`);
- `load_bad`: the same file with an undecodable byte in one row out of 1,000, in skip
  mode, into a table: the rows after each bad one still load, and the bad ones are
  counted one by one.

The ratios (table ÷ models) are of two loads of the same file in the same run.
A loader that held the file's text or its raw lines would add about the file's size
(times 2–4 for Python strings) on top of `per_row`.

    python bench/loaders.py [--rows 1500000] [--dir /tmp] [--json]

Run it against another checkout (an older commit, with no `load_events`: only `models`
is measured there) with `--repo PATH`.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

_CHILD = """
import json, resource, sys, time
from pathlib import Path
from retail import loaders
from retail.types import Event
path, mode, kind = sys.argv[1], sys.argv[2], sys.argv[3]
result = {}
if path != "-":
    started = time.perf_counter()
    if kind == "table":
        loaded = loaders.load_events(Path(path), mode)
        result = {"kept": len(loaded.events), "held_bytes": loaded.events.nbytes}
    else:
        loaded = loaders.load_rows(Path(path), Event, mode)
        result = {"kept": len(loaded.items)}
    result.update(seconds=time.perf_counter() - started, skipped=loaded.skipped_rows)
result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(result))
"""


def write_events(path: Path, rows: int, *, bad_every: int = 0, seed: int = 7) -> None:
    """`rows` events; with `bad_every`, every so many rows has a stray 0xFF byte."""
    rng = random.Random(seed)
    kinds = (b"view", b"view", b"view", b"cart", b"purchase")
    with path.open("wb") as out:
        out.write(b"customer_id,product_id,type,timestamp\n")
        chunk: list[bytes] = []
        for n in range(rows):
            customer = b"C%06d" % rng.randrange(200_000)
            if bad_every and n % bad_every == bad_every // 2:
                customer += b"\xff"
            chunk.append(
                b"%s,P%05d,%s,2026-%02d-%02dT%02d:%02d:00+00:00\n"
                % (
                    customer,
                    rng.randrange(20_000),
                    rng.choice(kinds),
                    rng.randrange(1, 13),
                    rng.randrange(1, 29),
                    rng.randrange(24),
                    rng.randrange(60),
                )
            )
            if len(chunk) == 10_000:
                out.writelines(chunk)
                chunk.clear()
        out.writelines(chunk)


def measure(
    repo: Path, path: Path | None, mode: str = "fail", kind: str = "table"
) -> dict[str, float]:
    """One load in a fresh child process: `kind` "table" (`load_events`) or "models"."""
    env = dict(os.environ, PYTHONPATH=str(repo))
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(path) if path else "-", mode, kind],
        capture_output=True,
        text=True,
        env=env,
        cwd=repo,
        check=True,
    )
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_500_000)
    parser.add_argument("--dir", type=Path, default=None, help="where the files go (temporary)")
    parser.add_argument("--repo", type=Path, default=REPO, help="the checkout to measure")
    parser.add_argument("--json", action="store_true", help="end with one JSON line")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        good, bad = Path(tmp) / "events.csv", Path(tmp) / "events_bad.csv"
        started = time.perf_counter()
        write_events(good, args.rows)
        write_events(bad, args.rows, bad_every=1_000)
        print(f"wrote 2 × {args.rows:,} rows in {time.perf_counter() - started:.1f} s")
        size_mb = good.stat().st_size / 2**20
        baseline = measure(args.repo, None)
        models = measure(args.repo, good, kind="models")
        has_table = (args.repo / "retail" / "events.py").exists()
        table = measure(args.repo, good) if has_table else None
        load_bad = measure(args.repo, bad, "skip", "table" if has_table else "models")

    def per_row(load: dict[str, float]) -> float:
        return (load["peak_rss_mb"] - baseline["peak_rss_mb"]) * 2**20 / args.rows

    def line(name: str, load: dict[str, float]) -> str:
        return (
            f"{name:<15} peak RSS {load['peak_rss_mb']:.0f} MiB, {load['seconds']:.1f} s "
            f"({args.rows / load['seconds']:,.0f} rows/s), {load['kept']:,} kept, "
            f"{per_row(load):.0f} bytes a kept row over the baseline"
        )

    print(f"checkout        {args.repo}")
    print(f"file            {args.rows:,} rows, {size_mb:.0f} MiB")
    print(f"baseline        peak RSS {baseline['peak_rss_mb']:.0f} MiB (imports only)")
    print(line("models (list)", models))
    figures: dict[str, float | int] = {}
    if table is not None:
        held = table["held_bytes"] / args.rows
        memory_ratio = per_row(table) / per_row(models)
        speed_ratio = models["seconds"] / table["seconds"]
        print(line("table", table) + f"; the columns hold {held:.1f} bytes an event")
        print(
            f"table ÷ models  memory × {memory_ratio:.3f} (bytes a kept row), "
            f"speed × {speed_ratio:.2f} (rows/s), same run"
        )
        figures = {
            "table_peak_rss_mib": round(table["peak_rss_mb"], 1),
            "table_seconds": round(table["seconds"], 2),
            "table_events_per_second": round(args.rows / table["seconds"]),
            "table_bytes_per_kept_row": round(per_row(table)),
            "table_held_bytes_per_event": round(held, 1),
            "memory_ratio_to_models": round(memory_ratio, 4),
            "speed_ratio_to_models": round(speed_ratio, 3),
        }
    print(
        f"load_bad (skip) peak RSS {load_bad['peak_rss_mb']:.0f} MiB, "
        f"{load_bad['seconds']:.1f} s, {load_bad['kept']:,} kept, "
        f"{load_bad['skipped']:,} skipped (one bad row in 1,000)"
    )
    if args.json:
        print(
            json.dumps(
                {
                    "rows": args.rows,
                    "file_mib": round(size_mb, 1),
                    "baseline_peak_rss_mib": round(baseline["peak_rss_mb"], 1),
                    "load_peak_rss_mib": round(models["peak_rss_mb"], 1),
                    "load_seconds": round(models["seconds"], 2),
                    "bytes_per_kept_row": round(per_row(models)),
                    **figures,
                    "load_bad_peak_rss_mib": round(load_bad["peak_rss_mb"], 1),
                    "load_bad_kept": load_bad["kept"],
                    "load_bad_skipped": load_bad["skipped"],
                }
            )
        )


if __name__ == "__main__":
    main()
