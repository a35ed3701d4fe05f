"""The training configuration: a validated, frozen model read from (and written to) a JSON file.

Keys follow the original project's ``config.json`` where they mean the same thing (``data_path``,
``epochs``, ``batch_size``, ``backbone``, ``embedding_size``, ``optimizer.sgd.base_lr``,
``loss.arcface.scale`` / ``margin``, ``log_iters``, ``early_stop.patience``, ...), plus what
distillation, validation and resuming need. Unknown keys are ignored with a warning, so an original
config loads; a value out of bounds is a :class:`ConfigError` that names the key.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from core._atomic import atomic_write_text
from core.errors import GhostFaceError

__all__ = [
    "BackboneConfig",
    "ConfigError",
    "DataConfig",
    "DistillConfig",
    "EarlyStopConfig",
    "LossConfig",
    "Mode",
    "OptimizerConfig",
    "SchedulerConfig",
    "TrainConfig",
    "ValidationConfig",
    "load_config",
    "save_config",
]

log = logging.getLogger(__name__)

Mode = Literal["arcface", "distill", "both"]


class ConfigError(GhostFaceError, ValueError):
    """A training configuration that cannot be used (unreadable file, bad value, missing data path)."""


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", validate_default=True)


class BackboneConfig(_Section):
    """GhostFaceNetV2 shape ("GhostFaceNetV2-<width>-<stem_stride>")."""

    name: Literal["ghostfacenetv2"] = "ghostfacenetv2"
    width: float = Field(1.0, gt=0.0, le=4.0, description="Channel multiplier (1.0 and 1.3 are the usual).")
    stem_stride: Literal[1, 2] = Field(2, description="2: 46 M MACs, 4x4 final map; 1: 3.6x the MACs.")
    prelu: Literal["channel", "scalar"] = "channel"
    dfc_upsample: Literal["nearest", "bilinear"] = "nearest"
    dropout: float = Field(0.0, ge=0.0, lt=1.0)


class SGDConfig(_Section):
    base_lr: float = Field(0.1, gt=0.0, le=10.0)
    momentum: float = Field(0.9, ge=0.0, lt=1.0)
    weight_decay: float = Field(5e-4, ge=0.0, le=1.0)
    nesterov: bool = False


class AdamWConfig(_Section):
    base_lr: float = Field(2e-3, gt=0.0, le=1.0)
    weight_decay: float = Field(0.05, ge=0.0, le=1.0)
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = Field(1e-8, gt=0.0)


class OptimizerConfig(_Section):
    """Which optimizer (``name``) and the settings of each; weight decay applies to kernels only."""

    name: Literal["sgd", "adamw"] = "sgd"
    sgd: SGDConfig = SGDConfig()
    adamw: AdamWConfig = AdamWConfig()

    @property
    def base_lr(self) -> float:
        """The chosen optimizer's base learning rate."""
        return self.sgd.base_lr if self.name == "sgd" else self.adamw.base_lr


class SchedulerConfig(_Section):
    """Learning-rate schedule, stepped per batch: cosine with linear warm-up, or step decay per epoch."""

    name: Literal["cosine", "step", "constant"] = "cosine"
    warmup_epochs: float = Field(1.0, ge=0.0, le=100.0)
    min_lr: float = Field(1e-5, ge=0.0)
    milestones: tuple[int, ...] = (10, 20, 30)
    gamma: float = Field(0.1, gt=0.0, le=1.0)


class ArcFaceConfig(_Section):
    scale: float = Field(32.0, gt=0.0, le=256.0)
    margin: float = Field(0.5, ge=0.0, lt=1.5)
    easy_margin: bool = False
    sub_centers: int = Field(1, ge=1, le=10, description="K > 1: sub-center ArcFace (max over K centres).")


class CosFaceConfig(_Section):
    scale: float = Field(64.0, gt=0.0, le=256.0)
    margin: float = Field(0.35, ge=0.0, lt=1.0)


class CombinedConfig(_Section):
    scale: float = Field(64.0, gt=0.0, le=256.0)
    m1: float = Field(1.0, ge=0.5, le=2.0)
    m2: float = Field(0.5, ge=0.0, lt=1.5)
    m3: float = Field(0.0, ge=0.0, lt=1.0)


class LossConfig(_Section):
    """The margin-softmax head for labelled crops: ``name`` picks one of the sections."""

    name: Literal["arcface", "cosface", "combined"] = "arcface"
    arcface: ArcFaceConfig = ArcFaceConfig()
    cosface: CosFaceConfig = CosFaceConfig()
    combined: CombinedConfig = CombinedConfig()
    weight: float = Field(1.0, ge=0.0, le=100.0, description="Weight of the margin loss in mode 'both'.")


