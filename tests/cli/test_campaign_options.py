"""`reelcast campaign run`'s options are made from CampaignParams: names, help, bounds, flags."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from campaigns.params import CampaignParams
from cli import main as cli
from cli.params import NOT_OPTIONS, option_name

README = Path(__file__).resolve().parents[2] / "README.md"
FILES = ["--catalog", "catalog.csv", "--customers", "customers.csv", "--events", "events.csv"]


def _options() -> dict[str, typer.core.TyperOption]:
    run = typer.main.get_command(cli.app).commands["campaign"].commands["run"]  # type: ignore[attr-defined]
    return {p.name: p for p in run.params}


@pytest.fixture
def ran(monkeypatch: pytest.MonkeyPatch) -> list[CampaignParams]:
    """The parameters `campaign run` would run with (the run itself is left out)."""
    for name in [k for k in os.environ if k.startswith("REELCAST_")]:
        monkeypatch.delenv(name)
    params: list[CampaignParams] = []
    monkeypatch.setattr(cli, "_run", lambda p, settings, verbose, approver="": params.append(p))
    return params


def test_every_field_is_an_option_whose_help_is_the_field_description() -> None:
    options = _options()
    for name, field in CampaignParams.model_fields.items():
        if name in NOT_OPTIONS:
            continue
        assert options[name].opts == [option_name(name)]
        assert options[name].help == field.description
    assert option_name("holdout_share") == "--holdout"
    assert option_name("boost_brands") == "--boost-brands"
    assert {"workspace", "verbose"} <= options.keys()  # written by hand


def test_every_option_the_readme_documents_exists() -> None:
    table = README.read_text().split("## Your own data", 1)[1].split("\n\n`reelcast --help`")[0]
    documented = set(re.findall(r"`(--[a-z-]+)", table))
    names = {opt for option in _options().values() for opt in option.opts}
    assert len(documented) > 15 and documented <= names, documented - names


def test_booleans_are_flags_and_defaults_come_from_the_model(
    ran: list[CampaignParams], tmp_path: Path
) -> None:
    args = ["campaign", "run", *FILES, "--workspace", str(tmp_path), "--dry-run", "--send-now"]
    result = CliRunner().invoke(cli.app, [*args, "--auto-approve"])
    assert result.exit_code == 0, result.output
    (params,) = ran
    assert (params.dry_run, params.send_now, params.auto_approve) == (True, True, True)
    assert params.campaign.startswith("campaign-20")  # the CLI's default: today's date
    model = CampaignParams.model_fields
    assert params.send_hour == model["send_hour"].default
    assert params.holdout_share == model["holdout_share"].default


@pytest.mark.parametrize(
    ("option", "value", "said"),
    [
        ("--holdout", "0.5", "error: --holdout: Input should be less than 0.5"),
        ("--send-hour", "7", "error: --send-hour: Input should be greater than or equal to 8"),
        ("--on-bad-rows", "ignore", "error: --on-bad-rows: Input should be 'fail' or 'skip'"),
    ],
)
def test_a_bound_or_choice_of_the_model_is_one_error_line_on_the_cli(
    ran: list[CampaignParams], tmp_path: Path, option: str, value: str, said: str
) -> None:
    args = ["campaign", "run", *FILES, "--auto-approve", "--workspace", str(tmp_path)]
    result = CliRunner().invoke(cli.app, [*args, option, value])
    assert result.exit_code == 2
    assert result.output.strip() == said
    assert ran == []


def test_the_model_bound_holds_exactly_where_the_old_option_stopped_short(
    ran: list[CampaignParams], tmp_path: Path
) -> None:
    # The option allowed 0.49 at most while the model allows anything below 0.5.
    args = ["campaign", "run", *FILES, "--auto-approve", "--workspace", str(tmp_path)]
    result = CliRunner().invoke(cli.app, [*args, "--holdout", "0.495"])
    assert result.exit_code == 0, result.output
    assert ran[0].holdout_share == 0.495


def test_help_at_80_columns_shows_every_option_name_whole(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REELCAST_")}
    result = subprocess.run(
        [sys.executable, "-m", "cli.main", "campaign", "run", "--help"],
        capture_output=True,
        text=True,
        env=env | {"COLUMNS": "80"},
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0
    assert max(len(line) for line in result.stdout.splitlines()) <= 80
    for option in _options().values():
        assert re.search(rf"{re.escape(option.opts[0])}\b(?!-)", result.stdout), option.opts


@pytest.fixture
def asked(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Who `campaign run` would answer its approval question as (the run is left out),
    as if started in a terminal."""
    import types

    for name in [k for k in os.environ if k.startswith("REELCAST_")]:
        monkeypatch.delenv(name)
    approvers: list[str] = []
    monkeypatch.setattr(
        cli, "_run", lambda p, settings, verbose, approver: approvers.append(approver)
    )
    tty = types.SimpleNamespace(stdin=types.SimpleNamespace(isatty=lambda: True))
    monkeypatch.setattr(cli, "sys", tty)
    monkeypatch.setattr("getpass.getuser", lambda: "login-name")
    return approvers


@pytest.mark.parametrize(
    ("extra", "approver"),
    [(["--approver", " alice "], "alice"), ([], "login-name"), (["--auto-approve"], "")],
)
def test_the_approver_is_the_option_else_the_login_name(
    asked: list[str], tmp_path: Path, extra: list[str], approver: str
) -> None:
    args = ["campaign", "run", *FILES, "--workspace", str(tmp_path), *extra]
    result = CliRunner().invoke(cli.app, args)
    assert result.exit_code == 0, result.output
    assert asked == [approver]


def test_auto_is_no_approver_and_the_option_has_help(asked: list[str], tmp_path: Path) -> None:
    args = ["campaign", "run", *FILES, "--workspace", str(tmp_path), "--approver", "auto"]
    result = CliRunner().invoke(cli.app, args)
    assert result.exit_code == 2 and result.output.startswith("error: --approver:")
    assert asked == []
    assert "audit log" in (_options()["approver"].help or "")
