"""The vendor ledger on SQLite and PostgreSQL: paid renders and their ids, charges once,
local fallbacks; and the storyboard key lock that keeps two processes sharing a ledger
on PostgreSQL from paying for one storyboard twice."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from creative import Storyboard
from creative.vendor import VendorConfig, VendorRenderer
from creative.vendor.ledger import LedgerEntry, RenderLedger
from creative.vendor.simulator import VendorSimulator
from storage import Target
from tests.creative.vendor.conftest import API_KEY, PRICE
from tests.postgres import PostgresServer

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def ledger(database: Callable[[str], Target]) -> Iterator[RenderLedger]:
    with_ledger = RenderLedger(database("vendor"))
    yield with_ledger
    with_ledger.close()


def test_a_render_id_is_recorded_after_the_intent_and_kept(ledger: RenderLedger) -> None:
    assert ledger.get("k1") is None
    ledger.intend("k1", "spring")
    assert ledger.get("k1") == LedgerEntry("k1", None, "spring", "submitting")
    ledger.adopt("k1", "r-1", "planned")
    ledger.set_status("k1", "succeeded")
    assert ledger.get("k1") == LedgerEntry("k1", "r-1", "spring", "succeeded")
    ledger.intend("k1", None)  # a new try after a failed render: no id until its 2xx
    assert ledger.get("k1") == LedgerEntry("k1", None, None, "submitting")
    ledger.set_status("unknown", "failed")  # nothing to update: no row made
    assert ledger.get("unknown") is None


def test_a_render_is_charged_once_under_its_campaign(ledger: RenderLedger) -> None:
    assert ledger.charge("k1", "r-1", "spring", 8.0, Decimal("0.05"))
    assert not ledger.charge("k1", "r-1", "summer", 8.0, Decimal("0.05"))
    assert ledger.charge("k2", "r-2", "spring", 2.5, Decimal("0.05"))
    assert ledger.charge("k3", "r-3", "summer", 1.0, Decimal("0.05"))
    costs = ledger.costs("spring")
    assert (costs.renders, costs.seconds, costs.amount) == (2, 10.5, Decimal("0.5250"))
    assert costs.local_fallbacks == 0
    assert ledger.costs("autumn").renders == 0


def test_local_fallbacks_are_recorded_per_campaign_and_cleared(ledger: RenderLedger) -> None:
    ledger.record_fallback("k1", "spring", "VendorUnavailable: down")
    ledger.record_fallback("k2", "spring", "PayloadError: name")
    ledger.record_fallback("k1", "spring", "VendorError: 402")  # the newest reason stays
    ledger.record_fallback("k1", None, "no campaign")
    assert ledger.fallbacks("spring") == {"k2": "PayloadError: name", "k1": "VendorError: 402"}
    assert ledger.fallbacks(None) == {"k1": "no campaign"}
    assert ledger.costs("spring").local_fallbacks == 2
    ledger.clear_fallback("k1", "spring")
    assert ledger.fallbacks("spring") == {"k2": "PayloadError: name"}


def test_a_ledger_is_safe_to_share_between_threads(ledger: RenderLedger) -> None:
    def work(n: int) -> None:
        for i in range(20):
            ledger.intend(f"k{n}-{i}", "spring")
            ledger.adopt(f"k{n}-{i}", f"r{n}-{i}", "planned")
            ledger.charge(f"k{n}-{i}", f"r{n}-{i}", "spring", 1.0, Decimal("0.05"))

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert ledger.costs("spring").renders == 80


def test_the_key_lock_is_always_granted_on_sqlite_as_before(tmp_path: Path) -> None:
    with_ledger = RenderLedger(tmp_path / "vendor.sqlite")
    try:
        assert with_ledger.hold("k1") and with_ledger.hold("k1")
        with_ledger.release("k1")
    finally:
        with_ledger.close()


def test_the_key_lock_excludes_other_ledgers_until_released(postgres: PostgresServer) -> None:
    url = postgres.create_database()
    first, second = RenderLedger(url), RenderLedger(url)
    try:
        assert first.hold("k1")
        assert not first.hold("k1")  # not re-entrant: one job per key, even here
        assert not second.hold("k1")
        assert second.hold("k2")  # other keys are free
        first.release("k1")
        assert second.hold("k1")
        second.release("k1")
        assert first.hold("k1")
        first.close()  # closing gives back what it held
        assert second.hold("k1")
    finally:
        first.close()
        second.close()


_HOLDER = """
import sys
from creative.vendor.ledger import RenderLedger

ledger = RenderLedger(sys.argv[1])
assert ledger.hold(sys.argv[2])
print("held", flush=True)
sys.stdin.readline()
ledger.release(sys.argv[2])
print("released", flush=True)
sys.stdin.readline()
"""


def _holder(url: str, key: str) -> subprocess.Popen[str]:
    """Another process that takes `key`'s lock, then releases it on a line of input."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, url, key],
        cwd=REPO,
        env=os.environ | {"PYTHONPATH": str(REPO)},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "held", proc.stderr
    return proc


def _tell(proc: subprocess.Popen[str], expect: str) -> None:
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write("\n")
    proc.stdin.flush()
    assert proc.stdout.readline().strip() == expect


