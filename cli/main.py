"""The `reelcast` command line."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from cli.common import OneLineUsageErrors, WorkspaceOpt, command_group, context, err, fail
from cli.db import db_app
from cli.emails import email_app
from cli.local_stack import down, up
from cli.ops import audit_app, forget, metrics, suppress_app
from cli.outbox import outbox_app
from cli.params import option_name, with_campaign_options
from cli.pii import pii_app
from cli.recs import recs_app
from cli.templates import template_app
from cli.tracking import gallery_app, report, track_app
from cli.vendor import vendor_sim
from retail.errors import ReelcastError

if TYPE_CHECKING:
    from campaigns.params import CampaignParams
    from campaigns.summary import CampaignSummary
    from runtime.settings import Settings

# Before Prefect is imported anywhere: no telemetry, and keep the terminal for
# progress bars (Prefect's own INFO lines still reach the API and the UI).
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")

app = command_group(
    help="reelcast: personalized video email campaigns for online retailers.\n\n"
    "Start with `reelcast demo`; run your own data with `reelcast campaign run`.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
campaign_app = command_group(
    help="Run campaigns on your own catalog, customers and events.",
    no_args_is_help=True,
)
app.add_typer(campaign_app, name="campaign")

console = Console()

VerboseOpt = Annotated[bool, typer.Option("--verbose", "-v", help="Show Prefect's run logs.")]
ApproverOpt = Annotated[
    str | None,
    typer.Option(
        "--approver",
        metavar="NAME",
        help="Your name or handle, recorded in the audit log as who approved or rejected "
        "the run in this terminal (default: your login name). Auto-approved runs record "
        "'auto'.",
        show_default=False,
    ),
]


def _quiet_prefect(verbose: bool) -> None:
    if not verbose:
        os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "WARNING")


def _run(
    params: CampaignParams, settings: Settings, verbose: bool, approver: str = ""
) -> CampaignSummary:
    """Check the inputs, then run the campaign flow with progress bars; a run that pauses
    for approval asks in the terminal and records `approver` as who answered."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from cli.progress import RichReporter
    from creative.template import load_template
    from retail.loaders import load_retail
    from runtime.progress import reporting
    from runtime.renderers import check_ffmpeg

    # Fail fast, with a clean message, before Prefect starts: a user error raised here
    # (a ReelcastError) reaches main(), which prints it without a traceback.
    with console.status("Checking input files…"):
        settings.open_workspace().create()  # a folder that cannot be written
        check_ffmpeg(settings)
        load_retail(
            Path(params.catalog),
            Path(params.customers),
            Path(params.events),
            params.on_bad_rows,
            check_images=True,
            encoding=params.encoding,
        )
        load_template(settings.templates_dir, params.template, settings.assets_dir)
        settings.claims()

    with console.status("Starting Prefect (first run of a session takes a few seconds)…"):
        from flows.campaign import campaign_flow
        from runtime.runners import task_runner

    flow = campaign_flow.with_options(task_runner=task_runner(settings))
    progress = Progress(
        TextColumn("{task.description:>10}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )
    started = time.monotonic()
    with progress, reporting(RichReporter(progress, approver)):
        summary = flow(params)
    _print_summary(summary, time.monotonic() - started)
    if summary.blocked:
        raise fail(summary.blocked, 1)
    if summary.render_failures:
        count = sum(summary.render_failures.values())
        raise fail(
            f"{count} video(s) could not be made, so those customers were sent nothing "
            f"(the audit log names them by pseudonym): {'; '.join(summary.render_failures)}",
            1,
        )
    if summary.approval == "rejected":
        raise typer.Exit(1)
    return summary


def _print_summary(summary: CampaignSummary, seconds: float) -> None:
    table = Table(
        title=f"Campaign '{summary.campaign}'" + (" — dry run" if summary.dry_run else ""),
        show_header=False,
    )
    table.add_column(style="bold")
    table.add_column(justify="right")
    table.add_row("customers considered", str(summary.considered))
    for reason, count in sorted(summary.excluded.items()):
        table.add_row(f"  excluded: {reason}", str(count))
    table.add_row("eligible", str(summary.eligible))
    table.add_row("selected (--limit)", str(summary.selected))
    table.add_row("videos rendered", f"{summary.rendered} new, {summary.reused_renders} reused")
    for reason, count in sorted(summary.render_failures.items()):
        table.add_row(f"  no video: {reason}", str(count))
    for problem, count in sorted(summary.failed_checks.items()):
        table.add_row(f"  held back: {problem}", str(count))
    if summary.vendor:
        table.add_row("video vendor", ", ".join(f"{k} {v}" for k, v in summary.vendor.items()))
    if summary.approval:
        how = "auto-approved" if summary.approval_note == "auto-approved" else summary.approval
        table.add_row("approval", how)
    if not summary.dry_run:
        table.add_row(
            "emails queued",
            f"{summary.queued} new, {summary.already_queued} already queued by an earlier run",
        )
        table.add_row("emails sent", str(summary.sent))
        waiting = summary.queued - summary.sent - sum(summary.not_sent.values())
        if waiting > 0:
            table.add_row(
                "  scheduled for later",
                f"{waiting} at their best local hour: `reelcast outbox dispatch` sends what "
                "is due (`outbox status` shows when)",
            )
        for reason, count in sorted(summary.not_sent.items()):
            table.add_row(f"  not sent: {reason}", str(count))
    skipped = sum(summary.skipped_rows.values())
    if skipped or summary.unknown_reference_events:
        table.add_row(
            "input rows left out",
            f"{skipped} bad, {summary.unknown_reference_events} events with unknown ids",
        )
    console.print(table)
    console.print(f"Finished in {seconds:.0f} s.")
    console.print(f"  videos and posters: {summary.renders}")
    console.print(f"  preview gallery:    {summary.gallery}")
    if summary.gallery_url:
        console.print(f"    served by `reelcast track serve` at {summary.gallery_url}")
    if not summary.dry_run:
        console.print(f"  mailbox (Maildir):  {summary.maildir}   via {summary.mail_via}")
    console.print("  run details: Prefect UI (`prefect server start`) → Runs → campaign")


@app.command()
def demo(
    limit: Annotated[int, typer.Option(min=1, help="Customers to render and mail.")] = 40,
    workspace: WorkspaceOpt = None,
    seed: Annotated[int, typer.Option(help="Seed of the generated retailer.")] = 7,
    renderer: Annotated[
        str,
        typer.Option(
            help="local: our compositor and ffmpeg on this machine; moviepy: a MoviePy 2 "
            "composition on this machine (pip install 'reelcast[moviepy]'); vendor: through "
            "the video vendor's HTTP API (the demo starts the vendor simulator on 127.0.0.1)."
        ),
    ] = "local",
    verbose: VerboseOpt = False,
) -> None:
    """Generate a demo retailer and run a whole campaign on it, on this machine.

    Writes the retailer's CSV files into the workspace (open and edit them, then run
    `reelcast campaign run` on them), renders the videos and mails them to a local
    SMTP server that stores them in <workspace>/mail. Campaign id: `demo`.
    """
    _quiet_prefect(verbose)
    settings, ws = context(workspace)
    ws.create()
    from creative.encode import find_ffmpeg
    from retail.demo import generate_retailer

    find_ffmpeg()  # the demo renders on this machine (or in the vendor simulator, here too)

    with console.status("Generating the demo retailer…"):
        files = generate_retailer(ws.demo_data, seed=seed)
    console.print(f"Demo retailer written to {ws.demo_data}/ (catalog, customers, events, images)")
    from campaigns.params import CampaignParams

    if renderer not in ("local", "moviepy", "vendor"):
        raise fail("--renderer must be local, moviepy or vendor")
    params = CampaignParams(
        auto_approve=True,
        send_now=True,
        campaign="demo",
        catalog=str(files.catalog),
        customers=str(files.customers),
        events=str(files.events),
        limit=limit,
        workspace=str(settings.workspace),
    )
    if renderer == "moviepy":
        from creative.moviepy_render import MOVIEPY_EXTRA, moviepy_available

        if not moviepy_available():
            raise fail(f"--renderer moviepy needs MoviePy: {MOVIEPY_EXTRA}")
        os.environ["REELCAST_RENDERER"] = "moviepy"  # the flow reads it, in this process
    if renderer in ("local", "moviepy"):
        _run(params, settings, verbose)
        return
    from creative.vendor.simulator import Knobs, VendorSimulator

    knobs = Knobs()
    simulator = VendorSimulator(
        ws.root / "vendor-sim", settings.templates_dir, settings.assets_dir, knobs
    )
    with simulator.serve() as server:
        console.print(f"Vendor simulator on {server.url} (renders for real, behind the API)")
        # The flow reads its settings from the environment, in this same process.
        os.environ.update(
            REELCAST_RENDERER="vendor",
            REELCAST_VENDOR_URL=server.url,
            REELCAST_VENDOR_API_KEY=knobs.api_key,
            REELCAST_VENDOR_WEBHOOK_SECRET=knobs.webhook_secret,
        )
        _run(params, settings, verbose)


@campaign_app.command("run", cls=OneLineUsageErrors)
@with_campaign_options
def campaign_run(
    workspace: WorkspaceOpt = None,
    verbose: VerboseOpt = False,
    approver: ApproverOpt = None,
    **fields: Any,
) -> None:
    """Run a campaign on your own CSV files: audience, picks, videos, checks, emails."""
    if not (fields["auto_approve"] or fields["dry_run"] or sys.stdin.isatty()):
        raise fail(
            "this run needs approval and there is no terminal to ask: pass "
            "--auto-approve, or start it from the Prefect UI (deployment `campaign`)"
        )
    # Only a run that asks in this terminal needs a name: auto-approved runs record "auto".
    approver = "" if fields["auto_approve"] or fields["dry_run"] else _approver(approver)
    _quiet_prefect(verbose)
    settings, _ = context(workspace)
    from datetime import UTC, datetime

    from pydantic import ValidationError

    fields["campaign"] = fields["campaign"] or f"campaign-{datetime.now(UTC):%Y-%m-%d}"
    console.print(f"Campaign id: {fields['campaign']}")
    # The workspace keys "one email per customer per campaign": say which one this is.
    console.print(f"Workspace:   {settings.workspace.resolve()}", highlight=False)

    from campaigns.params import CampaignParams

    try:
        params = CampaignParams(**fields, workspace=str(settings.workspace))
    except ValidationError as exc:
        for e in exc.errors(include_input=False, include_url=False):
            message = e["msg"]
            if e["type"] == "string_pattern_mismatch":
                message = "use 1 to 64 letters, digits, '.', '_' or '-'"
            if e["loc"]:
                fail(f"{option_name(str(e['loc'][0]))}: {message}")
            else:  # a rule across options, e.g. a brand both boosted and blocked
                fail(message.removeprefix("Value error, "))
        raise typer.Exit(2) from None
    _run(params, settings, verbose, approver)


def _approver(given: str | None) -> str:
    """Who answers this terminal's approval question: `--approver`, else the login name."""
    import getpass

    if given is None:
        try:
            given = getpass.getuser()
        except (OSError, KeyError):  # no LOGNAME/USER and no passwd entry (a container)
            raise fail(
                "--approver: your login name is unknown here: pass --approver NAME, the "
                "name or handle of the person who approves this run"
            ) from None
    given = given.strip()
    if not 1 <= len(given) <= 100 or given.lower() == "auto":
        raise fail(
            "--approver: give the name or handle of the person who approves this run "
            "(1 to 100 characters; 'auto' is what auto-approved runs record)"
        )
    return given


app.add_typer(audit_app, name="audit")
app.add_typer(suppress_app, name="suppress")
app.command("up")(up)
app.command("down")(down)
app.command("forget")(forget)
app.command("metrics")(metrics)
app.add_typer(pii_app, name="pii")
app.add_typer(track_app, name="track")
app.add_typer(gallery_app, name="gallery")
app.add_typer(email_app, name="email")
app.add_typer(recs_app, name="recs")
app.add_typer(template_app, name="template")
app.command("vendor-sim")(vendor_sim)
app.add_typer(outbox_app, name="outbox")
app.add_typer(db_app, name="db")
app.command("report")(report)


def main() -> None:
    """Entry point of the `reelcast` command."""
    try:
        app()
    except ReelcastError as exc:  # a user error: one line saying what to do, no traceback
        sys.exit(fail(str(exc)).exit_code)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
