"""The training loop on tiny real data: learning, gradients, stop, exact resume, validation, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from core.embedding import create_embedder
from core.errors import CheckpointError, ModelNotFoundError
from tests.trainer.conftest import tiny_config
from trainer.checkpoints import load_training_checkpoint
from trainer.config import ConfigError, config_from_dict
from trainer.data import load_crop_rgb
from trainer.export import export_backbone
from trainer.loop import Trainer, lr_factor
from trainer.validation import embed_crops


def _run(config: dict, *, resume: Path | None = None, hooks: dict | None = None) -> tuple[Trainer, object]:
    trainer = Trainer(config_from_dict(config), resume=resume)
    for event, fn in (hooks or {}).items():
        trainer.add_callback(event, fn)
    return trainer, trainer.fit()


def _stop_at(global_step: int):
    def hook(trainer: Trainer) -> None:
        if trainer.state.global_step >= global_step:
            trainer.stop = True

    return hook


@pytest.fixture(scope="module")
def reference(
    tiny_data: Path, teacher_cache: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[dict, object]:
    """An uninterrupted 2-epoch run (3 batches each) that the resumed runs must reproduce exactly."""
    out = tmp_path_factory.mktemp("reference")
    config = tiny_config(tiny_data, out, teacher_cache)
    grads: dict[str, float] = {}

    def record_grads(trainer: Trainer) -> None:
        if trainer.state.global_step == 1:
            modules = {"backbone": trainer.model, "head": trainer.head, "projection": trainer.projection}
            for prefix, module in modules.items():
                for name, param in module.named_parameters():
                    grads[f"{prefix}.{name}"] = -1.0 if param.grad is None else float(param.grad.abs().sum())

    trainer, result = _run(config, hooks={"on_batch_end": record_grads})
    return config, result, grads, trainer


def test_every_parameter_gets_a_gradient(reference) -> None:
    _config, _result, grads, _trainer = reference
    assert len(grads) > 300
    missing = [name for name, total in grads.items() if total <= 0.0]
    assert not missing, f"parameters without gradient: {missing[:10]}"


def test_loss_is_finite_and_falls(tiny_data: Path, teacher_cache: Path, tmp_path: Path) -> None:
    # Distillation on 40 fixed crops (no augmentation): the student must move towards the teacher.
    config = tiny_config(
        tiny_data,
        tmp_path / "run",
        teacher_cache,
        mode="distill",
        epochs=4,
        max_steps_per_epoch=5,
        data={"flip": False, "color_jitter": 0.0, "max_images": 40},
        scheduler={"name": "constant", "warmup_epochs": 0},
    )
    _trainer, result = _run(config)
    losses = [rec["loss"] for rec in result.history]
    assert all(np.isfinite(losses))
    assert losses[-1] < losses[0] - 0.02, losses


def test_stop_ends_the_run_between_batches_and_keeps_a_checkpoint(reference, tmp_path: Path) -> None:
    config = {**reference[0], "output_dir": str(tmp_path / "stopped")}
    batches: list[int] = []
    trainer, result = _run(
        config,
        hooks={"on_batch_end": lambda t: batches.append(t.state.global_step), "on_train_start": _stop_at(0)},
    )
    # Stop requested before the first batch: nothing trained, nothing saved.
    assert batches == [] and result.stopped and result.last_checkpoint is None

    trainer, result = _run(config, hooks={"on_batch_end": _stop_at(2)})
    assert result.stopped and result.epochs_completed == 0
    saved = load_training_checkpoint(result.last_checkpoint)
    assert (saved["epoch"], saved["step_in_epoch"], saved["global_step"]) == (0, 2, 2)


@pytest.mark.parametrize("stop_after", [2, 3], ids=["mid-epoch", "epoch-end"])
def test_resume_continues_exactly(reference, tmp_path: Path, stop_after: int) -> None:
    config, ref_result, _grads, ref_trainer = reference
    config = {**config, "output_dir": str(tmp_path / "run")}
    _t, first = _run(config, hooks={"on_batch_end": _stop_at(stop_after)})
    assert first.stopped
    lrs: list[float] = []
    trainer, result = _run(
        config, resume=first.last_checkpoint, hooks={"on_batch_end": lambda t: lrs.append(t.state.lr)}
    )
    steps = trainer.state.steps_per_epoch
    cfg = config_from_dict(config)
    # The first resumed batch runs at the LR an uninterrupted run has at that step.
    assert lrs[0] == pytest.approx(cfg.optimizer.base_lr * lr_factor(cfg, stop_after, steps))
    assert len(lrs) == 2 * steps - stop_after
    assert [r["epoch"] for r in result.history] == [1, 2] and not result.stopped
    assert [r["loss"] for r in result.history] == pytest.approx(
        [r["loss"] for r in ref_result.history], abs=1e-4
    )
    for (name, a), b in zip(
        ref_trainer.model.state_dict().items(), trainer.model.state_dict().values(), strict=True
    ):
        assert torch.allclose(a.float(), b.float(), atol=1e-5), name


def test_checkpoint_round_trips_into_the_engine(reference, tiny_data: Path, tmp_path: Path) -> None:
    _config, result, _grads, trainer = reference
    crops_rgb = np.stack([load_crop_rgb(p) for p in sorted((tiny_data / "unlabelled").glob("*.jpg"))[:6]])
    expected = embed_crops(trainer.model.float().eval(), crops_rgb, flip=False)
    embedder = create_embedder(f"ghostfacenetv2:{result.best_backbone}")
    got = embedder.embed(np.ascontiguousarray(crops_rgb[:, :, :, ::-1]))
    assert embedder.dim == 512
    np.testing.assert_allclose(got, expected, atol=1e-4)
    # The fp16 export the app ships: same embeddings up to half precision.
    half = export_backbone(result.last_checkpoint, tmp_path / "model.pt", meta={"note": "test"}, half=True)
    got_half = create_embedder(f"ghostfacenetv2:{half}").embed(np.ascontiguousarray(crops_rgb[:, :, :, ::-1]))
    assert (got_half * expected).sum(1).min() > 0.995


def test_arcface_with_holdout_validation_and_early_stopping(
    tiny_data: Path, teacher_cache: Path, tmp_path: Path
) -> None:
    config = tiny_config(
        tiny_data,
        tmp_path / "run",
        teacher_cache,
        mode="arcface",
        epochs=6,
        max_steps_per_epoch=2,
        data={"max_images": None},
        validation={"holdout_identities": 20, "holdout_min_images": 2, "pairs_per_fold": 3},
        # An improvement of a whole point can never happen: stop after `patience` epochs.
        early_stop={"patience": 2, "min_delta": 1.0},
    )
    trainer, result = _run(config)
    assert result.early_stopped and not result.stopped
    assert result.epochs_completed == 3
    assert all(0.0 <= rec["val_accuracy"] <= 1.0 for rec in result.history)
    assert trainer.state.num_classes == 4  # the 20 held-out identities never reach training
    held = {
        Path(line.split("\t")[0]).parent.name
        for line in (tmp_path / "run" / "validation_pairs.tsv").read_text().splitlines()
    }
    assert held.isdisjoint(Path(p).parent.name for p in trainer.samples.paths)
    assert result.best_backbone.is_file() and "train.log" in {p.name for p in (tmp_path / "run").iterdir()}
    # The best checkpoint carries the threshold that was best on its validation pairs, and the engine
    # adopts it: each model matches on its own similarity scale.
    best = max(result.history, key=lambda rec: rec["val_accuracy"])
    embedder = create_embedder(f"ghostfacenetv2:{result.best_backbone}")
    assert embedder.suggested_threshold == pytest.approx(best["val_threshold"], abs=1e-4)
    assert -1.0 <= embedder.suggested_threshold <= 1.0


def test_bad_inputs_are_clear_errors_and_write_nothing(
    tiny_data: Path, teacher_cache: Path, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError, match="not a folder"):
        _run(tiny_config(tmp_path / "missing", tmp_path / "a", teacher_cache))
    assert not (tmp_path / "a").exists()
    only_unlabelled = tiny_config(tiny_data, tmp_path / "b", teacher_cache, mode="arcface")
    only_unlabelled["data_path"] = [str(tiny_data / "unlabelled")]
    with pytest.raises(ConfigError, match="at least 2 labelled identities"):
        _run(only_unlabelled)


def test_resume_refuses_a_foreign_checkpoint(reference, tmp_path: Path) -> None:
    config, result, _grads, _trainer = reference
    with pytest.raises(CheckpointError, match="not a training checkpoint"):
        _run({**config, "output_dir": str(tmp_path / "a")}, resume=result.best_backbone)
    wider = {**config, "output_dir": str(tmp_path / "b"), "backbone": {"width": 1.0, "stem_stride": 2}}
    with pytest.raises(CheckpointError, match="backbone"):
        _run(wider, resume=result.last_checkpoint)


def test_fine_tuning_starts_from_the_given_backbone(reference, tmp_path: Path) -> None:
    config, result, _grads, _trainer = reference
    start: dict[str, torch.Tensor] = {}

    def record_start(trainer: Trainer) -> None:
        start.update({k: v.detach().clone() for k, v in trainer.model.state_dict().items()})

    tuned = {**config, "output_dir": str(tmp_path / "tuned"), "init_backbone": str(result.best_backbone)}
    _run({**tuned, "epochs": 1, "max_steps_per_epoch": 1}, hooks={"on_train_start": record_start})
    source = torch.load(result.best_backbone, map_location="cpu", weights_only=True)["state_dict"]
    assert start.keys() == source.keys()
    for name, value in source.items():
        assert torch.equal(start[name].float(), value.float()), name

    wider = {**tuned, "output_dir": str(tmp_path / "wider"), "backbone": {"width": 1.0, "stem_stride": 2}}
    with pytest.raises(ConfigError, match="does not fit"):
        _run(wider)
    with pytest.raises(ModelNotFoundError, match="checkpoint not found"):
        _run({**tuned, "output_dir": str(tmp_path / "none"), "init_backbone": str(tmp_path / "missing.pt")})
    # Both are found before the run writes anything or runs the teacher.
    assert not (tmp_path / "wider").exists() and not (tmp_path / "none").exists()
