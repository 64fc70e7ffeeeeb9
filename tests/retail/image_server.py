"""A real HTTP server of product images on 127.0.0.1, for tests and benchmarks.

stdlib `http.server` (HTTP/1.1 keep-alive, a thread per connection) on a free port, started
in a thread; nothing leaves the machine. It counts what clients did, so a test can assert
on requests rather than on timing:

    with ImageServer(n_images=50) as server:
        report = fetch_images(server.image_urls(), cache_dir, FetchPolicy(allow_private=True))
        assert server.ok == 50 and server.not_modified == 0

Routes (`<name>` is any text, so each test gets its own path and its own counts):

    /images/<i>.<ext>          image i < n_images; ext jpg, png, webp or gif; ETag and
                               Last-Modified, 304 on If-None-Match / If-Modified-Since,
                               Cache-Control max-age when `max_age` is set; waits `latency_s`
    /changing/<name>.jpg       an image whose pixels and ETag change with `change()`
    /slow/<name>?delay=S       image 0 after S seconds
    /flaky/<name>?fails=N&status=500&retry_after=R
                               `status` (with Retry-After: R when given) for the first N
                               requests to this path, then image 0; status=429 rate-limits
    /status/<code>/<name>      always that status (404, 500, 403…)
    /html/<name>               an HTML page, served as text/html
    /fake-jpeg/<name>          an HTML page, served as image/jpeg
    /bmp/<name>                a real BMP image, served as image/bmp
    /bomb/<name>.png           a 100-byte PNG whose header claims 30000×30000 pixels
    /oversize/<name>?bytes=N&length=1
                               N bytes of image/jpeg (a JPEG start, then zeros), with a
                               Content-Length when length=1, else until the connection closes;
                               `bytes_sent[path]` says how much went out before the client left
    /truncated/<name>          Content-Length of a whole JPEG, half of it, then a hang-up
    /redirect/<name>?to=URL&status=302
                               a redirect to URL (a path or an absolute URL)
    /loop/<name>               a redirect to itself

Counts (per path, without the query): `requests`, `bytes_sent`, `statuses` by (path,
code), `last_headers`; overall: `ok` (200s), `not_modified` (304s), `max_in_flight`.
"""

from __future__ import annotations

import io
import struct
import threading
import time
import zlib
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from PIL import Image, ImageDraw

LAST_MODIFIED = "Wed, 01 Jan 2025 00:00:00 GMT"
CONTENT_TYPES = {"jpg": "image/jpeg", "png": "image/png", "webp": "image/webp", "gif": "image/gif"}
_PIL_FORMATS = {"jpg": "JPEG", "png": "PNG", "webp": "WEBP", "gif": "GIF", "bmp": "BMP"}
HTML = b"<!doctype html><html><body><h1>Sorry, this product is gone</h1></body></html>"


