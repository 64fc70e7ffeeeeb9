"""The loop closes over real HTTP: an unsubscribe through the tracking app stops later mail."""

from __future__ import annotations

import mailbox
import os
import re
import socket
import subprocess
import sys
import time
from email import message_from_bytes, policy

import httpx
import pytest

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_one_click_unsubscribe_and_open_feed_the_next_campaign(
    prefect_api, small_retailer, campaign_params, tmp_path
) -> None:
    from flows.campaign import campaign_flow

    first = campaign_flow(campaign_params(tmp_path, campaign="first", limit=2))
    assert first.sent == 2
    raw = [bytes(m) for m in mailbox.Maildir(tmp_path / "mail", create=False)]
    email = message_from_bytes(raw[0], policy=policy.default)
    unsubscribe = re.search(r"<(http[^>]+/u/[^>]+)>", email["List-Unsubscribe"]).group(1)
    html = email.get_body(("html",)).get_content()

    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("REELCAST_")}
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cli.main",
            "track",
            "serve",
            "--port",
            str(port),
            "--workspace",
            str(tmp_path),
            "--catalog",
            str(small_retailer.catalog),
            "--too-soon",  # this test clicks seconds after the send, as scanners do
            "0",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                httpx.get(base + "/", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.2)
        local = unsubscribe.replace("http://127.0.0.1:8010", base)
        # A person's mail client; python-httpx is an HTTP library, counted as a machine.
        browser = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/126.0"}
        pixel = re.search(r'src="(http[^"]+/o/[^"]+\.gif)"', html)
        assert pixel, "the email carries an open pixel"
        opened = httpx.get(pixel.group(1).replace("http://127.0.0.1:8010", base), headers=browser)
        assert opened.status_code == 200
        click = re.search(r'href="(http[^"]+/c/[^"]+)"', html)
        assert click, "product links go through the click redirect"
        link = click.group(1).replace("http://127.0.0.1:8010", base).replace("&amp;", "&")
        hop = httpx.get(link, follow_redirects=False, headers=browser)
        assert hop.status_code == 302 and hop.headers["location"].startswith("https://shop.")
        answer = httpx.post(local, data={"List-Unsubscribe": "One-Click"}, follow_redirects=False)
        assert answer.status_code == 200
    finally:
        server.terminate()
        log = server.communicate(timeout=10)[0].decode()
    assert "@" not in log, "the tracking app logs no addresses"

    # The unsubscribed customer is out of every later campaign, by suppression.
    second = campaign_flow(campaign_params(tmp_path, campaign="second", limit=2))
    assert second.excluded.get("suppressed", 0) >= first.excluded.get("suppressed", 0) + 1
    recipients = [
        message_from_bytes(m, policy=policy.default)["To"]
        for m in (bytes(x) for x in mailbox.Maildir(tmp_path / "mail", create=False))
    ]
    assert recipients.count(email["To"]) == 1
    from delivery.events_store import TrackingEvents

    with TrackingEvents(tmp_path / "tracking.sqlite") as tracking:
        counts = tracking.counts()
    assert counts["open"] >= 1 and counts["click"] >= 1 and counts["unsubscribe"] == 1