def test_the_key_lock_excludes_a_second_process_and_dies_with_it(
    postgres: PostgresServer,
) -> None:
    url = postgres.create_database()
    ledger = RenderLedger(url)
    holder = _holder(url, "k1")
    try:
        assert not ledger.hold("k1")
        _tell(holder, "released")
        assert ledger.hold("k1")
        ledger.release("k1")

        crashed = _holder(url, "k2")
        try:
            assert not ledger.hold("k2")
            os.kill(crashed.pid, signal.SIGKILL)  # a worker dies mid-render
            crashed.wait()
            deadline = time.monotonic() + 20
            while not ledger.hold("k2"):  # its session ended: the lock went with it
                assert time.monotonic() < deadline, "the dead process's lock was kept"
                time.sleep(0.1)
        finally:
            if crashed.poll() is None:
                crashed.kill()
    finally:
        holder.kill()
        holder.wait()
        ledger.close()


def _renderer(sim_url: str, workspace: Path, ledger: Target) -> VendorRenderer:
    config = VendorConfig(
        base_url=sim_url, api_key=API_KEY, price_per_second=PRICE, request_timeout_s=3.0,
        attempts=4, backoff_s=0.05, backoff_max_s=0.2, poll_s=0.05, poll_max_s=0.2,
        render_timeout_s=30.0,
    )  # fmt: skip
    return VendorRenderer(config, workspace, campaign="spring", ledger=ledger)


def test_a_render_waits_while_another_process_renders_the_same_storyboard(
    postgres: PostgresServer,
    tmp_path: Path,
    make_board: Callable[..., Storyboard],
    simulator: tuple[VendorSimulator, str],
    out_dir: Path,
) -> None:
    sim, sim_url = simulator
    url = postgres.create_database()
    board = make_board()
    holder = _holder(url, board.key())  # the other process is rendering this storyboard
    renderer = _renderer(sim_url, tmp_path / "workspace", url)
    done: list[object] = []
    job = threading.Thread(target=lambda: done.append(renderer.render(board, out_dir)))
    try:
        job.start()
        time.sleep(1.5)
        assert job.is_alive() and not done
        assert sim.received == []  # not even an upload: it waits for the key
        _tell(holder, "released")
        job.join(timeout=60)
        assert done and not job.is_alive()
        assert sim.counts.created == 1
    finally:
        holder.kill()
        holder.wait()
        job.join(timeout=60)
        renderer.close()


def test_two_renderers_sharing_a_ledger_on_postgresql_pay_for_one_render(
    postgres: PostgresServer,
    tmp_path: Path,
    make_board: Callable[..., Storyboard],
    simulator: tuple[VendorSimulator, str],
    out_dir: Path,
) -> None:
    sim, sim_url = simulator
    url = postgres.create_database()
    board = make_board()
    renderers = [_renderer(sim_url, tmp_path / f"worker{i}", url) for i in range(2)]
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def render(renderer: VendorRenderer) -> None:
        try:
            barrier.wait()
            renderer.render(board, out_dir)
        except BaseException as exc:
            errors.append(exc)

    jobs = [threading.Thread(target=render, args=(r,)) for r in renderers]
    try:
        for job in jobs:
            job.start()
        for job in jobs:
            job.join(timeout=90)
        assert errors == []
        assert sim.counts.created == 1
        assert renderers[0].costs().renders == 1
    finally:
        for renderer in renderers:
            renderer.close()


def test_a_ledger_from_before_schema_versions_is_adopted_with_its_renders(
    tmp_path: Path,
) -> None:
    path = tmp_path / "vendor.sqlite"
    old = sqlite3.connect(path)  # exactly what the earlier code made
    old.executescript(
        """
        CREATE TABLE IF NOT EXISTS vendor_renders (key TEXT PRIMARY KEY, render_id TEXT,
            campaign TEXT, status TEXT NOT NULL, updated_at REAL NOT NULL);
        CREATE TABLE IF NOT EXISTS vendor_charges (render_id TEXT PRIMARY KEY,
            key TEXT NOT NULL, campaign TEXT, seconds REAL NOT NULL, amount TEXT NOT NULL,
            charged_at REAL NOT NULL);
        CREATE TABLE IF NOT EXISTS render_fallbacks (key TEXT NOT NULL,
            campaign TEXT NOT NULL, reason TEXT NOT NULL, at REAL NOT NULL,
            PRIMARY KEY (key, campaign));
        INSERT INTO vendor_renders VALUES ('k1', 'r-1', 'spring', 'succeeded', 1.0);
        INSERT INTO vendor_charges VALUES ('r-1', 'k1', 'spring', 8.0, '0.4000', 1.0);
        INSERT INTO render_fallbacks VALUES ('k2', 'spring', 'VendorUnavailable', 1.0);
        """
    )
    old.close()
    with_ledger = RenderLedger(path)
    try:
        assert with_ledger.get("k1") == LedgerEntry("k1", "r-1", "spring", "succeeded")
        assert not with_ledger.charge("k1", "r-1", "spring", 8.0, Decimal("0.05"))
        costs = with_ledger.costs("spring")
        assert (costs.renders, costs.amount, costs.local_fallbacks) == (1, Decimal("0.4"), 1)
    finally:
        with_ledger.close()
    check = sqlite3.connect(path)
    assert [r[0] for r in check.execute("SELECT version_num FROM alembic_version")] == [
        "vendor_ledger_0001"
    ]
    check.close()
