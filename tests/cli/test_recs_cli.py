"""`reelcast recs`: train registers and gates a model, approve switches, evaluate prints JSON."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def _recs(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REELCAST_")}
    env["COLUMNS"] = "200"
    return subprocess.run(
        [sys.executable, "-m", "cli.main", "recs", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=600,
        check=False,
    )


def _files(retailer) -> list[str]:
    return [
        "--catalog",
        str(retailer.catalog),
        "--customers",
        str(retailer.customers),
        "--events",
        str(retailer.events),
    ]


def test_train_list_and_approve(small_retailer, tmp_path: Path) -> None:
    trained = _recs("train", *_files(small_retailer), "--workspace", str(tmp_path), cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr
    assert "approved" in trained.stdout and "ndcg@10" in trained.stdout
    version = trained.stdout.split("model ", 1)[1].split(":", 1)[0]
    meta = json.loads((tmp_path / "models" / version / "model.json").read_text())
    assert meta["data_hash"] and meta["params"]["config"] and "ndcg@10" in meta["metrics"]
    listed = _recs("list", "--workspace", str(tmp_path), cwd=tmp_path)
    assert version in listed.stdout and "used" in listed.stdout
    approved = _recs(
        "approve", version, "--note", "checked", "--workspace", str(tmp_path), cwd=tmp_path
    )
    assert approved.returncode == 0
    missing = _recs("approve", "rc1-nope", "--workspace", str(tmp_path), cwd=tmp_path)
    assert missing.returncode == 2 and "no model 'rc1-nope'" in missing.stderr


def test_evaluate_prints_one_json_object_with_every_model(small_retailer, tmp_path) -> None:
    result = _recs("evaluate", *_files(small_retailer), "--quick", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    table = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(table["models"]) == {"pop", "itemknn", "ease", "als", "markov", "sknn", "reelcast"}
    assert all(row["ndcg@10"] is not None for row in table["models"].values())


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        pytest.param([], "no usable events", id="header-only"),
        pytest.param(
            ["C-unknown,NOT-A-PRODUCT,view,2026-10-03T06:09:00+00:00"],
            "no usable events",
            id="unknown-products",
        ),
        pytest.param(
            ["C00004,{product},view,2026-10-03T06:09:00+00:00"],
            "no customer has enough events",
            id="nothing-to-hold-out",
        ),
    ],
)
def test_evaluate_without_usable_events_fails_with_one_clear_line(
    small_retailer, tmp_path: Path, rows: list[str], expected: str
) -> None:
    product = small_retailer.catalog.read_text().splitlines()[1].split(",", 1)[0]
    events = tmp_path / "events.csv"
    lines = ["customer_id,product_id,type,timestamp", *(r.format(product=product) for r in rows)]
    events.write_text("\n".join(lines) + "\n")
    files = _files(small_retailer)
    files[files.index("--events") + 1] = str(events)
    for protocol in ("leave-last-out", "random-80-10-10"):
        result = _recs("evaluate", *files, "--protocol", protocol, "--json", cwd=tmp_path)
        assert result.returncode == 2, result.stdout
        assert "Traceback" not in result.stderr
        assert result.stdout.strip() == ""  # no table of zeros
        message = result.stderr.strip()
        assert len(message.splitlines()) == 1, message
        assert message.startswith("error: ") and expected in message
        assert str(events) in message and "pass " in message  # the file, and what to do
