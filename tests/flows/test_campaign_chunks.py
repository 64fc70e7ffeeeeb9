"""A campaign cut into chunks of customers does what the same campaign does in one piece.

The flow picks, renders, checks, queues and sends a chunk of customers at a time, so a
100,000-customer list does not hold 100,000 storyboards (tens of kB each) at once. The
chunks must not change a thing a customer or the audit log sees.
"""

from __future__ import annotations

import asyncio
import mailbox
from collections import Counter
from email.utils import parseaddr
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

SECRET = "chunk-test-secret-0123456789abcdef"


def _run(campaign_params, workspace: Path, monkeypatch, chunk: int | None) -> tuple[Any, Any]:
    from flows.campaign import campaign_flow

    monkeypatch.setenv("REELCAST_PSEUDONYM_SECRET", SECRET)
    if chunk is None:
        monkeypatch.delenv("REELCAST_CAMPAIGN_CHUNK", raising=False)
    else:
        monkeypatch.setenv("REELCAST_CAMPAIGN_CHUNK", str(chunk))
    state = campaign_flow(campaign_params(workspace, limit=7), return_state=True)
    return state.result(), state.state_details.flow_run_id


def _picks(workspace: Path) -> dict[str, list[str]]:
    from compliance.audit import AuditLog
    from runtime.settings import Settings

    key = Settings(workspace=workspace).audit_log_key()
    with AuditLog(workspace / "audit.sqlite", key=key) as log:
        assert log.verify().ok
        return {
            str(r.subject): list(r.data["products"])
            for r in log.records(campaign="spring")
            if r.kind == "pick"
        }


def _rules(workspace: Path) -> list[dict[str, object]]:
    from compliance.audit import AuditLog
    from runtime.settings import Settings

    key = Settings(workspace=workspace).audit_log_key()
    with AuditLog(workspace / "audit.sqlite", key=key) as log:
        return [r.data for r in log.records(campaign="spring", kind="rules")]


def _task_counts(flow_run_id) -> Counter[str]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    async def read() -> list:
        async with get_client() as client:
            return await client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
            )

    return Counter(t.name.rsplit("-", 1)[0] for t in asyncio.run(read()))


def test_chunks_send_what_one_piece_sends(
    prefect_api, campaign_params, tmp_path, monkeypatch
) -> None:
    chunked, run_id = _run(campaign_params, tmp_path / "chunked", monkeypatch, chunk=3)
    whole, _ = _run(campaign_params, tmp_path / "whole", monkeypatch, chunk=None)

    assert (chunked.selected, chunked.sent, chunked.queued) == (7, 7, 7)
    assert (whole.selected, whole.sent, whole.queued) == (7, 7, 7)
    assert (chunked.sources, chunked.reasons) == (whole.sources, whole.reasons)
    assert chunked.rendered + chunked.reused_renders == 7
    assert chunked.failed_checks == whole.failed_checks == {}
    # The rules the picks followed are in the audit log, for the counterfactual report.
    from recs.rules import Rules

    (recorded,) = _rules(tmp_path / "whole")
    assert Rules.from_params(recorded) == campaign_params(tmp_path / "whole", limit=7).rules()

    mails = {
        name: [parseaddr(m["To"])[1] for m in mailbox.Maildir(tmp_path / name / "mail")]
        for name in ("chunked", "whole")
    }
    assert len(mails["chunked"]) == len(set(mails["chunked"])) == 7, "each customer once"
    assert sorted(mails["chunked"]) == sorted(mails["whole"])
    assert _picks(tmp_path / "chunked") == _picks(tmp_path / "whole")

    tasks = _task_counts(run_id)
    for name in ("pick_products", "check_all", "queue_all", "send_queued"):
        assert tasks[name] == 3, f"{name}: a run per chunk of 3, 3 and 1 customers"
    assert tasks["record_sends"] == 1
