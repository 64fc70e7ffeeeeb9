"""A campaign pauses for approval after its checks; the decision is taken through the API."""

from __future__ import annotations

import mailbox
import threading
import time
from pathlib import Path
from uuid import UUID

import pytest

pytestmark = pytest.mark.slow


def _run_paused(campaign_params, workspace: Path, answer: dict) -> tuple[object, list[str]]:
    """Start the flow in a thread, wait until it pauses, answer the form, return the result."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterState
    from prefect.client.schemas.objects import StateType
    from prefect.flow_runs import resume_flow_run

    from flows.campaign import campaign_flow

    params = campaign_params(
        campaign=f"approval-{answer['approve']}",
        limit=2,
        workspace=str(workspace),
        send_now=True,
        auto_approve=False,
    )
    result: dict[str, object] = {}
    thread = threading.Thread(target=lambda: result.update(summary=campaign_flow(params)))
    thread.start()
    paused: UUID | None = None
    with get_client(sync_client=True) as client:
        for _ in range(300):
            runs = client.read_flow_runs(
                flow_run_filter=FlowRunFilter(state={"type": {"any_": [StateType.PAUSED]}})
            )
            if runs:
                paused = runs[0].id
                break
            time.sleep(0.5)
    assert paused is not None, "the run never paused for approval"
    assert not list(mailbox.Maildir(workspace / "mail", create=True)), "nothing before approval"
    resume_flow_run(paused, run_input=answer)
    thread.join(timeout=300)
    assert not thread.is_alive()
    _ = FlowRunFilterState
    return result["summary"], [m["To"] for m in mailbox.Maildir(workspace / "mail")]


def test_approved_campaign_sends_after_the_pause(prefect_api, campaign_params, tmp_path):
    summary, sent = _run_paused(campaign_params, tmp_path, {"approve": True, "note": "looks good"})
    assert summary.approval == "approved" and summary.sent == 2 and len(sent) == 2
    assert Path(summary.gallery).is_file()
    assert "cu_" in Path(summary.gallery).read_text()

    from compliance.audit import AuditLog

    with AuditLog(tmp_path / "audit.sqlite") as log:
        approvals = [r for r in log.records() if r.kind == "approval"]
    assert approvals[0].data == {"approved": True, "note": "looks good", "by": "operator"}


def test_rejected_campaign_sends_nothing(prefect_api, campaign_params, tmp_path):
    summary, sent = _run_paused(campaign_params, tmp_path, {"approve": False, "note": "no"})
    assert summary.approval == "rejected" and summary.sent == 0 and summary.queued == 0
    assert sent == []
