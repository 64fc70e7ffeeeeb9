"""The campaign flow under a real Prefect server: files in, emails in a Maildir, once."""

from __future__ import annotations

import json
import mailbox
import os
import re
import subprocess
import sys
from email.utils import parseaddr
from pathlib import Path

import pytest

from creative.probe import check_video, probe_video
from retail.loaders import load_retail

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def first_run(prefect_api, campaign_params, tmp_path_factory):
    """One campaign run (4 customers) and its Prefect flow-run id."""
    from flows.campaign import campaign_flow

    workspace = tmp_path_factory.mktemp("workspace")
    state = campaign_flow(campaign_params(workspace), return_state=True)
    return workspace, state.result(), state.state_details.flow_run_id


def test_every_selected_consenting_customer_gets_one_email_with_a_valid_video(
    first_run, small_retailer
) -> None:
    workspace, summary, _ = first_run
    data = load_retail(small_retailer.catalog, small_retailer.customers, small_retailer.events)
    assert summary.considered == len(data.customers)
    assert summary.eligible + sum(summary.excluded.values()) == summary.considered
    assert summary.selected == 4
    assert summary.sent == 4
    messages = list(mailbox.Maildir(workspace / "mail", create=False))
    assert len(messages) == 4
    from compliance.audience import select_audience, unsubscribed_in

    audience = select_audience(data.customers, suppressed=unsubscribed_in(data.events))
    eligible = {str(c.email) for c in audience.eligible}
    assert all(c.marketing_consent != "denied" for c in audience.eligible)
    recipients = {parseaddr(m["To"])[1] for m in messages}
    assert len(recipients) == 4
    assert recipients <= eligible
    assert all(m["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click" for m in messages)
    videos = sorted((workspace / "renders").rglob("video.mp4"))
    assert len(videos) == 4
    for video in videos:
        assert check_video(probe_video(video)) == []
        assert (video.parent / "poster.jpg").stat().st_size > 1000


def _run_artifacts(flow_run_id) -> dict[str, object]:
    """Artifact key → data, for the artifacts of one flow run."""
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

    return {a.key: a.data for a in asyncio.run(read()) if a.key}


def _markdown_table(markdown: str, header: str) -> dict[str, int]:
    lines = markdown.splitlines()
    start = lines.index(header) + 2  # past the header and the |---|---| line
    table = {}
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        name, count = (cell.strip() for cell in line.strip("|").split("|"))
        table[name] = int(count)
    return table


def test_summary_artifact_counts_picks_per_source_and_reason(first_run) -> None:
    """The per-source and per-reason tables agree with the picks table they summarise."""
    _, summary, flow_run_id = first_run
    artifacts = _run_artifacts(flow_run_id)
    markdown = str(artifacts["campaign-spring-summary"])
    picks = artifacts["campaign-spring-picks"]
    rows = json.loads(picks) if isinstance(picks, str) else picks
    assert len(rows) == 4
    slots = [
        (product, reason)
        for row in rows
        for product, reason in zip(
            row["products"].split(", "), row["reasons"].split(", "), strict=True
        )
    ]
    sources = _markdown_table(markdown, "| candidate source (slots) | count |")
    reasons = _markdown_table(markdown, "| why a product was picked | slots |")
    assert sources and reasons
    assert (sources, reasons) == (summary.sources, summary.reasons)
    assert sum(reasons.values()) == len(slots) == 4 * 3
    ranked = [
        r.split(";", 1)[0].removeprefix("source=") for _, r in slots if r.startswith("source=")
    ]
    assert reasons.get("ranked", 0) == len(ranked)
    assert sum(sources.values()) == sum(len(r.split("+")) for r in ranked)


def test_a_blocked_brand_never_appears_in_the_picks(
    first_run, small_retailer, campaign_params, tmp_path
) -> None:
    """Block the brand the first run picked most (and try MMR diversity and a brand boost):
    the same customers get full picks without a single product of that brand."""
    from collections import Counter

    from compliance.audit import AuditLog
    from flows.campaign import campaign_flow

    data = load_retail(small_retailer.catalog, small_retailer.customers, small_retailer.events)
    brand_of = {p.id: p.brand for p in data.products}

    def picked(workspace: Path, campaign: str) -> list[list[str]]:
        with AuditLog(workspace / "audit.sqlite") as log:
            records = log.records(campaign=campaign)
        return [list(r.data["products"]) for r in records if r.kind == "pick"]

    workspace, _, _ = first_run
    before = Counter(brand_of[pid] for products in picked(workspace, "spring") for pid in products)
    blocked = before.most_common(1)[0][0]
    boosted = next(b for b in sorted(set(brand_of.values())) if b != blocked)
    summary = campaign_flow(
        campaign_params(
            tmp_path,
            campaign="no-brand",
            dry_run=True,
            block_brands=blocked,
            boost_brands=boosted,
            diversity="mmr",
            explore_rate=0.5,
        )
    )
    after = picked(tmp_path, "no-brand")
    assert summary.selected == 4 and len(after) == 4
    assert all(len(products) == 3 for products in after)
    assert blocked not in {brand_of[pid] for products in after for pid in products}


def test_running_the_same_campaign_again_sends_nothing_and_renders_nothing(
    first_run, campaign_params
) -> None:
    from rich.console import Console
    from rich.progress import Progress

    from cli.progress import RichReporter
    from flows.campaign import campaign_flow
    from runtime.progress import reporting

    workspace, _, _ = first_run
    progress = Progress(console=Console(file=open(os.devnull, "w")))  # noqa: SIM115
    with progress, reporting(RichReporter(progress)):
        again = campaign_flow(campaign_params(workspace))
    assert (again.sent, again.queued, again.already_queued) == (0, 0, 4)
    assert (again.rendered, again.reused_renders) == (0, 4)
    assert len(list(mailbox.Maildir(workspace / "mail", create=False))) == 4
    # The terminal's bars show the skipped stages done, and why, not stuck at 0/4.
    bars = {t.description: (t.completed, t.total) for t in progress.tasks}
    assert bars == {
        "recommend": (4, 4),
        "render (4 reused)": (4, 4),
        "email (4 already queued)": (4, 4),
        "send (4 already queued or sent)": (4, 4),
    }


def test_dry_run_renders_and_checks_but_sends_nothing(prefect_api, campaign_params, tmp_path):
    from flows.campaign import campaign_flow

    summary = campaign_flow(campaign_params(tmp_path, dry_run=True, limit=2))
    assert summary.selected == 2 and summary.sent == 0 and summary.queued == 0
    assert not (tmp_path / "mail").exists() or not list(mailbox.Maildir(tmp_path / "mail"))


def _personal_values(retailer) -> list[str]:
    data = load_retail(retailer.catalog, retailer.customers, retailer.events)
    values = []
    for c in data.customers:
        values.append(str(c.email))
        values.append(str(c.email).split("@")[0])
        if c.last_name:
            values.append(f"{c.first_name} {c.last_name}")
        if c.phone:
            values.append(c.phone)
    return values


def _names(retailer) -> set[str]:
    data = load_retail(retailer.catalog, retailer.customers, retailer.events)
    return {c.first_name for c in data.customers} | {
        c.last_name for c in data.customers if c.last_name
    }


def test_no_personal_data_in_prefect_logs_task_names_or_artifacts(first_run, small_retailer):
    import asyncio

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        FlowRunFilter,
        FlowRunFilterId,
        LogFilter,
        LogFilterFlowRunId,
    )

    _, _, flow_run_id = first_run

    async def collect() -> list[str]:
        async with get_client() as client:
            logs = await client.read_logs(
                log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id]))
            )
            tasks = await client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
            )
            artifacts = await client.read_artifacts(artifact_filter=ArtifactFilter())
            run = await client.read_flow_run(flow_run_id)
        return (
            [log.message for log in logs]
            + [t.name for t in tasks]
            + [str(a.data) for a in artifacts]
            + [str(run.parameters), run.name]
        )

    texts = asyncio.run(collect())
    assert any("render-cu_" in t for t in texts), "render tasks are named by pseudonym"
    assert any("| customers considered |" in t for t in texts), "summary artifact exists"
    blob = "\n".join(texts)
    leaks = [v for v in _personal_values(small_retailer) if v.lower() in blob.lower()]
    assert leaks == []
    words = set(re.findall(r"[^\W\d_]+", blob))
    assert words & _names(small_retailer) == set()


