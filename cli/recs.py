"""`reelcast recs`: train, evaluate, list and approve recommendation models."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from cli.common import EncodingName, EncodingOpt, WorkspaceOpt, command_group, context, fail

if TYPE_CHECKING:
    from retail.loaders import RetailData

console = Console()
err = Console(stderr=True)
recs_app = command_group(
    help="Recommendation models: train, evaluate offline, list, approve.",
    no_args_is_help=True,
)

CatalogOpt = Annotated[Path, typer.Option(help="Catalog CSV.")]
CustomersOpt = Annotated[Path, typer.Option(help="Customers CSV.")]
EventsOpt = Annotated[
    Path, typer.Option(help="Events: CSV, gzipped CSV (.gz) or Parquet (.parquet).")
]


def _load(catalog: Path, customers: Path, events: Path, encoding: EncodingName) -> RetailData:
    from retail.errors import RetailDataError
    from retail.loaders import load_retail

    try:
        with console.status("Loading and checking the files…"):
            data = load_retail(catalog, customers, events, "skip", encoding=encoding)
    except RetailDataError as exc:
        raise fail(str(exc)) from None
    report_left_out(data, {"catalog": catalog, "customers": customers, "events": events})
    return data


#: how many of a file's problems are shown; the rest are counted
SHOWN_PROBLEMS = 5


def report_left_out(data: RetailData, files: dict[str, Path]) -> None:
    """Print, to stderr, each file's bad rows left out: how many, and the first problems.

    Said before anything else: a customers file whose rows were all left out must not
    look like an events file without usable events. (Events naming a customer or product
    missing from the other files are counted where it matters, not listed here.)
    """
    bad = data.problems[: len(data.problems) - data.unknown_reference_events]
    for kind, path in files.items():
        problems = [p for p in bad if Path(p.file) == Path(path)]
        if not problems:
            continue
        rows = data.skipped_rows.get(kind, 0)
        err.print(
            f"warning: {path}: {rows} bad row(s) left out",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
        for problem in problems[:SHOWN_PROBLEMS]:
            err.print(f"  {problem}", markup=False, highlight=False, soft_wrap=True)
        if len(problems) > SHOWN_PROBLEMS:
            err.print(f"  … and {len(problems) - SHOWN_PROBLEMS} more problem(s)", highlight=False)


@recs_app.command("train")
def train_command(
    catalog: CatalogOpt,
    customers: CustomersOpt,
    events: EventsOpt,
    workspace: WorkspaceOpt = None,
    encoding: EncodingOpt = "utf-8",
) -> None:
    """Train a model on the files, measure it offline and register it.

    It is approved automatically when its NDCG@10 is not more than the gate's drop below
    the approved model's (REELCAST_RECS_GATE_MAX_DROP, default 2 %); campaigns use the
    newest approved model.
    """
    from recs.errors import RecsError
    from recs.registry import Gate
    from recs.training import register, train
    from runtime.models import open_registry

    settings, ws = context(workspace)
    data = _load(catalog, customers, events, encoding)
    now = data.events.latest() or datetime.now(UTC)
    try:
        with console.status("Training and evaluating (leave-last-out)…"):
            trained = train(data.products, data.events, [c.id for c in data.customers], now=now)
    except RecsError as exc:
        raise fail(str(exc)) from None
    gate = Gate(settings.recs_gate_metric, settings.recs_gate_max_drop)
    try:
        record = register(open_registry(settings, ws), trained, gate)
    except RecsError as exc:
        raise fail(str(exc)) from None
    metrics = ", ".join(f"{k} {v:.4f}" for k, v in sorted(record.metrics.items()))
    console.print(f"model {record.version}: {metrics}")
    state = "[green]approved[/]" if record.approved else "[yellow]not approved[/]"
    console.print(f"{state}: {record.approval_note}")


@recs_app.command("evaluate")
def evaluate_command(
    catalog: CatalogOpt,
    customers: CustomersOpt,
    events: EventsOpt,
    protocol: Annotated[
        str, typer.Option(help="leave-last-out (by time) or random-80-10-10 (RecBole's).")
    ] = "leave-last-out",
    quick: Annotated[bool, typer.Option("--quick", help="Smaller tuning grids.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
    encoding: EncodingOpt = "utf-8",
) -> None:
    """Fit the baselines (popularity, item-kNN, EASE, ALS, Markov, sequence kNN) and the
    pipeline; print metrics and the time each model took.

    Full ranking, seen items removed, tuned on a validation split, test reported once.
    Works on any retailer's history in the retail file formats: past 10,000 products the
    grids are thinned, and past 8,000 EASE is fitted on the 8,000 most-touched products
    (the notes under the table say so).
    """
    from recs.dataset import from_retail
    from recs.evaluation.protocols import relevant_items, split
    from recs.evaluation.run import default_specs, evaluate_detailed, format_table

    if protocol not in ("leave-last-out", "random-80-10-10"):
        raise fail("--protocol must be leave-last-out or random-80-10-10")
    data = _load(catalog, customers, events, encoding)
    log = from_retail(data.products, data.events, [c.id for c in data.customers])
    # Without events to hold out every metric is a meaningless zero: say so instead.
    if len(log.user) == 0:
        left_out = ""
        if data.unknown_reference_events:
            left_out = (
                f" ({data.unknown_reference_events} event(s) name a customer or product "
                "missing from the other files"
                + ("; see the bad rows above" if sum(data.skipped_rows.values()) else "")
                + ")"
            )
        raise fail(
            f"{events}: no usable events (a view, cart, purchase or product click of a "
            f"product in {catalog} by a customer in {customers}){left_out}: nothing to "
            "evaluate; pass the retailer's event history"
        )
    parts = split(log, protocol)
    if relevant_items(parts.test, parts.test_seen).nnz == 0:
        raise fail(
            f"{events}: no customer has enough events to hold one out for {protocol} "
            "(one needs 2 events or more, the held-out one on a product not seen before): "
            "pass a longer event history"
        )
    specs = default_specs(quick=quick, n_items=log.n_items)
    with err.status(f"Evaluating ({protocol})…") as status:

        def progress(line: str) -> None:
            status.update(f"Evaluating ({protocol}): {line}")
            if line.endswith(" s") or "skipped" in line or "failed" in line:
                err.print(f"  {line}", highlight=False)  # a model finished: keep the line

        result = evaluate_detailed(log, parts, specs, on_error="record", progress=progress)
    if as_json:
        typer.echo(
            json.dumps({"protocol": protocol, "models": result.table, "notes": result.notes})
        )
        return
    title = f"{catalog.parent.name or catalog} · {protocol}"
    typer.echo(format_table(result.table, title=title, notes=result.notes))


@recs_app.command("list")
def list_command(workspace: WorkspaceOpt = None) -> None:
    """The registered models, newest last; the one campaigns use is marked."""
    from recs.errors import RecsError
    from runtime.models import open_registry

    settings, ws = context(workspace)
    try:
        registry = open_registry(settings, ws)
        current = registry.approved()
        records = registry.all()
    except RecsError as exc:
        raise fail(str(exc)) from None
    table = Table()
    for column in ("version", "created", "data", "ndcg@10", "approved", "note"):
        table.add_column(column)
    for r in records:
        mark = " ← used" if current and r.version == current.version else ""
        table.add_row(
            r.version + mark,
            r.created_at[:19],
            r.data_hash,
            f"{r.metrics.get('ndcg@10', float('nan')):.4f}",
            r.approved_by or "no",
            r.approval_note,
        )
    console.print(table)


@recs_app.command("approve")
def approve_command(
    version: Annotated[str, typer.Argument(help="Model version, from `reelcast recs list`.")],
    note: Annotated[str, typer.Option(help="Why (kept with the model).")] = "",
    workspace: WorkspaceOpt = None,
) -> None:
    """Approve a model by hand: campaigns use it from now on."""
    from recs.errors import RecsError
    from runtime.models import open_registry

    settings, ws = context(workspace)
    try:
        record = open_registry(settings, ws).approve(version, by="operator", note=note)
    except RecsError as exc:
        raise fail(str(exc)) from None
    console.print(f"approved {record.version}; campaigns use it from now on")
