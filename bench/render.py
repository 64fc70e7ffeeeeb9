"""Seconds per video of the local renderer against the x264 floor and MoviePy, in one run.

All figures come from this one run, on the same frames, so a busy machine slows every
side alike:

- s_per_video: LocalRenderer.render of a storyboard never rendered before (fresh title,
  text-fit cache cleared): plates, text fitting, frames, x264 encode, poster and GIF.
- floor_s_per_video: ffmpeg encoding exactly those frames from memory with the same
  settings and thread count (FrameEncoder), nothing else. Renders and floors alternate.
- moviepy_s_per_video: the MoviePy engine (creative/moviepy_render.py, REELCAST_RENDERER=
  moviepy) on the same storyboard: an idiomatic MoviePy 2 composition (CompositeVideoClip,
  per-clip CrossFadeIn/Out, resized(lambda t) Ken Burns, TextClip, positions as functions
  of t for slides) whose frames go through the same encode, poster and GIF as ours.
- speedup_bound: MoviePy's time over the floor's, the speedup of a renderer that cost
  nothing but its encode (no render can be faster than encoding its frames).
- videos_per_min_2_workers: two worker processes rendering different videos at once.
- peak_rss_mb: the peak resident memory of a worker process that renders (the ffmpeg
  children come on top: x264 at 720×1280 veryfast is about 100 MB).

    python bench/render.py [--videos 3] [--moviepy-videos 1] [--no-moviepy] [--json]
    python bench/render.py --leak-check 200     # many renders in one process: leaks?
    python bench/render.py --campaign 200 --products 10 --json   # adds scene reuse figures

--campaign N: N customers of one market (de_DE; first names on, drawn from the demo
retailer's 59) spread over --products K products (a price-drop campaign), rendered twice
by 2 worker processes in this run: whole videos (LocalRenderer, every name a render of
its own) and joined from scene segments
(SceneRenderer: the opening with the name per name, the rest once per product), with
--campaign-template (default greeting, the demo's). `speedup` is full_s / reuse_s;
`psnr_min_db` the worst frame (ffmpeg's PSNR, Y/U/V average) of any joined video against
the whole render of the same storyboard, over `psnr_videos` videos.

MoviePy is the `bench` extra: pip install -e '.[bench]'.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.evalkit.video import psnr_per_frame  # noqa: E402
from creative import LocalRenderer, Storyboard, build_storyboard, load_template  # noqa: E402
from creative.encode import FrameEncoder  # noqa: E402
from creative.frames import FrameComposer  # noqa: E402
from creative.textfit import fit_text  # noqa: E402
from retail.types import Customer, Pick, Product  # noqa: E402


def main() -> None:
    """Parse the flags, run the benchmark, print a table (and JSON on the last line)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--videos", type=int, default=3, help="timed renders (after a warm-up)")
    parser.add_argument("--moviepy-videos", type=int, default=1, help="timed MoviePy renders")
    parser.add_argument("--no-moviepy", action="store_true", help="skip the MoviePy baseline")
    parser.add_argument("--workers-videos", type=int, default=3, help="videos per worker")
    parser.add_argument("--template", default="hero", help="template to render")
    parser.add_argument("--leak-check", type=int, metavar="N", help="only: N renders, leaks?")
    parser.add_argument("--json", action="store_true", help="print one JSON object last")
    parser.add_argument("--campaign", type=int, metavar="N", help="also: N customers, reuse?")
    parser.add_argument("--products", type=int, default=10, help="products in --campaign")
    parser.add_argument("--campaign-template", default="greeting", help="template, --campaign")
    parser.add_argument("--psnr-videos", type=int, default=20, help="videos PSNR is taken of")
    args = parser.parse_args()
    if args.leak_check:
        _leak_check(args.leak_check, args.json)
        return

    with tempfile.TemporaryDirectory(prefix="reelcast-bench-") as tmp:
        work = Path(tmp)
        boards = _storyboards(work, args.template, args.videos + 1)
        renderer = LocalRenderer()
        renderer.render(boards[0], work / "renders")  # warm-up: imports, fonts
        renders, floors = [], []
        for i, board in enumerate(boards[1:]):
            fit_text.cache_clear()  # no cache hits: every text is fitted again
            renders.append(_measure(lambda b=board: renderer.render(b, work / "renders")))
            frames = [f.copy() for f in FrameComposer(board).frames()]
            floors.append(_measure(lambda i=i, fr=frames, b=board: _encode_only(work, i, fr, b)))
            del frames
        compose = _measure(lambda: [None for _ in FrameComposer(boards[1]).frames()])
        # Peak memory of a process that only renders (this one also held the floor's
        # frames in memory): the two workers below.
        per_min, peak_rss_mb = _two_workers(work, args.template, args.workers_videos)
        moviepy = None
        if not args.no_moviepy:
            from creative.moviepy_render import MoviePyRenderer

            engine = MoviePyRenderer()
            moviepy = statistics.median(
                _measure(lambda b=b: engine.render(b, work / "moviepy"))["wall"]
                for b in boards[1 : 1 + args.moviepy_videos]
            )

    s_per_video = statistics.median(r["wall"] for r in renders)
    floor = statistics.median(f["wall"] for f in floors)
    result = {
        "s_per_video": round(s_per_video, 3),
        "floor_s_per_video": round(floor, 3),
        "ratio_to_floor": round(s_per_video / floor, 3),
        "moviepy_s_per_video": None if moviepy is None else round(moviepy, 2),
        "speedup_vs_moviepy": None if moviepy is None else round(moviepy / s_per_video, 1),
        # No render can beat its own encode: the most any renderer could gain on MoviePy.
        "speedup_bound": None if moviepy is None else round(moviepy / floor, 1),
        "videos_per_min_2_workers": round(per_min, 1),
        "peak_rss_mb": round(peak_rss_mb, 1),
    }
    fmt = boards[1].format
    print(
        f"{args.template} {fmt.width}×{fmt.height}, {fmt.duration_s:g} s, {fmt.fps} fps,"
        f" x264 {boards[1].encode.preset} CRF {boards[1].encode.crf}, 1 thread;"
        f" {len(os.sched_getaffinity(0))} cores, load {os.getloadavg()[0]:.1f}"
    )
    print(f"{'':30}{'wall s':>8}{'cpu s':>8}   (median of {args.videos})")
    print(
        f"{'render (all included)':30}{s_per_video:8.2f}"
        f"{statistics.median(r['cpu'] for r in renders):8.2f}"
    )
    print(
        f"{'x264 floor, same frames':30}{floor:8.2f}"
        f"{statistics.median(f['cpu'] for f in floors):8.2f}"
    )
    print(f"{'compose frames only':30}{compose['wall']:8.2f}{compose['cpu']:8.2f}")
    if moviepy is not None:
        print(f"{'MoviePy 2 composition':30}{moviepy:8.2f}")
    print(
        f"ratio to floor ×{result['ratio_to_floor']}, speedup vs MoviePy"
        f" ×{result['speedup_vs_moviepy']}, {result['videos_per_min_2_workers']} videos/min"
        f" with 2 workers, peak RSS {result['peak_rss_mb']} MB"
    )
    if moviepy is not None:
        print(
            f"an encode-only render would be ×{result['speedup_bound']} faster than MoviePy:"
            " the most any renderer of these frames can reach"
        )
    if args.campaign:
        result["campaign"] = _campaign(
            args.campaign, args.products, args.campaign_template, args.psnr_videos
        )
    if args.json:
        print(json.dumps(result))


