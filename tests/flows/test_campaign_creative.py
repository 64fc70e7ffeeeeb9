"""The campaign flow's creative gates: video QC, per-customer personalization, vendor fallback."""

from __future__ import annotations

import csv
import json
import mailbox
import re
import socket
from email.utils import parseaddr
from pathlib import Path

import pytest

from retail.loaders import load_retail
from retail.types import Customer

pytestmark = pytest.mark.slow


def _eligible(retailer) -> list[Customer]:
    """The eligible customers in the order the flow takes them (fresh workspace, no holdout)."""
    from compliance.audience import select_audience, unsubscribed_in

    data = load_retail(retailer.catalog, retailer.customers, retailer.events)
    return select_audience(data.customers, suppressed=unsubscribed_in(data.events)).eligible


def _pseudonym(workspace: Path, customer_id: str) -> str:
    from compliance.pseudonym import pseudonymize
    from runtime.settings import Settings

    return pseudonymize(Settings(workspace=workspace).secret(), customer_id)


def _audit(workspace: Path, subject: str) -> list:
    from compliance.audit import AuditLog

    with AuditLog(workspace / "audit.sqlite") as log:
        return log.records(subject=subject)


def _summary_artifact(flow_run_id) -> str:
    import asyncio

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    async def read() -> list:
        async with get_client() as client:
            return await client.read_artifacts(
                artifact_filter=ArtifactFilter(
                    flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])
                )
            )

    summaries = [a for a in asyncio.run(read()) if (a.key or "").endswith("-summary")]
    assert len(summaries) == 1
    return str(summaries[0].data)


def _has_word(word: str, texts: list[str]) -> bool:
    return any(re.search(rf"(?<!\w){re.escape(word)}(?!\w)", text) for text in texts)


def test_a_video_failing_qc_keeps_its_customer_out_of_the_send_with_the_reason(
    prefect_api, small_retailer, campaign_params, tmp_path, monkeypatch
) -> None:
    """One customer's rendered file is damaged before QC: the real QC rejects it, the others
    are sent, and the reason is counted in the summary and audited under the pseudonym."""
    import campaigns.checks as checks
    from delivery.outbox import Outbox
    from flows import campaign

    chosen = _eligible(small_retailer)[:3]
    target = chosen[1]
    real_video_problems = checks.video_problems

    def damaging(job, render):  # type: ignore[no-untyped-def]
        if job.customer.id == target.id:
            data = render.video.read_bytes()
            render.video.write_bytes(data[: len(data) // 3])
        return real_video_problems(job, render)

    monkeypatch.setattr(checks, "video_problems", damaging)
    ws = tmp_path / "ws"
    summary = campaign.campaign_flow(campaign_params(ws, campaign="qc", limit=3))

    assert summary.selected == 3
    assert (summary.queued, summary.sent) == (2, 2)
    video_failures = {k: v for k, v in summary.failed_checks.items() if k.startswith("video: ")}
    assert video_failures and all(count == 1 for count in video_failures.values())
    with Outbox(ws / "state.sqlite") as outbox:
        assert outbox.get("qc", target.id) is None
        assert all(outbox.get("qc", c.id) is not None for c in chosen if c is not target)
    recipients = {parseaddr(m["To"])[1] for m in mailbox.Maildir(ws / "mail", create=False)}
    assert recipients == {str(c.email) for c in chosen if c is not target}

    pseudonym = _pseudonym(ws, target.id)
    records = _audit(ws, pseudonym)
    verdicts = [r.data for r in records if r.kind == "verdict"]
    assert len(verdicts) == 1 and verdicts[0]["ok"] is False
    assert any(reason in str(verdicts[0]["check"]) for reason in video_failures)
    assert "send" not in {r.kind for r in records}
    audited = json.dumps([r.data for r in records] + [r.subject for r in records])
    assert str(target.email) not in audited and target.id not in audited
    assert not _has_word(target.first_name, [audited])


def test_a_customer_who_opted_out_of_personalization_gets_no_first_name(
    prefect_api, small_retailer, campaign_params, tmp_path, monkeypatch
) -> None:
    import campaigns.plan as plan
    from flows import campaign

    opted_out, opted_in = _eligible(small_retailer)[:2]
    customers = tmp_path / "customers.csv"
    with small_retailer.customers.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        row["personalization"] = {opted_out.id: "no", opted_in.id: "yes"}.get(row["id"], "")
    with customers.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)

    # Every customer gets the headline that greets by name (its fallback has no name).
    monkeypatch.setattr(plan, "assign_variant", lambda customer_id, campaign, template: 0)
    texts: dict[str, list[str]] = {}
    real_build = plan.build_storyboard

    def recording(template, pick, products, customer, **kwargs):  # type: ignore[no-untyped-def]
        storyboard = real_build(template, pick, products, customer, **kwargs)
        texts[customer.id] = storyboard.texts()
        return storyboard

    monkeypatch.setattr(plan, "build_storyboard", recording)
    summary = campaign.campaign_flow(
        campaign_params(
            tmp_path / "ws", campaign="creative", limit=2, customers=str(customers), dry_run=True
        )
    )

    assert summary.selected == 2 and summary.failed_checks == {}
    assert set(texts) == {opted_out.id, opted_in.id}
    assert not _has_word(opted_out.first_name, texts[opted_out.id])
    assert _has_word(opted_in.first_name, texts[opted_in.id])


@pytest.fixture
def refused_port():
    """A port bound for the whole test but never listening: connections to it are refused."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        yield held.getsockname()[1]


def test_a_dead_vendor_falls_back_to_local_renders_and_the_artifact_says_who_and_why(
    prefect_api, small_retailer, campaign_params, tmp_path, monkeypatch, refused_port
) -> None:
    from creative.vendor import config
    from flows.campaign import campaign_flow

    port = refused_port
    monkeypatch.setenv("REELCAST_RENDERER", "vendor")
    monkeypatch.setenv("REELCAST_VENDOR_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("REELCAST_VENDOR_API_KEY", "test-key")

    class Impatient(config.VendorConfig):  # two quick tries, not the real API's patience
        attempts: int = 2
        backoff_s: float = 0.01

    monkeypatch.setattr(config, "VendorConfig", Impatient)
    ws = tmp_path / "ws"
    state = campaign_flow(campaign_params(ws, campaign="fallback", limit=2), return_state=True)
    summary = state.result()

    chosen = _eligible(small_retailer)[:2]
    pseudonyms = {_pseudonym(ws, c.id) for c in chosen}
    assert summary.sent == 2 and summary.failed_checks == {}
    assert summary.vendor["rendered locally instead"] == 2
    assert set(summary.rendered_locally) == pseudonyms
    assert all(r.startswith("VendorUnavailable: ") for r in summary.rendered_locally.values())

    markdown = _summary_artifact(state.state_details.flow_run_id)
    assert "| rendered locally instead of at the vendor (customer) | why |" in markdown
    for pseudonym, reason in summary.rendered_locally.items():
        assert f"| {pseudonym} | {reason} |" in markdown
    for c in chosen:
        assert str(c.email) not in markdown and c.id not in markdown
        assert not _has_word(c.first_name, [markdown])
        renders = [r.data for r in _audit(ws, _pseudonym(ws, c.id)) if r.kind == "render"]
        assert renders and renders[0]["rendered_locally"].startswith("VendorUnavailable: ")
