"""`reelcast vendor-sim`: the simulated video vendor on loopback, for demos and manual tests.

Register with `app.command("vendor-sim")(vendor_sim)` in cli/main.py. The simulator speaks
the vendor protocol (creative/vendor/protocol.py) and renders with the local renderer
from the configured templates, so `reelcast demo --renderer vendor` can run against it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def vendor_sim(
    host: Annotated[str, typer.Option(help="Interface to listen on (keep it loopback).")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port to listen on.")] = 8020,
    api_key: Annotated[
        str,
        typer.Option(envvar="REELCAST_VENDOR_API_KEY", help="Bearer key the simulator accepts."),
    ] = "sim-key",
    webhook_secret: Annotated[
        str,
        typer.Option(
            envvar="REELCAST_VENDOR_WEBHOOK_SECRET", help="Secret that signs its webhooks."
        ),
    ] = "sim-webhook-secret",
    latency: Annotated[float, typer.Option(min=0, help="Seconds added to every answer.")] = 0.0,
    queue: Annotated[float, typer.Option(min=0, help="Seconds a job waits before it starts.")] = (
        0.0
    ),
    workers: Annotated[int, typer.Option(min=1, help="Jobs rendering at once.")] = 2,
    failure_rate: Annotated[
        float, typer.Option(min=0, max=1, help="Share of jobs that end 'failed'.")
    ] = 0.0,
    rate_limit: Annotated[
        int, typer.Option(min=0, help="Requests per window before 429 (0: no limit).")
    ] = 30,
    rate_window: Annotated[float, typer.Option(min=0.1, help="Rate-limit window, seconds.")] = (
        10.0
    ),
    retry_after: Annotated[bool, typer.Option(help="Send Retry-After with a 429.")] = True,
    error_rate: Annotated[
        float, typer.Option(min=0, max=1, help="Share of requests answered 503.")
    ] = 0.0,
    fail_before_create: Annotated[
        int, typer.Option(min=0, help="The first N creates fail with 500, creating nothing.")
    ] = 0,
    fail_after_create: Annotated[
        int, typer.Option(min=0, help="The first N creates make the job, then answer 502.")
    ] = 0,
    credits: Annotated[
        float | None, typer.Option(min=0, help="Render seconds on the account (402 after).")
    ] = None,
    webhook_drop_rate: Annotated[
        float, typer.Option(min=0, max=1, help="Share of webhooks never sent.")
    ] = 0.0,
    webhook_duplicates: Annotated[
        int, typer.Option(min=0, help="Extra copies of every webhook.")
    ] = 0,
    webhook_out_of_order: Annotated[
        bool, typer.Option(help="Send a stale status after the final one.")
    ] = False,
    url_ttl: Annotated[float, typer.Option(min=0.001, help="Result URL lifetime, seconds.")] = (
        3600.0
    ),
    seed: Annotated[int, typer.Option(help="Seed of the injected randomness.")] = 0,
    workspace: Annotated[
        Path | None,
        typer.Option(
            help="Folder for the simulator's uploads and renders"
            " (default: <workspace>/vendor-sim).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Run a simulated video vendor (Creatomate-v2-style API) until Ctrl-C."""
    from creative.vendor.simulator import Knobs, VendorSimulator
    from runtime.settings import Settings

    settings = Settings()
    knobs = Knobs(
        api_key=api_key,
        webhook_secret=webhook_secret,
        latency_s=latency,
        queue_s=queue,
        workers=workers,
        failure_rate=failure_rate,
        rate_limit=rate_limit,
        rate_window_s=rate_window,
        retry_after=retry_after,
        error_rate=error_rate,
        fail_before_create=fail_before_create,
        fail_after_create=fail_after_create,
        credits_s=credits,
        webhook_drop_rate=webhook_drop_rate,
        webhook_duplicates=webhook_duplicates,
        webhook_out_of_order=webhook_out_of_order,
        url_ttl_s=url_ttl,
        seed=seed,
    )
    folder = workspace or settings.workspace / "vendor-sim"
    simulator = VendorSimulator(folder, settings.templates_dir, settings.assets_dir, knobs)
    typer.echo(
        f"vendor simulator on http://{host}:{port} (templates: {settings.templates_dir},"
        f" files: {folder}); Ctrl-C stops it"
    )
    simulator.serve_forever(host, port)
