"""The vendor ledger: which storyboard became which paid render, and what it cost.

In the workspace (`vendor.sqlite`), or in the PostgreSQL database named by URL, through
the same statements (storage/). A row is written *before* the create request
(`submitting`) and gets the vendor's render id on the first 2xx, so after any ambiguous
failure — a timeout, a 5xx, a crash between request and answer — the client knows it may
already have paid for a render and looks it up instead of creating a second one. Charges
are recorded once per vendor render id, under the campaign that submitted it.

The key lock. One storyboard key is rendered by one job at a time, so two jobs never
both find "nothing yet" and both pay for a render. Within a client that is an asyncio
lock; `hold(key)` extends it to every process that shares a ledger on PostgreSQL: a
session-level advisory lock on the storyboard key, taken on one connection the ledger
keeps for its locks, and given back by `release(key)` (or when that connection ends,
e.g. the process dies). On SQLite the ledger is one machine's file and `hold` is always
granted: the client's own lock is all there is, as before.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from creative.render import CampaignCosts
from storage import Target, is_url
from storage.database import open_database

_metadata = sa.MetaData()
vendor_renders = sa.Table(
    "vendor_renders",
    _metadata,
    sa.Column("key", sa.Text, primary_key=True),  # storyboard key (no personal data)
    sa.Column("render_id", sa.Text),  # the vendor's id; NULL until the first 2xx
    sa.Column("campaign", sa.Text),
    sa.Column("status", sa.Text, nullable=False),  # submitting | planned | ... | failed
    sa.Column("updated_at", sa.Float, nullable=False),
)
vendor_charges = sa.Table(
    "vendor_charges",
    _metadata,
    sa.Column("render_id", sa.Text, primary_key=True),
    sa.Column("key", sa.Text, nullable=False),
    sa.Column("campaign", sa.Text),
    sa.Column("seconds", sa.Float, nullable=False),
    sa.Column("amount", sa.Text, nullable=False),  # Decimal as text: money is never a float
    sa.Column("charged_at", sa.Float, nullable=False),
)
render_fallbacks = sa.Table(
    "render_fallbacks",
    _metadata,
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("campaign", sa.Text, primary_key=True),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("at", sa.Float, nullable=False),
)
_renders, _charges, _fallbacks = vendor_renders.c, vendor_charges.c, render_fallbacks.c


@dataclass(frozen=True)
class LedgerEntry:
    """What we know about one storyboard key at the vendor."""

    key: str
    render_id: str | None
    campaign: str | None
    status: str


def lock_id(key: str) -> int:
    """The PostgreSQL advisory lock id (64 bits) of a storyboard key."""
    digest = hashlib.sha256(b"reelcast vendor render\x1f" + key.encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class RenderLedger:
    """The key→render-id mapping, the charges and the local fallbacks (thread-safe)."""

    def __init__(self, target: Target) -> None:
        self.target = target
        #: the SQLite file, or None when the ledger is in a database named by URL
        self.path = None if is_url(target) else Path(target)
        self._db = open_database(target, branch="vendor_ledger", pool_size=3)
        self._locks = threading.Lock()  # guards the lock connection and `_held`
        self._locker: sa.Connection | None = None
        self._locker_pid = 0
        self._held: set[str] = set()

    def get(self, key: str) -> LedgerEntry | None:
        """The entry for a storyboard key, if it was ever submitted."""
        query = sa.select(_renders.key, _renders.render_id, _renders.campaign, _renders.status)
        with self._db.read() as conn:
            row = conn.execute(query.where(_renders.key == key)).first()
        return None if row is None else LedgerEntry(*row)

    def intend(self, key: str, campaign: str | None) -> None:
        """Record that a create request for `key` is about to be sent (no id yet)."""
        insert = self._db.insert(vendor_renders).values(
            key=key, render_id=None, campaign=campaign, status="submitting", updated_at=time.time()
        )
        statement = insert.on_conflict_do_update(
            index_elements=[_renders.key],
            set_={
                "render_id": None,
                "campaign": insert.excluded.campaign,
                "status": "submitting",
                "updated_at": insert.excluded.updated_at,
            },
        )
        with self._db.write() as conn:
            conn.execute(statement)

    def adopt(self, key: str, render_id: str, status: str) -> None:
        """Record the vendor's render id for `key` (the first 2xx, or found by lookup)."""
        statement = (
            vendor_renders.update()
            .where(_renders.key == key)
            .values(render_id=render_id, status=status, updated_at=time.time())
        )
        with self._db.write() as conn:
            conn.execute(statement)

    def set_status(self, key: str, status: str) -> None:
        """Record the last status seen for `key`'s render."""
        statement = (
            vendor_renders.update()
            .where(_renders.key == key)
            .values(status=status, updated_at=time.time())
        )
        with self._db.write() as conn:
            conn.execute(statement)

    def charge(
        self, key: str, render_id: str, campaign: str | None, seconds: float, price: Decimal
    ) -> bool:
        """Record the cost of a succeeded render once; False if it was already recorded."""
        amount = (Decimal(str(seconds)) * price).quantize(Decimal("0.0001"))
        statement = (
            self._db.insert(vendor_charges)
            .values(
                render_id=render_id,
                key=key,
                campaign=campaign,
                seconds=seconds,
                amount=str(amount),
                charged_at=time.time(),
            )
            .on_conflict_do_nothing(index_elements=[_charges.render_id])
            .returning(_charges.render_id)
        )
        with self._db.write() as conn:
            return conn.execute(statement).first() is not None

    def record_fallback(self, key: str, campaign: str | None, reason: str) -> None:
        """Record that `key` was rendered locally instead of at the vendor, and why."""
        insert = self._db.insert(render_fallbacks).values(
            key=key, campaign=campaign or "", reason=reason, at=time.time()
        )
        statement = insert.on_conflict_do_update(
            index_elements=[_fallbacks.key, _fallbacks.campaign],
            set_={"reason": insert.excluded.reason, "at": insert.excluded.at},
        )
        with self._db.write() as conn:
            conn.execute(statement)

    def clear_fallback(self, key: str, campaign: str | None) -> None:
        """The vendor has now rendered `key` for `campaign`: it is no longer a local fallback."""
        statement = render_fallbacks.delete().where(
            _fallbacks.key == key, _fallbacks.campaign == (campaign or "")
        )
        with self._db.write() as conn:
            conn.execute(statement)

    def fallbacks(self, campaign: str | None) -> dict[str, str]:
        """Storyboard key → reason, for every video of `campaign` rendered locally instead."""
        query = (
            sa.select(_fallbacks.key, _fallbacks.reason)
            .where(_fallbacks.campaign == (campaign or ""))
            .order_by(_fallbacks.at)
        )
        with self._db.read() as conn:
            return {str(key): str(reason) for key, reason in conn.execute(query)}

    def costs(self, campaign: str) -> CampaignCosts:
        """Renders paid, render seconds and amount charged for `campaign`."""
        charges = sa.select(_charges.seconds, _charges.amount).where(_charges.campaign == campaign)
        fallbacks = (
            sa.select(sa.func.count()).select_from(render_fallbacks)
            .where(_fallbacks.campaign == campaign)
        )  # fmt: skip
        with self._db.read() as conn:
            rows = conn.execute(charges).all()
            local = int(conn.execute(fallbacks).scalar_one())
        return CampaignCosts(
            campaign=campaign,
            renders=len(rows),
            seconds=round(sum(seconds for seconds, _ in rows), 3),
            amount=sum((Decimal(amount) for _, amount in rows), Decimal("0")),
            local_fallbacks=local,
        )

    # -- the key lock ----------------------------------------------------------------------

    def hold(self, key: str) -> bool:
        """Try to take `key`'s lock for this ledger; True if taken (then `release` it).

        On PostgreSQL: an advisory lock, which no other ledger (in this process or any
        other) can take until it is released; False at once if it is held elsewhere or
        by this ledger already. On SQLite: always True (one machine; the client's own
        lock serializes the key). Does not wait: callers poll.
        """
        if not self._db.is_postgres:
            return True
        with self._locks:
            self._forget_parents_locker()
            if key in self._held:
                return False
            try:
                taken = self._try_lock(key)
            except DBAPIError:  # a broken connection holds nothing any more: a new one
                self._drop_locker()
                taken = self._try_lock(key)
            if taken:
                self._held.add(key)
            return taken

    def release(self, key: str) -> None:
        """Give back `key`'s lock taken by `hold` (nothing on SQLite, or if not held)."""
        if not self._db.is_postgres:
            return
        with self._locks:
            self._forget_parents_locker()
            if key not in self._held or self._locker is None:
                return
            self._held.discard(key)
            try:
                self._locker.execute(
                    sa.text("SELECT pg_advisory_unlock(:id)"), {"id": lock_id(key)}
                )
            except DBAPIError:
                self._drop_locker()  # the session is gone, and its locks with it

    def _try_lock(self, key: str) -> bool:
        if self._locker is None:
            # Autocommit: a held lock is not an open transaction.
            conn = self._db.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            self._locker, self._locker_pid = conn, os.getpid()
        taken = self._locker.execute(
            sa.text("SELECT pg_try_advisory_lock(:id)"), {"id": lock_id(key)}
        ).scalar()
        return bool(taken)

    def _forget_parents_locker(self) -> None:
        """A forked child neither uses nor closes its parent's lock connection (nor holds
        its locks): it makes its own."""
        if self._locker is not None and self._locker_pid != os.getpid():
            self._locker, self._held = None, set()

    def _drop_locker(self) -> None:
        """End the lock connection's session for good (its locks go with it)."""
        locker, self._locker, self._held = self._locker, None, set()
        if locker is not None:
            with contextlib.suppress(DBAPIError):
                locker.invalidate()
                locker.close()

    def close(self) -> None:
        """Close the database connections (giving back any key lock still held)."""
        with self._locks:
            self._forget_parents_locker()
            if self._locker is not None and self._held:
                # At once: a closed session's locks go only when its server process ends.
                with contextlib.suppress(DBAPIError):
                    self._locker.execute(sa.text("SELECT pg_advisory_unlock_all()"))
            self._drop_locker()
        self._db.dispose()
