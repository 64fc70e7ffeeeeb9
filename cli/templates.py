"""`reelcast template …`: check a video template and preview it, before any render.

Registered in cli/main.py as `app.add_typer(template_app, name="template")`.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.text import Text

from cli.common import command_group, fail

if TYPE_CHECKING:
    from creative.template import Template

template_app = command_group(
    help="Check video templates (text overflow, contrast, held frames) and preview them.",
    no_args_is_help=True,
)
_out = Console()
_err = Console(stderr=True)


class AspectChoice(StrEnum):
    """The aspect-ratio variants a template may offer."""

    portrait = "9:16"
    square = "1:1"
    landscape = "16:9"


NameArg = Annotated[str, typer.Argument(help="Template name (a folder in the templates dir).")]


def _load(name: str, aspect: str | None = None) -> Template:
    from creative.errors import CreativeError
    from creative.template import load_template
    from runtime.settings import Settings

    settings = Settings()
    try:
        return load_template(settings.templates_dir, name, settings.assets_dir, aspect)
    except CreativeError as exc:
        raise fail(str(exc), 1) from None


@template_app.command("check")
def check(name: NameArg) -> None:
    """Check every aspect of template NAME with the longest sample texts.

    Reports text that would not fit its box, text with contrast below 4.5:1 against what
    is under it, and held frames QC would call frozen. Exits 1 if anything is found.
    """
    from creative.check import check_template, scene_reuse_cost
    from creative.errors import CreativeError

    template = _load(name)
    try:
        issues = check_template(template)
    except CreativeError as exc:  # e.g. a text the sandbox refuses to render
        raise fail(str(exc), 1) from None
    if issues:
        _err.print(
            Text(f"template {name}: {len(issues)} problem(s)", style="bold red"), highlight=False
        )
        for issue in issues:
            _err.print(Text(f"  {issue}"), highlight=False)
        raise typer.Exit(1)
    _out.print(
        Text(f"template {name}: OK ({', '.join(template.aspects)})", style="green"),
        highlight=False,
    )
    cost = scene_reuse_cost(template)
    _out.print(Text(f"  {cost}"), highlight=False)
    for warning in cost.warnings:
        _out.print(Text(f"  note: {warning}", style="yellow"), highlight=False)


@template_app.command("preview")
def preview(
    name: NameArg,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="PNG file to write (default: <name>-<aspect>-preview.png)."),
    ] = None,
    aspect: Annotated[
        AspectChoice | None,
        typer.Option("--aspect", help="Which variant (default: the template's first)."),
    ] = None,
) -> None:
    """Render sample frames of template NAME into one PNG contact sheet."""
    from creative.check import preview_template
    from creative.errors import CreativeError

    template = _load(name, aspect.value if aspect else None)
    target = out or Path(f"{name}-{template.aspect.replace(':', 'x')}-preview.png")
    if target.suffix.lower() != ".png":
        raise fail(f"--out {target}: the contact sheet is a PNG, name it *.png", 2)
    try:
        preview_template(template, target)
    except (CreativeError, OSError) as exc:
        raise fail(f"cannot write the preview {target}: {exc}", 1) from None
    _out.print(Text(f"wrote {target}"), highlight=False)
