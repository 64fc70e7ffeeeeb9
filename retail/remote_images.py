"""Product images by URL (a feed's `image_link`), fetched into a local disk cache.

The renderer and the emails work on local files, so every http(s) image is downloaded
once, checked like a file beside the catalog, and kept; later runs ask the server whether
it changed (If-None-Match / If-Modified-Since) and reuse the file on 304. A broken URL
costs one product, never the run: `fetch_images` returns a path or a short problem per URL
and raises nothing for what a server or a feed can do.

Cache layout, one shard folder per first two hex digits of `sha256(url)`::

    <cache_dir>/ab/ab12…ef.jpg    the body, named for its real format (never half written:
                                  streamed to a `.part` file, checked, then os.replace)
    <cache_dir>/ab/ab12…ef.json   its sidecar: ETag, Last-Modified, content type, size,
                                  freshness, and the sha256 of the final URL (not the URL:
                                  a query string may carry a token)

The sidecar is written last: an entry exists when its sidecar names a body of the recorded
size. Two processes sharing a cache never see a torn file, at worst they both download.
Nothing is fsynced: this is a cache, not a record. What a power cut could leave (a lost
or short file, a body that is no longer an image) fails the size check or the header
check (`image_problem`) every use runs, and costs one download; two fsyncs a picture
capped a 50,000-picture catalog at ~160 pictures/s here.

Server-side request forgery: a feed is not trusted to make us fetch from the machine's own
network. Only http and https; the host is resolved here (socket.getaddrinfo) and every
address it resolves to must be public (not private, loopback, link-local, multicast,
reserved or unspecified, also when embedded in IPv6), unless `FetchPolicy.allow_private`
or `allowed_networks` says otherwise; redirects are followed by hand, each hop checked.
Over http the connection goes to the address that was checked (the Host header carries the
name), so DNS rebinding cannot swap it. Over https httpx resolves the name again, and a
rebinding attack would need a certificate for the attacker's name from the internal
server: the verified TLS handshake is what stops it there. A caller-supplied client that
does not verify certificates, or sends through a proxy, gives that up.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import logging
import os
import socket
import tempfile
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, Literal

import httpx
from PIL import Image
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt

from retail.image_check import MAX_IMAGE_PIXELS, image_problem

log = logging.getLogger(__name__)

USER_AGENT = "reelcast/0.1 (+image fetch)"
#: named, not image/*: image CDNs pick the format from Accept, and AVIF or HEIC is refused
ACCEPT = "image/jpeg,image/png,image/webp,image/gif"
#: Pillow format → the cached file's suffix; anything else is refused
FORMATS = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp", "GIF": ".gif"}
#: besides image/*: storage buckets often serve uploads without a type; the bytes decide
UNTYPED = frozenset({"application/octet-stream", "binary/octet-stream"})
ALLOW_PRIVATE_HINT = "set REELCAST_IMAGE_FETCH_ALLOW_PRIVATE=true to allow it"
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_CHUNK = 64 * 1024


@dataclass(frozen=True)
class FetchPolicy:
    """How images are fetched. The defaults suit a retailer's CDN; tests shrink them."""

    #: URLs fetched at once (threads sharing one connection pool)
    concurrency: int = 8
    #: seconds to connect, and to wait for each piece of the response
    timeout_s: float = 10.0
    #: seconds one try may take from the request to the last byte (a trickling server)
    total_timeout_s: float = 120.0
    #: tries per URL; refused connections, timeouts, 408, 429 and 5xx are tried again
    attempts: int = 3
    #: the first wait between tries, doubled each time (when no Retry-After says otherwise)
    backoff_s: float = 0.5
    #: the longest wait between tries, including a server's Retry-After
    max_retry_after_s: float = 30.0
    max_bytes: int = 20_000_000
    max_pixels: int = MAX_IMAGE_PIXELS
    max_redirects: int = 5
    #: fetch from private, loopback and link-local addresses too (a shop on the intranet)
    allow_private: bool = False
    #: networks allowed although private, e.g. ("10.20.0.0/16",) for an internal CDN
    allowed_networks: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name in ("concurrency", "attempts", "max_bytes", "max_pixels"):
            if getattr(self, name) < 1:
                raise ValueError(f"FetchPolicy.{name} must be at least 1")
        if self.timeout_s <= 0 or self.total_timeout_s <= 0:
            raise ValueError("FetchPolicy timeouts must be positive")
        if self.max_redirects < 0 or self.backoff_s < 0 or self.max_retry_after_s < 0:
            raise ValueError("FetchPolicy.max_redirects and waits cannot be negative")
        for network in self.allowed_networks:
            try:
                ipaddress.ip_network(network, strict=False)
            except ValueError:
                raise ValueError(
                    f"FetchPolicy.allowed_networks: {network!r} is not a network "
                    "like 10.20.0.0/16 or fd00::/8"
                ) from None


