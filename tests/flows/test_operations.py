"""The scheduled flows: the dispatcher sends what is due, once; the report is published."""

from __future__ import annotations

import mailbox
import sqlite3

import pytest

pytestmark = pytest.mark.slow


def test_dispatcher_sends_due_mail_once_and_report_is_published(
    prefect_api, small_retailer, campaign_params, tmp_path
) -> None:
    from flows.campaign import campaign_flow
    from flows.operations import dispatch_flow, report_flow

    summary = campaign_flow(
        campaign_params(
            campaign="later",
            limit=3,
            workspace=str(tmp_path),
            auto_approve=True,
            holdout_share=0.2,
            send_now=False,
        )
    )
    assert summary.queued == 3
    already = summary.sent
    # Time passes: make every queued email due.
    db = sqlite3.connect(tmp_path / "state.sqlite")
    db.execute("UPDATE outbox SET due_at = '2000-01-01T00:00:00.000000Z' WHERE state = 'queued'")
    db.commit()
    db.close()
    first = dispatch_flow(workspace=str(tmp_path))
    assert first["sent"] == 3 - already
    again = dispatch_flow(workspace=str(tmp_path))
    assert again["sent"] == 0
    assert len(mailbox.Maildir(tmp_path / "mail", create=False)) == 3

    report = report_flow(
        "later",
        workspace=str(tmp_path),
        customers=str(small_retailer.customers),
        events=str(small_retailer.events),
    )
    assert report

    import asyncio

    from prefect.client.orchestration import get_client

    async def artifact_keys() -> set[str]:
        async with get_client() as client:
            return {a.key for a in await client.read_artifacts()}

    assert "campaign-later-report" in asyncio.run(artifact_keys())


def test_a_mailed_unsubscribe_is_honoured_before_the_next_dispatch(
    prefect_api, small_retailer, campaign_params, tmp_path, monkeypatch
) -> None:
    """The recipient uses the List-Unsubscribe mailto: of the queued email; dispatch skips them."""
    from email import message_from_bytes, policy
    from email.message import EmailMessage
    from urllib.parse import parse_qs, unquote, urlsplit

    from flows.campaign import campaign_flow
    from flows.operations import dispatch_flow

    summary = campaign_flow(
        campaign_params(
            campaign="weekly",
            limit=3,
            workspace=str(tmp_path),
            auto_approve=True,
            send_now=False,
        )
    )
    # A customer whose best local hour is this hour is mailed at once: which ones depends
    # on the time of day the test runs, so the unsubscribing one is taken from the rest.
    already = summary.sent
    assert summary.queued == 3 and already < 3
    db = sqlite3.connect(tmp_path / "state.sqlite")
    customer, recipient, blob = db.execute(
        "SELECT customer_id, recipient, message FROM outbox WHERE state = 'queued'"
        " ORDER BY id LIMIT 1"
    ).fetchone()
    db.execute("UPDATE outbox SET due_at = '2000-01-01T00:00:00.000000Z' WHERE state = 'queued'")
    db.commit()
    db.close()
    header = str(message_from_bytes(blob, policy=policy.default)["List-Unsubscribe"])
    mailto = urlsplit(next(p.strip(" <>") for p in header.split(",") if "mailto:" in p))
    request = EmailMessage()
    request["From"] = recipient
    request["To"] = unquote(mailto.path)
    request["Subject"] = parse_qs(mailto.query)["subject"][0]
    request.set_content("")
    inbox = tmp_path / "unsubscribe-inbox"
    mailbox.Maildir(inbox, create=True).add(mailbox.MaildirMessage(request))
    monkeypatch.setenv("REELCAST_UNSUBSCRIBE_MAILDIR", str(inbox))

    counts = dispatch_flow(workspace=str(tmp_path))

    assert (counts["sent"], counts["suppressed"]) == (2 - already, 1)
    sent_to = [m["To"] for m in mailbox.Maildir(tmp_path / "mail", create=False)]
    assert len(sent_to) == 2 and not any(recipient in str(to) for to in sent_to)
    from compliance.suppression import SuppressionList

    assert customer in SuppressionList(tmp_path / "state.sqlite")


def test_a_campaign_honours_mailed_unsubscribes_before_choosing_its_audience(
    prefect_api, small_retailer, campaign_params, tmp_path, monkeypatch
) -> None:
    from email.message import EmailMessage

    from compliance.audience import Exclusion
    from compliance.audit import AuditLog
    from compliance.pseudonym import pseudonymize
    from delivery.links import make_token
    from flows.campaign import campaign_flow
    from retail.loaders import load_retail
    from runtime.settings import Settings

    first = load_retail(
        small_retailer.catalog, small_retailer.customers, small_retailer.events
    ).customers[0]
    secret = Settings(workspace=tmp_path).secret()
    request = EmailMessage()
    request["Subject"] = "unsubscribe " + make_token(secret, "last-week", first.id)
    request.set_content("")
    inbox = tmp_path / "unsubscribe-inbox"
    mailbox.Maildir(inbox, create=True).add(mailbox.MaildirMessage(request))
    monkeypatch.setenv("REELCAST_UNSUBSCRIBE_MAILDIR", str(inbox))

    summary = campaign_flow(
        campaign_params(
            campaign="this-week",
            limit=1,
            workspace=str(tmp_path),
            auto_approve=True,
            dry_run=True,
            send_now=False,
        )
    )

    assert [m.get_flags() for m in mailbox.Maildir(inbox, create=False)] == ["S"]
    with sqlite3.connect(tmp_path / "state.sqlite") as db:
        (source,) = db.execute(
            "SELECT source FROM suppression WHERE customer_id = ?", (first.id,)
        ).fetchone()
    assert source == "mailto:last-week"
    with AuditLog(tmp_path / "audit.sqlite") as audit:
        why = [
            r.data
            for r in audit.records(subject=pseudonymize(secret, first.id))
            if r.kind == "exclusion" and r.campaign == "this-week"
        ]
    assert why == [{"reason": str(Exclusion.suppressed)}]
    assert summary.selected == 1
