"""Where task fan-out runs: threads on this machine, or a Dask cluster."""

from __future__ import annotations

from typing import Any

from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from runtime.settings import Settings


def task_runner(settings: Settings) -> TaskRunner[Any]:
    """Threads by default (ffmpeg does the heavy work in its own process); Dask when
    REELCAST_DASK_ADDRESS names a scheduler."""
    if settings.dask_address:
        from prefect_dask import DaskTaskRunner

        return DaskTaskRunner(address=settings.dask_address)
    return ThreadPoolTaskRunner(max_workers=settings.render_workers)