@dataclass
class FetchReport:
    """What `fetch_images` did: each URL is in exactly one of `paths` and `problems`."""

    paths: dict[str, Path] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)
    #: bodies downloaded (new, or changed since the cached copy)
    downloaded: int = 0
    #: cached copies the server confirmed unchanged (304)
    revalidated: int = 0
    #: cached copies still fresh by the server's Cache-Control max-age (no request)
    cached_fresh: int = 0
    bytes_downloaded: int = 0

    def summary(self) -> str:
        """One line of counts, for a log or the command line (no URLs)."""
        return (
            f"{len(self.paths)} image(s) ready, {len(self.problems)} problem(s): "
            f"{self.downloaded} downloaded ({self.bytes_downloaded / 1e6:.1f} MB), "
            f"{self.revalidated} unchanged on the server, {self.cached_fresh} fresh in the cache"
        )


def fetch_images(
    urls: Iterable[str],
    cache_dir: Path,
    policy: FetchPolicy = FetchPolicy(),
    *,
    progress: Callable[[int], None] | None = None,
    client: httpx.Client | None = None,
) -> FetchReport:
    """Fetch every http(s) image in `urls` into `cache_dir`; never raises for a bad URL,
    server or body: each URL ends in `report.paths` (an absolute path to a checked JPEG,
    PNG, WebP or GIF) or in `report.problems` (a short reason without the URL's query).

    A URL given several times is fetched once. `progress` is called on this thread as
    each distinct URL is done, with the number of times it appeared in `urls`, so the
    calls add up to the number of URLs given. `client` lets a caller share a pool or
    mock transport; it is not closed, and its own redirect setting is not used.
    """
    given = list(urls)
    times = Counter(given)
    unique = list(times)
    cache = _Cache(Path(cache_dir).absolute())
    own_client = client is None
    http = client or httpx.Client(
        headers={"User-Agent": USER_AGENT},
        timeout=httpx.Timeout(policy.timeout_s),
        limits=httpx.Limits(
            max_connections=policy.concurrency, max_keepalive_connections=policy.concurrency
        ),
        follow_redirects=False,
        trust_env=False,  # a proxy would undo the address checks (see the module docstring)
    )
    results: dict[str, _Fetched | str] = {}
    try:
        with ThreadPoolExecutor(
            max_workers=max(1, min(policy.concurrency, len(unique))),
            thread_name_prefix="image-fetch",
        ) as pool:
            futures = {
                pool.submit(_fetch_or_problem, url, cache, http, policy): url for url in unique
            }
            for future in as_completed(futures):
                url = futures[future]
                results[url] = future.result()
                if progress is not None:
                    progress(times[url])
    finally:
        if own_client:
            http.close()

    report = FetchReport()
    for url in unique:
        result = results[url]
        if isinstance(result, str):
            report.problems[url] = result
            continue
        report.paths[url] = result.path
        report.bytes_downloaded += result.size
        if result.how == "downloaded":
            report.downloaded += 1
        elif result.how == "revalidated":
            report.revalidated += 1
        else:
            report.cached_fresh += 1
    _log_report(report)
    return report


# --- one URL ----------------------------------------------------------------------------


