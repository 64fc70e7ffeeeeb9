"""The command line: readable help, and user errors as one clear message, no traceback."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest


def _reelcast(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REELCAST_")} | (env or {})
    env.setdefault("COLUMNS", "200")
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("command", [[], ["demo"], ["campaign"], ["campaign", "run"]])
def test_every_command_has_help(command: list[str], tmp_path: Path) -> None:
    result = _reelcast(*command, "--help", cwd=tmp_path)
    assert result.returncode == 0
    assert "Usage" in result.stdout
    if command and command[-1] in ("demo", "run"):
        assert "--workspace" in result.stdout and "--limit" in result.stdout


def test_every_help_reads_whole_at_80_columns() -> None:
    """Each command's --help at 80 columns: no line wider, every option and command name
    whole, no help text cut short (click wraps; nothing ends in "…" or "...")."""
    import click
    from click.testing import CliRunner
    from typer.main import get_command

    from cli.main import app

    root = get_command(app)

    def walk(command: click.Command, path: list[str]):  # type: ignore[no-untyped-def]
        yield path, command
        for name, sub in getattr(command, "commands", {}).items():
            yield from walk(sub, [*path, name])

    runner = CliRunner()
    checked = 0
    for path, command in walk(root, []):
        result = runner.invoke(root, [*path, "--help"], env={"COLUMNS": "80"}, terminal_width=80)
        assert result.exit_code == 0, (path, result.output)
        lines = result.output.splitlines()
        assert max(map(len, lines)) <= 80, (path, [line for line in lines if len(line) > 80])
        cut = [
            line
            for line in lines
            if line.rstrip().endswith(("…", "...")) and not line.startswith("Usage:")
        ]
        assert cut == [], path
        for param in command.params:
            for opt in param.opts:
                if opt.startswith("--"):
                    assert opt in result.output, (path, opt)
        for name in getattr(command, "commands", {}):
            assert f"  {name}  " in result.output, (path, name)
        checked += 1
    assert checked > 30


def _copy(retailer, dest: Path) -> dict[str, Path]:
    shutil.copytree(retailer.catalog.parent, dest)
    return {name: dest / f"{name}.csv" for name in ("catalog", "customers", "events")}


def _run(
    files: dict[str, Path], cwd: Path, *extra: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return _reelcast(
        "campaign",
        "run",
        "--catalog",
        str(files["catalog"]),
        "--customers",
        str(files["customers"]),
        "--events",
        str(files["events"]),
        "--workspace",
        str(cwd / "ws"),
        "--auto-approve",
        *extra,
        cwd=cwd,
        env=env,
    )


def test_bad_customer_row_is_one_clear_error_naming_file_line_and_field(
    small_retailer, tmp_path: Path
) -> None:
    files = _copy(small_retailer, tmp_path / "data")
    lines = files["customers"].read_text().splitlines()
    bad_email = "someone-at-nowhere"
    cells = lines[5].split(",")
    cells[1] = bad_email
    lines[5] = ",".join(cells)
    files["customers"].write_text("\n".join(lines) + "\n")
    result = _run(files, tmp_path)
    assert result.returncode == 2
    assert f"{files['customers']}:6: email:" in result.stderr
    assert "--on-bad-rows skip" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert bad_email not in result.stderr + result.stdout
    assert not (tmp_path / "ws" / "mail").exists()


def test_missing_column_stops_before_anything_runs(small_retailer, tmp_path: Path) -> None:
    files = _copy(small_retailer, tmp_path / "data")
    text = files["catalog"].read_text().replace(",price,", ",cost,", 1)
    files["catalog"].write_text(text)
    result = _run(files, tmp_path)
    assert result.returncode == 2
    assert f"{files['catalog']}:1: price: missing column" in result.stderr
    assert "Traceback" not in result.stderr


def test_unknown_template_is_a_clear_error(small_retailer, tmp_path: Path) -> None:
    files = _copy(small_retailer, tmp_path / "data")
    result = _run(files, tmp_path, "--template", "nope")
    assert result.returncode == 2
    assert "nope" in result.stderr and "Traceback" not in result.stderr


def test_bad_setting_names_the_variable(small_retailer, tmp_path: Path) -> None:
    files = _copy(small_retailer, tmp_path / "data")
    (tmp_path / ".env").write_text("REELCAST_RENDER_WORKERS=lots\n")
    result = _run(files, tmp_path)
    assert result.returncode == 2
    assert "REELCAST_RENDER_WORKERS" in result.stderr and "Traceback" not in result.stderr


def test_a_run_that_needs_approval_without_a_terminal_says_what_to_do(
    small_retailer, tmp_path: Path
) -> None:
    files = _copy(small_retailer, tmp_path / "data")
    result = _reelcast(
        "campaign",
        "run",
        "--catalog",
        str(files["catalog"]),
        "--customers",
        str(files["customers"]),
        "--events",
        str(files["events"]),
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert "--auto-approve" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("extra", "said"),
    [
        (
            ("--boost-brands", "Alpenweg", "--block-brands", "Alpenweg, Other"),
            "brand 'Alpenweg' is both boosted and blocked: remove it from boost_brands",
        ),
        (("--diversity", "spread"), "--diversity: Input should be 'cap' or 'mmr'"),
        (("--mmr-lambda", "1.5"), "--mmr-lambda: Input should be less than or equal to 1"),
    ],
)
def test_contradictory_or_out_of_range_product_rules_are_one_clear_error(
    small_retailer, tmp_path: Path, extra: tuple[str, ...], said: str
) -> None:
    files = _copy(small_retailer, tmp_path / "data")
    result = _run(files, tmp_path, *extra)
    assert result.returncode == 2, result.stderr
    assert said in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert not (tmp_path / "ws" / "mail").exists()


def test_product_rule_options_reach_the_campaign_and_unset_ones_keep_its_defaults(
    small_retailer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from campaigns.params import CampaignParams
    from cli import main as cli

    for name in [k for k in os.environ if k.startswith("REELCAST_")]:
        monkeypatch.delenv(name)
    ran: list[CampaignParams] = []
    monkeypatch.setattr(
        cli, "_run", lambda params, settings, verbose, approver="": ran.append(params)
    )
    files = _copy(small_retailer, tmp_path / "data")
    args = ["campaign", "run", "--auto-approve", "--workspace", str(tmp_path / "ws")]
    for name in ("catalog", "customers", "events"):
        args += [f"--{name}", str(files[name])]
    rules = ["--boost-brands", "Alpenweg", "--block-categories", "Socks", "--diversity", "mmr"]
    rules += ["--mmr-lambda", "0.4", "--explore-rate", "0.1", "--repurchase-days", "30"]
    rules += ["--repurchase-categories", "Socks,Care"]

    result = CliRunner().invoke(cli.app, args + rules)

    assert result.exit_code == 0, result.output
    (params,) = ran
    assert (params.boost_brands, params.block_categories) == ("Alpenweg", "Socks")
    assert (params.diversity, params.mmr_lambda, params.explore_rate) == ("mmr", 0.4, 0.1)
    assert (params.repurchase_days, params.repurchase_categories) == (30, "Socks,Care")
    defaults = CampaignParams.model_fields
    assert params.max_per_category == defaults["max_per_category"].default
    assert params.block_brands == defaults["block_brands"].default == ""


def test_a_missing_product_image_stops_the_run_before_rendering_with_its_row(
    small_retailer, tmp_path: Path
) -> None:
    files = _copy(small_retailer, tmp_path / "data")
    (files["catalog"].parent / "images").joinpath(
        sorted(p.name for p in (files["catalog"].parent / "images").iterdir())[0]
    ).unlink()
    result = _run(files, tmp_path, "--dry-run")
    assert result.returncode == 2, result.stderr[-2000:]
    assert f"{files['catalog']}:" in result.stderr and ": image: file not found" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert not (tmp_path / "ws" / "renders").exists()


def test_a_bad_claims_policy_file_is_one_error_line_naming_the_file_before_anything_runs(
    small_retailer, tmp_path: Path
) -> None:
    files = _copy(small_retailer, tmp_path / "data")
    policy = tmp_path / "claims.yaml"
    policy.write_text("superlatives: best ever\n")  # a phrase list must be a list
    result = _run(files, tmp_path, "--dry-run", env={"REELCAST_CLAIMS_POLICY": str(policy)})
    assert result.returncode == 2, result.stderr[-2000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: {policy}: superlatives: expected a list of phrases"]
    assert "Traceback" not in result.stderr + result.stdout
    assert not (tmp_path / "ws" / "renders").exists()


def test_a_user_error_from_any_command_is_one_line_and_a_bug_keeps_its_traceback(
    tmp_path: Path,
) -> None:
    # One command raising a package's user error, one raising a bug; main() must tell them apart.
    script = (
        "import sys\n"
        "from cli import main\n"
        "from compliance.claims import PolicyError\n"
        "def user_error(): raise PolicyError('policy.yaml: urgency: expected a list of phrases')\n"
        "def bug(): return {}['missing']\n"
        "main.app.command('user-error')(user_error)\n"
        "main.app.command('bug')(bug)\n"
        "sys.argv[0] = 'reelcast'\n"
        "main.main()\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("REELCAST_")}
    runs = {
        name: subprocess.run(
            [sys.executable, "-c", script, name],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
            timeout=120,
            check=False,
        )
        for name in ("user-error", "bug")
    }
    user = runs["user-error"]
    assert user.returncode == 2
    assert user.stderr == "error: policy.yaml: urgency: expected a list of phrases\n"
    bug = runs["bug"]
    assert bug.returncode == 1
    assert "Traceback" in bug.stderr and "KeyError: 'missing'" in bug.stderr


def test_every_package_error_base_is_a_reelcast_error() -> None:
    from cli.local_stack import StackError
    from cli.pii import PiiInputError
    from compliance.claims import PolicyError
    from compliance.errors import ComplianceError
    from creative.errors import CreativeError
    from delivery.errors import DeliveryError
    from recs.errors import RecsError
    from retail.errors import ReelcastError, RetailDataError
    from runtime.transports import TransportSettingsError
    from storage.database import DatabaseError

    bases = [RetailDataError, RecsError, CreativeError, ComplianceError, DeliveryError]
    bases += [PolicyError, TransportSettingsError, PiiInputError, StackError, DatabaseError]
    assert [b for b in bases if not issubclass(b, ReelcastError)] == []
    assert issubclass(PolicyError, ComplianceError)
    assert issubclass(TransportSettingsError, ValueError)  # still caught as a ValueError


def _as_windows_1252(path: Path) -> None:
    """`path` as a spreadsheet's plain 'CSV' saves it: Windows-1252, with an accented name."""
    lines = path.read_text().splitlines()
    cells = lines[3].split(",")
    cells[2] = "Renée"  # first_name
    lines[3] = ",".join(cells)
    path.write_bytes(("\n".join(lines) + "\n").encode("cp1252"))


