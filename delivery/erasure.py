"""Right to erasure: a customer's personal data out of the workspace, nobody else's.

What is removed: their address and email bodies in the outbox, their tracking events, the
mails addressed to them in the local mailbox (matched on the exact address), and the
videos made for them alone. A video that another recipient also received (the same
storyboard, so the same pixels: no first name in it) is kept for them. The id is
suppressed so no later campaign mails it; the audit log keeps the pseudonym only.
"""

from __future__ import annotations

import json
import mailbox
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from email.utils import getaddresses
from pathlib import Path

from compliance.audit import AuditLog, Record
from compliance.suppression import SuppressionList
from delivery.events_store import TrackingEvents
from delivery.outbox import Outbox
from storage.targets import Target


@dataclass(frozen=True)
class Erasure:
    """What `erase_customer` removed (counts only) and what it kept, and why."""

    outbox_rows: int
    mails: int
    videos: int
    #: render keys kept because other recipients received the same video
    shared_videos: int


def _normal(address: str) -> str:
    return address.strip().casefold()


def addressed_to(message: mailbox.MaildirMessage, addresses: set[str]) -> bool:
    """Whether the message's To/Cc names one of `addresses` exactly (case aside): never a
    substring, so erasing ann@shop.example keeps the mail of joann@shop.example."""
    fields = message.get_all("To", []) + message.get_all("Cc", [])
    return any(_normal(addr) in addresses for _, addr in getaddresses(fields) if addr)


def render_owners(records: Iterable[Record]) -> dict[str, set[str]]:
    """Render key → the pseudonyms whose campaign used that video (from the audit log)."""
    owners: dict[str, set[str]] = {}
    for record in records:
        key = record.data.get("key") if record.kind == "render" else None
        if isinstance(key, str) and key and record.subject:
            owners.setdefault(key, set()).add(record.subject)
    return owners


def _personal_pieces(
    folder: Path, key: str, read_manifest: Callable[[str], bytes | None] | None
) -> list[str]:
    """The keys of the pieces of render `key` that show a name: its manifest's `pieces`
    marked `personal` (creative/scenes.py writes them; a whole render has none)."""
    raw: bytes | None = None
    try:
        raw = (folder / "render.json").read_bytes()
    except OSError:
        raw = read_manifest(key) if read_manifest is not None else None
    if raw is None:
        return []
    try:
        manifest = json.loads(raw)
    except ValueError:
        return []
    pieces = manifest.get("pieces") if isinstance(manifest, dict) else None
    return [
        p["key"]
        for p in pieces or []
        if isinstance(p, dict) and p.get("personal") and isinstance(p.get("key"), str)
    ]


def erase_customer(
    customer_id: str,
    subject: str,
    *,
    state_db: Target,
    audit: AuditLog,
    maildir: Path,
    renders: Path,
    delete_render: Callable[[str], bool] | None = None,
    read_manifest: Callable[[str], bytes | None] | None = None,
) -> Erasure:
    """Erase `customer_id` (pseudonym `subject` in the audit log) from the workspace's
    stores, and record the erasure in `audit`. Idempotent: a second call finds nothing.

    `delete_render(key)` removes a video from a shared render store too (True when there
    was one there), when renders are kept elsewhere than in `renders`; `read_manifest(key)`
    reads a render's manifest from there (None when there is none), for a video this
    machine has no copy of, so the scene pieces that show the name are found."""
    with Outbox(state_db) as outbox:
        addresses = {_normal(a) for a in outbox.recipients(customer_id) if "@" in a}
        rows = outbox.erase(customer_id)
    with TrackingEvents.beside(state_db) as tracking:
        tracking.erase(customer_id)
    mails = 0
    if maildir.is_dir() and addresses:
        box = mailbox.Maildir(maildir, create=False)
        for key, message in list(box.iteritems()):
            if addressed_to(message, addresses):
                box.remove(key)
                mails += 1
    owners = render_owners(audit.records())
    erased = {r.subject for r in audit.records() if r.kind == "erasure" and r.subject}
    videos = shared = 0
    for key, holders in owners.items():
        if subject not in holders:
            continue
        if holders - {subject} - erased:
            shared += 1  # others received these very pixels: theirs to keep
            continue
        # A video joined from scene segments (creative/scenes.py): the pieces that show the
        # name go with it (a later render of the same name makes them again).
        pieces = _personal_pieces(renders / key[:2] / key, key, read_manifest)
        for item in (key, *pieces):
            folder = renders / item[:2] / item
            removed = folder.is_dir()
            if removed:
                shutil.rmtree(folder)
            if delete_render is not None:
                removed = delete_render(item) or removed
            if item == key and removed:
                videos += 1
    SuppressionList(state_db).add([customer_id], reason="erasure", source="forget")
    audit.record(
        "erasure",
        campaign="-",
        subject=subject,
        outbox_rows=rows,
        mails=mails,
        videos=videos,
        shared_videos_kept=shared,
    )
    return Erasure(outbox_rows=rows, mails=mails, videos=videos, shared_videos=shared)
