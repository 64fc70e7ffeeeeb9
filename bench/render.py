"""Seconds per video of the local renderer against the x264 floor, measured in one run.

The floor is ffmpeg encoding exactly the same frames from memory (nothing composed), so
`render / floor` is what our compositing costs on top of the encoder. Wall time lets the
frame composition (this process) and x264 (the ffmpeg child) overlap on two cores; CPU
time (this process + children) is the cost per video when every core is busy rendering;
`--one-core` pins everything to a single core to measure that directly.

    python bench/render.py [--videos 3] [--one-core] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import tempfile
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from creative import LocalRenderer, Storyboard, build_storyboard, load_template
from creative.encode import FrameEncoder
from creative.frames import FrameComposer
from retail.types import Customer, Pick, Product

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    """Parse the flags, run the benchmark, print a table (and JSON on the last line)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--videos", type=int, default=3, help="timed renders (after a warm-up)")
    parser.add_argument("--one-core", action="store_true", help="pin this process and ffmpeg")
    parser.add_argument("--json", action="store_true", help="print one JSON object last")
    args = parser.parse_args()
    if args.one_core:
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # children inherit it

    with tempfile.TemporaryDirectory(prefix="reelcast-bench-") as tmp:
        work = Path(tmp)
        boards = _storyboards(work, args.videos + 1)
        renderer = LocalRenderer()
        renderer.render(boards[0], work / "renders")  # warm-up: imports, fonts, caches
        renders = [_measure(lambda b=b: renderer.render(b, work / "renders")) for b in boards[1:]]

        frames_cpu = _measure(lambda: [f.copy() for f in FrameComposer(boards[1]).frames()])
        frames = [f.copy() for f in FrameComposer(boards[1]).frames()]
        fmt, encode = boards[1].format, boards[1].encode

        def encode_only(index: int) -> None:
            out = work / f"floor-{index}.mp4"
            with FrameEncoder(out, fmt.width, fmt.height, fmt.fps, encode) as encoder:
                for frame in frames:
                    encoder.write(frame)

        floors = [_measure(lambda i=i: encode_only(i)) for i in range(args.videos)]

    result = {
        "videos": args.videos,
        "one_core": args.one_core,
        "cores_available": len(os.sched_getaffinity(0)),
        "frames": len(frames),
        "render_wall_s": _median(renders, "wall"),
        "render_cpu_s": _median(renders, "cpu"),
        "floor_wall_s": _median(floors, "wall"),
        "floor_cpu_s": _median(floors, "cpu"),
        "compose_only_cpu_s": round(frames_cpu["cpu"], 3),
    }
    result["wall_vs_floor"] = round(result["render_wall_s"] / result["floor_wall_s"], 2)
    result["cpu_vs_floor"] = round(result["render_cpu_s"] / result["floor_cpu_s"], 2)
    print(f"{'':24}{'wall s':>8}{'cpu s':>8}   (median of {args.videos})")
    print(f"{'render (hero, 8 s)':24}{result['render_wall_s']:8.2f}{result['render_cpu_s']:8.2f}")
    print(
        f"{'x264 floor, same frames':24}{result['floor_wall_s']:8.2f}{result['floor_cpu_s']:8.2f}"
    )
    print(f"{'compose frames only':24}{'':8}{result['compose_only_cpu_s']:8.2f}")
    print(f"render/floor: wall ×{result['wall_vs_floor']}, cpu ×{result['cpu_vs_floor']}")
    if args.json:
        print(json.dumps(result))


def _storyboards(work: Path, count: int) -> list[Storyboard]:
    """`count` storyboards that differ only in the title, so none reuses another's render."""
    images = work / "images"
    images.mkdir()
    _photo(images / "p1.jpg")
    template = load_template(REPO / "templates", "hero", REPO / "assets")
    customer = Customer(id="bench", email="bench@example.com", first_name="Anna", locale="de_DE")
    pick = Pick(
        customer_id="bench", product_ids=("p1",), scores=(1.0,), reasons=("bench",),
        model_version="bench",
    )  # fmt: skip
    boards = []
    for i in range(count):
        product = Product(
            id="p1", title=f"Trailblazer GTX waterproof hiking boots {i}", brand="Alpenweg",
            category="Shoes", price=Decimal("149.90"), currency="EUR", image="p1.jpg",
            url="https://shop.example/p/p1",
        )  # fmt: skip
        boards.append(
            build_storyboard(template, pick, {"p1": product}, customer, images_root=images)
        )
    return boards


def _photo(path: Path) -> None:
    """A product-like photo with detail everywhere (a flat image would flatter x264)."""
    w, h = 1200, 1500
    rng = np.random.default_rng(7)
    ys, xs = np.mgrid[0:h, 0:w]
    base = 200 + 30 * np.sin(xs / 37.0)[..., None] * np.cos(ys / 53.0)[..., None]
    noise = rng.normal(0, 6, (h, w, 3))
    image = Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    draw.ellipse((250, 500, 950, 1050), fill=(196, 64, 52))
    draw.rounded_rectangle((350, 420, 850, 820), radius=80, fill=(40, 90, 160))
    image.save(path, quality=90)


def _measure(work: Callable[[], object]) -> dict[str, float]:
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu, wall = time.process_time(), time.perf_counter()
    work()
    wall = time.perf_counter() - wall
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    child_cpu = (after.ru_utime - children.ru_utime) + (after.ru_stime - children.ru_stime)
    return {"wall": wall, "cpu": time.process_time() - cpu + child_cpu}


def _median(runs: list[dict[str, float]], field: str) -> float:
    return round(statistics.median(run[field] for run in runs), 3)


if __name__ == "__main__":
    main()
