"""What every `reelcast` sub-command shares: the --workspace option, errors, settings."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, get_args

import typer
from rich.console import Console
from rich.text import Text
from typer.core import TyperCommand, TyperGroup

if TYPE_CHECKING:
    from runtime.settings import Settings
    from runtime.workspace import Workspace

err = Console(stderr=True)

WorkspaceOpt = Annotated[
    Path | None,
    typer.Option(
        "--workspace",
        help="Workspace folder for state, renders and the mailbox "
        "(default: REELCAST_WORKSPACE or ./.reelcast).",
        show_default=False,
    ),
]

#: retail.loaders.Encoding, spelt out here so that --help does not import the loaders
EncodingName = Literal["utf-8", "cp1252", "latin-1"]


def _encoding(value: str) -> EncodingName:
    for name in get_args(EncodingName):
        if value.strip().lower().replace("_", "-") in (name, name.replace("-", "")):
            return name
    raise typer.BadParameter(f"must be one of {', '.join(get_args(EncodingName))}")


EncodingOpt = Annotated[
    EncodingName,
    typer.Option(
        "--encoding",
        metavar="|".join(get_args(EncodingName)),
        parser=_encoding,
        help="Encoding of CSV files without a byte-order mark: cp1252 for a spreadsheet's "
        "plain 'CSV' (Windows-1252). Files with one (UTF-8, UTF-16) are read as it says.",
    ),
]


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print `error: message` to stderr and return the Exit to raise.

    No markup parsing, and one line however long the paths in it are (soft wrap): scripts
    grep for `error:`.
    """
    err.print(Text.assemble(("error: ", "bold red"), message), highlight=False, soft_wrap=True)
    return typer.Exit(code)


class OneLineUsageErrors(TyperCommand):
    """A command whose bad or missing option values are one `error:` line, like user errors.

    Typer's default is a usage banner and a framed panel; a script greps for `error:`.
    """

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        # ctx: the vendored click's Context, which typer does not export under a public name
        try:
            return super().parse_args(ctx, args)
        except typer.BadParameter as exc:
            option = exc.param.opts[0] if exc.param is not None and exc.param.opts else ""
            if option and exc.message:  # worded like the model's own refusals
                raise fail(f"{option}: {exc.message}") from None  # --holdout: Input should be…
            raise fail(exc.format_message()) from None  # Missing option '--catalog'.


def context(workspace: Path | None) -> tuple[Settings, Workspace]:
    """(settings, workspace) for a command; invalid settings are one clean error."""
    from pydantic import ValidationError

    from runtime.settings import Settings

    try:
        settings = Settings.for_workspace(workspace)
    except ValidationError as exc:
        problems = "; ".join(
            f"REELCAST_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}"
            for e in exc.errors(include_input=False, include_url=False)
        )
        raise fail(f"invalid settings (environment or .env): {problems}") from None
    return settings, settings.open_workspace()


class _Commands(TyperGroup):
    """A command group whose --help lists each command's whole first sentence, wrapped,
    rather than cut to fit one line."""

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        rows = []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(limit=10_000)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


def command_group(**options: Any) -> typer.Typer:
    """A `reelcast` command group. Help is Click's plain layout, which wraps every column
    (readable at 80 columns: rich's tables cut long option names, defaults and paths)."""
    return typer.Typer(rich_markup_mode=None, cls=_Commands, **options)
