"""Unsubscribe requests that arrive by mail (the List-Unsubscribe mailto: link) are honoured."""

from __future__ import annotations

import mailbox
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from typer.testing import CliRunner

from compliance.suppression import SuppressionList
from delivery.errors import DeliveryError
from delivery.events_store import TrackingEvents
from delivery.links import Links, make_token
from delivery.unsubscribe_mail import UnsubscribeMail, process_unsubscribe_mail
from retail.types import EventType

SECRET = b"s" * 32
LINKS = Links("https://t.shop.example", unsubscribe_address="unsubscribe@shop.example")


def _request_for(campaign: str, customer: str, *, subject_prefix: str = "") -> EmailMessage:
    """What a mail client sends when its user picks the header's mailto: unsubscribe."""
    url = urlsplit(LINKS.unsubscribe_mailto(make_token(SECRET, campaign, customer)))
    message = EmailMessage()
    message["From"] = "Someone <someone@example.org>"
    message["To"] = unquote(url.path)
    message["Subject"] = subject_prefix + parse_qs(url.query)["subject"][0]
    message.set_content("")
    return message


def _deliver(maildir: Path, *messages: EmailMessage) -> None:
    box = mailbox.Maildir(maildir, create=True)
    for message in messages:
        box.add(mailbox.MaildirMessage(message))


def _process(maildir: Path, state: Path) -> UnsubscribeMail:
    with TrackingEvents(state) as events:
        return process_unsubscribe_mail(
            maildir, secret=SECRET, suppression=SuppressionList(state), events=events
        )


def _unsubscribes(state: Path) -> list[tuple[str, str]]:
    with TrackingEvents(state) as events:
        return sorted(
            (t.campaign_id, t.event.customer_id)
            for t in events.tracked(types=[EventType.unsubscribe])
        )


def test_each_mailed_request_suppresses_its_customer_once(tmp_path: Path) -> None:
    maildir, state = tmp_path / "unsub", tmp_path / "state.sqlite"
    tampered = _request_for("spring", "C3")
    subject = str(tampered["Subject"])
    tampered.replace_header("Subject", subject[:-2] + ("AA" if subject[-2:] != "AA" else "BB"))
    free_form = EmailMessage()
    free_form["Subject"] = "please take me off your list"
    free_form.set_content("Thanks")
    _deliver(
        maildir,
        _request_for("spring", "C1"),
        _request_for("spring", "C2", subject_prefix="Re: "),
        _request_for("autumn", "C1"),  # the same customer again, from another campaign
        tampered,
        free_form,
    )

    done = _process(maildir, state)

    assert (done.suppressed, done.already, done.for_a_person) == (2, 1, 2)
    assert SuppressionList(state).ids() == {"C1", "C2"}
    box = mailbox.Maildir(maildir, create=False)
    flags = sorted(box.get_message(k).get_flags() for k in box.iterkeys())
    assert all(box.get_message(k).get_subdir() == "cur" for k in box.iterkeys())
    assert flags == ["F", "F", "S", "S", "S"]
    assert _unsubscribes(state) == [("autumn", "C1"), ("spring", "C1"), ("spring", "C2")]

    # A second pass finds nothing new: every request is handled once.
    _deliver(maildir, _request_for("spring", "C4"))
    again = _process(maildir, state)
    assert (again.suppressed, again.already, again.for_a_person) == (1, 0, 0)
    assert SuppressionList(state).ids() == {"C1", "C2", "C4"}


def test_a_folder_that_is_not_a_maildir_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DeliveryError, match=r"is not a Maildir .*new/ and cur/"):
        _process(tmp_path / "nowhere", tmp_path / "state.sqlite")


def test_the_cli_reports_counts_and_never_the_senders(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cli.main import app
    from runtime.settings import Settings

    for name in ("REELCAST_SECRET", "REELCAST_WORKSPACE"):
        monkeypatch.delenv(name, raising=False)
    workspace = tmp_path / "ws"
    result = CliRunner().invoke(app, ["suppress", "list", "--workspace", str(workspace)])
    assert result.exit_code == 0, result.output
    secret = Settings(workspace=workspace).secret()
    maildir = tmp_path / "unsub"
    url = urlsplit(LINKS.unsubscribe_mailto(make_token(secret, "spring", "C9")))
    message = EmailMessage()
    message["From"] = "Jane Roe <jane.roe@example.org>"
    message["Subject"] = parse_qs(url.query)["subject"][0]
    message.set_content("")
    _deliver(maildir, message)

    args = ["suppress", "mailbox", str(maildir), "--workspace", str(workspace)]
    result = CliRunner().invoke(app, args)

    assert result.exit_code == 0, result.output
    assert "1 customer(s) suppressed" in result.output
    assert "jane" not in result.output.lower() and "Roe" not in result.output
    listed = CliRunner().invoke(app, ["suppress", "list", "--workspace", str(workspace)])
    assert listed.output.split() == ["C9"]

    args = ["suppress", "mailbox", str(tmp_path / "x"), "--workspace", str(workspace)]
    missing = CliRunner().invoke(app, args)
    assert missing.exit_code == 2 and "is not a Maildir" in missing.output
    assert missing.exception is None or isinstance(missing.exception, SystemExit)
