"""Where the model registry shares its models: a folder or a bucket every worker reads.

A `ModelStore` keeps model folders under `<url>/models/<version>/`, laid out like the
registry's local folder: the model's own files and `model.json`. `model.json` is the
marker, as a render's manifest is in the render store: a model is published file by file
with `model.json` last, so a version is listed only once it is complete, and it is
fetched the same way round (into a temporary folder, `model.json` last, renamed into
place).

The URL is anything fsspec knows (`s3://bucket/prefix` with the s3 extra, or a folder);
the runtime hands over the render store's filesystem so both share one set of
credentials. Every read goes to the store: other workers' writes are seen at once.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from fsspec.core import url_to_fs
from fsspec.implementations.local import LocalFileSystem

from recs.errors import RecsError

META = "model.json"


class ModelStore:
    """Model folders under `<url>/models/`; `fs` is an fsspec filesystem for `url` (else
    one is made from the URL and `storage_options`)."""

    def __init__(
        self,
        url: str | os.PathLike[str],
        *,
        fs: Any = None,
        storage_options: Mapping[str, Any] | None = None,
    ) -> None:
        base = os.fspath(url).rstrip("/")
        self.url = f"{base}/models"
        if fs is None:
            try:
                fs, path = url_to_fs(base, **dict(storage_options or {}))
            except (ImportError, ValueError) as exc:
                raise RecsError(f"cannot open the model store {self.url}: {exc}") from None
        else:
            path = fs._strip_protocol(base)
        self.fs = fs
        self.root = f"{str(path).rstrip('/')}/models"
        self.is_local = isinstance(fs, LocalFileSystem)

    def __repr__(self) -> str:
        return f"ModelStore({self.url!r})"

    def path(self, version: str, name: str | None = None) -> str:
        """The store path of one version's folder (or of a file in it)."""
        folder = f"{self.root}/{version}"
        return folder if name is None else f"{folder}/{name}"

    # -- reading ------------------------------------------------------------------------

    def read_meta(self, version: str) -> bytes | None:
        """The published `model.json` of `version`, or None when it is not published."""
        path = self.path(version, META)
        with self._errors(f"reading model {version}"):
            self.fs.invalidate_cache(path)
            try:
                return bytes(self.fs.cat_file(path))
            except FileNotFoundError:
                return None

    def all_meta(self) -> list[bytes]:
        """The `model.json` of every published version (a folder without one is a model
        still being published, or a broken one: not listed)."""
        with self._errors("listing models"):
            self.fs.invalidate_cache()  # the listing of every version folder, not only ours
            paths = [
                p
                for p in self.fs.glob(f"{self.root}/*/{META}")
                if not p.rstrip("/").split("/")[-2].startswith(".")
            ]
            found: list[bytes] = []
            for path in paths:
                try:
                    found.append(bytes(self.fs.cat_file(path)))
                except FileNotFoundError:
                    continue  # removed since the listing
            return found

    def fetch(self, version: str, folder: Path) -> bool:
        """Copy the published `version` into the local `folder` (its final name); False
        when it is not published. Made under a temporary name beside `folder` and renamed
        into place, so a folder with the final name is always complete."""
        folder = Path(folder)
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = folder.parent / f".fetch-{version}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        tmp.mkdir()
        try:
            with self._errors(f"fetching model {version}"):
                prefix = self.path(version)
                self.fs.invalidate_cache(prefix)
                if not self._is_file(self.path(version, META)):
                    return False
                names = sorted(
                    p[len(prefix) + 1 :]
                    for p in self.fs.find(prefix)
                    if p.startswith(prefix + "/") and p[len(prefix) + 1 :] != META
                )
                for name in [*names, META]:  # the marker last
                    (tmp / name).parent.mkdir(parents=True, exist_ok=True)
                    try:
                        self.fs.get_file(f"{prefix}/{name}", str(tmp / name))
                    except FileNotFoundError:
                        if name == META:
                            return False  # removed while we copied
                        raise RecsError(
                            f"model {version} in {self.url} lost {name} while fetched"
                        ) from None
            try:
                tmp.rename(folder)
            except OSError:
                if not (folder / META).is_file():  # a broken folder: replace it
                    shutil.rmtree(folder, ignore_errors=True)
                    tmp.rename(folder)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return True

    def _is_file(self, path: str) -> bool:
        # Not fs.isfile: s3fs answers False for an unreachable store, which must not look
        # like a store without the model.
        try:
            info = self.fs.info(path)
        except FileNotFoundError:
            return False
        return bool(info.get("type") == "file")

    # -- writing ------------------------------------------------------------------------

    def publish(self, version: str, folder: Path) -> None:
        """Publish the complete local model folder: every file, then `model.json`."""
        folder = Path(folder)
        meta = folder / META
        if not meta.is_file():
            raise RecsError(f"cannot publish {folder}: not a complete model (no {META})")
        names = sorted(
            p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file() and p != meta
        )
        with self._errors(f"publishing model {version}"):
            with contextlib.suppress(FileNotFoundError):  # readers see no half-new model
                self.fs.rm_file(self.path(version, META))
            for name in names:
                target = self.path(version, name)
                if self.is_local:
                    self.fs.makedirs(target.rsplit("/", 1)[0], exist_ok=True)
                self.fs.put_file(str(folder / name), target)
            self._put_bytes(self.path(version, META), meta.read_bytes())

    def write_meta(self, version: str, data: bytes) -> None:
        """Replace the `model.json` of a published version (an approval)."""
        with self._errors(f"writing model {version}"):
            self._put_bytes(self.path(version, META), data)

    def _put_bytes(self, path: str, data: bytes) -> None:
        if self.is_local:  # a reader on a shared folder sees the old file or the new one
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(f"{path}.{uuid.uuid4().hex[:8]}.tmp")
            tmp.write_bytes(data)
            os.replace(tmp, path)
        else:  # one PUT: an object is replaced whole
            self.fs.pipe_file(path, data)

    @contextlib.contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        """Storage failures as RecsErrors naming the store, not botocore tracebacks."""
        try:
            yield
        except (RecsError, FileNotFoundError):
            raise
        except Exception as exc:  # botocore, aiohttp and fsspec raise many kinds
            raise RecsError(f"model store {self.url}: {doing} failed: {exc}") from exc
