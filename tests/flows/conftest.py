"""Only tests/flows/ pays for a Prefect server: one test harness for the whole folder."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from campaigns.params import CampaignParams
from retail.demo import DemoFiles

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")


@pytest.fixture(scope="session")
def prefect_api() -> Iterator[dict[str, str]]:
    """A Prefect test server on SQLite; yields its API URL and database file.

    The flow heartbeat is off: it costs about a second per flow run in tests.
    """
    from prefect.settings import (
        PREFECT_API_URL,
        PREFECT_FLOWS_HEARTBEAT_FREQUENCY,
        PREFECT_SERVER_DATABASE_CONNECTION_URL,
        temporary_settings,
    )
    from prefect.testing.utilities import prefect_test_harness

    with (
        prefect_test_harness(server_startup_timeout=120),
        temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}),
    ):
        url = PREFECT_SERVER_DATABASE_CONNECTION_URL.value()
        yield {
            "api_url": PREFECT_API_URL.value(),
            "db_path": url.split(":///", 1)[1],
        }


@pytest.fixture(autouse=True)
def _clean_reelcast_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Tests never read a developer's REELCAST_* settings or .env file."""
    for name in list(os.environ):
        if name.startswith("REELCAST_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="session")
def campaign_params(small_retailer: DemoFiles) -> Callable[..., CampaignParams]:
    """Builds the parameters of a campaign on the small demo retailer: the first 4 customers,
    auto-approved, sent at once, into `workspace`; any field can be overridden."""

    def build(workspace: Path, **overrides: Any) -> CampaignParams:
        values: dict[str, Any] = {
            "campaign": "spring",
            "catalog": str(small_retailer.catalog),
            "customers": str(small_retailer.customers),
            "events": str(small_retailer.events),
            "limit": 4,
            # The first 4 of the file: tests name the customers they expect (the random
            # draw is tested in tests/compliance/test_selection.py and the lift tests).
            "limit_order": "file",
            "workspace": str(workspace),
            "auto_approve": True,
            "send_now": True,
        }
        return CampaignParams(**(values | overrides))

    return build
