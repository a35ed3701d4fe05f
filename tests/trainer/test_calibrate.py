"""The threshold calibration against SFace on a run's held-out people (real crops, real models)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cli.main import main
from core.embedding import create_embedder
from core.modelstore import default_store
from tests.trainer.conftest import tiny_config
from trainer.calibrate import calibrate_threshold, heldout_crops, trained_crops
from trainer.config import config_from_dict
from trainer.data import scan_folders, split_holdout, subset_people


@pytest.fixture(scope="module")
def shipped() -> Path:
    path = default_store().locate("ghostfacenetv2")
    if path is None:
        pytest.skip("the shipped GhostFaceNetV2 checkpoint is missing")
    return path


def _config(tiny_data: Path, tmp_path: Path) -> dict:
    return tiny_config(
        tiny_data,
        tmp_path / "run",
        tmp_path / "cache",
        validation={"holdout_identities": 20, "holdout_min_images": 6, "pairs_per_fold": 5},
    )


def test_the_threshold_accepts_strangers_no_more_often_than_sface(
    tiny_data: Path, tmp_path: Path, shipped: Path
) -> None:
    held = heldout_crops(config_from_dict(_config(tiny_data, tmp_path)))
    assert len(held) == 20
    result = calibrate_threshold(shipped, held, pairs_per_fold=12)
    assert result.reference.startswith("sface@") and result.reference_threshold == pytest.approx(
        0.36, abs=0.01
    )
    assert result.same_pairs == 120 and result.identities == 20
    assert result.far <= result.reference_far
    assert 0.0 < result.tar <= 1.0 and 0.5 < result.accuracy <= 1.0


def test_calibrate_command_writes_the_threshold_the_engine_then_uses(
    tiny_data: Path, tmp_path: Path, shipped: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(_config(tiny_data, tmp_path)))
    out = tmp_path / "calibrated.pt"
    argv = ["calibrate", "--config", str(config_path), "--checkpoint", str(shipped)]
    assert main([*argv, "--pairs-per-fold", "12", "--write", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    embedder = create_embedder(f"ghostfacenetv2:{out}")
    assert embedder.suggested_threshold == pytest.approx(summary["threshold"])
    # Same weights (fp16 as shipped), only the meta changed.
    crops = np.zeros((1, 112, 112, 3), np.uint8)
    np.testing.assert_allclose(
        embedder.embed(crops), create_embedder(f"ghostfacenetv2:{shipped}").embed(crops), atol=1e-3
    )


def test_a_run_without_held_out_people_cannot_be_calibrated(tiny_data: Path, tmp_path: Path) -> None:
    config = tiny_config(tiny_data, tmp_path / "run", tmp_path / "cache")
    with pytest.raises(ValueError, match="held out no identities"):
        heldout_crops(config_from_dict(config))


def test_trained_people_are_ones_the_run_trained_on(tiny_data: Path, tmp_path: Path) -> None:
    config = tiny_config(
        tiny_data,
        tmp_path / "run",
        tmp_path / "cache",
        validation={"holdout_identities": 10, "holdout_min_images": 6},
    )
    held = heldout_crops(config_from_dict(config))
    trained = trained_crops(config_from_dict(config))
    assert len(trained) == 10 and set(trained).isdisjoint(held)
    assert all(len(crops) == 6 for crops in trained.values())
    # With a people fraction, only people of the kept fraction count as trained.
    config["data"] = {**config.get("data", {}), "people_fraction": 0.75}
    cfg = config_from_dict(config)
    rest, _ = split_holdout(scan_folders(cfg.data_path), 10, min_images=6, seed=cfg.seed)
    kept = set(subset_people(rest, 0.75, seed=cfg.seed).class_names)
    assert len(kept) == 10 and set(trained_crops(cfg)) == kept
    config["data"]["people_fraction"] = 0.5
    with pytest.raises(ValueError, match="identities"):
        trained_crops(config_from_dict(config))


def test_no_threshold_is_written_from_trained_people(
    tiny_data: Path, tmp_path: Path, shipped: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(_config(tiny_data, tmp_path)))
    out = tmp_path / "calibrated.pt"
    argv = ["calibrate", "--config", str(config_path), "--checkpoint", str(shipped), "--people", "trained"]
    assert main([*argv, "--write", str(out)]) == 1
    assert "held-out people only" in capsys.readouterr().err and not out.exists()
