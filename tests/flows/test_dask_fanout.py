"""Renders fan out over a Dask cluster (two worker processes) with the same outputs."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def _outputs(workspace: Path) -> dict[str, str]:
    return {
        p.parent.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted((workspace / "renders").rglob("video.mp4"))
    }


def test_dask_cluster_renders_the_same_videos_as_threads(
    prefect_api, small_retailer, campaign_params, tmp_path, monkeypatch
) -> None:
    from distributed import LocalCluster
    from prefect_dask import DaskTaskRunner

    from flows.campaign import campaign_flow

    # Worker processes report task states to the same Prefect API.
    monkeypatch.setenv("PREFECT_API_URL", prefect_api["api_url"])
    # One key for both runs: pseudonyms (and so headline variants) must match.
    monkeypatch.setenv("REELCAST_PSEUDONYM_SECRET", "s" * 32)

    def params(workspace: Path):  # type: ignore[no-untyped-def]
        return campaign_params(
            campaign="dask",
            limit=4,
            workspace=str(workspace),
            auto_approve=True,
            send_now=True,
        )

    local = campaign_flow(params(tmp_path / "threads"))
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        pids = set(cluster.scheduler_info["workers"])
        assert len(pids) == 2
        on_dask = campaign_flow.with_options(
            task_runner=DaskTaskRunner(address=cluster.scheduler_address)
        )(params(tmp_path / "dask"))
    assert (on_dask.rendered, on_dask.sent) == (local.rendered, local.sent) == (4, 4)
    assert _outputs(tmp_path / "dask") == _outputs(tmp_path / "threads")
    assert os.environ["PREFECT_API_URL"] == prefect_api["api_url"]
