"""Where a run's files live inside the workspace folder."""

from __future__ import annotations

import errno
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from retail.errors import ReelcastError
from storage.targets import Target


class WorkspaceError(ReelcastError, OSError):
    """The workspace folder cannot be made or written; the message names it."""


@dataclass(frozen=True)
class Store:
    """One of reelcast's stores: its SQLite file in a workspace, its schema branches."""

    name: str
    file_name: str
    branches: tuple[str, ...]


#: Every store with state, as `reelcast db` upgrades, shows and migrates them.
STORES = (
    Store("state (outbox, suppression list)", "state.sqlite", ("outbox", "suppression")),
    Store("tracking events", "tracking.sqlite", ("tracking",)),
    Store("audit log", "audit.sqlite", ("audit",)),
    Store("metrics", "metrics.sqlite", ("metrics",)),
    Store("vendor render ledger", "vendor.sqlite", ("vendor_ledger",)),
)


@dataclass(frozen=True)
class Workspace:
    """Paths inside one workspace. Deleting the folder resets everything.

    With `database_url` (REELCAST_DATABASE_URL), every store's state lives in that one
    database instead of the SQLite files below; renders, models and mail stay in the folder.
    """

    root: Path
    database_url: str | None = field(default=None, repr=False)  # may carry a password

    def _store(self, file_name: str) -> Target:
        return self.database_url or self.root / file_name

    def target(self, store: Store) -> Target:
        """Where `store` lives: the database URL, or its SQLite file in the folder."""
        return self._store(store.file_name)

    @property
    def state_db(self) -> Target:
        """Outbox and suppression list: state.sqlite, or the database URL."""
        return self._store("state.sqlite")

    @property
    def tracking_db(self) -> Target:
        """Tracking events (opens, clicks, unsubscribes, exposures): a SQLite file of its
        own, so a dispatch pass writing the state never makes a click wait. Events of
        older workspaces are moved here from state.sqlite once, by the first opener."""
        return self._store("tracking.sqlite")

    @property
    def audit_db(self) -> Target:
        """The hash-chained audit log (its checkpoints sit beside it)."""
        return self._store("audit.sqlite")

    @property
    def vendor_db(self) -> Target:
        """The video vendor's ledger (renders paid for, fallbacks; its key locks)."""
        return self._store("vendor.sqlite")

    @property
    def metrics_db(self) -> Target:
        """Latency observations and counters (`reelcast metrics`)."""
        return self._store("metrics.sqlite")

    @property
    def models(self) -> Path:
        """The model registry: one folder per trained recommendation model."""
        return self.root / "models"

    @property
    def renders(self) -> Path:
        """Content-addressed videos and posters."""
        return self.root / "renders"

    @property
    def image_cache(self) -> Path:
        """Product pictures fetched by URL, kept to be revalidated (ETag) next time."""
        return self.root / "image-cache"

    @property
    def maildir(self) -> Path:
        """The local SMTP sink's mailbox."""
        return self.root / "mail"

    @property
    def demo_data(self) -> Path:
        """The generated demo retailer's CSV files and images."""
        return self.root / "demo-data"

    def create(self) -> Workspace:
        """Make the folder (and say what it is, for whoever finds it).

        Raises WorkspaceError, naming the folder and the cause, when it cannot be made or
        written (a file in its place, no permission, a read-only or full disk): a run
        finds out here, before it starts, not halfway through.
        """
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            # Permission bits are not enough (root ignores them; read-only mounts): write.
            with tempfile.NamedTemporaryFile(dir=self.root, prefix=".write-check-"):
                pass
            readme = self.root / "README.txt"
            if not readme.exists():
                readme.write_text(
                    "reelcast workspace: state.sqlite (outbox, suppression), tracking.sqlite\n"
                    "(opens, clicks, unsubscribes), renders/ (videos),\n"
                    "mail/ (local mailbox, Maildir), demo-data/ (demo retailer CSVs).\n"
                    "Delete this folder to reset.\n"
                )
        except OSError as exc:
            raise WorkspaceError(
                f"workspace folder {self.root} cannot be written: "
                f"{exc.strerror or exc}{_hint(exc)}; pass --workspace DIR or set "
                "REELCAST_WORKSPACE to a writable folder"
            ) from None
        return self


def _hint(exc: OSError) -> str:
    if exc.errno == errno.ENOSPC:
        return " (disk full: free space on it)"
    if exc.errno in (errno.EEXIST, errno.ENOTDIR):
        return " (a file, not a folder, is in the way)"
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f" (no permission for user id {os.geteuid()}, or a read-only disk)"
    return ""