class DistillConfig(_Section):
    """Distillation from a teacher embedder of the engine (default SFace)."""

    teacher: str = Field("sface", min_length=1, description="Embedder id of the teacher (create_embedder).")
    weight: float = Field(
        1.0, ge=0.0, le=100.0, description="Weight of 1 - cos(projection(student), teacher)."
    )
    relational_weight: float = Field(
        0.0, ge=0.0, le=1000.0, description="Weight of the batch similarity-matrix (relational) loss."
    )
    cache_dir: str | None = Field(None, description="Teacher-embedding cache folder (default: user cache).")
    teacher_batch: int = Field(64, ge=1, le=4096)
    flip_targets: bool = Field(
        True, description="Cache the teacher's embedding of each mirrored crop too (twice the teacher time)."
    )
    compute_missing: bool = Field(
        True,
        description="Run the teacher on crops missing from the cache (false: train on cached ones only).",
    )
    online: bool = Field(
        False,
        description="Run the teacher on every augmented batch, so its target is that of the very view the "
        "student sees (degraded, mirrored, jittered) instead of a cached target of the clean crop.",
    )


class DataConfig(_Section):
    """Augmentation and sampling."""

    flip: bool = True
    color_jitter: float = Field(0.25, ge=0.0, lt=1.0, description="Brightness/contrast/saturation x(1 +- j).")
    shift_px: int = Field(0, ge=0, le=16, description="Random translation of up to this many pixels.")
    degrade: bool = Field(
        False,
        description="Make crops look like live faces: small and upsampled, blurred, JPEG-compressed, "
        "slightly rotated and shifted, grayscale, gamma (trainer.augment). Pair it with distill.online.",
    )
    balanced_sampler: bool = Field(
        False, description="Class-balanced WeightedRandomSampler (labelled crops)."
    )
    min_images_per_class: int = Field(1, ge=1, le=1000)
    num_workers: int = Field(0, ge=0, le=64)
    max_images: int | None = Field(None, ge=1, description="Use at most this many crops (quick runs, tests).")
    people_fraction: float = Field(
        1.0,
        gt=0.0,
        le=1.0,
        description="Train on this fraction of the people (whole identities, and as many unlabelled crops), "
        "chosen by the seed after the held-out people are set aside: data-scaling studies.",
    )


class ValidationConfig(_Section):
    """Per-epoch verification accuracy (10-fold) on a held-out pair list, for early stopping.

    Either ``holdout_identities`` labelled identities are kept out of training and paired
    (same/different), or ``pairs`` names a pair list (LFW ``pairs.txt`` format over ``images``, a folder
    of aligned 112x112 crops ``<name>/<name>_NNNN.<ext>``, or a tab-separated ``path_a path_b same`` file).
    Never point this at the benchmark you will report.
    """

    holdout_identities: int = Field(0, ge=0, le=100000)
    holdout_min_images: int = Field(4, ge=2, le=1000)
    holdout_max_images: int = Field(
        1000, ge=2, le=1000000, description="Leave identities with more crops than this in training."
    )
    pairs_per_fold: int = Field(60, ge=2, le=100000, description="Same and different pairs per fold, each.")
    pairs: str | None = None
    images: str | None = None
    flip: bool = Field(True, description="Flip-sum embeddings, as MODEL_SPEC 5.1.")
    every: int = Field(1, ge=1, le=1000)


class EarlyStopConfig(_Section):
    """Stop when validation accuracy has not improved by ``min_delta`` for ``patience`` epochs."""

    patience: int = Field(7, ge=1, le=10000)
    min_delta: float = Field(0.0, ge=0.0, le=1.0)
    enabled: bool = True


