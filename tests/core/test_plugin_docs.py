"""docs/plugins.md's reference is checked against the code: a field, hook or attribute added, removed or
renamed in one and not the other fails here."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import ghostface_api
from core.plugins import HOOKS
from core.settings import EventSettings, PluginSettings
from core.types import EventKind

DOC = Path(__file__).resolve().parents[2] / "docs" / "plugins.md"


def section(name: str) -> str:
    text = DOC.read_text(encoding="utf-8")
    match = re.search(rf"<!-- reference:{name} -->\n(.*?)<!-- /reference:{name} -->", text, re.S)
    assert match, f"docs/plugins.md has no reference:{name} section"
    return match.group(1)


def first_column(name: str) -> list[str]:
    """The names in the first column of a reference table (``on_start(context)`` gives ``on_start``)."""
    rows = [line for line in section(name).splitlines() if line.startswith("| `")]
    return [re.match(r"\| `([a-zA-Z_]+)", row).group(1) for row in rows]  # type: ignore[union-attr]


def test_event_fields_are_documented_in_order() -> None:
    fields = [f.name for f in dataclasses.fields(ghostface_api.RecognitionEvent)]
    assert first_column("event") == fields


def test_event_kinds_are_documented() -> None:
    text = DOC.read_text(encoding="utf-8")
    kinds_table = re.search(r"\| kind \| when \|\n\| --- \| --- \|\n((?:\|.*\n)+)", text)
    assert kinds_table
    documented = re.findall(r"^\| `(\w+)` \|", kinds_table.group(1), re.M)
    assert documented == [k.value for k in EventKind]


def test_json_example_has_exactly_the_keys_of_to_dict() -> None:
    block = re.search(r"```json\n(.*?)```", section("json"), re.S)
    assert block
    example = json.loads(block.group(1))
    actual = ghostface_api.make_event().to_dict()
    assert list(example) == list(actual)
    assert example["api_version"] == ghostface_api.API_VERSION


def test_context_attributes_are_documented_in_order() -> None:
    fields = [f.name for f in dataclasses.fields(ghostface_api.PluginContext)]
    assert first_column("context") == fields


def test_hooks_are_documented() -> None:
    assert tuple(first_column("hooks")) == HOOKS == ghostface_api.HOOKS


def test_setting_fields_and_module_attributes_are_documented() -> None:
    text = DOC.read_text(encoding="utf-8")
    table = re.search(r"\| `Setting` field \| meaning \|\n\s*\| --- \| --- \|\n((?:[ ]*\|.*\n)+)", text)
    assert table
    documented = re.findall(r"\| `(\w+)` \|", table.group(1))
    assert documented == [f.name for f in dataclasses.fields(ghostface_api.Setting)]
    assert first_column("module") == ["NAME", "SETTINGS", "API_VERSION"]


def test_every_documented_settings_key_exists() -> None:
    text = DOC.read_text(encoding="utf-8")
    for section_name, model in (("plugins", PluginSettings), ("events", EventSettings)):
        for key in re.findall(rf"`{section_name}\.(\w+)`", text):
            assert key in model.model_fields, f"docs name {section_name}.{key}, which is not a setting"
    assert "drain_s" in text and "load_timeout_s" in text and "isolate" in text
