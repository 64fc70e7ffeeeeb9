"""A campaign pauses for approval after its checks; the decision is taken through the API."""

from __future__ import annotations

import mailbox
import os
import threading
import time
from pathlib import Path
from uuid import UUID

import pytest

pytestmark = pytest.mark.slow


def _run_paused(
    campaign_params, workspace: Path, answer: dict, *, refused: dict | None = None
) -> tuple[object, list[str]]:
    """Start the flow in a thread, wait until it pauses, answer the form (with `refused`
    first, which the form must refuse), return the result."""
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
    if refused is not None:
        with pytest.raises(RuntimeError, match="approver"):
            resume_flow_run(paused, run_input=refused)
    resume_flow_run(paused, run_input=answer)
    thread.join(timeout=300)
    assert not thread.is_alive()
    _ = FlowRunFilterState
    return result["summary"], [m["To"] for m in mailbox.Maildir(workspace / "mail")]


def test_approved_campaign_sends_after_the_pause(prefect_api, campaign_params, tmp_path):
    summary, sent = _run_paused(
        campaign_params,
        tmp_path,
        {"approve": True, "approver": " dana.k ", "note": "looks good"},
        refused={"approve": True, "note": "who am I?"},  # the form wants a name
    )
    assert summary.approval == "approved" and summary.sent == 2 and len(sent) == 2
    assert Path(summary.gallery).is_file()
    assert "cu_" in Path(summary.gallery).read_text()

    from compliance.audit import AuditLog

    with AuditLog(tmp_path / "audit.sqlite") as log:
        approvals = [r for r in log.records() if r.kind == "approval"]
    assert approvals[0].data == {"approved": True, "note": "looks good", "by": "dana.k"}


def test_rejected_campaign_sends_nothing(prefect_api, campaign_params, tmp_path):
    summary, sent = _run_paused(
        campaign_params, tmp_path, {"approve": False, "approver": "sam", "note": "no"}
    )
    assert summary.approval == "rejected" and summary.sent == 0 and summary.queued == 0
    assert sent == []


def test_the_terminal_records_the_approver_given_on_the_command_line(
    prefect_api, campaign_params, tmp_path, monkeypatch
):
    """`campaign run --approver alice` answers the pause from the terminal as alice."""
    from rich.console import Console
    from rich.progress import Progress

    import cli.progress
    from cli.progress import RichReporter
    from compliance.audit import AuditLog
    from flows.campaign import campaign_flow
    from runtime.progress import reporting

    answers = iter(["y", "fine by me"])
    monkeypatch.setattr(cli.progress, "read_answer", lambda console, prompt: next(answers))
    params = campaign_params(
        campaign="approval-terminal",
        limit=2,
        workspace=str(tmp_path),
        send_now=True,
        auto_approve=False,
    )
    progress = Progress(console=Console(file=open(os.devnull, "w")))  # noqa: SIM115
    with progress, reporting(RichReporter(progress, "alice")):
        summary = campaign_flow(params)
    assert summary.approval == "approved" and summary.sent == 2
    with AuditLog(tmp_path / "audit.sqlite") as log:
        approvals = [r.data for r in log.records() if r.kind == "approval"]
    assert approvals == [{"approved": True, "note": "fine by me", "by": "alice"}]


def test_an_auto_approved_run_records_auto(prefect_api, campaign_params, tmp_path):
    from compliance.audit import AuditLog
    from flows.campaign import campaign_flow

    campaign_flow(campaign_params(campaign="approval-auto", limit=1, workspace=str(tmp_path)))
    with AuditLog(tmp_path / "audit.sqlite") as log:
        approvals = [r.data for r in log.records() if r.kind == "approval"]
    assert approvals == [{"approved": True, "note": "auto-approved", "by": "auto"}]