class TrainConfig(_Section):
    """Everything a training run needs; :func:`load_config` builds it from JSON."""

    mode: Mode = Field("arcface", description="arcface (labelled), distill (teacher only) or both.")
    data_path: tuple[str, ...] = Field(
        ..., min_length=1, description="Crop folders: <identity>/<crop> labelled, loose crops unlabelled."
    )
    output_dir: str = "runs/train"
    epochs: int = Field(20, ge=1, le=10000)
    batch_size: int = Field(128, ge=2, le=65536)
    embedding_size: int = Field(512, ge=8, le=4096)
    backbone: BackboneConfig = BackboneConfig()
    init_backbone: str | None = Field(
        None,
        description="Fine-tune: start from this backbone checkpoint (an engine .pt, or a raw state dict of the "
        "original project) instead of random weights; its shape must match 'backbone'.",
    )
    optimizer: OptimizerConfig = OptimizerConfig()
    scheduler: SchedulerConfig = SchedulerConfig()
    loss: LossConfig = LossConfig()
    distill: DistillConfig = DistillConfig()
    data: DataConfig = DataConfig()
    validation: ValidationConfig = ValidationConfig()
    early_stop: EarlyStopConfig = EarlyStopConfig()
    grad_clip: float | None = Field(5.0, gt=0.0, description="Max gradient norm; null turns clipping off.")
    seed: int = 0
    log_iters: int = Field(10, ge=1)
    threads: int = Field(0, ge=0, le=512, description="torch threads; 0 keeps torch's default.")
    channels_last: bool = Field(True, description="1.45x faster training on CPU (TRAINING_NOTES).")
    device: str = "cpu"
    max_steps_per_epoch: int | None = Field(None, ge=1, description="Cut epochs short (quick runs, tests).")
    max_minutes: float | None = Field(
        None,
        gt=0.0,
        description="Training-time budget: the cosine schedule runs over this time instead of the epochs, "
        "and the run ends (validated and saved) when it is spent.",
    )
    export_half: bool = True

    @field_validator("data_path", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return (value,) if isinstance(value, str | Path) else value

    @field_validator("backbone", mode="before")
    @classmethod
    def _backbone_name(cls, value: Any) -> Any:
        # The original names the backbone with a string.
        if isinstance(value, str):
            return {"name": value.lower().replace("_", "").replace("-", "")}
        return value

    @model_validator(mode="after")
    def _check(self) -> TrainConfig:
        if self.data.balanced_sampler and self.mode == "distill":
            raise ValueError("data.balanced_sampler needs labels: use mode 'arcface' or 'both'")
        if self.data.degrade and self.uses_teacher and not self.distill.online:
            # Cached targets belong to the clean crop: a degraded view would be pulled towards them.
            raise ValueError(
                "data.degrade with distillation needs distill.online (targets of the degraded view)"
            )
        return self

    @property
    def uses_margin_loss(self) -> bool:
        """Whether the run trains with the margin (ArcFace) loss: modes ``arcface`` and ``both``."""
        return self.mode in ("arcface", "both")

    @property
    def uses_teacher(self) -> bool:
        """Whether the run needs the teacher: modes ``distill`` and ``both``."""
        return self.mode in ("distill", "both")

    def to_dict(self) -> dict[str, Any]:
        """The config as a JSON-ready dict."""
        return self.model_dump(mode="json")

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with top-level keys changed (validated again)."""
        data = self.to_dict()
        data.update(changes)
        return TrainConfig.model_validate(data)


def _warn_unknown(data: Mapping[str, Any], model: type[BaseModel], prefix: str = "") -> None:
    for key, value in data.items():
        field = model.model_fields.get(key)
        if field is None:
            log.warning("config: ignored unknown key %s%s", prefix, key)
            continue
        annotation = field.annotation
        if isinstance(value, Mapping) and isinstance(annotation, type) and issubclass(annotation, BaseModel):
            _warn_unknown(value, annotation, f"{prefix}{key}.")


def config_from_dict(data: Mapping[str, Any], *, base_dir: Path | None = None) -> TrainConfig:
    """Validate a config mapping; relative paths are resolved against ``base_dir`` when given.

    Raises:
        ConfigError: a value is missing or out of bounds (the message names the key).
    """
    data = dict(data)
    # The original's config.json spells early stopping this way.
    if "early_stopping" in data and "early_stop" not in data:
        data["early_stop"] = data.pop("early_stopping")
    _warn_unknown(data, TrainConfig)
    try:
        config = TrainConfig.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(top)'}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"invalid training config: {problems}") from exc
    if base_dir is not None:
        config = _resolve_paths(config, base_dir)
    return config


def _resolve_paths(config: TrainConfig, base_dir: Path) -> TrainConfig:
    def fix(value: str | None) -> str | None:
        if value is None:
            return None
        path = Path(value).expanduser()
        return str(path if path.is_absolute() else (base_dir / path).resolve())

    data = config.to_dict()
    data["data_path"] = [fix(p) for p in config.data_path]
    data["output_dir"] = fix(config.output_dir)
    data["validation"]["pairs"] = fix(config.validation.pairs)
    data["validation"]["images"] = fix(config.validation.images)
    data["distill"]["cache_dir"] = fix(config.distill.cache_dir)
    return TrainConfig.model_validate(data)


def load_config(path: str | Path) -> TrainConfig:
    """Read a JSON config; relative paths in it are relative to the current directory.

    Raises:
        ConfigError: the file is missing, is not JSON, or holds invalid values.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read training config {path}: {exc.strerror or exc}") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"training config {path} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"training config {path} must hold a JSON object, found {type(data).__name__}")
    return config_from_dict(data, base_dir=Path.cwd())


def save_config(config: TrainConfig, path: str | Path) -> Path:
    """Write ``config`` as indented JSON (atomically)."""
    path = Path(path)
    atomic_write_text(path, json.dumps(config.to_dict(), indent=2) + "\n")
    return path