def _encode_only(work: Path, index: int, frames: list[np.ndarray], board: Storyboard) -> None:
    fmt = board.format
    out = work / f"floor-{index}.mp4"
    with FrameEncoder(out, fmt.width, fmt.height, fmt.fps, board.encode) as encoder:
        for frame in frames:
            encoder.write(frame)


def _storyboards(work: Path, template_name: str, count: int, offset: int = 0) -> list[Storyboard]:
    """`count` storyboards that differ only in the title, so none reuses another's render."""
    images = work / "images"
    images.mkdir(exist_ok=True)
    for i in range(3):
        if not (images / f"p{i}.jpg").exists():
            _photo(images / f"p{i}.jpg", seed=i)
    template = load_template(REPO / "templates", template_name, REPO / "assets")
    customer = Customer(id="bench", email="bench@example.com", first_name="Anna", locale="de_DE")
    pick = Pick(
        customer_id="bench", product_ids=("p0", "p1", "p2"), scores=(1.0, 0.9, 0.8),
        reasons=("bench",) * 3, model_version="bench",
    )  # fmt: skip
    boards = []
    for i in range(offset, offset + count):
        products = {
            f"p{k}": Product(
                id=f"p{k}",
                title=f"Trailblazer GTX waterproof hiking boots {i}",
                brand="Alpenweg",
                category="Shoes",
                price=Decimal("149.90"),
                currency="EUR",
                image=f"p{k}.jpg",
                url=f"https://shop.example/p/p{k}",
            )
            for k in range(3)
        }
        boards.append(
            build_storyboard(
                template,
                pick,
                products,
                customer,
                images_root=images,
                previous_prices={"p0": Decimal("199.00")},
            )
        )
    return boards


