"""The settings model and its file: defaults, validation, a corrupt or partial file never crashes."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from pydantic import ValidationError

from core import paths
from core.settings import (
    SCHEMA_VERSION,
    Settings,
    SettingsError,
    describe_validation_error,
    load_settings,
    save_settings,
)


def test_missing_file_gives_defaults_without_warnings(tmp_path: Path) -> None:
    result = load_settings(tmp_path / "nope.json")
    assert result.settings == Settings()
    assert result.warnings == ()


def test_round_trip_keeps_every_value(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    changed = Settings().replace(
        recognition={"similarity_threshold": 0.5, "margin": 0.1}, camera={"source": "clip.mp4"}
    )
    save_settings(changed, path)
    loaded = load_settings(path)
    assert loaded.warnings == ()
    assert loaded.settings == changed
    assert json.loads(path.read_text())["schema_version"] == SCHEMA_VERSION


def test_corrupt_file_falls_back_to_defaults_with_warning_and_backup(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    path.write_bytes(b"{ this is not json \x00")
    result = load_settings(path)
    assert result.settings == Settings()
    assert result.warnings and "could not be read" in result.warnings[0]
    # The user's file is kept, not silently overwritten.
    assert result.backup is not None and result.backup.read_bytes() == path.read_bytes()


def test_bad_keys_are_dropped_and_good_ones_kept(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    path.write_text(
        json.dumps(
            {
                "recognition": {"similarity_threshold": 7, "margin": 0.2},
                "detection": {"min_face_px": 40, "no_such_key": 1},
                "camera": "not an object",
                "bogus": True,
            }
        )
    )
    result = load_settings(path)
    s = result.settings
    assert s.recognition.margin == 0.2
    assert s.recognition.similarity_threshold == Settings().recognition.similarity_threshold
    assert s.detection.min_face_px == 40
    assert s.camera == Settings().camera
    text = "\n".join(result.warnings)
    for name in ("recognition.similarity_threshold", "detection.no_such_key", "camera", "bogus"):
        assert name in text


def test_settings_are_immutable_snapshots() -> None:
    s = Settings()
    with pytest.raises(ValidationError):
        s.recognition.similarity_threshold = 0.9  # type: ignore[misc]


def test_replace_validates() -> None:
    with pytest.raises(ValidationError):
        Settings().replace(recognition={"similarity_threshold": 3.0})


def test_every_field_has_a_title_and_description() -> None:
    for section_name, section_field in Settings.model_fields.items():
        section_type = section_field.annotation
        if not (isinstance(section_type, type) and hasattr(section_type, "model_fields")):
            continue
        for name, f in section_type.model_fields.items():
            assert f.title and f.description, (
                f"{section_name}.{name} needs a title and description for its tooltip"
            )


def test_user_folders_follow_ghostface_home(_fresh_home: Path) -> None:
    assert paths.settings_path().is_relative_to(_fresh_home)
    assert paths.plugins_dir().is_dir() and paths.plugins_dir().is_relative_to(_fresh_home)


def test_a_typo_in_replace_is_a_clear_error_naming_the_setting() -> None:
    with pytest.raises(SettingsError, match=r"camera\.sourc.*did you mean 'camera\.source'"):
        Settings().replace(camera={"sourc": "1"})
    with pytest.raises(SettingsError, match="camrea"):
        Settings().replace(camrea={"source": "1"})


def test_rules_between_fields_and_model_names_are_checked() -> None:
    with pytest.raises(ValidationError, match="confirm_votes"):
        Settings().replace(tracking={"confirm_votes": 8, "vote_window": 7})
    assert Settings().replace(tracking={"confirm_votes": 7, "vote_window": 7}).tracking.confirm_votes == 7
    with pytest.raises(ValidationError, match="known detectors: yunet"):
        Settings().replace(detection={"detector": "yunett"})
    with pytest.raises(ValidationError, match="known embedders: sface"):
        Settings().replace(recognition={"embedder": "arcface"})
    with pytest.raises(ValidationError, match="device"):
        Settings().replace(recognition={"device": "gpu"})
    # A checkpoint path after the registered name is a valid embedder (the file is checked when built).
    assert Settings().replace(recognition={"embedder": "ghostfacenetv2:/x.pt"}).recognition.embedder


def test_an_old_file_loses_only_its_contradictions_and_typos(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    path.write_text(
        json.dumps(
            {
                "tracking": {"confirm_votes": 9, "iou_threshold": 0.5},
                "detection": {"detector": "gone-model", "min_face_px": 40},
                "camera": {"sourc": "1", "max_fps": 10.0},
            }
        )
    )
    result = load_settings(path)
    s, defaults = result.settings, Settings()
    assert s.tracking.iou_threshold == 0.5 and s.tracking.confirm_votes == defaults.tracking.confirm_votes
    assert s.detection.min_face_px == 40 and s.detection.detector == defaults.detection.detector
    assert s.camera.max_fps == 10.0
    text = "\n".join(result.warnings)
    assert "confirm_votes" in text and "gone-model" in text and "camera.sourc" in text
    # Voting windows read in any order: a larger window given after its votes is kept whole.
    path.write_text(json.dumps({"tracking": {"confirm_votes": 10, "vote_window": 12}}))
    loaded = load_settings(path)
    assert loaded.warnings == () and loaded.settings.tracking.confirm_votes == 10


def test_a_bad_value_is_described_in_one_clear_line() -> None:
    with pytest.raises(ValidationError) as err:
        Settings().replace(recognition={"similarity_threshold": 5.0})
    message = describe_validation_error(err.value)
    assert message.startswith("recognition.similarity_threshold = 5.0: ") and "\n" not in message
    assert "pydantic" not in message


def test_load_settings_leaves_showing_the_warnings_to_its_caller(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # The CLI printed each settings warning twice: once logged here, once by itself.
    path = tmp_path / "settings.json"
    path.write_text('{"recognition": {"similarity_threshold": 7}, "bogus": 1}')
    with caplog.at_level(logging.WARNING):
        result = load_settings(path)
    assert len(result.warnings) == 2
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
