"""A campaign process SIGKILLed at seeded random moments, three times, then resumed.

`reelcast campaign run` runs in a child process (against the test Prefect server) and is
killed with SIGKILL — no cleanup, like a lost machine — once at a random time, once after
a random number of videos were rendered, once as soon as the first email reached the
mailbox (mid-send). A fourth run goes to the end. An uninterrupted run of the same
campaign in a second workspace, with the same pseudonym key, is the reference: the same
recipients in the Maildir, each exactly once (counted by Message-ID), the same outbox
states, and an audit chain that verifies.
"""

from __future__ import annotations

import mailbox
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from email.parser import BytesHeaderParser
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

CUSTOMERS = 6
SEED = 20240612
SECRET = "kill-test-pseudonym-secret-0123456789"


def _env(prefect_api: dict[str, str], home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REELCAST_", "PREFECT_"))}
    repo = str(Path(__file__).resolve().parents[2])
    env.update(
        PYTHONPATH=os.pathsep.join(p for p in (repo, env.get("PYTHONPATH", "")) if p),
        PREFECT_API_URL=prefect_api["api_url"],
        PREFECT_HOME=str(home),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        DO_NOT_TRACK="1",
        REELCAST_PSEUDONYM_SECRET=SECRET,
        COLUMNS="200",
    )
    return env


def _command(retailer, workspace: Path) -> list[str]:
    return [
        sys.executable, "-m", "cli.main", "campaign", "run",
        "--catalog", str(retailer.catalog), "--customers", str(retailer.customers),
        "--events", str(retailer.events), "--campaign", "killed", "--limit", str(CUSTOMERS),
        "--workspace", str(workspace), "--auto-approve", "--send-now",
    ]  # fmt: skip


def _videos(workspace: Path) -> int:
    """Finished renders (a render folder gets its final name only when complete)."""
    renders = workspace / "renders"
    if not renders.is_dir():
        return 0
    return sum(1 for p in renders.glob("*/*/video.mp4") if not p.parent.name.startswith("."))


def _keys(workspace: Path) -> set[str]:
    return {p.name for p in (workspace / "renders").glob("*/*") if not p.name.startswith(".")}


def _mails(workspace: Path) -> int:
    new = workspace / "mail" / "new"
    return sum(1 for _ in new.iterdir()) if new.is_dir() else 0


def _run_until(
    command: list[str], env: dict[str, str], cwd: Path, fire: Callable[[], bool], timeout: float
) -> str:
    """Run `command`; SIGKILL it as soon as `fire()` holds. Returns "killed" or "finished"."""
    child = subprocess.Popen(
        command, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + timeout
    try:
        while child.poll() is None:
            if fire():
                child.send_signal(signal.SIGKILL)
                child.wait(timeout=30)
                return "killed"
            assert time.monotonic() < deadline, "the campaign run hung"
            time.sleep(0.005)
        _, err = child.communicate()
        assert child.returncode == 0, err.decode()[-3000:]
        return "finished"
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def _after(seconds: float) -> Callable[[], bool]:
    start = time.monotonic()
    return lambda: time.monotonic() - start >= seconds


def _when(condition: Callable[[], bool], then_wait: float) -> Callable[[], bool]:
    seen: list[float] = []

    def fire() -> bool:
        if not seen and condition():
            seen.append(time.monotonic())
        return bool(seen) and time.monotonic() - seen[0] >= then_wait

    return fire


def _delivered(workspace: Path) -> tuple[Counter[str], Counter[str]]:
    """(copies per Message-ID, copies per recipient) in the workspace's Maildir."""
    parser = BytesHeaderParser()
    box = mailbox.Maildir(workspace / "mail", create=False)
    ids: Counter[str] = Counter()
    to: Counter[str] = Counter()
    for key in box.iterkeys():
        headers = parser.parsebytes(box.get_bytes(key))
        ids[str(headers["Message-ID"])] += 1
        to[str(headers["To"])] += 1
    return ids, to


def _outbox(workspace: Path) -> dict[str, str]:
    db = sqlite3.connect(workspace / "state.sqlite")
    try:
        rows = db.execute("SELECT customer_id, state FROM outbox WHERE campaign_id = 'killed'")
        return dict(rows.fetchall())
    finally:
        db.close()


def _verify(workspace: Path, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli.main", "audit", "verify", "--workspace", str(workspace)],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.timeout(420)
def test_a_campaign_killed_three_times_then_resumed_sends_what_an_uninterrupted_run_sends(
    prefect_api, small_retailer, tmp_path: Path
) -> None:
    rng = random.Random(SEED)
    env = _env(prefect_api, tmp_path / "prefect-home")
    reference, resumed = tmp_path / "reference", tmp_path / "resumed"

    start = time.monotonic()
    first_video: list[float] = []

    def note_first_video() -> bool:
        if not first_video and _videos(reference) >= 1:
            first_video.append(time.monotonic() - start)
        return False

    assert _run_until(
        _command(small_retailer, reference), env, tmp_path, note_first_video, 240
    ) == ("finished")
    assert first_video, "the reference run rendered no video"

    # The random moment falls before the first video of an uninterrupted run (seconds on
    # a fast machine, more on a loaded one), so the later kills still have work to cut.
    first_kill_s = rng.uniform(0.3, 1.0) * first_video[0]
    new_videos = rng.randint(1, CUSTOMERS - 2)
    after_videos_s = rng.uniform(0.0, 1.5)
    after_mail_s = rng.uniform(0.0, 0.02)

    def after_new_videos() -> Callable[[], bool]:
        before = _videos(resumed)  # counted from this run's start: renders are reused
        target = min(before + new_videos, CUSTOMERS)
        return _when(lambda: _videos(resumed) >= target, after_videos_s)

    triggers: list[tuple[str, Callable[[], Callable[[], bool]]]] = [
        ("at a random time", lambda: _after(first_kill_s)),
        ("after some renders", after_new_videos),
        ("mid-send", lambda: _when(lambda: _mails(resumed) >= 1, after_mail_s)),
    ]
    outcomes = []
    for name, trigger in triggers:
        outcome = _run_until(_command(small_retailer, resumed), env, tmp_path, trigger(), 240)
        outcomes.append((name, outcome, _videos(resumed), _mails(resumed), _outbox(resumed)))
    assert _run_until(_command(small_retailer, resumed), env, tmp_path, lambda: False, 240) == (
        "finished"
    )
    for name, outcome, videos, mails, states in outcomes:  # shown with -s, and on failure
        shown = dict(Counter(states.values()))
        print(f"kill {name}: {outcome}; {videos} videos, {mails} mails, outbox {shown}")
    # The same videos, too: renders are content-addressed and deterministic.
    assert _keys(resumed) == _keys(reference)
    assert sum(outcome == "killed" for _, outcome, *_ in outcomes) >= 2

    ref_ids, ref_to = _delivered(reference)
    ids, to = _delivered(resumed)
    assert len(ref_ids) == CUSTOMERS and set(ref_ids.values()) == {1}
    assert set(ids.values()) == {1}, f"a message was delivered twice: {ids}"
    assert set(to.values()) == {1}, "a recipient got two emails"
    assert set(to) == set(ref_to), "not the same recipients as the uninterrupted run"
    assert _outbox(resumed) == _outbox(reference)
    assert set(_outbox(reference).values()) == {"sent"}
    for workspace in (reference, resumed):
        verified = _verify(workspace, env, tmp_path)
        assert verified.returncode == 0 and "OK" in verified.stdout, verified.stderr