def _photo(path: Path, seed: int = 7) -> None:
    """A product-like photo with detail everywhere (a flat image would flatter x264)."""
    w, h = 1200, 1500
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:h, 0:w]
    base = 200 + 30 * np.sin(xs / 37.0)[..., None] * np.cos(ys / 53.0)[..., None]
    noise = rng.normal(0, 6, (h, w, 3))
    image = Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    draw.ellipse((250, 500, 950, 1050), fill=(196, 64 + 40 * seed, 52))
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


# --- two worker processes -----------------------------------------------------------


def _worker(args: tuple[str, str, int, int]) -> float:
    """Render `count` fresh videos in this process; returns its peak RSS in MB."""
    work, template, count, offset = args
    boards = _storyboards(Path(work), template, count, offset)
    renderer = LocalRenderer()
    for board in boards:
        renderer.render(board, Path(work) / "renders-workers")
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent through
    # fork + exec, and the parent held the floor's frames.
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _two_workers(work: Path, template: str, per_worker: int) -> tuple[float, float]:
    """(videos per minute, peak RSS MB of a worker) with two processes rendering at once."""
    context = multiprocessing.get_context("spawn")
    with context.Pool(2) as pool:
        pool.map(_worker, [(str(work), template, 1, 1000 + k) for k in range(2)])  # warm-up
        start = time.perf_counter()
        rss = pool.map(
            _worker, [(str(work), template, per_worker, 2000 + 100 * k) for k in range(2)]
        )
        wall = time.perf_counter() - start
    return 2 * per_worker / wall * 60, max(rss)


# --- a campaign: whole renders against scene reuse -----------------------------------


def _campaign_boards(work: Path, customers: int, products: int, template: str) -> list[Storyboard]:
    """`customers` demo customers (names as the demo retailer draws them), each with one
    of `products` products whose price dropped: the storyboards of one campaign."""
    from retail.demo import FIRST_NAMES

    images = work / "images"
    images.mkdir(exist_ok=True)
    for k in range(products):
        _photo(images / f"c{k}.jpg", seed=k)
    spec = load_template(REPO / "templates", template, REPO / "assets")
    catalog = {
        f"c{k}": Product(
            id=f"c{k}", title=f"Trailblazer GTX waterproof hiking boots, model {k}",
            brand="Alpenweg", category="Shoes", price=Decimal("149.90"), currency="EUR",
            image=f"c{k}.jpg", url=f"https://shop.example/p/c{k}",
        )
        for k in range(products)
    }  # fmt: skip
    # One market's list (a campaign's prices are formatted for the customer's locale, so
    # a second locale is a second set of product scenes), names drawn from all the demo
    # retailer's first names: 59 of them, so most name + product pairs are new.
    names = sorted({name for group in FIRST_NAMES.values() for name in group})
    rng = np.random.default_rng(7)
    boards = []
    for i in range(customers):
        customer = Customer(
            id=f"c-{i}", email=f"c{i}@example.com",
            first_name=names[int(rng.integers(len(names)))], locale="de_DE",
        )  # fmt: skip
        product = f"c{i % products}"
        pick = Pick(
            customer_id=customer.id, product_ids=(product,), scores=(1.0,), reasons=("drop",),
            model_version="bench",
        )  # fmt: skip
        boards.append(
            build_storyboard(
                spec,
                pick,
                catalog,
                customer,
                images_root=images,
                previous_prices={product: Decimal("199.00")},
            )
        )
    return boards


