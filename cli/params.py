"""`reelcast campaign run`'s options, made from `CampaignParams` so the two cannot disagree.

Each field becomes an option: its name from the field's (`boost_brands` → `--boost-brands`),
its help from the field's description, its bounds and choices checked by the field's own
rules (`ge`/`le`/`gt`/`lt`, `Literal`) as the value is read, booleans as flags. `RENAMED`
and `CLI_DEFAULTS` hold the few places where the command line differs from the model.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Annotated, Any, Literal, get_args, get_origin

import annotated_types
import typer
from pydantic import TypeAdapter, ValidationError
from pydantic.fields import FieldInfo

from campaigns.params import CampaignParams

#: fields whose option is not named after them (the README documents these names)
RENAMED: dict[str, str] = {"holdout_share": "--holdout"}

#: fields whose default differs on the command line: (default, as the help shows it);
#: None means "the command fills it in"
CLI_DEFAULTS: dict[str, tuple[Any, bool | str]] = {
    "campaign": (None, "campaign-<today's date, UTC>"),
}

#: fields the command sets from options of its own (`--workspace` defaults to the settings)
NOT_OPTIONS: frozenset[str] = frozenset({"workspace"})


def option_name(field: str) -> str:
    """The command-line name of a `CampaignParams` field."""
    return RENAMED.get(field, "--" + field.replace("_", "-"))


def campaign_options() -> list[inspect.Parameter]:
    """One keyword parameter per `CampaignParams` field, annotated for Typer."""
    return [
        _parameter(name, field)
        for name, field in CampaignParams.model_fields.items()
        if name not in NOT_OPTIONS
    ]


def with_campaign_options(command: Callable[..., None]) -> Callable[..., None]:
    """Give `command` (CLI-only parameters, then `**fields`) an option per field.

    Typer reads the signature, so the command is called with every field by name.
    """
    # eval_str: the command's module may use `from __future__ import annotations`.
    own = [
        p.replace(kind=inspect.Parameter.KEYWORD_ONLY)
        for p in inspect.signature(command, eval_str=True).parameters.values()
        if p.kind is not p.VAR_KEYWORD
    ]
    signed: Any = command  # Typer reads `__signature__`, which functions accept
    signed.__signature__ = inspect.Signature(campaign_options() + own)
    return command


def _parameter(name: str, field: FieldInfo) -> inspect.Parameter:
    kind, optional = _unoptional(field.annotation)
    default, shown = CLI_DEFAULTS.get(name, (field.default, True))
    options: dict[str, Any] = {"help": field.description, "show_default": shown}
    if kind is bool:
        annotation: Any = bool
    else:
        annotation = kind | None if optional or default is None else kind
        options["metavar"] = _metavar(kind, field)
        if kind is not str:  # text is checked with the model (its pattern errors are reworded)
            options["parser"] = _checker(kind, field)
    return inspect.Parameter(
        name,
        inspect.Parameter.KEYWORD_ONLY,
        default=inspect.Parameter.empty if field.is_required() else default,
        annotation=Annotated[annotation, typer.Option(option_name(name), **options)],
    )


def _unoptional(annotation: Any) -> tuple[Any, bool]:
    args = [a for a in get_args(annotation) if a is not type(None)]
    if get_origin(annotation) is not Literal and len(args) == 1:
        return args[0], True
    return annotation, False


def _checker(kind: Any, field: FieldInfo) -> Callable[[str], Any]:
    """Parse a command-line value and check it against the field's bounds or choices."""
    rules = Annotated[kind, *field.metadata] if field.metadata else kind
    adapter: TypeAdapter[Any] = TypeAdapter(rules)

    def check(value: str) -> Any:
        try:
            return adapter.validate_python(value)
        except ValidationError as exc:
            raise typer.BadParameter(exc.errors()[0]["msg"]) from None

    return check


def _metavar(kind: Any, field: FieldInfo) -> str:
    if get_origin(kind) is Literal:
        # Short lists of choices as the metavar; a long one would widen the column and
        # cut the option names at 80 columns (the help text names the choices).
        choices = "|".join(str(v) for v in get_args(kind))
        return choices if len(choices) <= 12 else "NAME"
    if kind is str:
        return "TEXT"
    low = high = ""
    for rule in field.metadata:
        if isinstance(rule, annotated_types.Ge):
            low = f"{rule.ge}<="
        elif isinstance(rule, annotated_types.Gt):
            low = f"{rule.gt}<"
        elif isinstance(rule, annotated_types.Le):
            high = f"<={rule.le}"
        elif isinstance(rule, annotated_types.Lt):
            high = f"<{rule.lt}"
    letter = "N" if kind is int else "X"
    return f"{low}{letter}{high}" if low or high else letter