class ImageServer:
    """Serves `n_images` generated product pictures (`image_size` pixels square) and the
    misbehaving routes listed in the module docstring; use it as a context manager."""

    def __init__(
        self,
        n_images: int = 20,
        *,
        image_size: int = 64,
        max_age: int | None = None,
        latency_s: float = 0.0,
    ) -> None:
        self.n_images = n_images
        self.image_size = image_size
        self.max_age = max_age
        self.latency_s = latency_s
        self.generation = 0
        self._lock = threading.Lock()
        self._images: dict[tuple[int, str, int], bytes] = {}
        self.reset()
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.image_server = self
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, args=(0.02,), name="image-server", daemon=True
        )
        host, port = self._httpd.server_address[:2]
        self.base_url = f"http://{host!s}:{port}"

    # --- lifecycle ---------------------------------------------------------------------

    def start(self) -> ImageServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> ImageServer:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # --- addresses -----------------------------------------------------------------------

    def url(self, path: str) -> str:
        """The absolute URL of `path` ("/images/0.jpg") on this server."""
        return f"{self.base_url}{path}"

    def image_urls(self, n: int | None = None, ext: str = "jpg") -> list[str]:
        """URLs of the first `n` (default all) generated images."""
        return [self.url(f"/images/{i}.{ext}") for i in range(self.n_images if n is None else n)]

    def image_bytes(self, i: int, ext: str = "jpg", generation: int = 0) -> bytes:
        """The body served for image `i` (and `generation` of /changing/)."""
        key = (i, ext, generation)
        with self._lock:
            if key not in self._images:
                self._images[key] = _draw(i + 7 * generation, self.image_size, ext)
            return self._images[key]

    # --- what clients did ------------------------------------------------------------------

    def reset(self) -> None:
        """Forget every count (between the two runs of a test, say)."""
        with self._lock:
            self.requests: Counter[str] = Counter()
            self.bytes_sent: Counter[str] = Counter()
            self.statuses: Counter[tuple[str, int]] = Counter()
            self.last_headers: dict[str, dict[str, str]] = {}
            self.in_flight = 0
            self.max_in_flight = 0

    def change(self) -> None:
        """A new version of every /changing/ image: other pixels, another ETag."""
        self.generation += 1

    @property
    def ok(self) -> int:
        """Responses with status 200."""
        return sum(n for (_, code), n in self.statuses.items() if code == 200)

    @property
    def not_modified(self) -> int:
        """Responses with status 304."""
        return sum(n for (_, code), n in self.statuses.items() if code == 304)

    @property
    def total_requests(self) -> int:
        return sum(self.requests.values())

    # --- called by the handler -------------------------------------------------------------

    def _arrived(self, path: str, headers: dict[str, str]) -> int:
        with self._lock:
            self.requests[path] += 1
            self.last_headers[path] = headers
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            return self.requests[path]

    def _left(self) -> None:
        with self._lock:
            self.in_flight -= 1

    def _answered(self, path: str, code: int) -> None:
        with self._lock:
            self.statuses[path, code] += 1

    def _sent(self, path: str, n: int) -> None:
        with self._lock:
            self.bytes_sent[path] += n


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    image_server: ImageServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that hung up mid-body is what several routes are for


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 30  # an idle keep-alive connection frees its thread
    # Headers and body go out in two writes: with Nagle's algorithm the body waits for the
    # client's delayed ACK (40 ms a response on Linux), which is no CDN's behaviour.
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def send_response(self, code: int, message: str | None = None) -> None:
        self.server.image_server._answered(urlsplit(self.path).path, code)
        super().send_response(code, message)

    def do_GET(self) -> None:
        state = self.server.image_server
        parts = urlsplit(self.path)
        path = parts.path
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        nth = state._arrived(path, dict(self.headers.items()))
        try:
            self._route(state, path, query, nth)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        finally:
            state._left()

    def _route(self, state: ImageServer, path: str, query: dict[str, str], nth: int) -> None:
        segments = path.strip("/").split("/")
        route = segments[0]
        if route == "images" and len(segments) == 2:
            stem, _, ext = segments[1].partition(".")
            if stem.isdigit() and int(stem) < state.n_images and ext in CONTENT_TYPES:
                time.sleep(state.latency_s)
                etag = f'"img-{stem}-{ext}"'
                return self._image(state.image_bytes(int(stem), ext), ext, etag, LAST_MODIFIED)
        elif route == "changing":
            body = state.image_bytes(1, "jpg", state.generation)
            return self._image(body, "jpg", f'"gen-{state.generation}"', None)
        elif route == "slow":
            time.sleep(float(query.get("delay", "1")))
            return self._image(state.image_bytes(0), "jpg", '"img-0-jpg"', LAST_MODIFIED)
        elif route == "flaky":
            if nth <= int(query.get("fails", "1")):
                headers = {}
                if "retry_after" in query:
                    headers["Retry-After"] = query["retry_after"]
                return self._body(int(query.get("status", "500")), b"busy", "text/plain", headers)
            return self._image(state.image_bytes(0), "jpg", '"img-0-jpg"', LAST_MODIFIED)
        elif route == "status" and len(segments) >= 2 and segments[1].isdigit():
            return self._body(int(segments[1]), b"status", "text/plain")
        elif route == "html":
            return self._body(200, HTML, "text/html; charset=utf-8")
        elif route == "fake-jpeg":
            return self._body(200, HTML, "image/jpeg")
        elif route == "bmp":
            return self._body(200, _draw(3, 16, "bmp"), "image/bmp")
        elif route == "bomb":
            return self._body(200, bomb_png(), "image/png")
        elif route == "oversize":
            return self._oversize(path, int(query.get("bytes", "50000000")), query.get("length"))
        elif route == "truncated":
            body = state.image_bytes(0)
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.close_connection = True
            return None
        elif route == "redirect":
            location = query.get("to", "/images/0.jpg")
            status = int(query.get("status", "302"))
            return self._body(status, b"", "text/plain", {"Location": location})
        elif route == "loop":
            return self._body(302, b"", "text/plain", {"Location": path})
        return self._body(404, b"not found", "text/plain")

    def _image(self, body: bytes, ext: str, etag: str, last_modified: str | None) -> None:
        state = self.server.image_server
        headers = {"ETag": etag}
        if last_modified:
            headers["Last-Modified"] = last_modified
        if state.max_age is not None:
            headers["Cache-Control"] = f"max-age={state.max_age}"
        match = self.headers.get("If-None-Match")
        since = self.headers.get("If-Modified-Since")
        if match is not None:
            fresh = etag in [m.strip() for m in match.split(",")] or match.strip() == "*"
        else:
            fresh = since is not None and since == last_modified
        if fresh:
            self.send_response(304)
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            return
        self._body(200, body, CONTENT_TYPES[ext], headers)

    def _body(
        self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)
        self.server.image_server._sent(urlsplit(self.path).path, len(body))

    def _oversize(self, path: str, size: int, length: str | None) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "image/jpeg")
        if length == "1":
            self.send_header("Content-Length", str(size))
        else:
            self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        chunk = b"\xff\xd8\xff\xe0" + bytes(64 * 1024 - 4)
        sent = 0
        while sent < size:
            piece = chunk[: min(len(chunk), size - sent)]
            self.wfile.write(piece)  # raises once the client has hung up
            sent += len(piece)
            self.server.image_server._sent(path, len(piece))
            chunk = bytes(len(chunk))


def _draw(i: int, size: int, ext: str) -> bytes:
    """A small distinct picture for index `i`, encoded as `ext`."""
    colour = ((i * 67) % 256, (i * 151 + 80) % 256, (i * 29 + 160) % 256)
    image = Image.new("RGB", (size, size), colour)
    ImageDraw.Draw(image).ellipse(
        (size // 4, size // 4, 3 * size // 4, 3 * size // 4), fill=(255, 255, 255)
    )
    out = io.BytesIO()
    image.save(out, format=_PIL_FORMATS[ext])
    return out.getvalue()


def bomb_png(width: int = 30_000, height: int = 30_000) -> bytes:
    """A tiny PNG whose header claims `width`×`height` pixels (a decompression bomb: the
    pixel data is not there, but only decoding would find out)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )
