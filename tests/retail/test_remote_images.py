"""Images by URL: real HTTP on loopback (tests/retail/image_server.py), a real disk cache."""

from __future__ import annotations

import ipaddress
import logging
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from PIL import Image

from retail import remote_images
from retail.remote_images import (
    USER_AGENT,
    FetchPolicy,
    _refused_address,
    _retry_after_s,
    fetch_images,
)
from tests.retail.image_server import ImageServer

#: loopback is private: tests allow it by name, everything else stays refused
LOOPBACK = FetchPolicy(
    allowed_networks=("127.0.0.0/8",), timeout_s=2.0, backoff_s=0.01, max_retry_after_s=2.0
)


@pytest.fixture
def server() -> Iterator[ImageServer]:
    with ImageServer(n_images=8) as running:
        yield running


def files_in(cache: Path) -> list[Path]:
    return sorted(p for p in cache.rglob("*") if p.is_file()) if cache.exists() else []


def fetch_one(url: str, cache: Path, policy: FetchPolicy = LOOPBACK) -> Path | str:
    report = fetch_images([url], cache, policy)
    assert len(report.paths) + len(report.problems) == 1
    return report.paths.get(url) or report.problems[url]


# --- what a good image gives ------------------------------------------------------------


def test_images_are_downloaded_checked_and_named_for_their_format(
    server: ImageServer, tmp_path: Path
) -> None:
    urls = [server.url(f"/images/{i}.{ext}") for i, ext in enumerate(["jpg", "png", "webp", "gif"])]
    ticks: list[int] = []

    report = fetch_images(urls, tmp_path / "cache", LOOPBACK, progress=ticks.append)

    assert report.problems == {}
    assert list(report.paths) == urls
    formats = zip(urls, ["jpg", "png", "webp", "gif"], ["JPEG", "PNG", "WEBP", "GIF"], strict=True)
    for url, ext, pil in formats:
        path = report.paths[url]
        assert path.is_absolute() and path.suffix == f".{ext}"
        assert path.is_relative_to(tmp_path / "cache")
        with Image.open(path) as image:
            assert image.format == pil and image.size == (64, 64)
        assert path.with_suffix(".json").is_file()
    assert report.downloaded == 4 and report.revalidated == 0 and report.cached_fresh == 0
    sizes = [len(server.image_bytes(i, ext)) for i, ext in enumerate(["jpg", "png", "webp", "gif"])]
    assert report.bytes_downloaded == sum(sizes)
    assert ticks == [1, 1, 1, 1]
    assert server.last_headers["/images/0.jpg"]["User-Agent"] == USER_AGENT
    assert not [p for p in files_in(tmp_path / "cache") if p.name.endswith(".part")]


def test_a_url_given_several_times_is_fetched_once(server: ImageServer, tmp_path: Path) -> None:
    url = server.url("/images/3.jpg")
    ticks: list[int] = []

    report = fetch_images([url, url, server.url("/images/4.jpg"), url], tmp_path, LOOPBACK,
                          progress=ticks.append)  # fmt: skip

    assert server.requests["/images/3.jpg"] == 1
    assert report.downloaded == 2 and len(report.paths) == 2
    assert sorted(ticks) == [1, 3]


def test_a_redirect_is_followed_and_the_host_header_names_the_host(
    server: ImageServer, tmp_path: Path
) -> None:
    url = server.url("/redirect/r1?to=/images/5.png&status=301")
    by_name = server.url("/images/6.jpg").replace("127.0.0.1", "localhost")

    report = fetch_images([url, by_name], tmp_path, replace(LOOPBACK, allow_private=True))

    assert report.problems == {}
    with Image.open(report.paths[url]) as image:
        assert image.format == "PNG"
    assert server.requests["/redirect/r1"] == 1 and server.requests["/images/5.png"] == 1
    # plain http goes to the checked address, with the name in the Host header
    assert server.last_headers["/images/6.jpg"]["Host"] == by_name.split("/")[2]


# --- what a bad URL or server gives: a problem, no exception, nothing half-written ----------


def test_http_errors_and_non_images_are_problems(server: ImageServer, tmp_path: Path) -> None:
    cases = {
        "/status/404/a": "HTTP 404",
        "/status/403/a": "HTTP 403",
        "/html/a": "not an image (text/html)",
        "/fake-jpeg/a": "not a readable image (JPEG, PNG, WebP or GIF)",
        "/bmp/a": "a BMP image; only JPEG, PNG, WebP and GIF are used",
        "/loop/a": "more than 5 redirects",
    }
    urls = {server.url(path): want for path, want in cases.items()}

    report = fetch_images(urls, tmp_path / "cache", LOOPBACK)

    assert report.problems == urls
    assert report.paths == {} and report.downloaded == 0
    assert server.requests["/status/404/a"] == 1  # a 404 is not tried again
    assert server.requests["/loop/a"] == 6
    assert files_in(tmp_path / "cache") == []


def test_a_decompression_bomb_is_refused_from_its_header(
    server: ImageServer, tmp_path: Path
) -> None:
    problem = fetch_one(server.url("/bomb/b.png"), tmp_path / "cache")

    assert problem == "the image would decode to too many pixels (a decompression bomb?)"
    assert files_in(tmp_path / "cache") == []


def test_too_many_pixels_by_policy_is_refused(server: ImageServer, tmp_path: Path) -> None:
    problem = fetch_one(server.url("/images/0.png"), tmp_path, replace(LOOPBACK, max_pixels=1000))

    assert problem == "64×64 pixels is over the 0-megapixel limit: scale it down"


@pytest.mark.parametrize("with_length", [True, False], ids=["content-length", "streamed"])
def test_an_oversize_body_is_cut_off_at_the_cap_and_not_kept(
    server: ImageServer, tmp_path: Path, with_length: bool
) -> None:
    total = 64_000_000
    path = f"/oversize/o-{with_length}"
    url = server.url(f"{path}?bytes={total}&length={int(with_length)}")

    problem = fetch_one(url, tmp_path / "cache", replace(LOOPBACK, max_bytes=1_000_000))

    assert problem == "over the 1 MB limit"
    # the server stops at the hang-up: what the socket buffers held, far from the 64 MB
    time.sleep(0.2)
    assert server.bytes_sent[path] < total // 2
    assert files_in(tmp_path / "cache") == []


def test_a_connection_cut_mid_body_leaves_no_half_image(
    server: ImageServer, tmp_path: Path
) -> None:
    problem = fetch_one(
        server.url("/truncated/t"), tmp_path / "cache", replace(LOOPBACK, attempts=2)
    )

    assert problem == "the connection to 127.0.0.1 broke off after 2 tries"
    assert server.requests["/truncated/t"] == 2
    assert files_in(tmp_path / "cache") == []


# --- retries --------------------------------------------------------------------------------


def test_a_429_waits_for_retry_after_then_succeeds(server: ImageServer, tmp_path: Path) -> None:
    url = server.url("/flaky/r?fails=1&status=429&retry_after=1")

    started = time.monotonic()
    result = fetch_one(url, tmp_path)
    waited = time.monotonic() - started

    assert isinstance(result, Path) and result.is_file()
    assert server.statuses["/flaky/r", 429] == 1 and server.statuses["/flaky/r", 200] == 1
    assert 0.9 <= waited < 1.9  # the server's second, not the 0.01 s backoff


def test_a_long_retry_after_is_capped(server: ImageServer, tmp_path: Path) -> None:
    url = server.url("/flaky/c?fails=1&status=503&retry_after=3600")

    started = time.monotonic()
    result = fetch_one(url, tmp_path, replace(LOOPBACK, max_retry_after_s=0.1))

    assert isinstance(result, Path)
    assert time.monotonic() - started < 1.0
    assert server.requests["/flaky/c"] == 2


def test_500_twice_then_ok_succeeds_on_the_third_try(server: ImageServer, tmp_path: Path) -> None:
    result = fetch_one(server.url("/flaky/f?fails=2&status=500"), tmp_path)

    assert isinstance(result, Path)
    assert server.statuses["/flaky/f", 500] == 2 and server.statuses["/flaky/f", 200] == 1


def test_always_500_is_a_problem_after_the_attempts(server: ImageServer, tmp_path: Path) -> None:
    problem = fetch_one(server.url("/status/500/x"), tmp_path, replace(LOOPBACK, attempts=4))

    assert problem == "HTTP 500 after 4 tries"
    assert server.requests["/status/500/x"] == 4


def test_a_slow_server_times_out(server: ImageServer, tmp_path: Path) -> None:
    started = time.monotonic()
    problem = fetch_one(
        server.url("/slow/s?delay=3"), tmp_path, replace(LOOPBACK, timeout_s=0.3, attempts=2)
    )

    assert problem == "timed out after 2 tries"
    assert server.requests["/slow/s"] == 2
    assert time.monotonic() - started < 2.0


def test_nothing_listening_is_a_connection_problem(tmp_path: Path) -> None:
    with ImageServer() as gone:
        url = gone.url("/images/0.jpg")
    problem = fetch_one(url, tmp_path, replace(LOOPBACK, attempts=2))

    assert problem == "could not connect to 127.0.0.1 after 2 tries"


@pytest.mark.parametrize("own_client", [True, False], ids=["own-client", "shared-client"])
def test_concurrency_is_bounded(server: ImageServer, tmp_path: Path, own_client: bool) -> None:
    urls = [server.url(f"/slow/c{i}?delay=0.15") for i in range(12)]
    # a caller's client may allow more connections: the bound must hold all the same
    with httpx.Client(limits=httpx.Limits(max_connections=100)) as shared:
        client = None if own_client else shared
        report = fetch_images(urls, tmp_path, replace(LOOPBACK, concurrency=3), client=client)

    assert report.downloaded == 12
    assert server.max_in_flight == 3


# --- where a URL may lead -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("file:///etc/passwd", "a file:// URL; only http and https images are fetched"),
        ("ftp://127.0.0.1/a.jpg", "a ftp:// URL; only http and https images are fetched"),
        ("images/a.jpg", "a URL without a scheme; only http and https images are fetched"),
        ("http:///a.jpg", "a URL without a host; only http and https images are fetched"),
        ("http://[::1/a.jpg", "not a valid URL"),
    ],
)
def test_other_schemes_are_refused_without_a_request(
    server: ImageServer, tmp_path: Path, url: str, problem: str
) -> None:
    assert fetch_one(url, tmp_path) == problem
    assert server.total_requests == 0


@pytest.mark.parametrize(
    "target",
    ["http://169.254.169.254/latest/meta-data/", "http://10.0.0.1/a.jpg", "http://[::1]/a.jpg",
     "http://0.0.0.0/", "http://[fd00::1]/a.jpg", "http://192.168.1.1/"],
)  # fmt: skip
def test_a_redirect_to_a_private_address_is_refused(
    server: ImageServer, tmp_path: Path, target: str
) -> None:
    url = server.url(f"/redirect/p?to={target}")

    problem = fetch_one(url, tmp_path)

    assert isinstance(problem, str)
    assert problem.startswith("redirects to a private address (")
    assert problem.endswith("): set REELCAST_IMAGE_FETCH_ALLOW_PRIVATE=true to allow it")
    assert server.requests["/redirect/p"] == 1  # one try: a refusal is not retried


def test_a_redirect_to_another_scheme_is_refused(server: ImageServer, tmp_path: Path) -> None:
    problem = fetch_one(server.url("/redirect/f?to=file:///etc/passwd"), tmp_path)

    assert problem == "redirects to a file:// URL; only http and https images are fetched"


