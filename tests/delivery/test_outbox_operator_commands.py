"""Operator side of exactly-once: resend_unknown, and `reelcast outbox` / `email preview`."""

from __future__ import annotations

import mailbox
from collections.abc import Callable
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from delivery_support import CAMPAIGN, NOW, make_customer
from typer.testing import CliRunner

from cli.emails import email_app
from cli.outbox import outbox_app
from delivery.outbox import Outbox, OutboxState
from delivery.resend import ResendRefused, resend_unknown

runner = CliRunner()
LATER = NOW + timedelta(hours=1)


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("REELCAST_SMTP_HOST", raising=False)
    monkeypatch.delenv("REELCAST_ESP_URL", raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env
    return tmp_path / "ws"


@pytest.fixture
def box(workspace: Path, compose: Callable[..., EmailMessage]) -> Outbox:
    """Customers 1–3 queued; 1 sent, 2 and 3 left `unknown` by an interrupted dispatch."""
    outbox = Outbox(workspace / "state.sqlite")
    for n in (1, 2, 3):
        customer = make_customer(n)
        outbox.enqueue(
            campaign_id=CAMPAIGN,
            customer_id=customer.id,
            recipient=str(customer.email),
            message=compose(customer),
            due_at=NOW,
            now=NOW,
        )
    items = outbox.claim_due(NOW, 3)
    for item in items:
        outbox.begin_send(item, NOW)
    outbox.mark_sent(items[0].id, "queue-1", NOW)
    outbox.reconcile(LATER)
    return outbox


def test_resend_needs_the_confirmation_and_touches_only_unknown_rows(box: Outbox) -> None:
    with pytest.raises(ResendRefused, match="may already have been delivered"):
        resend_unknown(box, CAMPAIGN, "all", confirmed_not_delivered=False, now=LATER)
    assert box.counts(CAMPAIGN)[OutboxState.unknown] == 2

    result = resend_unknown(
        box,
        CAMPAIGN,
        ["cust-00001", "cust-00002", "nobody"],
        confirmed_not_delivered=True,
        now=LATER,
    )
    assert result.requeued == ["cust-00002"]
    assert result.skipped == {"cust-00001": "sent"}
    assert result.missing == ["nobody"]
    item = box.get(CAMPAIGN, "cust-00002")
    assert item is not None and item.state is OutboxState.queued and item.due_at == LATER
    assert item.send_started_at is None

    rest = resend_unknown(box, CAMPAIGN, "all", confirmed_not_delivered=True, now=LATER)
    assert rest.requeued == ["cust-00003"]


def test_status_counts_per_state_and_names_unknown_rows_by_pseudonym(
    box: Outbox, workspace: Path
) -> None:
    result = runner.invoke(outbox_app, ["status", "--workspace", str(workspace)])
    assert result.exit_code == 0, result.output
    assert CAMPAIGN in result.output and "unknown" in result.output
    assert "cust-00002" not in result.output and "cu_" in result.output
    shown = runner.invoke(outbox_app, ["status", "--show-ids", "--workspace", str(workspace)])
    assert "cust-00002" in shown.output and "cust-00003" in shown.output


def test_resend_command_asks_then_dispatch_sends_only_the_requeued(
    box: Outbox, workspace: Path
) -> None:
    args = ["resend", "--campaign", CAMPAIGN, "--customer", "cust-00002"]
    declined = runner.invoke(outbox_app, [*args, "--workspace", str(workspace)], input="n\n")
    assert declined.exit_code == 1
    assert box.get(CAMPAIGN, "cust-00002").state is OutboxState.unknown  # type: ignore[union-attr]

    ok = runner.invoke(outbox_app, [*args, "--yes", "--workspace", str(workspace)])
    assert ok.exit_code == 0, ok.output
    assert "queued again: 1" in ok.output

    both = runner.invoke(
        outbox_app, ["resend", "--campaign", CAMPAIGN, "--all-unknown", "--customer", "x"]
    )
    assert both.exit_code == 2

    sent = runner.invoke(outbox_app, ["dispatch", "--workspace", str(workspace)])
    assert sent.exit_code == 0, sent.output
    assert "sent 1," in sent.output
    delivered = mailbox.Maildir(workspace / "mail", create=False)
    assert len(delivered) == 1
    assert box.get(CAMPAIGN, "cust-00002").state is OutboxState.sent  # type: ignore[union-attr]
    assert box.get(CAMPAIGN, "cust-00003").state is OutboxState.unknown  # type: ignore[union-attr]


def test_email_preview_writes_the_queued_html_with_its_image(
    box: Outbox, workspace: Path, tmp_path: Path
) -> None:
    out = tmp_path / "preview" / "mail.html"
    result = runner.invoke(
        email_app,
        ["preview", "--customer", "cust-00001", "--out", str(out), "--workspace", str(workspace)],
    )
    assert result.exit_code == 0, result.output
    html = out.read_text()
    assert "Hi Ann," in html and "cid:" not in html
    assert (out.parent / "mail-1.jpg").is_file()

    default = runner.invoke(
        email_app,
        [
            "preview",
            "--customer",
            "cust-00002",
            "--campaign",
            CAMPAIGN,
            "--workspace",
            str(workspace),
        ],
    )
    assert default.exit_code == 0, default.output
    assert list((workspace / "previews").glob(f"{CAMPAIGN}-cu_*.html"))


def test_email_preview_without_a_queued_email_is_a_clear_error(
    box: Outbox, workspace: Path
) -> None:
    result = runner.invoke(
        email_app, ["preview", "--customer", "cust-09999", "--workspace", str(workspace)]
    )
    assert result.exit_code == 2
    assert "no email for customer cust-09999" in result.output
