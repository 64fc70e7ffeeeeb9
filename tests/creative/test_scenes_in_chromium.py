"""A video joined from scene segments plays in Chromium: it loads, seeks across every cut
to the designed picture, and plays through to the end decoding every frame."""

from __future__ import annotations

import http.server
import json
import subprocess
import threading
import time
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from creative import load_template
from creative.frames import FrameComposer
from creative.scenes import SceneRenderer, plan
from creative.storyboard import build_storyboard
from retail.types import Customer, Pick, Product

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")

pytestmark = [
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="needs /usr/bin/chromium (sh scripts/ensure-chromium.sh) to play the video",
    ),
    pytest.mark.slow,
]

_PAGE = """<!DOCTYPE html><html><body>
<video id="v" muted playsinline preload="auto" src="{video}"></video><canvas id="c"></canvas>
<script>
var v = document.getElementById('v'), out = {{seeks: []}}, times = {times}, i = 0, sent = false;
function done() {{
  if (sent) return; sent = true;
  fetch('{report}', {{method: 'POST', mode: 'no-cors', body: JSON.stringify(out)}});
}}
v.addEventListener('error', function () {{ out.error = v.error && v.error.code; done(); }});
v.addEventListener('loadedmetadata', function () {{
  out.duration = v.duration; out.width = v.videoWidth; out.height = v.videoHeight;
  v.currentTime = times[0];
}});
v.addEventListener('seeked', function () {{
  if (i >= times.length) return;
  var c = document.getElementById('c'); c.width = 90; c.height = 160;
  var g = c.getContext('2d'); g.drawImage(v, 0, 0, 90, 160);
  var d = g.getImageData(0, 0, 90, 160).data, s = 0;
  for (var k = 0; k < d.length; k += 4) s += 0.2126 * d[k] + 0.7152 * d[k + 1] + 0.0722 * d[k + 2];
  out.seeks.push({{t: v.currentTime, mean: s / (d.length / 4)}});
  i += 1;
  if (i < times.length) {{ v.currentTime = times[i]; return; }}
  v.currentTime = 0; v.playbackRate = 4;
  v.play().catch(function (e) {{ out.playError = String(e); done(); }});
}});
v.addEventListener('ended', function () {{
  out.ended = true; out.decoded = v.webkitDecodedFrameCount; done();
}});
</script></body></html>
"""


def _play(video: Path, times: list[float], folder: Path) -> dict:
    reports: list[bytes] = []

    class Report(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            reports.append(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Report)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    page = folder / "play.html"
    page.write_text(
        _PAGE.format(
            video=video.resolve().as_uri(),
            times=json.dumps(times),
            report=f"http://127.0.0.1:{server.server_address[1]}/report",
        )
    )
    browser = subprocess.Popen(
        [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu",
         "--autoplay-policy=no-user-gesture-required", "--allow-file-access-from-files",
         "--remote-debugging-port=0", f"--user-data-dir={folder / 'profile'}", page.as_uri()],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not reports and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        browser.kill()
        browser.wait()
        server.shutdown()
        server.server_close()
    assert reports, "Chromium reported nothing within 60 s"
    return json.loads(reports[0])


def test_a_joined_video_plays_and_seeks_across_its_cuts(images_root: Path, tmp_path: Path) -> None:
    product = Product(
        id="p1", title="Trailblazer GTX waterproof hiking boots", brand="Alpenweg",
        category="Shoes", price=Decimal("149.90"), currency="EUR", image="shoes/p1.jpg",
        url="https://shop.example/p/p1",
    )  # fmt: skip
    customer = Customer(id="c-1", email="anna@example.com", first_name="Anna")
    pick = Pick(
        customer_id="c-1", product_ids=("p1",), scores=(1.0,), reasons=("t",), model_version="t"
    )
    board = build_storyboard(
        load_template(REPO / "templates", "greeting", REPO / "assets"),
        pick, {"p1": product}, customer, images_root=images_root,
    )  # fmt: skip
    made = SceneRenderer().render(board, tmp_path / "renders")
    fps = board.format.fps
    # The frame before and the frame after every cut, at the middle of each frame.
    frames = sorted({f for s in plan(board)[1:] for f in (s.first - 1, s.first)})
    result = _play(made.video, [(f + 0.5) / fps for f in frames], tmp_path)
    assert "error" not in result and "playError" not in result, result
    assert result["duration"] == pytest.approx(board.format.duration_s, abs=0.05)
    assert (result["width"], result["height"]) == (board.format.width, board.format.height)
    composer = FrameComposer(board)
    weights = np.array([0.2126, 0.7152, 0.0722])
    for frame, seek in zip(frames, result["seeks"], strict=True):
        designed = float((composer.frame_at(frame / fps).astype(float) @ weights).mean())
        assert seek["mean"] == pytest.approx(designed, abs=4), f"frame {frame}"
    assert result.get("ended"), result
    assert result["decoded"] >= board.format.frame_count * 0.9, "decoded through to the end"