def _campaign_render(job: tuple[str, str, Storyboard]) -> str:
    """One render in a worker process: `kind` is "full" or "reuse"; returns the key."""
    kind, out, board = job
    renderer = _RENDERERS.get(kind)
    if renderer is None:
        from creative.scenes import SceneRenderer

        renderer = _RENDERERS[kind] = SceneRenderer() if kind == "reuse" else LocalRenderer()
    return renderer.render(board, Path(out)).key


_RENDERERS: dict[str, LocalRenderer] = {}


def _campaign(customers: int, products: int, template: str, psnr_videos: int) -> dict[str, object]:
    """The same campaign's videos rendered whole and with scene reuse, 2 workers each."""
    from creative.render import render_dir
    from creative.scenes import plan

    context = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory(prefix="reelcast-bench-campaign-") as tmp:
        work = Path(tmp)
        boards = _campaign_boards(work, customers, products, template)
        distinct = len({b.key() for b in boards})
        seconds = {}
        for kind in ("full", "reuse"):
            with context.Pool(2) as pool:
                pool.map(int, [0, 1])  # the workers are up before the clock starts
                start = time.perf_counter()
                keys = pool.map(
                    _campaign_render, [(kind, str(work / kind), b) for b in boards], chunksize=1
                )
                seconds[kind] = time.perf_counter() - start
            assert keys == [b.key() for b in boards]
        sample = list({b.key(): b for b in boards}.values())[:psnr_videos]
        worst = min(
            min(
                psnr_per_frame(
                    render_dir(work / "reuse", b.key()) / "video.mp4",
                    render_dir(work / "full", b.key()) / "video.mp4",
                )
            )
            for b in sample
        )
        per_name = (
            sum(s.frames for s in plan(boards[0]) if s.personal) / boards[0].format.frame_count
        )
    result = {
        "customers": customers,
        "products": products,
        "template": template,
        "distinct_videos": distinct,
        "per_name_share": round(per_name, 3),
        "reuse_s": round(seconds["reuse"], 1),
        "full_s": round(seconds["full"], 1),
        "speedup": round(seconds["full"] / seconds["reuse"], 2),
        "psnr_min_db": round(worst, 2),
        "psnr_videos": len(sample),
    }
    print(
        f"campaign: {customers} customers over {products} products ({template},"
        f" {distinct} distinct videos, {per_name:.0%} of each rendered per name),"
        f" 2 workers: whole {result['full_s']} s, scene reuse {result['reuse_s']} s,"
        f" ×{result['speedup']}; worst frame {result['psnr_min_db']} dB PSNR against the"
        f" whole render ({len(sample)} videos)"
    )
    return result


# --- leak check -------------------------------------------------------------------------


def _leak_check(count: int, as_json: bool) -> None:
    """Render `count` different videos in this process; report children and memory."""

    def rss_mb() -> float:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def children() -> int:
        me, found = str(os.getpid()), 0
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                found += fields[1] == me
        return found

    with tempfile.TemporaryDirectory(prefix="reelcast-leak-") as tmp:
        work = Path(tmp)
        renderer = LocalRenderer(preset="ultrafast")
        warm = min(20, max(1, count // 10))
        boards = iter(_storyboards(work, "hero", count))
        rss_samples, max_children = [], 0
        start = time.perf_counter()
        for i, board in enumerate(boards):
            render = renderer.render(board, work / "renders")
            max_children = max(max_children, children())
            (render.video.parent / "video.mp4").unlink()  # keep the disk small
            if i + 1 >= warm:
                rss_samples.append(rss_mb())
        wall = time.perf_counter() - start
        fds = len(list(Path("/proc/self/fd").iterdir()))
    growth = rss_samples[-1] - rss_samples[0]
    result = {
        "renders": count,
        "s_per_render": round(wall / count, 3),
        "children_after_each_render_max": max_children,
        "rss_after_warmup_mb": round(rss_samples[0], 1),
        "rss_at_end_mb": round(rss_samples[-1], 1),
        "rss_growth_mb": round(growth, 1),
        "open_fds_at_end": fds,
    }
    print(
        f"{count} renders (hero 720×1280, ultrafast) in one process: {result['s_per_render']} s"
        f" each; ffmpeg children left after a render: {max_children}; RSS"
        f" {result['rss_after_warmup_mb']} → {result['rss_at_end_mb']} MB"
        f" ({growth:+.1f} MB after {warm} warm-up renders); {fds} open fds at the end"
    )
    if as_json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
