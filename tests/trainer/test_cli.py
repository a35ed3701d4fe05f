"""``ghostface train`` and ``ghostface align`` through the real console entry point."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import pytest

from cli.main import main as ghostface
from tests.trainer.conftest import tiny_config


def test_train_from_a_config_file_and_export(
    tiny_data: Path, teacher_cache: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tiny_config(tiny_data, tmp_path / "run", teacher_cache, epochs=1, max_steps_per_epoch=2)
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config), encoding="utf-8")
    code = ghostface(["train", "--config", str(path), "--export", str(tmp_path / "model.pt"), "--json"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["epochs_completed"] == 1 and not summary["stopped"]
    assert Path(summary["exported"]).is_file() and Path(summary["last_checkpoint"]).is_file()


def test_train_reports_a_bad_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"data_path": str(tmp_path), "epochs": -1}), encoding="utf-8")
    assert ghostface(["train", "--config", str(path)]) == 1
    assert "epochs" in capsys.readouterr().err


def test_align_makes_training_crops(
    demo_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    photos = tmp_path / "photos"
    (photos / "Barack Obama").mkdir(parents=True)
    shutil.copy(demo_dir / "obama.jpg", photos / "Barack Obama" / "obama.jpg")
    shutil.copy(demo_dir / "obama2.jpg", photos / "Barack Obama" / "obama2.jpg")
    (photos / "Barack Obama" / "broken.jpg").write_bytes(b"not an image")
    out = tmp_path / "crops"
    assert ghostface(["align", str(photos), str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (summary["written"], summary["unreadable"]) == (2, 1)
    crops = sorted((out / "Barack Obama").glob("*.jpg"))
    assert [c.stem for c in crops] == ["obama", "obama2"]
    assert all(cv2.imread(str(c)).shape == (112, 112, 3) for c in crops)
    # Run again: existing crops are kept, nothing is redone.
    assert ghostface(["align", str(photos), str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["skipped"] == 2


def test_align_reports_a_missing_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert ghostface(["align", str(tmp_path / "nope"), str(tmp_path / "out")]) == 1
    assert "not found" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
