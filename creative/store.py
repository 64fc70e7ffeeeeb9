"""Where finished renders live: a folder on this machine, or a bucket every worker shares.

A `RenderStore` holds render folders by key, laid out like the local renders folder:
`<root>/<key[:2]>/<key>/` with `video.mp4`, `poster.jpg`, `preview.gif` and `render.json`.
The root is a folder or a URL fsspec knows (`s3://bucket/prefix`, with the `s3` extra).

Renders are always made in a folder on this machine (the workspace's renders folder, which
is also the cache of a remote store) and published once complete: every file first,
`render.json` last. The manifest is the marker: a key is present only when its manifest
is, so a reader never takes half a published render for a render. Fetching works the same
way round: into a temporary folder, manifest last, renamed into place.

A store whose root is the local renders folder itself is today's layout exactly: nothing
is copied, `publish` and `fetch` have nothing to do, and paths stay as they are.

`StoredRenderer` puts any renderer that can name its output keys in front of a store: it
reuses what any worker published (fetching it into the local folder, where the renderer
finds it as its own earlier render), and publishes what it renders.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import shutil
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any, Protocol, runtime_checkable

from fsspec.core import url_to_fs
from fsspec.implementations.local import LocalFileSystem
from fsspec.utils import get_protocol

from creative.errors import CreativeError, RenderError
from creative.render import (
    GIF_FILE,
    MANIFEST_FILE,
    POSTER_FILE,
    VIDEO_FILE,
    CampaignCosts,
    Render,
    Renderer,
    render_dir,
)
from creative.storyboard import Storyboard
from retail.types import Customer

#: The files of a render folder, the manifest (the marker) last.
RENDER_FILES = (VIDEO_FILE, POSTER_FILE, GIF_FILE, MANIFEST_FILE)
#: Files a render folder may lack (a vendor render filed before GIFs were made).
OPTIONAL_FILES = frozenset({GIF_FILE})
#: The files of a piece folder (a scene segment, a shared GIF or audio track that
#: renders are joined from, `creative.scenes`), the marker last. A piece holds some of
#: them; its marker lists which, with their fingerprints.
PIECE_MARKER = "piece.json"
PIECE_FILES = ("segment.mp4", "audio.m4a", POSTER_FILE, GIF_FILE, PIECE_MARKER)
_ALL_FILES = frozenset(RENDER_FILES + PIECE_FILES)
#: The longest a presigned S3 URL may live (SigV4: seven days).
MAX_URL_TTL_S = 7 * 24 * 3600
S3_EXTRA = "pip install 'reelcast[s3]'"
_KEY = re.compile(r"[0-9a-f]{16,128}")  # content-addressed: a lowercase hex digest
_CAMPAIGN = re.compile(r"[A-Za-z0-9_.-]{1,64}")  # as campaigns.params allows
_S3 = ("s3", "s3a")
# Content-addressed objects never change; private because a video may show a name.
_IMMUTABLE = "private, max-age=31536000, immutable"


class StoreError(RenderError):
    """The render store could not be read or written (unreachable, refused, misconfigured)."""


class RenderStore:
    """Render folders by key under `root`: a local folder or `s3://bucket/prefix`.

    For S3, `endpoint_url`, `key_id`, `secret` and `region` override what botocore finds
    itself (the AWS_* environment variables, ~/.aws, an instance role); `endpoint_url`
    points at any S3-compatible server (MinIO, Ceph, R2, moto). Presigned URLs live
    `url_ttl_s` seconds unless a call says otherwise. `storage_options` go to fsspec as is
    (for other filesystems, or S3 options not named here).
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        endpoint_url: str | None = None,
        key_id: str | None = None,
        secret: str | None = None,
        region: str | None = None,
        url_ttl_s: int = 3600,
        storage_options: Mapping[str, Any] | None = None,
    ) -> None:
        url = os.fspath(root)
        protocol = get_protocol(url)
        options: dict[str, Any] = {}
        if protocol in _S3:
            if importlib.util.find_spec("s3fs") is None:
                raise StoreError(
                    f"the render store {url} is on S3, which needs the s3 extra: {S3_EXTRA}"
                )
            options = _s3_options(endpoint_url, key_id, secret, region)
        options.update(storage_options or {})
        if not 1 <= url_ttl_s <= MAX_URL_TTL_S:
            raise ValueError(f"url_ttl_s must be 1 … {MAX_URL_TTL_S} seconds, not {url_ttl_s}")
        try:
            fs, path = url_to_fs(url, **options)
        except (ImportError, ValueError) as exc:
            raise StoreError(f"cannot open the render store {url}: {exc}") from None
        self.url = url
        self.fs = fs
        self.root = str(path).rstrip("/") or "/"
        self.url_ttl_s = url_ttl_s
        self.is_s3 = protocol in _S3
        self._put_options = {"CacheControl": _IMMUTABLE} if self.is_s3 else {}

    def __repr__(self) -> str:
        return f"RenderStore({self.url!r})"

    @property
    def is_local(self) -> bool:
        """Whether the store is a folder on this machine (its files can be served as files)."""
        return isinstance(self.fs, LocalFileSystem)

    def holds(self, folder: Path) -> bool:
        """Whether `folder` (a local renders folder) is this store's own root: then
        renders made there are in the store already, and nothing is copied."""
        return self.is_local and Path(self.root).resolve() == Path(folder).resolve()

    # -- where things are ---------------------------------------------------------------

    def path(self, key: str, name: str | None = None) -> str:
        """The store path of the render folder `key` (or of its file `name`)."""
        if not _KEY.fullmatch(key):
            raise ValueError(f"not a render key: {key!r}")
        if name is not None and name not in _ALL_FILES:
            raise ValueError(f"not a render file: {name!r}")
        folder = f"{self.root}/{key[:2]}/{key}"
        return folder if name is None else f"{folder}/{name}"

    def local_path(self, key: str, name: str = VIDEO_FILE) -> Path | None:
        """The file on this machine's disk when the store is a local folder, else None."""
        return Path(self.path(key, name)) if self.is_local else None

    # -- reading ------------------------------------------------------------------------

    def has(self, key: str, marker: str = MANIFEST_FILE) -> bool:
        """Whether the render `key` is published completely (its manifest is there; for
        a piece, `marker` is PIECE_MARKER)."""
        return self._is_file(self.path(key, marker), f"looking up render {key}")

    def _is_file(self, path: str, doing: str) -> bool:
        # Not fs.isfile: s3fs answers False when the store cannot be reached at all, and
        # an unreachable store must not look like an empty one (the tracking app would
        # say 404 to a recipient, a worker would render again).
        with self._errors(doing):
            self.fs.invalidate_cache(path)  # no stale listing may answer for another worker
            try:
                info = self.fs.info(path)
            except FileNotFoundError:
                return False
            return bool(info.get("type") == "file")

    def exists(self, key: str, name: str) -> bool:
        """Whether the render `key` is published and has the file `name` (one request for
        a file every render has: it is published before the marker)."""
        path = self.path(key, name)
        if not self.has(key):
            return False
        if name not in OPTIONAL_FILES:
            return True
        return self._is_file(path, f"looking up {name} of render {key}")

    def open(self, key: str, name: str = VIDEO_FILE) -> IO[bytes]:
        """A file object for reading one file of a published render (seekable: a server may
        answer Range requests from it). Raises FileNotFoundError when the render or the
        file is not there."""
        if not self.has(key):
            raise FileNotFoundError(f"no render {key} in {self.url}")
        with self._errors(f"opening {name} of render {key}"):
            handle: IO[bytes] = self.fs.open(self.path(key, name), "rb")
        return handle

    def file_url(self, key: str, name: str = VIDEO_FILE, *, expires_s: int | None = None) -> str:
        """A URL a browser can fetch the file from: presigned (GET, Range works) for S3,
        good for `expires_s` seconds (default: the store's `url_ttl_s`); a file:// URL
        for a local folder. It does not check that the file is there (see `exists`)."""
        path = self.path(key, name)
        ttl = self.url_ttl_s if expires_s is None else expires_s
        if not 1 <= ttl <= MAX_URL_TTL_S:
            raise ValueError(f"expires_s must be 1 … {MAX_URL_TTL_S} seconds, not {ttl}")
        if self.is_local:
            return Path(path).resolve().as_uri()
        with self._errors(f"signing a URL for {name} of render {key}"):
            return str(self.fs.sign(path, expiration=ttl))

    def copy_url(self, copy: Path, *, expires_s: int | None = None) -> str:
        """`file_url` of the file a local copy `copy` (`render_dir(cache, key) / name`, as
        a Render's paths are) is a copy of: for a page that links to the store."""
        return self.file_url(copy.parent.name, copy.name, expires_s=expires_s)

    def video_url(self, key: str, *, expires_s: int | None = None) -> str:
        """`file_url(key, "video.mp4")`: where the tracking app redirects a viewer."""
        return self.file_url(key, VIDEO_FILE, expires_s=expires_s)

    def locate(self, key: str, name: str = VIDEO_FILE) -> Path | str | None:
        """How a web app hands out one file of a render, in one call: a local Path to serve
        as a file (a local store), a presigned URL to redirect to (S3), or None when the
        render or the file is not published."""
        if self.is_local:
            path = self.local_path(key, name)
            return path if path is not None and self.has(key) and path.is_file() else None
        return self.file_url(key, name) if self.exists(key, name) else None

    def fetch(self, key: str, folder: Path, files: tuple[str, ...] = RENDER_FILES) -> bool:
        """Copy the published render `key` into the local `folder` (its final name, as
        `render_dir(cache, key)` gives it); False when the store has no such render.

        The copy is made under a temporary name beside `folder` and renamed into place,
        so a folder with the final name is always complete. A `folder` that is the
        store's own is not copied onto itself.
        """
        folder = Path(folder)
        marker = files[-1]
        # A piece's marker lists what it holds and the piece checks it when read.
        optional = OPTIONAL_FILES if files == RENDER_FILES else frozenset(files[:-1])
        if self.is_local and Path(self.path(key)).resolve() == folder.resolve():
            return self.has(key, marker)
        if not self.has(key, marker):
            return False
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = folder.parent / f".tmp-fetch-{key[:16]}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        tmp.mkdir()
        try:
            with self._errors(f"fetching render {key}"):
                for name in files:  # the manifest last: a reader's marker here too
                    try:
                        self.fs.get_file(self.path(key, name), str(tmp / name))
                    except FileNotFoundError:
                        if name not in optional:
                            if name == marker:
                                return False  # deleted while we copied
                            raise StoreError(
                                f"render {key} in {self.url} is published without {name}"
                            ) from None
            try:
                tmp.rename(folder)
            except OSError:
                if not (folder / marker).is_file():  # a broken folder: replace it
                    shutil.rmtree(folder, ignore_errors=True)
                    tmp.rename(folder)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return True

    # -- writing ------------------------------------------------------------------------

    def publish(
        self,
        key: str,
        folder: Path,
        *,
        replace: bool = False,
        files: tuple[str, ...] = RENDER_FILES,
    ) -> bool:
        """Publish the complete local render folder `folder` as `key`: every file, then the
        manifest. Returns False when nothing was copied: the folder is the store's own,
        or the key is published already (by another worker; `replace` copies anyway,
        for a published render that turned out broken)."""
        folder = Path(folder)
        target = self.path(key)
        if self.is_local and Path(target).resolve() == folder.resolve():
            return False
        marker = files[-1]
        if not (folder / marker).is_file():
            raise RenderError(f"cannot publish {folder}: not a complete render (no {marker})")
        if not replace and self.has(key, marker):
            return False
        names = [n for n in files if (folder / n).is_file()]
        with self._errors(f"publishing render {key}"):
            if self.is_local:
                self._publish_local(key, folder, names)
            else:
                if replace:  # readers see no render while its files change
                    with contextlib.suppress(FileNotFoundError):
                        self.fs.rm_file(self.path(key, marker))
                for name in names:  # the marker is last
                    self.fs.put_file(str(folder / name), self.path(key, name), **self._put_options)
        return True

    def delete(self, key: str) -> bool:
        """Remove the render `key` (the marker first, so readers stop seeing it at once);
        False when there was none. For erasing a customer's videos."""
        with self._errors(f"deleting render {key}"):
            if self.is_local:
                folder = Path(self.path(key))
                if not folder.is_dir():
                    return False
                shutil.rmtree(folder)
                return True
            found = False
            for name in (*RENDER_FILES[::-1], *PIECE_FILES[::-1]):
                path = self.path(key, name)
                self.fs.invalidate_cache(path)
                if self.fs.isfile(path):  # S3 deletes a missing object without a word
                    self.fs.rm_file(path)
                    found = True
            return found

    def put_gallery(self, campaign: str, document: bytes) -> None:
        """Keep a campaign's preview gallery document (`delivery.gallery.Gallery`, JSON)
        as `<root>/galleries/<campaign>.json`, for the tracking app to serve; a later run
        of the same campaign replaces it."""
        path = self._gallery_path(campaign)
        with self._errors(f"publishing the gallery of {campaign}"):
            if self.is_local:
                Path(path).parent.mkdir(parents=True, exist_ok=True)
                tmp = Path(f"{path}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
                tmp.write_bytes(document)
                tmp.replace(path)
                return
            self.fs.pipe_file(path, document, CacheControl="private, no-cache")

    def get_gallery(self, campaign: str) -> bytes | None:
        """A campaign's gallery document, or None when it has none."""
        path = self._gallery_path(campaign)
        with self._errors(f"reading the gallery of {campaign}"):
            try:
                return bytes(self.fs.cat_file(path))
            except FileNotFoundError:
                return None

    def _gallery_path(self, campaign: str) -> str:
        if not _CAMPAIGN.fullmatch(campaign):
            raise ValueError(f"not a campaign id: {campaign!r}")
        return f"{self.root}/galleries/{campaign}.json"

    def _publish_local(self, key: str, folder: Path, names: list[str]) -> None:
        """Copy into a temporary folder beside the final one, then rename it into place."""
        final = Path(self.path(key))
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = final.parent / f".tmp-publish-{key[:16]}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        tmp.mkdir()
        try:
            for name in names:
                shutil.copyfile(folder / name, tmp / name)
            try:
                tmp.rename(final)
            except OSError:  # there already: a complete render, or a broken one to replace
                shutil.rmtree(final, ignore_errors=True)
                tmp.rename(final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    @contextlib.contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        """Storage failures as StoreErrors naming the store: one video's failure, which a
        campaign reports and goes on, rather than a botocore traceback."""
        try:
            yield
        except (CreativeError, FileNotFoundError, ValueError):
            raise
        except Exception as exc:  # botocore, aiohttp and fsspec raise many kinds
            raise StoreError(f"render store {self.url}: {doing} failed: {exc}") from exc


def _s3_options(
    endpoint_url: str | None, key_id: str | None, secret: str | None, region: str | None
) -> dict[str, Any]:
    """s3fs options: what is set here, botocore's own lookup for the rest; SigV4 URLs."""
    options: dict[str, Any] = {
        # SigV4: what every AWS region and S3-compatible server accepts for presigned URLs.
        "config_kwargs": {"signature_version": "s3v4"},
        # Each store sees other workers' writes at once: no listing cache.
        "use_listings_cache": False,
    }
    if endpoint_url:
        options["endpoint_url"] = endpoint_url
    if key_id:
        options["key"] = key_id
    if secret:
        options["secret"] = secret
    if region:
        options["client_kwargs"] = {"region_name": region}
    return options


@runtime_checkable
class KeyedRenderer(Renderer, Protocol):
    """A renderer that can say, before rendering, under which keys it files a storyboard."""

    def output_keys(self, storyboard: Storyboard) -> tuple[str, ...]:
        """The keys a render of `storyboard` may be filed under, preferred first."""
        ...


class StoredRenderer:
    """`inner`, with its renders shared through `store`.

    Before rendering, the first of the inner renderer's keys that the store has is
    fetched into the local folder, where the inner renderer finds and reuses it (a render
    another worker made is not made again); what the inner renderer returns is published
    unless the store has it already. A render the store cannot take fails like any
    other render (a StoreError), since other workers and the tracking app need it there.
    """

    def __init__(self, inner: KeyedRenderer, store: RenderStore) -> None:
        self.inner = inner
        self.store = store

    def output_keys(self, storyboard: Storyboard) -> tuple[str, ...]:
        """The inner renderer's keys."""
        return self.inner.output_keys(storyboard)

    def render(
        self,
        storyboard: Storyboard,
        out_dir: Path,
        *,
        subject: str | None = None,
        customer: Customer | None = None,
    ) -> Render:
        """Reuse a published render, else render with the inner renderer and publish."""
        fetched = None
        for key in self.inner.output_keys(storyboard):
            folder = render_dir(out_dir, key)
            if (folder / MANIFEST_FILE).is_file():
                break  # in the local folder already: the inner renderer checks and reuses it
            if self.store.fetch(key, folder):
                fetched = key
                break
        result = self.inner.render(storyboard, out_dir, subject=subject, customer=customer)
        if result.reused and result.key == fetched:
            return result
        # Fresh over a fetched copy: the store's copy failed the renderer's checks.
        replace = not result.reused and result.key == fetched
        self.store.publish(result.key, result.video.parent, replace=replace)
        return result

    def costs(self, campaign: str) -> CampaignCosts | None:
        """The inner renderer's costs."""
        return self.inner.costs(campaign)

    def rendered_locally(self, campaign: str) -> dict[str, str]:
        """The inner renderer's local fallbacks."""
        return self.inner.rendered_locally(campaign)

    def close(self) -> None:
        """Close the inner renderer."""
        self.inner.close()


def local_copy(render: Render, store: RenderStore, cache: Path) -> Render:
    """`render` with its files on this machine: as it is when they are here (a local store,
    or rendered on this machine), else fetched from `store` into the `cache` folder (a
    render made by a worker on another machine). Raises StoreError when the store has
    no such render."""
    files = [render.video, render.poster] + ([render.gif] if render.gif is not None else [])
    if all(f.is_file() for f in files):
        return render
    folder = render_dir(cache, render.key)
    if not (folder / MANIFEST_FILE).is_file() and not store.fetch(render.key, folder):
        raise StoreError(f"render {render.key} is neither on this machine nor in {store.url}")
    gif = folder / GIF_FILE
    return render.model_copy(
        update={
            "video": folder / VIDEO_FILE,
            "poster": folder / POSTER_FILE,
            "gif": gif if gif.is_file() else None,
        }
    )
