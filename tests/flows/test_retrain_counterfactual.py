"""The retrain flow's approval gate shows the off-policy estimate beside the offline metrics."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

pytestmark = pytest.mark.slow


def _artifact(key: str) -> str:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    async def read() -> str:
        async with get_client() as client:
            found = await client.read_artifacts(
                artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key]))
            )
        return str(max(found, key=lambda a: a.created).data)

    return asyncio.run(read())


def _log_a_campaign(workspace, retailer, version: str) -> int:  # type: ignore[no-untyped-def]
    """A campaign `spring` as a run with exploration leaves it: the picks (with their
    propensities) in the audit log, every email sent, some slot products clicked."""
    from compliance.audit import AuditLog
    from compliance.pseudonym import pseudonymize
    from delivery.events_store import TrackingEvents
    from delivery.outbox import Outbox, QueuedEmail
    from recs.pick import serve
    from recs.rules import Rules
    from recs.training import as_of, load
    from retail.loaders import load_retail
    from retail.types import EventType
    from runtime.models import open_registry
    from runtime.settings import Settings

    settings = Settings.for_workspace(workspace)
    ws = settings.open_workspace()
    data = load_retail(retailer.catalog, retailer.customers, retailer.events)
    registry = open_registry(settings, ws)
    record = registry.get(version)
    assert record is not None
    now = as_of(data.events)
    ids = [c.id for c in data.customers]
    picks = serve(load(registry, record), ids, n=3, now=now, rules=Rules(epsilon=0.5))
    sent = now + timedelta(hours=6)
    secret = settings.secret()
    with AuditLog(ws.audit_db, key=settings.audit_log_key()) as audit:
        audit.append(
            "pick",
            campaign="spring",
            entries=[
                (
                    pseudonymize(secret, c),
                    {
                        "products": list(p.product_ids),
                        "scores": list(p.scores),
                        "reasons": list(p.reasons),
                        "model_version": p.model_version,
                    },
                )
                for c, p in picks.items()
            ],
        )
    with Outbox(ws.state_db) as outbox:
        outbox.enqueue_many(
            [
                QueuedEmail("spring", c, f"{c}@x.example", b"Subject: x\r\n\r\nx\r\n", sent)
                for c in picks
            ],
            now=sent,
        )
        for item in outbox.claim_due(sent, limit=1000):
            assert outbox.begin_send(item, now=sent)
            outbox.mark_sent(item.id, f"p-{item.id}", now=sent)
    with TrackingEvents.beside(ws.state_db) as tracking:
        for i, (c, p) in enumerate(picks.items()):
            if i % 4 == 0:
                tracking.record(
                    "spring",
                    c,
                    EventType.click,
                    at=sent + timedelta(hours=1),
                    product_id=p.product_ids[-1],
                )
    return len(picks)


def test_the_gate_shows_the_estimate_on_the_latest_logged_campaign(
    prefect_api, small_retailer, tmp_path
) -> None:
    from flows.operations import retrain_flow

    files = {
        "catalog": str(small_retailer.catalog),
        "customers": str(small_retailer.customers),
        "events": str(small_retailer.events),
    }
    first = retrain_flow(**files, workspace=str(tmp_path))
    assert first["counterfactual"] is None
    text = _artifact("recs-latest-model")
    assert "ndcg@10" in text and "no campaign has logged exploration propensities" in text

    mailed = _log_a_campaign(tmp_path, small_retailer, str(first["version"]))
    second = retrain_flow(**files, workspace=str(tmp_path))
    # The campaign's clicks are training data now: a new model, evaluated re-fitted.
    assert second["version"] != first["version"]
    estimate = second["counterfactual"]
    assert isinstance(estimate, dict)
    assert estimate["campaign"] == "spring" and estimate["rounds"] == mailed
    assert estimate["model_version"] == second["version"] != estimate["evaluated_version"]
    text = _artifact("recs-latest-model")
    assert "ndcg@10" in text  # the offline metrics, and beside them:
    assert f"## Counterfactual: model `{second['version']}` on campaign `spring`" in text
    assert "| last slot shows | metric | SNIPS" in text and "re-fitted" in text
    # 120 customers cannot support an estimate of a different model: the gate says why,
    # and still shows what the served model's own choices earned.
    assert f"| model `{estimate['evaluated_version']}` | click rate | — | — |" in text
    assert "- cannot be estimated: " in text
    served = estimate["served"]
    assert isinstance(served, dict) and served["clicks"]["snips"] is not None
