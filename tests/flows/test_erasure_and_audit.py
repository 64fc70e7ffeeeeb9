"""Operator commands on a real campaign's workspace: audit show/verify, forget, suppress."""

from __future__ import annotations

import mailbox
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REELCAST_")}
    env["COLUMNS"] = "200"
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def campaign(
    prefect_api, small_retailer, campaign_params, tmp_path_factory
) -> tuple[Path, list[str]]:
    from flows.campaign import campaign_flow

    workspace = tmp_path_factory.mktemp("ops")
    campaign_flow(
        campaign_params(
            campaign="ops",
            limit=2,
            workspace=str(workspace),
            auto_approve=True,
            send_now=True,
        )
    )
    db = sqlite3.connect(workspace / "state.sqlite")
    sent = [r[0] for r in db.execute("SELECT customer_id FROM outbox WHERE state = 'sent'")]
    db.close()
    assert len(sent) == 2
    return workspace, sent


def test_audit_explains_a_customer_without_personal_data(campaign, small_retailer) -> None:
    workspace, sent = campaign
    shown = _cli("audit", "show", "--customer", sent[0], "--workspace", str(workspace))
    assert shown.returncode == 0, shown.stderr
    for kind in ("pick", "render", "verdict", "send"):
        assert kind in shown.stdout
    assert "@" not in shown.stdout and sent[0] not in shown.stdout
    verified = _cli("audit", "verify", "--workspace", str(workspace))
    assert verified.returncode == 0 and "OK" in verified.stdout


def test_forget_erases_mail_video_and_address_and_keeps_the_chain(campaign) -> None:
    workspace, sent = campaign
    victim, other = sent
    box = mailbox.Maildir(workspace / "mail", create=False)
    assert len(box) == 2
    result = _cli("forget", victim, "--workspace", str(workspace))
    assert result.returncode == 0, result.stderr
    assert len(mailbox.Maildir(workspace / "mail", create=False)) == 1
    db = sqlite3.connect(workspace / "state.sqlite")
    recipient, message = db.execute(
        "SELECT recipient, message FROM outbox WHERE customer_id = ?", (victim,)
    ).fetchone()
    assert recipient == "[erased]" and message == b""
    assert (
        db.execute("SELECT recipient FROM outbox WHERE customer_id = ?", (other,)).fetchone()[0]
        != "[erased]"
    )
    db.close()
    assert len(list((workspace / "renders").rglob("video.mp4"))) == 1
    assert _cli("audit", "verify", "--workspace", str(workspace)).returncode == 0
    listed = _cli("suppress", "list", "--workspace", str(workspace))
    assert victim in listed.stdout.split()


def test_a_tampered_audit_log_fails_verify(campaign, tmp_path) -> None:
    import shutil

    workspace, _ = campaign
    copy = tmp_path / "ws"
    shutil.copytree(workspace, copy)
    db = sqlite3.connect(copy / "audit.sqlite")
    db.execute("DROP TRIGGER audit_no_update")
    db.execute("UPDATE audit SET data = '{\"ok\":true}' WHERE kind = 'verdict'")
    db.commit()
    db.close()
    result = _cli("audit", "verify", "--workspace", str(copy))
    assert result.returncode == 1 and "BROKEN at record" in result.stderr


def test_suppressed_customers_are_never_rendered_nor_sent(
    prefect_api, small_retailer, campaign_params, tmp_path
) -> None:
    from flows.campaign import campaign_flow
    from retail.loaders import load_retail

    data = load_retail(small_retailer.catalog, small_retailer.customers, small_retailer.events)
    first_two = [c.id for c in data.customers if c.marketing_consent == "granted"][:2]
    assert _cli("suppress", "add", *first_two, "--workspace", str(tmp_path)).returncode == 0
    summary = campaign_flow(
        campaign_params(
            campaign="s",
            limit=1,
            workspace=str(tmp_path),
            dry_run=True,
            auto_approve=False,
            send_now=False,
        )
    )
    assert summary.excluded["suppressed"] >= 2
    from compliance.audit import AuditLog
    from compliance.pseudonym import pseudonymize
    from runtime.settings import Settings

    secret = Settings(workspace=tmp_path).secret()
    with AuditLog(tmp_path / "audit.sqlite") as log:
        for cid in first_two:
            kinds = [r.kind for r in log.records(subject=pseudonymize(secret, cid))]
            assert kinds == ["exclusion"]
