"""Unsubscribe requests sent by mail to the List-Unsubscribe mailto: address.

Every email's List-Unsubscribe header offers, beside the one-click https link, a mailto:
link whose subject is "unsubscribe <token>". Mail clients send that to the retailer's
unsubscribe address; have it delivered to a Maildir (any MDA, or the provider's IMAP
synced with e.g. mbsync) and `process_unsubscribe_mail` honours it: it suppresses the
customer the token names, records the unsubscribe event (for reports), and moves the
message from new/ to cur/ marked seen, so each request is handled once.

A message without a valid token (a free-form "please remove me", a forwarded mail) is
moved to cur/ flagged for a person, and counted: read it and use `reelcast suppress add`.
Nothing is logged about a message but counts: its sender is personal data.
"""

from __future__ import annotations

import mailbox
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.header import decode_header, make_header
from pathlib import Path

from compliance.suppression import SuppressionList
from delivery.errors import DeliveryError, InvalidToken
from delivery.events_store import TrackingEvents
from delivery.links import Secret, read_token
from retail.types import EventType
from storage.targets import Target

#: "unsubscribe <token>" anywhere in the subject ("Re: unsubscribe …", "[ext] unsubscribe …")
_REQUEST = re.compile(r"\bunsubscribe\s+([A-Za-z0-9_-]{8,})", re.IGNORECASE)
#: Maildir flags: S = seen (handled), F = flagged (a person should read it)
_HANDLED, _FOR_A_PERSON = "S", "F"


@dataclass(frozen=True)
class UnsubscribeMail:
    """What one pass over the unsubscribe mailbox did."""

    #: requests that suppressed a customer who was not suppressed yet
    suppressed: int
    #: valid requests for customers already suppressed (a repeat, or via the https link)
    already: int
    #: messages without a valid token, flagged for a person to read
    for_a_person: int

    def __str__(self) -> str:
        return (
            f"{self.suppressed} customer(s) suppressed, {self.already} already were, "
            f"{self.for_a_person} message(s) without a valid token flagged for a person"
        )


def process_unsubscribe_mail(
    maildir: Path,
    *,
    secret: Secret,
    suppression: SuppressionList,
    events: TrackingEvents,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> UnsubscribeMail:
    """Honour every request in `maildir`'s new/ folder; see the module docstring."""
    maildir = Path(maildir)
    if not (maildir / "new").is_dir() or not (maildir / "cur").is_dir():
        raise DeliveryError(
            f"{maildir} is not a Maildir (it needs new/ and cur/ folders): point it at the "
            "folder your unsubscribe address's mail is delivered to"
        )
    box = mailbox.Maildir(maildir, create=False)
    suppressed = already = for_a_person = 0
    # Only new/: cur/ grows with every request ever handled, and is never read again.
    # A file in new/ carries no ":2,flags" suffix, so its name is its Maildir key.
    for key in sorted(f.name for f in (maildir / "new").iterdir() if not f.name.startswith(".")):
        message = box.get_message(key)
        ids = _request(message, secret)
        if ids is None:
            for_a_person += 1
            message.add_flag(_FOR_A_PERSON)
        else:
            campaign_id, customer_id = ids
            # Suppression first: it is what stops the next email; the event is for reports.
            if suppression.add([customer_id], reason="unsubscribe", source=f"mailto:{campaign_id}"):
                suppressed += 1
            else:
                already += 1
            events.record(campaign_id, customer_id, EventType.unsubscribe, at=clock())
            message.add_flag(_HANDLED)
        message.set_subdir("cur")
        box[key] = message
    return UnsubscribeMail(suppressed=suppressed, already=already, for_a_person=for_a_person)


def honour_unsubscribe_mail(maildir: Path, *, state_db: Target, secret: Secret) -> UnsubscribeMail:
    """`process_unsubscribe_mail` against the workspace's suppression list (in `state_db`)
    and event store (`tracking.sqlite` beside it)."""
    with TrackingEvents.beside(state_db) as events:
        return process_unsubscribe_mail(
            maildir, secret=secret, suppression=SuppressionList(state_db), events=events
        )


def _request(message: mailbox.MaildirMessage, secret: Secret) -> tuple[str, str] | None:
    """(campaign id, customer id) of the token in the subject, or None."""
    raw = message.get("Subject")
    if raw is None:
        return None
    try:
        subject = str(make_header(decode_header(str(raw))))
    except (UnicodeDecodeError, LookupError, ValueError):
        subject = str(raw)
    match = _REQUEST.search(subject)
    if match is None:
        return None
    try:
        return read_token(secret, match.group(1))
    except InvalidToken:
        return None
