"""A campaign's emails into the outbox, and what the sends left to learn from."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from campaigns.plan import Recipient
from creative.render import Render
from delivery.compose import compose_campaign_email
from delivery.events_store import TrackingEvents
from delivery.links import Links, Secret, make_token
from delivery.outbox import Outbox, QueuedEmail
from delivery.sendtime import SendPolicy, schedule_customers
from retail.types import Event, Product
from storage.targets import Target


@dataclass(frozen=True)
class Letterhead:
    """What every email of the shop carries besides its content."""

    links: Links
    sender: str
    postal_address: str
    templates_dir: Path
    #: signs each recipient's click, open and unsubscribe links (a key, or a ring of keys)
    secret: Secret


def due_times(
    jobs: Sequence[Recipient],
    events: Sequence[Event],
    now: datetime,
    *,
    send_now: bool,
    send_hour: int,
) -> dict[str, datetime]:
    """Customer id → when their email is due: now, or at their own best local hour."""
    if send_now:
        return {job.customer.id: now for job in jobs}
    return schedule_customers(
        [(job.customer.id, job.customer.timezone) for job in jobs],
        events,
        now,
        SendPolicy(default_hour=send_hour),
    )


def queue_emails(
    creatives: Sequence[tuple[Recipient, Render]],
    *,
    outbox: Outbox,
    campaign: str,
    subjects: Sequence[str],
    products: Mapping[str, Product],
    letterhead: Letterhead,
    due: Mapping[str, datetime],
    now: datetime,
    on_queued: Callable[[], None] = lambda: None,
    images_root: Path | None = None,
    label: str = "Personalized video",
) -> tuple[int, int]:
    """Compose each customer's email and put it in the outbox; (queued, already there).

    A customer the outbox already holds for `campaign` is not composed again: one email per
    customer and campaign, however often this runs. With two subjects the variant is the
    subject's; otherwise the job's headline variant. Emails are written to the outbox
    `QUEUE_CHUNK` at a time, one transaction each (also when composing one fails: those
    composed before it are queued); `on_queued` is called once per email written.
    Product pictures named by a path are read from `images_root` (the catalog's folder);
    `label` says under the video's picture how the video was made. Each product's email
    card shows the price the video shows: its sale price when the feed has one.
    """
    queued = already = 0
    base_url = letterhead.links.base_url
    held = outbox.queued_customers(campaign)  # keys only, read once: no body is loaded
    pending: list[QueuedEmail] = []

    def flush() -> None:
        nonlocal queued, already
        for inserted in outbox.enqueue_many(pending):
            if inserted:
                queued += 1
            else:
                already += 1  # queued meanwhile by another run
            on_queued()
        pending.clear()

    try:
        for job, render in creatives:
            if job.customer.id in held:
                already += 1  # composing again would only be thrown away
                continue
            token = make_token(letterhead.secret, campaign, job.customer.id)
            composed = compose_campaign_email(
                customer=job.customer,
                products=[products[pid] for pid in job.pick.product_ids],
                poster=render.poster,
                gif=render.gif,
                video_url=f"{base_url}/r/{render.key}/video.mp4",
                links=letterhead.links.for_token(token),
                sender=letterhead.sender,
                postal_address=letterhead.postal_address,
                subject=list(subjects),
                campaign_id=campaign,
                templates_dir=letterhead.templates_dir,
                pseudonym=job.pseudonym,
                images_root=images_root,
                label=label,
            )
            held.add(job.customer.id)
            pending.append(
                QueuedEmail(
                    campaign_id=campaign,
                    customer_id=job.customer.id,
                    recipient=str(job.customer.email),
                    message=composed.message,
                    due_at=due.get(job.customer.id, now),
                    variant=f"subject-{composed.variant}" if len(subjects) > 1 else job.variant,
                )
            )
            if len(pending) >= QUEUE_CHUNK:
                flush()
    finally:
        if pending:
            flush()
    return queued, already


QUEUE_CHUNK = 50
"""Emails composed before they are written to the outbox in one transaction: one disk
sync for the lot instead of one each, and at most this many bodies (GIFs) in memory."""


def record_exposures(jobs: Sequence[Recipient], campaign: str, state_db: Target) -> None:
    """Who was really shown what, and when: every job whose email the outbox marks sent
    becomes an exposure (with its variant) for the report and the next training."""
    exposures = []
    with Outbox(state_db) as outbox:
        for job in jobs:
            item = outbox.get(campaign, job.customer.id)
            if item is not None and item.state == "sent" and item.sent_at is not None:
                exposures.append((job.customer.id, item.sent_at, item.variant))
    with TrackingEvents.beside(state_db) as tracking:  # tracking.sqlite, beside the state
        tracking.record_exposures(campaign, exposures)