def test_plain_http_goes_to_the_address_that_was_checked(
    server: ImageServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Only our resolver knows this name: had httpx resolved it again (the DNS-rebinding
    # window), the connection would fail.
    port = server.base_url.rsplit(":", 1)[1]
    monkeypatch.setattr(remote_images, "_resolve", lambda host, port: ["127.0.0.1"])
    url = f"http://images.shop.test:{port}/images/2.jpg"

    result = fetch_one(url, tmp_path)

    assert isinstance(result, Path)
    assert server.last_headers["/images/2.jpg"]["Host"] == f"images.shop.test:{port}"


def test_every_address_of_a_name_is_checked(
    server: ImageServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = server.base_url.rsplit(":", 1)[1]
    monkeypatch.setattr(remote_images, "_resolve", lambda host, port: ["127.0.0.1", "10.0.0.7"])

    problem = fetch_one(f"http://cdn.shop.test:{port}/images/2.jpg", tmp_path)

    assert problem == (
        "cdn.shop.test resolves to a private address (10.0.0.7): "
        "set REELCAST_IMAGE_FETCH_ALLOW_PRIVATE=true to allow it"
    )
    assert server.total_requests == 0


def test_private_addresses_are_refused_by_default_without_a_request(
    server: ImageServer, tmp_path: Path
) -> None:
    urls = [
        server.url("/images/0.jpg"),
        server.url("/images/1.jpg").replace("127.0.0.1", "localhost"),
    ]

    report = fetch_images(urls, tmp_path, FetchPolicy())

    assert report.problems[urls[0]] == (
        "127.0.0.1 resolves to a private address (127.0.0.1): "
        "set REELCAST_IMAGE_FETCH_ALLOW_PRIVATE=true to allow it"
    )
    assert report.problems[urls[1]].startswith("localhost resolves to a private address")
    assert server.total_requests == 0


@pytest.mark.parametrize(
    "address",
    ["127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1",
     "0.0.0.0", "224.0.0.1", "239.255.255.250", "255.255.255.255", "192.0.2.1", "::1", "::",
     "fe80::1", "fc00::1", "ff02::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1", "64:ff9b::a00:1",
     "2002:a9fe:a9fe::1"],
)  # fmt: skip
def test_non_public_addresses_are_refused(address: str) -> None:
    assert _refused_address(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    "address", ["8.8.8.8", "151.101.1.69", "2606:4700::1111", "64:ff9b::808:808", "::ffff:8.8.8.8"]
)
def test_public_addresses_are_allowed(address: str) -> None:
    assert not _refused_address(ipaddress.ip_address(address))


def test_the_query_string_stays_out_of_problems_and_logs(
    server: ImageServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "tok3n-s3cret"
    urls = [server.url(f"/status/404/q?sig={secret}"), server.url(f"/status/500/q?sig={secret}")]

    with caplog.at_level(logging.INFO, logger="retail.remote_images"):
        report = fetch_images(urls, tmp_path, replace(LOOPBACK, attempts=1))

    assert set(report.problems.values()) == {"HTTP 404", "HTTP 500 after 1 try"}
    assert secret not in caplog.text
    assert "127.0.0.1" in caplog.text and "2 problem(s)" in caplog.text
    assert not any(secret in p.read_text() for p in files_in(tmp_path))


# --- the cache across runs -----------------------------------------------------------------


def test_a_second_run_revalidates_without_downloading(server: ImageServer, tmp_path: Path) -> None:
    urls = server.image_urls(6)
    first = fetch_images(urls, tmp_path, LOOPBACK)
    server.reset()

    second = fetch_images(urls, tmp_path, LOOPBACK)

    assert second.paths == first.paths
    assert (second.downloaded, second.revalidated, second.cached_fresh) == (0, 6, 0)
    assert second.bytes_downloaded == 0
    assert server.ok == 0 and server.not_modified == 6
    assert server.last_headers["/images/2.jpg"]["If-None-Match"] == '"img-2-jpg"'
    assert (
        server.last_headers["/images/2.jpg"]["If-Modified-Since"] == "Wed, 01 Jan 2025 00:00:00 GMT"
    )


def test_a_fresh_copy_is_used_without_asking(tmp_path: Path) -> None:
    with ImageServer(n_images=3, max_age=600) as server:
        urls = server.image_urls()
        fetch_images(urls, tmp_path, LOOPBACK)
        server.reset()

        again = fetch_images(urls, tmp_path, LOOPBACK)

    assert (again.downloaded, again.revalidated, again.cached_fresh) == (0, 0, 3)
    assert server.total_requests == 0


def test_a_changed_image_is_downloaded_once(server: ImageServer, tmp_path: Path) -> None:
    url = server.url("/changing/c.jpg")
    first = fetch_images([url], tmp_path, LOOPBACK)
    before = first.paths[url].read_bytes()
    server.change()

    second = fetch_images([url], tmp_path, LOOPBACK)
    third = fetch_images([url], tmp_path, LOOPBACK)

    assert (second.downloaded, second.revalidated) == (1, 0)
    assert (third.downloaded, third.revalidated) == (0, 1)
    assert second.paths[url] == first.paths[url]
    assert second.paths[url].read_bytes() == server.image_bytes(1, "jpg", generation=1) != before
    assert server.statuses["/changing/c.jpg", 200] == 2
    assert server.statuses["/changing/c.jpg", 304] == 1


def test_a_damaged_cache_entry_is_downloaded_again_unconditionally(
    server: ImageServer, tmp_path: Path
) -> None:
    url = server.url("/images/1.jpg")
    path = fetch_images([url], tmp_path, LOOPBACK).paths[url]
    path.write_bytes(path.read_bytes()[:100])  # a size the sidecar does not record

    again = fetch_images([url], tmp_path, LOOPBACK)

    assert again.downloaded == 1
    assert "If-None-Match" not in server.last_headers["/images/1.jpg"]
    assert path.read_bytes() == server.image_bytes(1)


def test_an_unwritable_cache_is_a_problem_not_an_exception(
    server: ImageServer, tmp_path: Path
) -> None:
    blocker = tmp_path / "cache"
    blocker.write_text("a file where the cache folder should be")

    problem = fetch_one(server.url("/images/0.jpg"), blocker)

    assert isinstance(problem, str) and problem.startswith("cannot write to the image cache")


def test_a_shared_client_is_used_and_left_open(server: ImageServer, tmp_path: Path) -> None:
    with httpx.Client() as client:
        report = fetch_images(server.image_urls(2), tmp_path, LOOPBACK, client=client)
        assert not client.is_closed
    assert report.downloaded == 2
    assert server.last_headers["/images/0.jpg"]["User-Agent"] == USER_AGENT


# --- pure parts ----------------------------------------------------------------------------


def test_retry_after_in_seconds_or_as_a_date() -> None:
    now = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert _retry_after_s("7") == 7.0
    assert _retry_after_s("Wed, 01 Jan 2025 12:00:30 GMT", now) == 30.0
    assert _retry_after_s("Wed, 01 Jan 2025 11:00:00 GMT", now) == 0.0
    assert _retry_after_s("soon") is None
    assert _retry_after_s(None) is None


def test_policy_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="concurrency"):
        FetchPolicy(concurrency=0)
    with pytest.raises(ValueError, match="not a network"):
        FetchPolicy(allowed_networks=("intranet",))
