"""`reelcast vendor-sim` (flows/vendor_cli.py): a real server on loopback with its knobs."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import typer
from typer.testing import CliRunner

from cli.vendor import vendor_sim

RUN = "import typer; from cli.vendor import vendor_sim; typer.run(vendor_sim)"


def test_vendor_sim_help_lists_the_knobs() -> None:
    app = typer.Typer()
    app.command()(vendor_sim)

    result = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "200"})

    assert result.exit_code == 0
    for option in ("--port", "--rate-limit", "--fail-after-create", "--webhook-drop-rate"):
        assert option in result.output


def test_vendor_sim_serves_the_protocol_on_loopback(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = os.environ | {"REELCAST_WORKSPACE": str(tmp_path)}
    command = [
        sys.executable,
        "-c",
        RUN,
        "--port",
        str(port),
        "--api-key",
        "k",
        "--rate-limit",
        "2",
    ]
    server = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                answer = httpx.get(f"{base}/v2/renders/nope", timeout=1)
                break
            except httpx.TransportError:
                assert server.poll() is None, server.stdout.read().decode()  # type: ignore[union-attr]
                assert time.monotonic() < deadline, "the simulator did not start"
                time.sleep(0.1)
        auth = {"Authorization": "Bearer k"}
        second = httpx.get(f"{base}/v2/renders/nope", headers=auth)
        third = httpx.get(f"{base}/v2/renders/nope", headers=auth)
        fourth = httpx.get(f"{base}/v2/renders/nope", headers=auth)
    finally:
        server.terminate()
        server.wait(timeout=10)

    assert answer.status_code == 401
    assert [second.status_code, third.status_code, fourth.status_code] == [404, 404, 429]
    assert fourth.headers["retry-after"].isdigit()
    assert (tmp_path / "vendor-sim" / "uploads").is_dir()
