"""prefect.yaml: every deployment runs a real flow, on a named schedule, pulled explicitly."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
CONFIG = yaml.safe_load((REPO / "prefect.yaml").read_text())
DEPLOYMENTS = {d["name"]: d for d in CONFIG["deployments"]}


def test_the_pull_step_sets_the_working_directory() -> None:
    steps = [next(iter(step)) for step in CONFIG["pull"]]
    assert steps[-1] == "prefect.deployments.steps.set_working_directory"


@pytest.mark.parametrize("name", sorted(DEPLOYMENTS))
def test_each_deployment_names_a_flow_and_slugs_its_schedules(name: str) -> None:
    from prefect import Flow

    deployment = DEPLOYMENTS[name]
    path, function = deployment["entrypoint"].split(":")
    module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
    assert isinstance(getattr(module, function), Flow)
    schedules = deployment.get("schedules") or []
    assert schedules, f"{name} has no schedule"
    assert all(s.get("slug") for s in schedules), f"{name}: every schedule needs a slug"


@pytest.mark.parametrize("name", ["dispatch", "retrain"])
def test_dispatch_and_retraining_run_one_at_a_time(name: str) -> None:
    from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy

    limit = ConcurrencyLimitConfig.model_validate(DEPLOYMENTS[name]["concurrency_limit"])
    assert limit.limit == 1
    assert limit.collision_strategy is ConcurrencyLimitStrategy.CANCEL_NEW
