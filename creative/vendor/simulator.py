"""A video vendor on loopback: the test double of the outside world, rendering for real.

It speaks the protocol in `creative.vendor.protocol` over real HTTP and renders each job
with `LocalRenderer` from its own copy of our templates (`restore.py`), so every render it
reports is a real, probe-able MP4. Knobs make it misbehave the way vendors do: latency,
a render queue, failed renders, 429 past a rate limit (with or without Retry-After), 5xx
before or *after* creating a job, slow answers after creating one, an exhausted account
(402), dropped/duplicated/out-of-order webhooks and expiring result URLs. Knobs may be
changed while it runs. It records every request it received, so a test can prove what
did and did not leave the house.

    sim = VendorSimulator(workspace, templates_dir, assets_dir, Knobs(rate_limit=5))
    with sim.serve() as server:   # http://127.0.0.1:<free port>
        ...
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import io
import json
import math
import random
import secrets
import time
import uuid
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from PIL import Image, UnidentifiedImageError
from pydantic import BaseModel, ConfigDict, Field
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from creative.errors import CreativeError
from creative.render import LocalRenderer
from creative.storyboard import Storyboard
from creative.template import Template, load_template
from creative.vendor.payload import TEMPLATE_ID
from creative.vendor.protocol import (
    RENDERS_PATH,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    UPLOADS_PATH,
    sign,
)
from creative.vendor.restore import storyboard_from_modifications
from creative.vendor.serve import ServerThread, bind, make_server

FILES_PATH = "/v2/files"
_CREATE_FIELDS = frozenset(
    {"template_id", "modifications", "output_format", "webhook_url", "metadata"}
)
_IMAGE_TYPES = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp"}

# An API endpoint before `_guarded` wraps it: the request and its already-read body.
_Handler = Callable[[Request, bytes], Awaitable[Response]]


class Knobs(BaseModel):
    """How the simulated vendor behaves. Change fields at any time; they apply at once."""

    model_config = ConfigDict(validate_assignment=True)

    api_key: str = Field("sim-key", min_length=1, description="Bearer key the API accepts")
    webhook_secret: str = Field("sim-webhook-secret", min_length=1)
    latency_s: float = Field(
        0.0, ge=0, description="Added to every API answer (after the request was acted on)"
    )
    queue_s: float = Field(0.0, ge=0, description="Time a job waits before it starts")
    workers: int = Field(2, ge=1, description="Jobs rendering at once (fixed at the first)")
    failure_rate: float = Field(0.0, ge=0, le=1, description="Share of jobs ending 'failed'")
    rate_limit: int = Field(30, ge=0, description="Requests per window per key; 0: no limit")
    rate_window_s: float = Field(10.0, gt=0)
    retry_after: bool = Field(True, description="Send Retry-After with a 429")
    error_rate: float = Field(0.0, ge=0, le=1, description="Share of requests answered 503")
    fail_before_create: int = Field(0, ge=0, description="Next N creates: 500, no job")
    fail_after_create: int = Field(0, ge=0, description="Next N creates: job made, then 502")
    hang_after_create: int = Field(0, ge=0, description="Next N creates: job made, answer late")
    hang_s: float = Field(5.0, ge=0, description="How late a hanging answer is")
    credits_s: float | None = Field(None, description="Render seconds left; None: unlimited")
    webhook_drop_rate: float = Field(0.0, ge=0, le=1)
    webhook_duplicates: int = Field(0, ge=0, description="Extra copies of every webhook")
    webhook_out_of_order: bool = Field(False, description="Send a stale status after the last")
    url_ttl_s: float = Field(3600.0, gt=0, description="Lifetime of a result URL")
    seed: int = 0


@dataclass(frozen=True)
class Received:
    """One request as the vendor saw it (the bearer key left out)."""

    method: str
    path: str
    query: dict[str, str]
    body: Any = None  # the JSON body, or for an upload {"sha256", "bytes", "content_type"}


@dataclass
class _Job:
    render: dict[str, Any]
    video: Path | None = None
    storyboard_key: str = ""


@dataclass
class SimulatorCounts:
    """What the simulator did, for tests to assert on."""

    created: int = 0
    rendered: int = 0
    answers: Counter[int] = field(default_factory=Counter)
    expired_downloads: int = 0
    webhooks_sent: int = 0
    webhooks_dropped: int = 0


class VendorSimulator:
    """The simulated vendor: state, behaviour and the Starlette app that serves it."""

    def __init__(
        self,
        workspace: Path,
        templates_dir: Path,
        assets_dir: Path,
        knobs: Knobs | None = None,
        ffmpeg: str | None = None,
        renders_dir: Path | None = None,
    ) -> None:
        self.workspace = workspace
        # The vendor's render cache: the same storyboard is encoded once (tests share one).
        self.renders_dir = renders_dir or workspace / "renders"
        self.templates_dir = templates_dir
        self.assets_dir = assets_dir
        self.knobs = knobs or Knobs()
        self.received: list[Received] = []
        self.counts = SimulatorCounts()
        self._renderer = LocalRenderer(ffmpeg=ffmpeg)
        self._jobs: dict[str, _Job] = {}
        self._window: deque[float] = deque()
        self._url_key = secrets.token_bytes(32)
        self._random = random.Random(self.knobs.seed)
        self._slots: asyncio.Semaphore | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        (workspace / "uploads").mkdir(parents=True, exist_ok=True)

    # -- for tests ---------------------------------------------------------------------

    def renders(self) -> list[dict[str, Any]]:
        """Every render object created so far, oldest first."""
        return [dict(job.render) for job in self._jobs.values()]

    def storyboard_key(self, render_id: str) -> str:
        """The key of the storyboard the vendor rebuilt for `render_id`."""
        return self._jobs[render_id].storyboard_key

    def serve(self, host: str = "127.0.0.1", port: int = 0) -> ServerThread:
        """A server for this simulator in a background thread (use it as a context manager)."""
        return ServerThread(self.app(), host, port)

    def serve_forever(self, host: str = "127.0.0.1", port: int = 8020) -> None:
        """Serve in the foreground until interrupted (the `reelcast vendor-sim` command)."""
        server = make_server(self.app())
        asyncio.run(server.serve(sockets=[bind(host, port)]))

    # -- the HTTP API ------------------------------------------------------------------

    def app(self) -> Starlette:
        """The vendor's HTTP API."""
        return Starlette(
            routes=[
                Route(RENDERS_PATH, self._guarded(self._create), methods=["POST"]),
                Route(RENDERS_PATH, self._guarded(self._list), methods=["GET"]),
                Route(RENDERS_PATH + "/{render_id}", self._guarded(self._get), methods=["GET"]),
                Route(UPLOADS_PATH, self._guarded(self._upload), methods=["POST"]),
                Route(UPLOADS_PATH + "/{sha256}", self._uploaded, methods=["GET"]),
                Route(FILES_PATH + "/{render_id}.mp4", self._file, methods=["GET"]),
            ]
        )

    def _guarded(self, handler: _Handler) -> Callable[[Request], Awaitable[Response]]:
        """Recording, auth (401), rate limit (429) and random 503s, `handler`, then latency.

        The latency delays the answer, not the work: like a slow real vendor, a request
        the client gave up on may still have been carried out (a render created).
        """

        async def endpoint(request: Request) -> Response:
            body = await request.body()
            self._record(request, body)
            response = await self._answer(handler, request, body)
            if self.knobs.latency_s:
                await asyncio.sleep(self.knobs.latency_s)
            self.counts.answers[response.status_code] += 1
            return response

        return endpoint

    async def _answer(self, handler: _Handler, request: Request, body: bytes) -> Response:
        knobs = self.knobs
        expected = f"Bearer {knobs.api_key}"
        if not hmac.compare_digest(request.headers.get("authorization", ""), expected):
            return self._error(401, "missing or wrong API key")
        limited = self._rate_limited()
        if limited is not None:
            return limited
        if knobs.error_rate and self._random.random() < knobs.error_rate:
            return self._error(503, "service unavailable (injected)")
        return await handler(request, body)

    def _record(self, request: Request, body: bytes) -> None:
        content_type = request.headers.get("content-type", "")
        parsed: Any = None
        if body and content_type.startswith("application/json"):
            with contextlib.suppress(ValueError):
                parsed = json.loads(body)
        elif body:
            parsed = {
                "sha256": hashlib.sha256(body).hexdigest(),
                "bytes": len(body),
                "content_type": content_type,
            }
        self.received.append(
            Received(request.method, request.url.path, dict(request.query_params), parsed)
        )

    def _rate_limited(self) -> Response | None:
        knobs = self.knobs
        if not knobs.rate_limit:
            return None
        now = time.monotonic()
        while self._window and now - self._window[0] >= knobs.rate_window_s:
            self._window.popleft()
        if len(self._window) < knobs.rate_limit:
            self._window.append(now)
            return None
        wait = self._window[0] + knobs.rate_window_s - now
        headers = {"Retry-After": str(max(1, math.ceil(wait)))} if knobs.retry_after else {}
        return self._error(429, "too many requests", headers)

    async def _create(self, request: Request, body: bytes) -> Response:
        knobs = self.knobs
        try:
            payload = json.loads(body)
        except ValueError:
            return self._error(400, "body is not JSON")
        if knobs.fail_before_create:
            knobs.fail_before_create -= 1
            return self._error(500, "internal error (injected, nothing created)")
        try:
            template_id, storyboard = self._validate(payload)
        except CreativeError as exc:
            return self._error(400, str(exc))
        duration = storyboard.format.duration_s
        if knobs.credits_s is not None:
            if knobs.credits_s < duration:
                return self._error(402, "insufficient credits")
            knobs.credits_s -= duration
        render_id = str(uuid.uuid4())
        job = _Job(
            render={
                "id": render_id,
                "status": "planned",
                "template_id": template_id,
                "output_format": "mp4",
                "metadata": payload.get("metadata") or {},
                "url": None,
                "width": None,
                "height": None,
                "duration": None,
                "file_size": None,
                "error_message": None,
                "created_at": time.time(),
            },
            storyboard_key=storyboard.key(),
        )
        self._jobs[render_id] = job
        self.counts.created += 1
        base = str(request.base_url).rstrip("/")
        task = asyncio.create_task(self._run(job, storyboard, payload.get("webhook_url"), base))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        if knobs.fail_after_create:
            knobs.fail_after_create -= 1
            return self._error(502, "bad gateway (injected, after the job was created)")
        if knobs.hang_after_create:
            knobs.hang_after_create -= 1
            await asyncio.sleep(knobs.hang_s)
        return JSONResponse(self._public(job, base), status_code=202)

    def _validate(self, payload: Any) -> tuple[str, Storyboard]:
        if not isinstance(payload, dict):
            raise CreativeError("body must be a JSON object")
        unknown = sorted(set(payload) - _CREATE_FIELDS)
        if unknown:
            raise CreativeError(f"unknown field {unknown[0]!r}")
        if payload.get("output_format", "mp4") != "mp4":
            raise CreativeError("output_format: only 'mp4' is supported")
        modifications = payload.get("modifications")
        metadata = payload.get("metadata") or {}
        if not isinstance(modifications, dict) or not all(
            isinstance(v, str) for v in modifications.values()
        ):
            raise CreativeError("modifications must be an object of strings")
        if not isinstance(metadata, dict):
            raise CreativeError("metadata must be an object")
        template = self._template(payload.get("template_id"))
        wanted = metadata.get("template_version")
        if wanted is not None and wanted != template.version:
            raise CreativeError(
                f"template {template.name!r}: the vendor's copy is version {template.version[:12]},"
                f" the request is for {str(wanted)[:12]} (upload the template again)"
            )
        storyboard = storyboard_from_modifications(template, modifications, self._upload_file)
        return payload["template_id"], storyboard

    def _template(self, template_id: object) -> Template:
        """The template variant named `<template>-<width>x<height>`."""
        match = TEMPLATE_ID.fullmatch(template_id) if isinstance(template_id, str) else None
        if match is None:
            raise CreativeError("template_id must look like <template>-<width>x<height>")
        name, size = match.group(1), (int(match.group(2)), int(match.group(3)))
        template = load_template(self.templates_dir, name, self.assets_dir)
        for aspect in template.aspects:
            variant = template.variant(aspect)
            if (variant.spec.canvas.width, variant.spec.canvas.height) == size:
                return variant
        raise CreativeError(f"template {name!r} has no {size[0]}x{size[1]} variant")

    async def _get(self, request: Request, body: bytes) -> Response:
        job = self._jobs.get(request.path_params["render_id"])
        if job is None:
            return self._error(404, "render not found")
        return JSONResponse(self._public(job, str(request.base_url).rstrip("/")))

    async def _list(self, request: Request, body: bytes) -> Response:
        filters = {
            k.removeprefix("metadata."): v
            for k, v in request.query_params.items()
            if k.startswith("metadata.")
        }
        base = str(request.base_url).rstrip("/")
        found = [
            self._public(job, base)
            for job in self._jobs.values()
            if all(job.render["metadata"].get(k) == v for k, v in filters.items())
        ]
        return JSONResponse(found)

    async def _upload(self, request: Request, body: bytes) -> Response:
        try:
            with Image.open(io.BytesIO(body)) as image:
                suffix = _IMAGE_TYPES.get(image.format or "")
                image.verify()
        except (UnidentifiedImageError, OSError, SyntaxError):
            return self._error(400, "upload is not a readable image")
        if suffix is None:
            return self._error(400, "upload must be JPEG, PNG or WebP")
        digest = hashlib.sha256(body).hexdigest()
        path = self.workspace / "uploads" / f"{digest}{suffix}"
        if not path.exists():
            path.write_bytes(body)
        base = str(request.base_url).rstrip("/")
        return JSONResponse({"id": digest, "url": f"{base}{UPLOADS_PATH}/{digest}"}, 201)

    def _upload_file(self, digest: str) -> Path | None:
        return next((self.workspace / "uploads").glob(f"{digest}.*"), None)

    async def _uploaded(self, request: Request) -> Response:
        path = self._upload_file(request.path_params["sha256"])
        return FileResponse(path) if path else self._error(404, "upload not found")

    async def _file(self, request: Request) -> Response:
        """The result file behind a signed, expiring URL (like a CDN's)."""
        render_id = request.path_params["render_id"]
        expires = request.query_params.get("expires", "")
        signature = request.query_params.get("signature", "")
        job = self._jobs.get(render_id)
        if job is None or job.video is None:
            return self._error(404, "file not found")
        if not hmac.compare_digest(self._url_signature(render_id, expires), signature):
            return self._error(403, "bad URL signature")
        if not expires.isdigit() or int(expires) < time.time() * 1000:
            self.counts.expired_downloads += 1
            return self._error(403, "URL expired")
        return FileResponse(job.video, media_type="video/mp4")

    # -- the render queue and webhooks ---------------------------------------------------

    async def _run(
        self, job: _Job, storyboard: Storyboard, webhook_url: str | None, base: str
    ) -> None:
        knobs = self.knobs
        if self._slots is None:
            self._slots = asyncio.Semaphore(knobs.workers)
        await asyncio.sleep(knobs.queue_s / 2)
        job.render["status"] = "waiting"
        await asyncio.sleep(knobs.queue_s / 2)
        async with self._slots:
            job.render["status"] = "rendering"
            try:
                out = await asyncio.to_thread(self._renderer.render, storyboard, self.renders_dir)
            except CreativeError as exc:
                job.render.update(status="failed", error_message=f"render failed: {exc}")
                out = None
        if out is not None and self._random.random() < knobs.failure_rate:
            job.render.update(status="failed", error_message="render failed (injected)")
        elif out is not None:
            self.counts.rendered += 1
            job.video = out.video
            job.render.update(
                status="succeeded",
                width=out.width,
                height=out.height,
                duration=out.duration_s,
                file_size=out.video.stat().st_size,
            )
        if webhook_url:
            await self._send_webhooks(job, webhook_url, base)

    async def _send_webhooks(self, job: _Job, url: str, base: str) -> None:
        knobs = self.knobs
        final = self._public(job, base)
        deliveries = [final] * (1 + knobs.webhook_duplicates)
        if knobs.webhook_out_of_order:
            deliveries.append({**final, "status": "rendering", "url": None})
        async with httpx.AsyncClient(timeout=5) as client:
            for render in deliveries:
                if self._random.random() < knobs.webhook_drop_rate:
                    self.counts.webhooks_dropped += 1
                    continue
                body = json.dumps(render).encode()
                stamp = int(time.time())
                headers = {
                    "content-type": "application/json",
                    TIMESTAMP_HEADER: str(stamp),
                    SIGNATURE_HEADER: sign(knobs.webhook_secret.encode(), stamp, body),
                }
                with contextlib.suppress(httpx.HTTPError):
                    await client.post(url, content=body, headers=headers)
                    self.counts.webhooks_sent += 1

    # -- helpers -------------------------------------------------------------------------

    def _public(self, job: _Job, base: str) -> dict[str, Any]:
        """The render object as the API shows it: a fresh expiring URL once succeeded."""
        render = dict(job.render)
        if render["status"] == "succeeded":
            expires = str(int((time.time() + self.knobs.url_ttl_s) * 1000))
            signature = self._url_signature(render["id"], expires)
            render["url"] = (
                f"{base}{FILES_PATH}/{render['id']}.mp4?expires={expires}&signature={signature}"
            )
        return render

    def _url_signature(self, render_id: str, expires: str) -> str:
        message = f"{render_id}:{expires}".encode()
        return hmac.new(self._url_key, message, hashlib.sha256).hexdigest()

    def _error(
        self, status: int, message: str, headers: dict[str, str] | None = None
    ) -> JSONResponse:
        return JSONResponse({"error": message, "status": status}, status, headers=headers)
