"""The template check (overflow, contrast, stills), the preview sheet and `reelcast template`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from typer.testing import CliRunner

from cli.templates import template_app
from creative import load_template
from creative.check import check_template, contrast_ratio, preview_template

REPO = Path(__file__).resolve().parents[2]
ASSETS = REPO / "assets"
Edit = Callable[[Callable[[dict[str, Any]], None]], Path]


def _layer(data: dict[str, Any], layer_id: str) -> dict[str, Any]:
    return next(layer for layer in data["layers"] if layer.get("id") == layer_id)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["greeting", "hero", "carousel", "price-drop"])
def test_shipped_templates_pass_the_check_in_every_aspect(name: str) -> None:
    template = load_template(REPO / "templates", name, ASSETS)
    assert template.aspects == ("9:16", "1:1", "16:9")
    assert check_template(template) == []


def test_overflow_is_reported_with_the_longest_sample_text(template_copy: Edit) -> None:
    def edit(data: dict[str, Any]) -> None:
        title = _layer(data, "title")
        title["max_lines"] = 1
        title.pop("at")

    template = load_template(template_copy(edit), "hero", ASSETS)
    issues = check_template(template, ["9:16"])
    assert [(i.kind, i.layer) for i in issues] == [("overflow", "title")]
    assert "Heritage Trail Runner GTX waterproof leather hiking boots, wide fit" in str(issues[0])


def test_low_contrast_text_is_reported(template_copy: Edit) -> None:
    def edit(data: dict[str, Any]) -> None:
        _layer(data, "headline")["color"] = "#2A4066"  # dark blue on the dark blue gradient

    issues = check_template(load_template(template_copy(edit), "hero", ASSETS), ["16:9"])
    assert [(i.kind, i.layer) for i in issues] == [("contrast", "headline")]
    assert "below" not in issues[0].message and "4.5:1" in issues[0].message


def test_text_on_its_pill_is_judged_against_the_pill(template_copy: Edit) -> None:
    def edit(data: dict[str, Any]) -> None:
        _layer(data, "price")["color"] = "#FFFFFF"  # white on the amber pill: 1.6:1

    issues = check_template(load_template(template_copy(edit), "hero", ASSETS), ["9:16"])
    assert [(i.kind, i.layer) for i in issues] == [("contrast", "price")]


def test_a_stalled_middle_is_reported_but_the_end_card_hold_is_not(template_copy: Edit) -> None:
    def edit(data: dict[str, Any]) -> None:
        _layer(data, "product_image")["zoom"] = {"start": 1.0, "end": 1.0}

    issues = check_template(load_template(template_copy(edit), "hero", ASSETS), ["9:16"])
    assert [i.kind for i in issues] == ["still"]
    assert "from 1.54 s to 6.00 s" in issues[0].message


def test_wcag_contrast_ratio_matches_the_spec_examples() -> None:
    assert contrast_ratio((0, 0, 0), (255, 255, 255)) == pytest.approx(21.0)
    assert contrast_ratio((118, 118, 118), (255, 255, 255)) == pytest.approx(4.54, abs=0.01)


def test_preview_writes_a_contact_sheet_of_sample_frames(hero, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = preview_template(hero.variant("16:9"), tmp_path / "sheet.png", frames=4, columns=2)
    with Image.open(out) as sheet:
        assert sheet.format == "PNG"
        assert sheet.width == 12 + 2 * (360 + 12)  # two 16:9 thumbnails per row


def test_cli_check_passes_and_fails_with_the_issues_listed(
    template_copy: Edit, monkeypatch: pytest.MonkeyPatch
) -> None:
    def edit(data: dict[str, Any]) -> None:
        _layer(data, "price")["color"] = "#FFFFFF"

    monkeypatch.setenv("REELCAST_TEMPLATES_DIR", str(template_copy(edit)))
    monkeypatch.setenv("REELCAST_ASSETS_DIR", str(ASSETS))
    result = CliRunner().invoke(template_app, ["check", "hero"])
    assert result.exit_code == 1
    assert "price: contrast" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize(
    ("text", "detail"),
    [
        (
            "{{ title.__class__.__mro__ }}",
            "access to attribute '__class__' of 'str' object is unsafe",
        ),
        ("{{ 1/0 }}", "cannot render the text (ZeroDivisionError)"),
    ],
)
def test_cli_check_reports_a_text_that_cannot_render_in_one_line(
    template_copy: Edit, monkeypatch: pytest.MonkeyPatch, text: str, detail: str
) -> None:
    index: list[int] = []

    def edit(data: dict[str, Any]) -> None:
        index.append(next(i for i, la in enumerate(data["layers"]) if la.get("id") == "title"))
        data["layers"][index[0]]["text"] = text

    monkeypatch.setenv("REELCAST_TEMPLATES_DIR", str(template_copy(edit)))
    monkeypatch.setenv("REELCAST_ASSETS_DIR", str(ASSETS))
    result = CliRunner().invoke(template_app, ["check", "hero"])
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    assert result.output.count("\n") == 1, result.output  # one line, however long
    assert result.output.startswith(f"error: hero/template.yaml: layers[{index[0]}].text: ")
    assert detail in result.output


def test_cli_reports_a_missing_template_without_a_traceback(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("REELCAST_TEMPLATES_DIR", str(REPO / "templates"))
    result = CliRunner().invoke(template_app, ["preview", "nope", "--out", str(tmp_path / "x.png")])
    assert result.exit_code == 1
    assert "error:" in result.output and "carousel, greeting, hero, price-drop" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_cli_preview_writes_the_png_for_an_aspect(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("REELCAST_TEMPLATES_DIR", str(REPO / "templates"))
    monkeypatch.setenv("REELCAST_ASSETS_DIR", str(ASSETS))
    out = tmp_path / "pd.png"
    result = CliRunner().invoke(
        template_app, ["preview", "price-drop", "--aspect", "1:1", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert out.is_file()
