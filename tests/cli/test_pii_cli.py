"""`reelcast pii scan FILE`: one JSON line per input text, no matched text, clean errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from cli.pii import pii_app

runner = CliRunner()


def test_plain_text_gives_one_line_per_text_in_order(tmp_path: Path) -> None:
    deck = tmp_path / "deck.txt"
    deck.write_text("Call Ms Lee on +44 20 7946 0958\n\nclean copy\r\nann@example.com\n")
    result = runner.invoke(pii_app, ["scan", str(deck)])
    assert result.exit_code == 0
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert lines == [
        {"line": 1, "findings": [{"type": "PERSON", "start": 8, "end": 11},
                                 {"type": "PHONE", "start": 15, "end": 31}]},
        {"line": 2, "findings": []},
        {"line": 3, "findings": []},
        {"line": 4, "findings": [{"type": "EMAIL", "start": 0, "end": 15}]},
    ]  # fmt: skip
    assert "Lee" not in result.stdout and "ann@" not in result.stdout


def test_jsonl_by_extension_or_first_brace(tmp_path: Path) -> None:
    body = '{"text": "IBAN DE89370400440532013000 saved"}\n\n{"text": "nothing", "id": 3}\n'
    for name in ("deck.jsonl", "deck.txt"):
        path = tmp_path / name
        path.write_text(body)
        result = runner.invoke(pii_app, ["scan", str(path)])
        assert result.exit_code == 0
        assert [json.loads(x) for x in result.stdout.splitlines()] == [
            {"line": 1, "findings": [{"type": "IBAN", "start": 5, "end": 27}]},
            {"line": 3, "findings": []},
        ]


def test_allow_option(tmp_path: Path) -> None:
    deck = tmp_path / "deck.txt"
    deck.write_text("New from Dr. Martens\n")
    result = runner.invoke(pii_app, ["scan", str(deck), "--allow", "Dr. Martens"])
    assert json.loads(result.stdout) == {"line": 1, "findings": []}


def test_errors_name_file_and_line_without_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "ok"}\n{"txt": "ann@example.com"}\n')
    for path, expected in ((tmp_path / "missing.txt", "no such file"), (bad, "line 2")):
        proc = subprocess.run(
            [sys.executable, "-m", "cli.pii", "scan", str(path)],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert proc.returncode == 2
        assert proc.stdout == ""
        assert str(path) in proc.stderr and expected in proc.stderr
        assert "Traceback" not in proc.stderr and "ann@" not in proc.stderr
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"text": "ok"}\n{"text": \n')
    result = runner.invoke(pii_app, ["scan", str(broken)])
    assert result.exit_code == 2 and "line 2: not valid JSON" in result.output
