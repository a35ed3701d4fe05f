"""Training configs: the example files, the original project's keys, and clear errors for bad files."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from trainer.config import ConfigError, TrainConfig, config_from_dict, load_config, save_config

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.json")), ids=lambda p: p.name)
def test_every_example_config_is_valid(path: Path) -> None:
    config = load_config(path)
    assert config.mode in ("arcface", "distill", "both")
    assert all(Path(p).is_absolute() for p in config.data_path)


def test_one_example_per_mode() -> None:
    modes = {load_config(p).mode for p in CONFIGS.glob("*.json")}
    assert modes == {"arcface", "distill", "both"}


def test_original_keys_mean_the_same(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    original = {
        "data_path": "casia-webface",
        "epochs": 40,
        "batch_size": 256,
        "backbone": "ghostfacenetv2",
        "embedding_size": 512,
        "optimizer": {"name": "sgd", "sgd": {"base_lr": 0.1, "momentum": 0.9, "weight_decay": 5e-4}},
        "loss": {"arcface": {"scale": 32, "margin": 0.5, "easy_margin": False}},
        "early_stopping": {"patience": 7},
        "log_iters": 10,
        "gradient_accumulation_steps": 1,
    }
    with caplog.at_level(logging.WARNING, logger="trainer.config"):
        config = config_from_dict(original, base_dir=tmp_path)
    assert config.data_path == (str(tmp_path / "casia-webface"),)
    assert (config.epochs, config.batch_size, config.embedding_size) == (40, 256, 512)
    assert config.backbone.name == "ghostfacenetv2"
    assert config.optimizer.base_lr == 0.1 and config.optimizer.sgd.weight_decay == 5e-4
    assert (config.loss.arcface.scale, config.loss.arcface.margin) == (32, 0.5)
    assert config.early_stop.patience == 7
    assert "gradient_accumulation_steps" in caplog.text  # ignored, but said so


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    config = config_from_dict(
        {
            "data_path": [str(tmp_path)],
            "output_dir": str(tmp_path / "out"),
            "mode": "distill",
            "max_minutes": 5,
        }
    )
    loaded = load_config(save_config(config, tmp_path / "c.json"))
    assert loaded == config
    assert isinstance(loaded, TrainConfig)


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        ({"data_path": "x", "epochs": 0}, "epochs"),
        ({"data_path": "x", "loss": {"arcface": {"scale": -1}}}, "loss.arcface.scale"),
        ({"data_path": "x", "mode": "magic"}, "mode"),
        ({"epochs": 3}, "data_path"),
        ({"data_path": "x", "backbone": {"stem_stride": 3}}, "backbone.stem_stride"),
        ({"data_path": "x", "mode": "distill", "data": {"balanced_sampler": True}}, "balanced_sampler"),
    ],
)
def test_bad_values_name_the_key(data: dict, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle.replace(".", r"\.")):
        config_from_dict(data)


def test_unreadable_files_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_config(bad)
    bad.write_text(json.dumps([1, 2]), encoding="utf-8")
    with pytest.raises(ConfigError, match="JSON object"):
        load_config(bad)
