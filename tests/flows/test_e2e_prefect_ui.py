"""End to end, as an operator and a marketer meet it: a real Prefect server, the `campaign`
deployment from prefect.yaml, a process worker and the tracking app; in the real UI in
headless Chromium (driven by Playwright), the paused run, its preview posters, the gallery
it links to, and the approval form.

Screenshots land in test-artifacts/e2e/ (git-ignored; CI keeps them as build artifacts).
"""

from __future__ import annotations

import mailbox
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cli.local_stack import ensure_work_pool, stop_process_tree, wait_for_prefect
from retail.demo import generate_retailer

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "test-artifacts" / "e2e"
# Playwright starts Chromium headless itself; these keep it off this machine's closed network.
PLAYWRIGHT_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-quic",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
]


@dataclass
class Stack:
    """A Prefect server and a worker, each a subprocess with its own log."""

    api: str
    ui: str
    env: dict[str, str]
    logs: Path
    workspace: Path
    tracking: str


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _clean_env(home: Path) -> dict[str, str]:
    """Our environment without the developer's REELCAST_* and PREFECT_* settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REELCAST_", "PREFECT_"))}
    env.update(
        PREFECT_HOME=str(home),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        DO_NOT_TRACK="1",
        PREFECT_LOGGING_LEVEL="INFO",
    )
    return env


def _start(argv: list[str], log: Path, env: dict[str, str], cwd: Path) -> subprocess.Popen:
    with log.open("wb") as out:
        return subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd,
            start_new_session=True,
        )


def _stop(process: subprocess.Popen) -> None:
    """Stop a process, its group and every descendant (flow runs have sessions of their own)."""
    if process.poll() is None:
        stop_process_tree(process.pid)
    process.wait(timeout=10)


def _wait_for_http(url: str, process: subprocess.Popen, log: Path) -> None:
    import httpx

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, _tail(log)
        try:
            httpx.get(url, timeout=2)  # any answer (a 404 at /) means it is up
            return
        except httpx.TransportError:
            time.sleep(0.3)
    pytest.fail(f"{url} did not answer: {_tail(log)}")


def _tail(log: Path, lines: int = 40) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:]) if log.exists() else ""


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    """Prefect server on a free port, the `campaign` deployment, and a process worker."""
    if (REPO / ".env").exists():
        pytest.fail(
            f"{REPO / '.env'} would configure the flows this test runs (the worker runs them "
            "in the project folder, where Settings read .env): move it away to run this test"
        )
    port = _free_port()
    api = f"http://127.0.0.1:{port}/api"
    logs = tmp_path / "logs"
    logs.mkdir()
    env = _clean_env(tmp_path / "prefect-home")
    processes: list[subprocess.Popen] = []
    try:
        server = _start(
            [
                sys.executable,
                "-m",
                "prefect",
                "server",
                "start",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            logs / "server.log",
            {**env, "PREFECT_UI_API_URL": api},  # the UI asks port 4200 otherwise
            tmp_path,
        )
        processes.append(server)
        wait_for_prefect(api, server.pid, logs / "server.log", timeout_s=120)
        ensure_work_pool(api)
        # The tracking app serves the preview gallery the approval form links to.
        workspace = tmp_path / "workspace"
        tracking = f"http://127.0.0.1:{_free_port()}"
        reelcast_env = {
            "REELCAST_PUBLIC_BASE_URL": tracking,
            "REELCAST_PSEUDONYM_SECRET": "e2e-secret-0123456789abcdef0123456789",
        }
        tracker = _start(
            [
                sys.executable,
                "-m",
                "cli.main",
                "track",
                "serve",
                "--port",
                tracking.rsplit(":", 1)[1],
                "--workspace",
                str(workspace),
            ],
            logs / "tracking.log",
            {**env, **reelcast_env},
            tmp_path,
        )
        processes.append(tracker)
        _wait_for_http(tracking, tracker, logs / "tracking.log")
        client_env = {**env, "PREFECT_API_URL": api}
        worker = _start(
            [sys.executable, "-m", "prefect", "worker", "start", "--pool", "reelcast"],
            logs / "worker.log",
            {
                **client_env,
                **reelcast_env,
                "PREFECT_WORKER_WEBSERVER_HOST": "127.0.0.1",
                "PREFECT_WORKER_QUERY_SECONDS": "1",
                "REELCAST_HOME": str(REPO),  # read by the deployment's pull step
            },
            tmp_path,
        )
        processes.append(worker)
        deploy = subprocess.run(
            [sys.executable, "-m", "prefect", "--no-prompt", "deploy", "--name", "campaign"],
            cwd=REPO,
            env=client_env,
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert deploy.returncode == 0, deploy.stdout[-3000:] + deploy.stderr[-3000:]
        assert worker.poll() is None, _tail(logs / "worker.log")
        yield Stack(
            api=api,
            ui=api.removesuffix("/api"),
            env=env,
            logs=logs,
            workspace=workspace,
            tracking=tracking,
        )
    finally:
        for process in reversed(processes):
            _stop(process)


def _wait_for_state(client, run_id, done, timeout_s: float, logs: Path):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        run = client.read_flow_run(run_id)
        if done(run.state):
            return run
        if run.state.is_final():
            break
        time.sleep(1)
    pytest.fail(
        f"flow run {run_id} is {run.state.name}, expected otherwise; worker log:\n"
        + _tail(logs / "worker.log")
    )


def _assert_not_blank(png: Path) -> None:
    pixels = np.asarray(Image.open(png).convert("L"), dtype=np.float32)
    colours = len(Image.open(png).convert("RGB").getcolors(maxcolors=1 << 20) or [])
    assert pixels.std() > 15 and colours > 200, f"{png} looks blank ({pixels.std():.1f}, {colours})"


def _paused_with_form(client, run_id) -> bool:  # type: ignore[no-untyped-def]
    """Paused, and the form and its description saved (the pause sets the state first)."""
    run = client.read_flow_run(run_id)
    if run.state is None or not run.state.is_paused():
        return False
    keys = run.state.state_details.run_input_keyset or {}
    try:
        for name in ("schema", "description"):
            client.read_flow_run_input(run_id, keys[name])
    except Exception:  # not saved yet
        return False
    return True


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.fail("no chromium: install it (`sh scripts/ensure-chromium.sh`, or apt-get)")
    return found


def test_a_marketer_approves_a_campaign_in_the_prefect_ui(stack: Stack, tmp_path: Path) -> None:
    """Start the deployment through the API; in the UI, open the paused run, look at the
    posters in its preview artifact, follow the gallery link to the tracking app (a video
    plays, a poster loads), approve in the UI's form, and see the run complete."""
    from playwright.sync_api import expect, sync_playwright
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    shop = generate_retailer(tmp_path / "shop", n_products=40, n_customers=60, image_size=360)
    params = {
        "campaign": "e2e",
        "catalog": str(shop.catalog),
        "customers": str(shop.customers),
        "events": str(shop.events),
        "limit": 2,
        "send_now": True,
        "workspace": str(stack.workspace),
    }
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with temporary_settings({PREFECT_API_URL: stack.api}), get_client(sync_client=True) as client:
        run = run_deployment(
            "campaign/campaign", parameters={"params": params}, timeout=0, idempotency_key="e2e"
        )
        again = run_deployment(
            "campaign/campaign", parameters={"params": params}, timeout=0, idempotency_key="e2e"
        )
        assert again.id == run.id, "the idempotency key must not start a second run"
        deadline = time.monotonic() + 150
        while not _paused_with_form(client, run.id):
            state = client.read_flow_run(run.id).state
            if time.monotonic() > deadline or (state is not None and state.is_final()):
                pytest.fail(
                    f"run is {state}, not paused; worker log:\n{_tail(stack.logs / 'worker.log')}"
                )
            time.sleep(1)
        mail = stack.workspace / "mail"
        assert not list(mailbox.Maildir(mail, create=True)), "sent before approval"

        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=_chromium(), args=PLAYWRIGHT_FLAGS)
            try:
                page = browser.new_page(viewport={"width": 1440, "height": 1000})
                page.set_default_timeout(30_000)
                expect.set_options(timeout=30_000)
                _approve_in_the_ui(page, stack, str(run.id), expect)
            finally:
                browser.close()

        run = _wait_for_state(client, run.id, lambda s: s.is_final(), 120, stack.logs)
        assert run.state.is_completed(), run.state
        summary = client.read_artifacts(
            artifact_filter=ArtifactFilter(key={"any_": ["campaign-e2e-summary"]})
        )
        assert summary and summary[0].flow_run_id == run.id
        assert "customers considered" in str(summary[0].data)
    assert len(list(mailbox.Maildir(mail))) == 2
    from compliance.audit import AuditLog

    with AuditLog(stack.workspace / "audit.sqlite") as audit:  # what was typed in the form
        approvals = [r.data for r in audit.records() if r.kind == "approval"]
    assert approvals == [{"approved": True, "note": "looked at the videos", "by": "e2e-tester"}]
    for name in ("approval-paused-run", "preview-artifact", "gallery", "approval-form"):
        _assert_not_blank(SCREENSHOTS / f"{name}.png")


