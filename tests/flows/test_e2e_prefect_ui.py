"""End to end, as an operator and a marketer meet it: a real Prefect server, the `campaign`
deployment from prefect.yaml, a process worker, approval through the API, and the run and
its artifacts in the real UI in headless Chromium.

Screenshots land in test-artifacts/e2e/ (git-ignored; CI keeps them as build artifacts).
"""

from __future__ import annotations

import mailbox
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
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
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--run-all-compositor-stages-before-draw",
    "--virtual-time-budget=60000",
    "--hide-scrollbars",
    "--window-size=1440,1000",
]


@dataclass
class Stack:
    """A Prefect server and a worker, each a subprocess with its own log."""

    api: str
    ui: str
    env: dict[str, str]
    logs: Path


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
        client_env = {**env, "PREFECT_API_URL": api}
        worker = _start(
            [sys.executable, "-m", "prefect", "worker", "start", "--pool", "reelcast"],
            logs / "worker.log",
            {
                **client_env,
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
        yield Stack(api=api, ui=api.removesuffix("/api"), env=env, logs=logs)
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


def _browse(chromium: str, url: str, png: Path, profile: Path) -> str:
    """Load `url` in headless Chromium, save a screenshot, return the rendered DOM."""
    result = subprocess.run(
        [
            chromium,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={profile}",
            f"--screenshot={png}",
            "--dump-dom",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert png.is_file(), f"no screenshot of {url}: {result.stderr[-2000:]}"
    return result.stdout


def _assert_not_blank(png: Path) -> None:
    pixels = np.asarray(Image.open(png).convert("L"), dtype=np.float32)
    colours = len(Image.open(png).convert("RGB").getcolors(maxcolors=1 << 20) or [])
    assert pixels.std() > 15 and colours > 200, f"{png} looks blank ({pixels.std():.1f}, {colours})"


def test_campaign_from_deployment_to_ui(stack: Stack, tmp_path: Path) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter
    from prefect.deployments import run_deployment
    from prefect.flow_runs import resume_flow_run
    from prefect.settings import PREFECT_API_URL, temporary_settings

    shop = generate_retailer(tmp_path / "shop", n_products=40, n_customers=60, image_size=360)
    workspace = tmp_path / "workspace"
    params = {
        "campaign": "e2e",
        "catalog": str(shop.catalog),
        "customers": str(shop.customers),
        "events": str(shop.events),
        "limit": 2,
        "send_now": True,
        "workspace": str(workspace),
    }
    with temporary_settings({PREFECT_API_URL: stack.api}), get_client(sync_client=True) as client:
        run = run_deployment(
            "campaign/campaign",
            parameters={"params": params},
            timeout=0,
            idempotency_key="e2e-campaign",
        )
        again = run_deployment(
            "campaign/campaign",
            parameters={"params": params},
            timeout=0,
            idempotency_key="e2e-campaign",
        )
        assert again.id == run.id, "the idempotency key must not start a second run"

        _wait_for_state(client, run.id, lambda s: s.is_paused(), 150, stack.logs)
        assert not list(mailbox.Maildir(workspace / "mail", create=True)), "sent before approval"
        resume_flow_run(
            run.id, run_input={"approve": True, "approver": "e2e-tester", "note": "e2e"}
        )
        run = _wait_for_state(client, run.id, lambda s: s.is_final(), 120, stack.logs)
        assert run.state.is_completed(), run.state
        summary = client.read_artifacts(
            artifact_filter=ArtifactFilter(key={"any_": ["campaign-e2e-summary"]})
        )
        assert summary and summary[0].flow_run_id == run.id
        assert "customers considered" in str(summary[0].data)
    assert len(list(mailbox.Maildir(workspace / "mail"))) == 2
    from compliance.audit import AuditLog

    with AuditLog(workspace / "audit.sqlite") as audit:  # the name typed in the form
        assert [r.data["by"] for r in audit.records() if r.kind == "approval"] == ["e2e-tester"]

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.fail("no chromium: install it (`sh scripts/ensure-chromium.sh`, or apt-get)")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    pages = {
        # The default (v1) UI, as a marketer opens the run.
        "flow-run": (f"{stack.ui}/runs/flow-run/{run.id}", ["Completed", run.name]),
        # The v2 UI opens a run's tab from the URL (v1 ignores ?tab=).
        "flow-run-artifacts": (
            f"{stack.ui}/v2/runs/flow-run/{run.id}?tab=Artifacts",
            ["campaign-e2e-summary", "campaign-e2e-picks"],
        ),
        "summary-artifact": (
            f"{stack.ui}/artifacts/artifact/{summary[0].id}",
            ["customers considered", "videos rendered"],
        ),
    }
    with ThreadPoolExecutor(len(pages)) as pool:
        doms = dict(
            zip(
                pages,
                pool.map(
                    lambda name: _browse(
                        chromium, pages[name][0], SCREENSHOTS / f"{name}.png", tmp_path / name
                    ),
                    pages,
                ),
                strict=True,
            )
        )
    for name, (url, expected) in pages.items():
        assert "Can't connect to Server API" not in doms[name], url
        for text in expected:
            assert text in doms[name], f"{text!r} not on {url}"
        _assert_not_blank(SCREENSHOTS / f"{name}.png")
