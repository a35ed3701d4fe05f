"""Live-camera degradations, the online teacher that embeds them, and held-out identification."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core.embedding import Embedder, create_embedder
from tests.trainer.conftest import tiny_config
from trainer.augment import Degradation, degrade
from trainer.config import ConfigError, config_from_dict
from trainer.data import CropDataset, load_crop_rgb, scan_folders
from trainer.loop import Trainer
from trainer.validation import IdentificationSet

ONLY = {
    "small": Degradation(p_small=1, p_blur=0, p_jpeg=0, p_geometry=0, p_gray=0, p_gamma=0),
    "blur": Degradation(p_small=0, p_blur=1, p_jpeg=0, p_geometry=0, p_gray=0, p_gamma=0),
    "jpeg": Degradation(p_small=0, p_blur=0, p_jpeg=1, p_geometry=0, p_gray=0, p_gamma=0),
    "geometry": Degradation(p_small=0, p_blur=0, p_jpeg=0, p_geometry=1, p_gray=0, p_gamma=0),
    "gray": Degradation(p_small=0, p_blur=0, p_jpeg=0, p_geometry=0, p_gray=1, p_gamma=0),
    "gamma": Degradation(p_small=0, p_blur=0, p_jpeg=0, p_geometry=0, p_gray=0, p_gamma=1),
}


@pytest.fixture(scope="module")
def crop(tiny_data: Path) -> np.ndarray:
    return load_crop_rgb(next(iter(sorted((tiny_data / "labelled").glob("*/*.jpg")))))


def _sharpness(image: np.ndarray) -> float:
    gray = image.mean(2)
    return float(np.abs(np.diff(gray, axis=0)).mean() + np.abs(np.diff(gray, axis=1)).mean())


@pytest.mark.parametrize("kind", sorted(ONLY))
def test_each_degradation_changes_the_crop_and_keeps_its_format(crop: np.ndarray, kind: str) -> None:
    out = degrade(crop, np.random.default_rng(3), ONLY[kind])
    assert out.shape == (112, 112, 3) and out.dtype == np.uint8
    assert np.abs(out.astype(int) - crop.astype(int)).mean() > 0.5, kind
    if kind in ("small", "blur"):
        assert _sharpness(out) < 0.8 * _sharpness(crop)
    if kind == "gray":
        assert np.array_equal(out[..., 0], out[..., 1]) and np.array_equal(out[..., 1], out[..., 2])


def test_a_view_is_a_pure_function_of_its_seed(crop: np.ndarray) -> None:
    a = degrade(crop, np.random.default_rng(11))
    b = degrade(crop, np.random.default_rng(11))
    others = [degrade(crop, np.random.default_rng(s)) for s in range(12, 20)]
    assert np.array_equal(a, b)
    assert any(not np.array_equal(a, o) for o in others)


def test_degrading_with_cached_teacher_targets_is_refused(tiny_data: Path, tmp_path: Path) -> None:
    config = tiny_config(tiny_data, tmp_path / "run", tmp_path / "cache", data={"degrade": True})
    with pytest.raises(ConfigError, match="distill.online"):
        config_from_dict(config)


class RecordingTeacher:
    """The real SFace teacher, noting every batch it is shown."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.batches: list[np.ndarray] = []

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    def embed(self, crops: np.ndarray, *, flip: bool = False) -> np.ndarray:
        self.batches.append(np.array(crops))
        return self.inner.embed(crops, flip=flip)


def test_the_online_teacher_embeds_the_degraded_views_the_student_sees(
    tiny_data: Path, tmp_path: Path
) -> None:
    config = tiny_config(
        tiny_data,
        tmp_path / "run",
        tmp_path / "cache",
        mode="distill",
        epochs=1,
        distill={"online": True, "cache_dir": str(tmp_path / "cache")},
        # No flip or colour jitter: every change to a view the teacher sees comes from the degradations.
        data={"degrade": True, "flip": False, "color_jitter": 0.0},
        validation={"holdout_identities": 20, "holdout_min_images": 6, "pairs_per_fold": 3},
    )
    teacher = RecordingTeacher(create_embedder("sface"))
    trainer = Trainer(config_from_dict(config), teacher=teacher)  # type: ignore[arg-type]
    result = trainer.fit()
    # 3 steps of 8 views, each embedded as the dataset makes it.
    assert len(teacher.batches) == 24 and all(b.shape == (1, 112, 112, 3) for b in teacher.batches)
    # Nothing went to a target cache: the targets are those of the views themselves.
    assert not list((tmp_path / "cache").glob("*.sqlite3"))
    clean = {load_crop_rgb(p)[..., ::-1].tobytes() for p in scan_folders(config["data_path"]).paths}
    shown = [image.tobytes() for batch in teacher.batches for image in batch]
    assert sum(s in clean for s in shown) < len(shown) // 2  # most views are not the clean crop
    record = result.history[-1]
    assert 0.0 <= record["val_rank1_small"] <= 1.0 and 0.0 <= record["val_rank1"] <= 1.0
    assert record["images_per_s"] > 0


def test_identification_of_held_out_people(tiny_data: Path) -> None:
    held = {p.name: sorted(p.glob("*.jpg")) for p in sorted((tiny_data / "labelled").iterdir())[:12]}
    ident = IdentificationSet(held)
    assert len(ident.gallery) == 12 and len(ident.labels) == 12 * 5
    model = create_embedder("ghostfacenetv2").network  # type: ignore[attr-defined]
    result = ident.evaluate(model)
    assert result.rank1 > 0.5  # chance is 1 in 12
    assert result.rank1_small <= result.rank1 + 0.1
    # The labels drive the figure: shuffled, it falls to chance.
    ident.labels = np.random.default_rng(0).permutation(ident.labels)
    assert ident.evaluate(model).rank1 < result.rank1 - 0.3


def test_the_online_teacher_runs_in_loader_workers(tiny_data: Path, tmp_path: Path) -> None:
    """With workers each builds its own teacher from the config's name; targets still match the views."""
    config = tiny_config(
        tiny_data,
        tmp_path / "run",
        tmp_path / "cache",
        mode="distill",
        epochs=1,
        distill={"online": True, "teacher": "sface"},
        data={"degrade": True, "num_workers": 2},
    )
    trainer = Trainer(config_from_dict(config))
    shown: list[tuple[np.ndarray, np.ndarray]] = []

    def check(t: Trainer) -> None:
        shown.append((t.state.loss, t.state.loss_parts.get("distill", float("nan"))))

    trainer.add_callback("on_batch_end", check)
    result = trainer.fit()
    assert result.epochs_completed == 1 and len(shown) == 3
    assert all(np.isfinite(loss) and 0.0 < distill < 2.0 for loss, distill in shown)


def test_a_dataset_item_carries_the_teachers_embedding_of_its_own_pixels(tiny_data: Path) -> None:
    samples = scan_folders([tiny_data / "labelled"])
    teacher = create_embedder("sface")
    dataset = CropDataset(samples, degrade=True, jitter=0.25, teacher=teacher)
    image, _label, _index, _flipped, target = dataset[5]
    again = teacher.embed(np.ascontiguousarray(image.permute(1, 2, 0).numpy()[None, :, :, ::-1]))[0]
    np.testing.assert_allclose(target.numpy(), again, atol=1e-6)
    clean = teacher.embed(np.ascontiguousarray(load_crop_rgb(samples.paths[5])[None, :, :, ::-1]))[0]
    assert float(target.numpy() @ clean) < 0.9999  # the target is the view's, not the clean crop's