def _approve_in_the_ui(page, stack: Stack, run_id: str, expect) -> None:  # type: ignore[no-untyped-def]
    run_page = f"{stack.ui}/runs/flow-run/{run_id}"
    page.goto(run_page)
    expect(page.locator(".state-badge", has_text="Paused").first).to_be_visible()
    assert "Can't connect to Server API" not in page.content()
    # The tabs are <li class="p-tab"> (no role); the v1 UI opens on Logs after a back.
    artifacts_tab = page.locator("li.p-tab", has_text=re.compile(r"^\s*Artifacts\s*$"))
    # The badge shows before the rest of the run's page: on a busy machine a screenshot
    # taken then was mostly the empty dark frame.
    expect(artifacts_tab).to_be_visible()
    page.wait_for_timeout(1_000)
    page.screenshot(path=str(SCREENSHOTS / "approval-paused-run.png"))

    def card(key: str):  # type: ignore[no-untyped-def]
        return page.locator(
            "a[href^='/artifacts/artifact/']",
            has=page.locator(".artifact-card__title", has_text=re.compile(rf"^\s*{key}\s*$")),
        )

    # The preview artifact shows posters inline: images from the tracking app, loaded.
    artifacts_tab.click()
    card("campaign-e2e-preview").click()
    page.wait_for_url("**/artifacts/artifact/*")
    posters = page.locator(".artifact-data-view img.markdown-renderer__image")
    expect(posters).to_have_count(2)
    for n in range(2):
        src = posters.nth(n).get_attribute("src") or ""
        assert src.startswith(f"{stack.tracking}/r/") and src.endswith("/poster.jpg"), src
        page.wait_for_function(
            "img => img.complete && img.naturalWidth > 0", arg=posters.nth(n).element_handle()
        )
    page.screenshot(path=str(SCREENSHOTS / "preview-artifact.png"), full_page=True)

    # The gallery link artifact, followed as a marketer would (it opens a new tab).
    page.go_back()
    artifacts_tab.click()
    card("campaign-e2e-gallery").click()
    page.wait_for_url("**/artifacts/artifact/*")
    link = page.locator(".artifact-data-view a.markdown-renderer__link")
    expect(link).to_have_text("Preview gallery")
    with page.context.expect_page() as opened:
        link.click()
    gallery = opened.value
    gallery.wait_for_load_state()
    assert gallery.url.startswith(f"{stack.tracking}/g/e2e?exp="), gallery.url
    expect(
        gallery.get_by_role("heading", name=re.compile("preview before sending"))
    ).to_be_visible()
    videos = gallery.locator("video")
    expect(videos).to_have_count(2)
    first = videos.first
    played = gallery.evaluate(
        """async (v) => {
            v.muted = true;
            await v.play();
            const start = performance.now();
            while (v.currentTime < 0.5 && performance.now() - start < 20000) {
                await new Promise(r => setTimeout(r, 100));
            }
            const poster = new Image();
            poster.src = v.poster;
            await poster.decode();
            return {time: v.currentTime, width: v.videoWidth, poster: poster.naturalWidth};
        }""",
        first.element_handle(),
    )
    assert played["time"] >= 0.5, f"the video did not play: {played}"
    assert played["width"] > 0 and played["poster"] > 0, played
    gallery.evaluate("v => v.pause()", first.element_handle())
    text = gallery.locator("body").inner_text()
    assert "cu_" in text and "Subject lines" in text and "Excluded customers" in text
    gallery.screenshot(path=str(SCREENSHOTS / "gallery.png"), full_page=True)
    gallery.close()

    # Approve in the UI's own form (Resume on the paused run).
    page.goto(run_page)
    page.get_by_role("button", name="Resume", exact=True).click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_role("heading", name=re.compile("Approve campaign"))).to_be_visible()
    expect(dialog.locator("a", has_text="Open the preview gallery")).to_have_attribute(
        "href", re.compile(rf"^{re.escape(stack.tracking)}/g/e2e\?exp=")
    )

    def field(label: str):  # type: ignore[no-untyped-def]
        return dialog.locator(".schema-form-property").filter(
            has=page.locator(
                ".schema-form-property__label",
                has_text=re.compile(rf"^\s*{re.escape(label)}\s*$"),
            )
        )

    toggle = field("Approve (Optional)").get_by_role("switch")
    expect(toggle).to_have_attribute("aria-checked", "false")
    toggle.click()
    expect(toggle).to_have_attribute("aria-checked", "true")
    field("Approver").locator("textarea").fill("e2e-tester")
    field("Note (Optional)").locator("textarea").fill("looked at the videos")
    page.screenshot(path=str(SCREENSHOTS / "approval-form.png"))
    with page.expect_response(
        lambda r: r.request.method == "POST" and r.url.endswith(f"/flow_runs/{run_id}/resume")
    ) as answer:
        dialog.get_by_role("button", name="Submit", exact=True).click()
    assert answer.value.ok and answer.value.json().get("status") == "ACCEPT"
    expect(page.locator(".state-badge", has_text="Completed").first).to_be_visible(timeout=90_000)
    page.screenshot(path=str(SCREENSHOTS / "approved-run-completed.png"))