def test_a_windows_1252_file_is_one_error_line_saying_how_to_save_or_read_it(
    small_retailer, tmp_path: Path
) -> None:
    files = _copy(small_retailer, tmp_path / "data")
    _as_windows_1252(files["customers"])
    result = _run(files, tmp_path, "--on-bad-rows", "skip")
    assert result.returncode == 2, result.stderr[-2000:]
    errors = [line for line in result.stderr.splitlines() if line.strip().startswith("/")]
    assert errors == [
        f"  {files['customers']}: not UTF-8 (looks like Windows-1252, as Excel 'CSV' saves "
        "it): save it as 'CSV UTF-8' or pass --encoding cp1252"
    ]
    assert "Traceback" not in result.stderr + result.stdout
    assert not (tmp_path / "ws" / "mail").exists()


@pytest.mark.slow
def test_recs_reads_a_windows_1252_file_when_told_and_refuses_it_otherwise(
    small_retailer, tmp_path: Path
) -> None:
    files = _copy(small_retailer, tmp_path / "data")
    _as_windows_1252(files["customers"])
    args = ["recs", "evaluate", "--quick", "--json"]
    args += [f"--{name}={path}" for name, path in files.items()]
    refused = _reelcast(*args, cwd=tmp_path)
    assert refused.returncode == 2
    assert "not UTF-8 (looks like Windows-1252" in refused.stderr
    assert "or pass --encoding cp1252" in refused.stderr and "Traceback" not in refused.stderr
    read = _reelcast(*args, "--encoding", "cp1252", cwd=tmp_path)
    assert read.returncode == 0, read.stderr[-2000:]
    bad = _reelcast(*args, "--encoding", "ebcdic", cwd=tmp_path)
    assert bad.returncode == 2
    assert "must be one of utf-8, cp1252, latin-1" in bad.stderr  # a usage error
    assert "Traceback" not in bad.stderr


def test_suppress_import_of_a_file_that_is_not_utf8_is_one_error_line(tmp_path: Path) -> None:
    ids = tmp_path / "ids.csv"
    ids.write_bytes("customer_id,note\nC1,Désinscrit\n".encode("cp1252"))
    result = _reelcast(
        "suppress", "import", str(ids), "--workspace", str(tmp_path / "ws"), cwd=tmp_path
    )
    assert result.returncode == 2
    assert result.stderr == f"error: {ids}: not UTF-8: save it as 'CSV UTF-8'\n"
