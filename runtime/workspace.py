"""Where a run's files live inside the workspace folder."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Workspace:
    """Paths inside one workspace. Deleting the folder resets everything."""

    root: Path

    @property
    def state_db(self) -> Path:
        """SQLite state: outbox, suppression list."""
        return self.root / "state.sqlite"

    @property
    def tracking_db(self) -> Path:
        """Tracking events (opens, clicks, unsubscribes, exposures): a database of its
        own, so a dispatch pass writing the state never makes a click wait. Events of
        older workspaces are moved here from state.sqlite once, by the first opener."""
        return self.root / "tracking.sqlite"

    @property
    def audit_db(self) -> Path:
        """The hash-chained audit log (its checkpoints sit beside it)."""
        return self.root / "audit.sqlite"

    @property
    def metrics_db(self) -> Path:
        """Latency observations and counters (`reelcast metrics`)."""
        return self.root / "metrics.sqlite"

    @property
    def models(self) -> Path:
        """The model registry: one folder per trained recommendation model."""
        return self.root / "models"

    @property
    def renders(self) -> Path:
        """Content-addressed videos and posters."""
        return self.root / "renders"

    @property
    def maildir(self) -> Path:
        """The local SMTP sink's mailbox."""
        return self.root / "mail"

    @property
    def demo_data(self) -> Path:
        """The generated demo retailer's CSV files and images."""
        return self.root / "demo-data"

    def create(self) -> Workspace:
        """Make the folder (and say what it is, for whoever finds it)."""
        self.root.mkdir(parents=True, exist_ok=True)
        readme = self.root / "README.txt"
        if not readme.exists():
            readme.write_text(
                "reelcast workspace: state.sqlite (outbox, suppression), tracking.sqlite\n"
                "(opens, clicks, unsubscribes), renders/ (videos),\n"
                "mail/ (local mailbox, Maildir), demo-data/ (demo retailer CSVs).\n"
                "Delete this folder to reset.\n"
            )
        return self
