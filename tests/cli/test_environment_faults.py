"""A workspace that cannot be written, no ffmpeg: one `error:` line naming the cause and
what to do, exit code 2, before Prefect starts, and nothing queued or sent."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _reelcast(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("REELCAST_")}
    base["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), base.get("PYTHONPATH")) if p)
    base["COLUMNS"] = "200"
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args],
        capture_output=True,
        text=True,
        env=base | env,
        cwd=cwd,
        timeout=120,
        check=False,
    )


def _campaign(retailer, workspace: Path) -> list[str]:
    return [
        "campaign", "run", "--catalog", str(retailer.catalog),
        "--customers", str(retailer.customers), "--events", str(retailer.events),
        "--workspace", str(workspace), "--auto-approve", "--send-now", "--limit", "2",
    ]  # fmt: skip


def _one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    assert "Starting Prefect" not in result.stdout
    return errors[0]


@pytest.mark.parametrize("command", ["campaign", "demo"])
def test_a_workspace_that_cannot_be_written_is_one_error_naming_the_folder(
    small_retailer, tmp_path: Path, command: str
) -> None:
    # Root ignores permission bits, so make it impossible for everyone: a file in the way.
    blocked = tmp_path / "ws"
    blocked.write_text("not a folder\n")
    args = _campaign(small_retailer, blocked) if command == "campaign" else [
        "demo", "--limit", "2", "--workspace", str(blocked),
    ]  # fmt: skip
    line = _one_error_line(_reelcast(*args, cwd=tmp_path, env={}))
    assert f"workspace folder {blocked} cannot be written" in line
    assert "--workspace" in line and "REELCAST_WORKSPACE" in line
    assert blocked.read_text() == "not a folder\n"  # nothing queued, nothing written


def test_a_workspace_under_a_read_only_place_is_one_error(small_retailer, tmp_path: Path) -> None:
    target = Path("/proc/self/reelcast-ws")  # read-only for root too
    line = _one_error_line(_reelcast(*_campaign(small_retailer, target), cwd=tmp_path, env={}))
    assert f"workspace folder {target} cannot be written" in line


@pytest.mark.parametrize("command", ["campaign", "demo"])
def test_no_ffmpeg_fails_fast_saying_how_to_install_it(
    small_retailer, tmp_path: Path, command: str
) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    env = {"PATH": str(empty), "IMAGEIO_FFMPEG_EXE": str(tmp_path / "nowhere" / "ffmpeg")}
    workspace = tmp_path / "ws"
    args = _campaign(small_retailer, workspace) if command == "campaign" else [
        "demo", "--limit", "2", "--workspace", str(workspace),
    ]  # fmt: skip
    line = _one_error_line(_reelcast(*args, cwd=tmp_path, env=env))
    assert "ffmpeg not found" in line and "apt-get install ffmpeg" in line
    assert not (workspace / "state.sqlite").exists() and not (workspace / "mail").exists()
    assert not (workspace / "demo-data").exists()  # the demo did not even generate its shop