class _Refused(Exception):
    """This URL cannot give an image; trying again would not help."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem


class _Transient(Exception):
    """This try failed in a way another try may not (a timeout, a 503, a 429)."""

    def __init__(self, problem: str, retry_after: float | None = None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.retry_after = retry_after


@dataclass(frozen=True)
class _Fetched:
    path: Path
    how: Literal["downloaded", "revalidated", "fresh"]
    size: int = 0


def _fetch_or_problem(
    url: str, cache: _Cache, client: httpx.Client, policy: FetchPolicy
) -> _Fetched | str:
    try:
        return _fetch(url, cache, client, policy)
    except _Refused as exc:
        return exc.problem
    except OSError as exc:  # the cache folder: full, read-only, gone
        return f"cannot write to the image cache ({exc.strerror or type(exc).__name__})"
    except Exception as exc:  # our bug: one product lost, the traceback in the log
        log.error("fetching an image from %s failed", _host(url), exc_info=True)
        return f"unexpected error ({type(exc).__name__}); see the log"


def _fetch(url: str, cache: _Cache, client: httpx.Client, policy: FetchPolicy) -> _Fetched:
    try:
        target = httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        raise _Refused("not a valid URL") from None
    _check_scheme(target, redirected=False)
    key = hashlib.sha256(url.encode()).hexdigest()
    entry = cache.load(key)
    if entry is not None and entry.fresh_until > time.time():
        _check_cached(entry.path, policy)
        return _Fetched(entry.path, "fresh")
    retrying = Retrying(
        retry=retry_if_exception_type(_Transient),
        stop=stop_after_attempt(policy.attempts),
        wait=lambda state: _wait_s(state, policy),
        reraise=True,
    )
    try:
        fetched = retrying(_try_once, target, key, entry, cache, client, policy)
    except _Transient as exc:
        tries = "1 try" if policy.attempts == 1 else f"{policy.attempts} tries"
        raise _Refused(f"{exc.problem} after {tries}") from None
    if fetched.how != "downloaded":
        _check_cached(fetched.path, policy)
    return fetched


def _try_once(
    url: httpx.URL,
    key: str,
    entry: _Entry | None,
    cache: _Cache,
    client: httpx.Client,
    policy: FetchPolicy,
) -> _Fetched:
    deadline = time.monotonic() + policy.total_timeout_s
    for hop in range(policy.max_redirects + 1):
        host = url.host
        addresses = _checked_addresses(url, policy, redirected=hop > 0)
        headers = {"User-Agent": USER_AGENT, "Accept": ACCEPT, "Accept-Encoding": "identity"}
        conditional = entry is not None and entry.final_url_sha256 == _sha256(str(url))
        if conditional and entry is not None:
            if entry.etag:
                headers["If-None-Match"] = entry.etag
            if entry.last_modified:
                headers["If-Modified-Since"] = entry.last_modified
        try:
            with _send(client, url, addresses, headers, policy) as response:
                status = response.status_code
                if status in _REDIRECTS:
                    location = response.headers.get("Location")
                    if not location:
                        raise _Refused(f"HTTP {status} without a Location to go to")
                    url = url.join(location)
                    _check_scheme(url, redirected=True)
                    continue
                if status == 304 and conditional and entry is not None:
                    return _Fetched(cache.refresh(entry, response.headers), "revalidated")
                if status == 200:
                    return _download(response, url, key, entry, cache, policy, deadline)
                if status in (408, 429) or status >= 500:
                    retry_after = _retry_after_s(response.headers.get("Retry-After"))
                    raise _Transient(f"HTTP {status}", retry_after)
                raise _Refused(f"HTTP {status}")
        except httpx.TimeoutException:
            raise _Transient("timed out") from None
        except httpx.ConnectError:
            raise _Transient(f"could not connect to {host}") from None
        except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError):
            raise _Transient(f"the connection to {host} broke off") from None
        except httpx.InvalidURL:
            raise _Refused("a redirect to an invalid URL") from None
        except httpx.HTTPError as exc:
            raise _Refused(f"HTTP error from {host} ({type(exc).__name__})") from None
    raise _Refused(f"more than {policy.max_redirects} redirects")


@contextmanager
def _send(
    client: httpx.Client,
    url: httpx.URL,
    addresses: list[str],
    headers: dict[str, str],
    policy: FetchPolicy,
) -> Iterator[httpx.Response]:
    """GET `url` as a stream, without following redirects. Plain http goes to one of the
    checked `addresses` (each in turn while connecting fails), so a second DNS answer
    cannot send it elsewhere; https goes by name (its certificate is checked for it)."""
    targets = [url] if url.scheme == "https" else [url.copy_with(host=a) for a in addresses]
    if url.scheme == "http":
        headers = {**headers, "Host": url.netloc.decode("ascii")}
    response: httpx.Response | None = None
    for n, target in enumerate(targets, start=1):
        request = client.build_request(
            "GET", target, headers=headers, timeout=httpx.Timeout(policy.timeout_s)
        )
        try:
            response = client.send(request, stream=True, follow_redirects=False)
            break
        except httpx.ConnectError:
            if n == len(targets):
                raise
    assert response is not None  # the loop either breaks with one or raises
    try:
        yield response
    finally:
        response.close()  # an unread body closes the connection: nothing more is read


def _download(
    response: httpx.Response,
    url: httpx.URL,
    key: str,
    entry: _Entry | None,
    cache: _Cache,
    policy: FetchPolicy,
    deadline: float,
) -> _Fetched:
    content_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if not (content_type.startswith("image/") or content_type in UNTYPED):
        raise _Refused(f"not an image ({content_type or 'no content type'})")
    too_big = f"over the {policy.max_bytes / 1e6:g} MB limit"
    length = response.headers.get("Content-Length", "")
    if length.isdigit() and int(length) > policy.max_bytes:
        raise _Refused(too_big)
    part = cache.new_part(key)
    try:
        size = 0
        with part.open("wb") as out:
            for chunk in response.iter_bytes(_CHUNK):
                size += len(chunk)
                if size > policy.max_bytes:
                    raise _Refused(too_big)
                if time.monotonic() > deadline:
                    raise _Transient("timed out")
                out.write(chunk)
        image_format = _image_format(part, policy)
        meta = {
            "bytes": size,
            "content_type": content_type,
            "etag": response.headers.get("ETag"),
            "last_modified": response.headers.get("Last-Modified"),
            "final_url_sha256": _sha256(str(url)),
            "host": url.host,
            "fresh_until": _fresh_until(response.headers),
        }
        path = cache.commit(key, part, FORMATS[image_format], meta, entry)
    finally:
        part.unlink(missing_ok=True)
    return _Fetched(path, "downloaded", size)


def _image_format(path: Path, policy: FetchPolicy) -> str:
    """The Pillow format of the image at `path`, read from its header; `_Refused` when it
    is not one we keep, too many pixels, or not an image."""
    problem = image_problem(path, max_bytes=policy.max_bytes, max_pixels=policy.max_pixels)
    if problem is not None:
        raise _Refused(problem)
    with warnings.catch_warnings():  # the pixel count is checked above
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        with Image.open(path) as image:
            image_format = image.format or "unknown"
    if image_format not in FORMATS:
        raise _Refused(f"a {image_format} image; only JPEG, PNG, WebP and GIF are used")
    return image_format


def _check_cached(path: Path, policy: FetchPolicy) -> None:
    # Header only: the policy (max_pixels) may be stricter than when it was downloaded.
    problem = image_problem(path, max_bytes=policy.max_bytes, max_pixels=policy.max_pixels)
    if problem is not None:
        raise _Refused(problem)


# --- where a URL may lead ----------------------------------------------------------------


def _check_scheme(url: httpx.URL, *, redirected: bool) -> None:
    if url.scheme in ("http", "https") and url.host:
        return
    what = f"a {url.scheme}:// URL" if url.scheme else "a URL without a scheme"
    if url.scheme in ("http", "https"):
        what = "a URL without a host"
    lead = "redirects to " if redirected else ""
    raise _Refused(f"{lead}{what}; only http and https images are fetched")


def _checked_addresses(url: httpx.URL, policy: FetchPolicy, *, redirected: bool) -> list[str]:
    """The addresses `url`'s host resolves to, each allowed by `policy`, or `_Refused`."""
    host = url.raw_host.decode("ascii")
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        addresses = _resolve(host, port)
    except socket.gaierror as exc:
        if exc.errno == socket.EAI_AGAIN:
            raise _Transient(f"could not resolve {url.host}") from None
        raise _Refused(f"unknown host {url.host}") from None
    except UnicodeError:
        raise _Refused("not a valid host name") from None
    if not policy.allow_private:
        allowed = [ipaddress.ip_network(n, strict=False) for n in policy.allowed_networks]
        for address in addresses:
            ip = ipaddress.ip_address(address)
            if _refused_address(ip) and not any(ip in network for network in allowed):
                lead = "redirects to" if redirected else f"{url.host} resolves to"
                raise _Refused(f"{lead} a private address ({ip}): {ALLOW_PRIVATE_HINT}")
    if not addresses:
        raise _Refused(f"unknown host {url.host}")
    return addresses