def test_no_personal_data_stored_by_the_prefect_server(first_run, prefect_api, small_retailer):
    """Everything the server keeps (logs, states, parameters, artifacts) is in its database."""
    stored = b""
    for suffix in ("", "-wal"):
        path = Path(prefect_api["db_path"] + suffix)
        if path.exists():
            stored += path.read_bytes()
    text = stored.decode("utf-8", "ignore").lower()
    assert "render-cu_" in text
    assert [v for v in _personal_values(small_retailer) if v.lower() in text] == []


def test_demo_command_summary_has_counts_and_no_personal_data(prefect_api, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("REELCAST_")}
    env["PREFECT_API_URL"] = prefect_api["api_url"]
    env["COLUMNS"] = "120"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "cli.main",
            "demo",
            "--limit",
            "2",
            "--workspace",
            str(tmp_path / "ws"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout + result.stderr
    assert "customers considered" in out and "emails sent" in out
    assert re.search(r"emails sent\s*│\s*2\s*│", out)
    assert "excluded: consent-denied" in out
    assert "Traceback" not in out

    from retail.demo import DemoFiles

    ws = tmp_path / "ws" / "demo-data"
    demo = DemoFiles(ws / "catalog.csv", ws / "customers.csv", ws / "events.csv", ws / "images")
    assert [v for v in _personal_values(demo) if v.lower() in out.lower()] == []
    assert set(re.findall(r"[^\W\d_]+", out)) & _names(demo) == set()
    assert len(list(mailbox.Maildir(tmp_path / "ws" / "mail", create=False))) == 2


@pytest.mark.slow
def test_demo_through_the_video_vendor_simulator(prefect_api, tmp_path):
    """`reelcast demo --renderer vendor`: renders go over real HTTP to the simulator, the
    summary names the vendor, and the vendor's latency is its own metrics stage."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("REELCAST_")}
    env["PREFECT_API_URL"] = prefect_api["api_url"]
    env["COLUMNS"] = "120"
    ws = tmp_path / "ws"
    command = [sys.executable, "-m", "cli.main", "demo", "--limit", "2", "--renderer", "vendor"]
    result = subprocess.run(
        [*command, "--workspace", str(ws)],
        capture_output=True, text=True, env=env, timeout=600, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout + result.stderr
    assert "video vendor" in out and "Traceback" not in out
    assert len(list(mailbox.Maildir(ws / "mail", create=False))) == 2
    metrics = subprocess.run(
        [sys.executable, "-m", "cli.main", "metrics", "--workspace", str(ws)],
        capture_output=True, text=True, env=env, timeout=120, check=True,
    )  # fmt: skip
    assert 'reelcast_stage_seconds_count{stage="vendor"} 2' in metrics.stdout
    assert 'stage="render"' not in metrics.stdout


def test_without_send_now_emails_wait_for_each_customers_local_hour(
    prefect_api, small_retailer, campaign_params, tmp_path
):
    from zoneinfo import ZoneInfo

    from delivery.outbox import Outbox
    from flows.campaign import campaign_flow

    summary = campaign_flow(campaign_params(tmp_path, send_now=False, limit=3))
    assert summary.queued == 3
    data = load_retail(small_retailer.catalog, small_retailer.customers, small_retailer.events)
    zones = {c.id: ZoneInfo(c.timezone) for c in data.customers}
    with Outbox(tmp_path / "state.sqlite") as outbox:
        items = outbox.items(campaign_id="spring")
    assert len(items) == 3
    for item in items:
        local = item.due_at.astimezone(zones[item.customer_id])
        assert 8 <= local.hour < 21, "never in the quiet hours"
    assert summary.sent == sum(1 for i in items if i.state == "sent")
