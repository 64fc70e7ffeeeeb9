"""Templates load, and a bad template names its file and the bad field."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from creative import Template, TemplateError, load_template
from creative.template import TextLayer

ASSETS = Path(__file__).resolve().parents[2] / "assets"
Edit = Callable[[Callable[[dict[str, Any]], None]], Path]


def _index(data: dict[str, Any], layer_id: str) -> int:
    return next(i for i, layer in enumerate(data["layers"]) if layer.get("id") == layer_id)


def _error(templates: Path) -> str:
    with pytest.raises(TemplateError) as caught:
        load_template(templates, "hero", ASSETS)
    return str(caught.value)


def test_hero_template_loads_as_a_9_16_eight_second_video(hero: Template) -> None:
    spec = hero.spec
    assert (spec.canvas.width, spec.canvas.height, spec.duration_s, spec.fps) == (720, 1280, 8, 24)
    assert 2 <= len(spec.headlines) <= 3
    assert len(hero.version) == 64
    roles = {layer.role for layer in spec.layers if isinstance(layer, TextLayer)}
    assert {"headline", "title", "price", "brand", "cta", "ai_label"} <= roles
    for layer in spec.layers:
        if isinstance(layer, TextLayer):
            assert hero.font_path(layer.font).is_file()


def test_template_version_changes_with_the_folder_content(hero: Template, tmp_path: Path) -> None:
    shutil.copytree(hero.folder, tmp_path / "hero")
    assert load_template(tmp_path, "hero", ASSETS).version == hero.version
    with (tmp_path / "hero" / "template.yaml").open("a", encoding="utf-8") as f:
        f.write("# edited\n")
    assert load_template(tmp_path, "hero", ASSETS).version != hero.version


def test_missing_font_file_names_the_file_and_the_layer_field(template_copy: Edit) -> None:
    def edit(data: dict[str, Any]) -> None:
        data["layers"][2]["font"] = "x.ttf"

    message = _error(template_copy(edit))
    assert "hero/template.yaml: layers[2].font: font file 'x.ttf' not found in assets/fonts" in (
        message
    )


def test_unknown_brand_color_is_reported_with_the_known_ones(template_copy: Edit) -> None:
    def edit(data: dict[str, Any]) -> None:
        data["layers"][_index(data, "title")]["color"] = "hotpink"

    message = _error(template_copy(edit))
    assert ".color: unknown color 'hotpink'" in message
    assert "accent" in message


def test_schema_errors_name_the_field_path(template_copy: Edit) -> None:
    def edit(data: dict[str, Any]) -> None:
        data["layers"][_index(data, "title")]["max_lines"] = "many"
        del data["layers"][_index(data, "end_rule")]["box"]

    templates = template_copy(edit)
    data = yaml.safe_load((templates / "hero" / "template.yaml").read_text(encoding="utf-8"))
    title = _index(data, "title")
    rule = next(i for i, layer in enumerate(data["layers"]) if layer.get("id") == "end_rule")
    message = _error(templates)
    assert f"template.yaml: layers[{title}].max_lines:" in message
    assert f"template.yaml: layers[{rule}].box: Field required" in message


def test_invalid_yaml_names_file_and_line(tmp_path: Path) -> None:
    folder = tmp_path / "hero"
    folder.mkdir()
    (folder / "template.yaml").write_text("name: hero\nlayers: [\n  - {type: text\n")
    message = _error(tmp_path)
    assert "hero/template.yaml:" in message and "invalid YAML" in message


def test_text_using_an_unknown_variable_is_rejected(template_copy: Edit) -> None:
    where: list[int] = []

    def edit(data: dict[str, Any]) -> None:
        where.append(_index(data, "title"))
        data["layers"][where[0]]["text"] = "{{ customer.email }}"

    message = _error(template_copy(edit))
    assert f"layers[{where[0]}].text: unknown variable 'customer'" in message


def test_template_syntax_error_in_a_text_is_reported(template_copy: Edit) -> None:
    def edit(data: dict[str, Any]) -> None:
        data["headlines"][1]["text"] = "Hi {{ first_name"

    assert "headlines[1].text: template syntax error" in _error(template_copy(edit))


def test_first_name_without_a_fallback_is_rejected(template_copy: Edit) -> None:
    where: list[int] = []

    def edit(data: dict[str, Any]) -> None:
        where.append(_index(data, "cta"))
        data["layers"][where[0]]["text"] = "Shop now, {{ first_name }}"

    message = _error(template_copy(edit))
    assert f"layers[{where[0]}].text: uses first_name but has no fallback" in message


def test_template_without_a_visible_ai_label_is_rejected(template_copy: Edit) -> None:
    def edit(data: dict[str, Any]) -> None:
        for layer in data["layers"]:
            if layer.get("role") == "ai_label":
                layer["role"] = "other"

    assert "no text layer with role 'ai_label'" in _error(template_copy(edit))


def test_text_box_outside_the_safe_area_is_rejected(template_copy: Edit) -> None:
    where: list[int] = []

    def edit(data: dict[str, Any]) -> None:
        where.append(_index(data, "price"))
        layer = data["layers"][where[0]]
        layer.pop("region"), layer.pop("at")
        layer["box"] = {"x": 0.0, "y": 0.9, "w": 0.6, "h": 0.1}

    message = _error(template_copy(edit))
    assert f"layers[{where[0]}].box: text box leaves the safe area" in message


def test_layer_shown_past_the_end_is_rejected(template_copy: Edit) -> None:
    where: list[int] = []

    def edit(data: dict[str, Any]) -> None:
        where.append(_index(data, "cta"))
        data["layers"][where[0]]["end"] = 9  # relative to its scene, which starts at 6 s

    message = _error(template_copy(edit))
    assert f"layers[{where[0]}].end: 9 s into scene 'end' is 15 s" in message
    assert "past the template's duration_s 8" in message


def test_unknown_template_lists_the_available_ones(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[2] / "templates"
    with pytest.raises(TemplateError, match=r"no such file .*hero"):
        load_template(root, "nope", ASSETS)
    with pytest.raises(TemplateError, match="must be lowercase"):
        load_template(root, "../hero", ASSETS)


@pytest.mark.parametrize(
    ("text", "generated", "expected"),
    [
        ("AI-generated", False, "generated_media: the copy says 'AI-generated'"),
        ("Personalized for you", True, "generated_media is true but no label says so"),
        ("AI-generated video", True, "Made with AI"),
        ("Personalized for you", False, "Personalized video"),
    ],
)
def test_a_label_says_what_is_true_about_how_the_video_was_made(
    template_copy: Edit, text: str, generated: bool, expected: str
) -> None:
    """A template of the shop's own pictures and copy may not claim AI; one that shows
    generated media must say so, and its videos carry the AI label setting's text."""
    from creative.template import video_label

    def edit(spec: dict[str, Any]) -> None:
        spec["generated_media"] = generated
        for layer in spec["layers"]:
            if layer.get("role") == "ai_label":
                layer["text"] = text

    folder = template_copy(edit)
    if expected.startswith("generated_media"):
        assert expected in _error(folder)
    else:
        assert video_label(load_template(folder, "hero", ASSETS), "Made with AI") == expected