def _resolve(host: str, port: int) -> list[str]:
    """The addresses `host` resolves to, in the system's order of preference."""
    found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]).split("%")[0] for info in found))


_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))


def _refused_address(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Whether `ip` is not a public unicast address, looking inside IPv6 forms that carry
    an IPv4 address (mapped, 6to4, Teredo, NAT64)."""
    if isinstance(ip, ipaddress.IPv6Address):
        # An IPv4 address in IPv6 clothes (mapped; NAT64 on an IPv6-only network) is
        # reached as that IPv4 address: it alone decides.
        if ip.ipv4_mapped is not None:
            return _refused_address(ip.ipv4_mapped)
        if any(ip in network for network in _NAT64):
            return _refused_address(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
        tunnelled = [ip.sixtofour, *(ip.teredo or ())]
        if any(inner is not None and _refused_address(inner) for inner in tunnelled):
            return True
    return (
        not ip.is_global
        or ip.is_multicast
        or ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_reserved
        or ip.is_unspecified
    )


# --- waits and freshness -------------------------------------------------------------------


def _wait_s(state: RetryCallState, policy: FetchPolicy) -> float:
    exc = state.outcome.exception() if state.outcome is not None else None
    if isinstance(exc, _Transient) and exc.retry_after is not None:
        return min(exc.retry_after, policy.max_retry_after_s)
    return float(min(policy.backoff_s * 2 ** (state.attempt_number - 1), policy.max_retry_after_s))


def _retry_after_s(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - (now or datetime.now(UTC))).total_seconds(), 0.0)


def _fresh_until(headers: httpx.Headers) -> float:
    """Until when (epoch seconds) the server lets us use the body without asking: its
    Cache-Control max-age less the Age; 0 when it must be revalidated every time."""
    directives = [d.strip().lower() for d in headers.get("Cache-Control", "").split(",")]
    if "no-cache" in directives or "no-store" in directives:
        return 0.0
    for directive in directives:
        name, _, value = directive.partition("=")
        if name == "max-age" and value.strip().isdigit():
            age = headers.get("Age", "0").strip()
            return time.time() + int(value) - (int(age) if age.isdigit() else 0)
    return 0.0


# --- the disk cache ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Entry:
    key: str
    path: Path
    meta: dict[str, Any]

    @property
    def etag(self) -> str | None:
        return _text(self.meta.get("etag"))

    @property
    def last_modified(self) -> str | None:
        return _text(self.meta.get("last_modified"))

    @property
    def final_url_sha256(self) -> str | None:
        return _text(self.meta.get("final_url_sha256"))

    @property
    def fresh_until(self) -> float:
        value = self.meta.get("fresh_until")
        return float(value) if isinstance(value, int | float) else 0.0


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


class _Cache:
    """Bodies and their sidecars under one folder; every write is a rename into place."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _shard(self, key: str) -> Path:
        return self.root / key[:2]

    def load(self, key: str) -> _Entry | None:
        """The entry for `key` when its sidecar is readable and its body is whole."""
        try:
            meta = json.loads((self._shard(key) / f"{key}.json").read_text("utf-8"))
            name = str(meta["file"])
            path = self._shard(key) / name
            if Path(name).name != name or path.stat().st_size != meta["bytes"]:
                return None
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return _Entry(key, path, meta)

    def new_part(self, key: str) -> Path:
        """A new empty temporary file in `key`'s shard, for a body being downloaded."""
        shard = self._shard(key)
        shard.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=shard, prefix=f".{key[:16]}-", suffix=".part")
        os.close(fd)
        return Path(name)

    def commit(
        self, key: str, part: Path, suffix: str, meta: dict[str, Any], old: _Entry | None
    ) -> Path:
        """Move the checked body `part` into place and record `meta`; return its path."""
        path = self._shard(key) / f"{key}{suffix}"
        os.replace(part, path)
        self._write_sidecar(key, {"file": path.name, **meta, "fetched_at": _now_iso()})
        if old is not None and old.path != path:  # the image changed format
            old.path.unlink(missing_ok=True)
        return path

    def refresh(self, entry: _Entry, headers: httpx.Headers) -> Path:
        """Record a 304: the server's new validators and freshness; return the body."""
        meta = dict(entry.meta)
        meta["etag"] = headers.get("ETag") or entry.etag
        meta["last_modified"] = headers.get("Last-Modified") or entry.last_modified
        meta["fresh_until"] = _fresh_until(headers)
        if meta != entry.meta:  # else nothing to record: no write (a third of a 304's cost)
            self._write_sidecar(entry.key, meta)
        return entry.path

    def _write_sidecar(self, key: str, meta: dict[str, Any]) -> None:
        shard = self._shard(key)
        fd, name = tempfile.mkstemp(dir=shard, prefix=f".{key[:16]}-", suffix=".part")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(meta, out, indent=1, sort_keys=True)
            os.replace(name, shard / f"{key}.json")
        finally:
            Path(name).unlink(missing_ok=True)


# --- small helpers ---------------------------------------------------------------------------


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _host(url: str) -> str:
    try:
        return httpx.URL(url).host or "?"
    except (httpx.InvalidURL, TypeError):
        return "?"


def _log_report(report: FetchReport) -> None:
    hosts = Counter(_host(url) for url in [*report.paths, *report.problems])
    shown = ", ".join(host for host, _ in hosts.most_common(5))
    more = f" and {len(hosts) - 5} more" if len(hosts) > 5 else ""
    log.info("images by URL from %s%s: %s", shown or "no host", more, report.summary())
    for (host, problem), n in Counter(
        (_host(url), problem) for url, problem in report.problems.items()
    ).most_common():
        log.warning("%d image(s) from %s: %s", n, host, problem)
