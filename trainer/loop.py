"""The training loop: ArcFace-family and/or distillation training of GhostFaceNetV2.

With callbacks, a stop flag checked between batches, per-epoch validation, checkpoints, exact resume and
data-parallel runs under torchrun.
"""

from __future__ import annotations

import logging
import math
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Sampler

from core.embedding import Embedder, create_embedder
from core.errors import CheckpointError
from core.ghostfacenet import GhostFaceNetV2, load_backbone, save_backbone, to_memory_format
from trainer.callbacks import Callbacks, EarlyStopping, LogFile, TerminalProgress
from trainer.checkpoints import capture_rng, load_training_checkpoint, restore_rng, save_training_checkpoint
from trainer.config import ConfigError, TrainConfig, save_config
from trainer.data import (
    CropDataset,
    Samples,
    augment_batch,
    balanced_sampler,
    make_holdout_pairs,
    normalize,
    read_pairs,
    scan_folders,
    split_holdout,
    subset_people,
)
from trainer.distill import StudentWithProjection, TeacherTargets, compute_teacher_targets
from trainer.distributed import DistContext, context_from_env
from trainer.losses import MarginHead, cosine_distill_loss, make_margin_head, relational_distill_loss
from trainer.validation import IdentificationSet, PairSet, embed_crops

__all__ = ["Schedule", "TrainResult", "TrainState", "Trainer", "build_optimizer", "lr_factor"]

log = logging.getLogger(__name__)

LAST_CHECKPOINT = "last.pt"
BEST_BACKBONE = "best_backbone.pt"
LAST_BACKBONE = "last_backbone.pt"


@dataclass
class TrainState:
    """The live state callbacks read (mutable: owned and updated by the trainer's thread)."""

    epochs: int = 0
    epoch: int = 0
    step: int = 0
    steps_per_epoch: int = 0
    global_step: int = 0
    total_steps: int = 0
    loss: float = float("nan")
    loss_parts: dict[str, float] = field(default_factory=dict)
    lr: float = 0.0
    images_per_s: float = 0.0
    eta_s: float | None = None
    val_accuracy: float | None = None
    # Rank-1 identification of the held-out people, clean and small (degraded) probes.
    val_rank1: float | None = None
    val_rank1_small: float | None = None
    # The cosine threshold that was best on the latest validation: stored in the backbone's meta so the
    # engine matches with a threshold on this model's own scale.
    val_threshold: float | None = None
    best_accuracy: float = -1.0
    best_epoch: int | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    teacher_done: int = 0
    teacher_total: int = 0
    # What the run is doing before its first batch: "data", "teacher", "projection", then "train".
    phase: str = "data"
    elapsed_s: float = 0.0
    last_checkpoint: Path | None = None
    best_backbone: Path | None = None
    stopped: bool = False
    early_stopped: bool = False
    num_classes: int = 0
    num_train: int = 0


@dataclass(frozen=True, slots=True)
class TrainResult:
    """What a finished (or stopped) run produced.

    Attributes:
        output_dir: the run folder.
        last_checkpoint: resumable checkpoint (``last.pt``), None if no batch was trained.
        best_backbone: engine-loadable backbone of the best validated epoch (else the last epoch).
        epochs_completed: number of whole epochs trained.
        best_accuracy: best validation accuracy, None without validation.
        stopped: the stop flag ended the run early.
        early_stopped: early stopping ended the run.
        history: one record per epoch.
    """

    output_dir: Path
    last_checkpoint: Path | None
    best_backbone: Path | None
    epochs_completed: int
    best_accuracy: float | None
    stopped: bool
    early_stopped: bool
    history: tuple[dict[str, Any], ...]


def lr_factor(config: TrainConfig, global_step: int, steps_per_epoch: int, elapsed_s: float = 0.0) -> float:
    """Multiplier of the base LR at ``global_step`` (schedules are stepped per batch).

    With ``max_minutes`` the cosine runs over the training time (``elapsed_s``) instead of the steps.
    """
    sched = config.scheduler
    epoch_float = global_step / max(steps_per_epoch, 1)
    warmup_steps = sched.warmup_epochs * steps_per_epoch
    if warmup_steps > 0 and global_step < warmup_steps:
        return (global_step + 1) / warmup_steps
    if sched.name == "constant":
        return 1.0
    if sched.name == "step":
        passed = sum(1 for m in sched.milestones if epoch_float >= m)
        return sched.gamma**passed
    if config.max_minutes:
        progress = min(1.0, elapsed_s / (config.max_minutes * 60.0))
    else:
        total = config.epochs * steps_per_epoch
        progress = min(1.0, (global_step - warmup_steps) / max(total - warmup_steps, 1))
    floor = min(1.0, sched.min_lr / config.optimizer.base_lr)
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


class Schedule:
    """Sets every parameter group's LR from (global step, training seconds).

    A pure function of the two, so a resumed run continues with exactly the LR it stopped at.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, config: TrainConfig, steps_per_epoch: int) -> None:
        self.optimizer = optimizer
        self.config = config
        self.steps_per_epoch = steps_per_epoch
        self.base_lr = config.optimizer.base_lr
        self.apply(0, 0.0)

    def apply(self, global_step: int, elapsed_s: float) -> float:
        """Set every group's LR for this step and time; returns it."""
        lr = self.base_lr * lr_factor(self.config, global_step, self.steps_per_epoch, elapsed_s)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        return lr

    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint keeps to resume the schedule."""
        return {"base_lr": self.base_lr, "steps_per_epoch": self.steps_per_epoch}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Take back what :meth:`state_dict` saved."""
        self.base_lr = float(state["base_lr"])
        self.steps_per_epoch = int(state["steps_per_epoch"])


def build_optimizer(config: TrainConfig, modules: list[nn.Module]) -> torch.optim.Optimizer:
    """SGD or AdamW with weight decay on conv/linear kernels and the class centres only.

    BatchNorm scales and shifts, PReLU slopes and biases (every parameter of rank <= 1) get no decay,
    unlike the original, which exempted only parameters whose *name* contained "bn" (MODEL_SPEC P5).
    """
    decay: list[nn.Parameter] = []
    no_decay: list[nn.Parameter] = []
    for module in modules:
        for param in module.parameters():
            if param.requires_grad:
                (decay if param.ndim >= 2 else no_decay).append(param)
    opt = config.optimizer
    if opt.name == "sgd":
        groups = [
            {"params": decay, "weight_decay": opt.sgd.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ]
        return torch.optim.SGD(
            groups, lr=opt.sgd.base_lr, momentum=opt.sgd.momentum, nesterov=opt.sgd.nesterov
        )
    groups = [
        {"params": decay, "weight_decay": opt.adamw.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=opt.adamw.base_lr, betas=opt.adamw.betas, eps=opt.adamw.eps)


class _EpochSampler(Sampler[int]):
    """The epoch's index order, fixed by (seed, epoch), with the first ``skip`` indices left out.

    Deterministic per epoch so that a run resumed in the middle of an epoch sees the remaining crops of
    that very epoch. In a data-parallel run every rank draws the same order and keeps every
    ``world_size``-th index from its ``rank`` on: the shares are disjoint, and a class-balanced order
    stays balanced in every share.
    """

    def __init__(
        self, n: int, seed: int, weighted: Sampler[int] | None = None, *, rank: int = 0, world_size: int = 1
    ) -> None:
        self.n = n
        self.seed = seed
        self.weighted = weighted
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0
        self.skip = 0

    def order(self) -> list[int]:
        generator = torch.Generator().manual_seed(self.seed * 100003 + self.epoch)
        if self.weighted is not None:
            self.weighted.generator = generator  # type: ignore[attr-defined]
            order = list(iter(self.weighted))
        else:
            order = torch.randperm(self.n, generator=generator).tolist()
        return order[self.rank :: self.world_size]

    def __iter__(self):  # noqa: ANN204 - Sampler protocol
        return iter(self.order()[self.skip :])

    def __len__(self) -> int:
        return len(range(self.rank, self.n, self.world_size)) - self.skip


@dataclass
class _RunClock:
    """What the batches of one fit() share: the schedule's shape, the device and the time spent."""

    steps_per_epoch: int
    device: torch.device
    budget_s: float | None = None
    started: float = 0.0
    elapsed_before: float = 0.0
    batches: int = 0
    out_of_time: bool = False


class Trainer:
    """Trains GhostFaceNetV2 as ``config`` says.

    Args:
        config: the run's configuration.
        resume: a ``last.pt`` to continue from (same config); the run continues from the saved step with
            the same learning rate, optimizer moments and random-number states.
        teacher: the teacher embedder (default: ``create_embedder(config.distill.teacher)``).
        terminal: draw a progress bar on stderr.

    Set :attr:`stop` (or call :meth:`request_stop`) from any thread to end the run after the current
    batch; the last checkpoint is written before :meth:`fit` returns.
    """

    def __init__(
        self,
        config: TrainConfig,
        *,
        resume: str | Path | None = None,
        teacher: Embedder | None = None,
        terminal: bool = False,
    ) -> None:
        self.config = config
        self.resume_path = Path(resume) if resume else None
        self.teacher = teacher
        self.callbacks = Callbacks()
        self.state = TrainState(epochs=config.epochs)
        self.output_dir = Path(config.output_dir)
        self._stop = threading.Event()
        self.model: GhostFaceNetV2 | None = None
        self.head: MarginHead | None = None
        self.projection: StudentWithProjection | None = None
        self._initial_state: dict[str, torch.Tensor] | None = None
        self.optimizer: torch.optim.Optimizer | None = None
        self.scheduler: Schedule | None = None
        self.validation: PairSet | None = None
        self.identification: IdentificationSet | None = None
        # distill.online: the teacher embeds each augmented batch; its embedding size sizes the projection.
        self._online_dim: int | None = None
        self.targets: TeacherTargets | None = None
        self.samples: Samples | None = None
        self._epoch_losses: list[float] = []
        self._resumed_losses: list[float] = []
        self.dist: DistContext = context_from_env()
        # The modules the optimizer steps through: DistributedDataParallel wrappers in a distributed run.
        self._train_model: nn.Module | None = None
        self._train_head: nn.Module | None = None
        self._train_projection: nn.Module | None = None
        if self.dist.is_main:  # one log and one progress bar for the whole run
            LogFile(self.output_dir / "train.log", config.log_iters).attach(self.callbacks)
            if terminal:
                TerminalProgress().attach(self.callbacks)
        if config.early_stop.enabled:
            self.callbacks.add_callback(
                "on_validation_end", EarlyStopping(config.early_stop.patience, config.early_stop.min_delta)
            )

    # -- control ----------------------------------------------------------------------------------------

    @property
    def stop(self) -> bool:
        """True once a stop was requested; the loop checks it between batches."""
        return self._stop.is_set()

    @stop.setter
    def stop(self, value: bool) -> None:
        if value:
            self._stop.set()
        else:
            self._stop.clear()

    def request_stop(self) -> None:
        """Ask the run to stop after its current batch; safe from any thread."""
        self._stop.set()

    def add_callback(self, event: str, fn: Callable[[Trainer], Any]) -> None:
        """Call ``fn(trainer)`` on the training event ``event``."""
        self.callbacks.add_callback(event, fn)

    def run_callbacks(self, event: str) -> None:
        """Run every handler of ``event`` with this trainer."""
        self.callbacks.run_callbacks(event, self)

    # -- setup ------------------------------------------------------------------------------------------

    def _prepare_data(self) -> Samples:
        cfg = self.config
        samples = scan_folders(cfg.data_path, min_images_per_class=cfg.data.min_images_per_class)
        val = cfg.validation
        held: dict[str, list[Path]] = {}
        if val.holdout_identities:
            try:
                samples, held = split_holdout(
                    samples,
                    val.holdout_identities,
                    min_images=val.holdout_min_images,
                    max_images=val.holdout_max_images,
                    seed=cfg.seed,
                )
            except ValueError as exc:
                raise ConfigError(f"validation.holdout_identities: {exc}") from exc
            pairs = make_holdout_pairs(held, pairs_per_fold=val.pairs_per_fold, seed=cfg.seed)
            self.validation = PairSet(pairs)
            self.identification = IdentificationSet(held, seed=cfg.seed)
            if self.dist.is_main:
                (self.output_dir / "validation_pairs.tsv").write_text(
                    "".join(f"{p.a}\t{p.b}\t{int(p.same)}\t{p.fold}\n" for p in pairs), encoding="utf-8"
                )
        elif val.pairs:
            self.validation = PairSet(read_pairs(val.pairs, val.images))
        if self.validation is not None:
            log.info("validation: %d pairs", len(self.validation))
        if cfg.mode == "arcface":
            keep = samples.labels >= 0
            samples = Samples(
                tuple(p for p, k in zip(samples.paths, keep, strict=True) if k),
                samples.labels[keep],
                samples.class_names,
            )
        if cfg.uses_margin_loss and samples.num_classes < 2:
            raise ConfigError(
                f"mode {cfg.mode!r} needs at least 2 labelled identities (<identity>/<crop> folders with >= "
                f"{cfg.data.min_images_per_class} crops); found {samples.num_classes}"
            )
        if cfg.data.people_fraction < 1.0:
            samples = subset_people(samples, cfg.data.people_fraction, seed=cfg.seed)
            log.info(
                "people fraction %.3g: %d crops of %d identities and %d unlabelled crops",
                cfg.data.people_fraction,
                len(samples),
                samples.num_classes,
                len(samples) - samples.num_labelled,
            )
        if cfg.data.max_images and len(samples) > cfg.data.max_images:
            order = np.random.default_rng(cfg.seed).permutation(len(samples))[: cfg.data.max_images]
            order.sort()
            samples = Samples(
                tuple(samples.paths[i] for i in order), samples.labels[order], samples.class_names
            )
        return samples

    def _teacher_progress(self, done: int, total: int) -> None:
        self.state.teacher_done, self.state.teacher_total = done, total
        self.run_callbacks("on_teacher_progress")

    def _prepare_teacher(self, samples: Samples) -> TeacherTargets:
        cfg = self.config
        teacher = self.teacher or create_embedder(cfg.distill.teacher)
        self.teacher = teacher
        return compute_teacher_targets(
            teacher,
            samples.paths,
            flip=cfg.distill.flip_targets and cfg.data.flip,
            compute=cfg.distill.compute_missing,
            cache_dir=cfg.distill.cache_dir,
            batch_size=cfg.distill.teacher_batch,
            progress=self._teacher_progress,
            should_stop=lambda: self.stop,
        )

    def _keep_targeted(self, samples: Samples) -> Samples:
        """Drop crops that would teach nothing: no teacher target and (in mode 'both') no label."""
        assert self.targets is not None
        t = self.targets
        keep = t.valid | ((samples.labels >= 0) if self.config.mode == "both" else False)
        if keep.all():
            return samples
        log.info("%d crops without a teacher target left out", int((~keep).sum()))
        self.targets = TeacherTargets(
            t.plain[keep], t.flipped[keep], t.valid[keep], t.flipped_valid[keep], t.model_id
        )
        kept = Samples(
            tuple(p for p, k in zip(samples.paths, keep, strict=True) if k),
            samples.labels[keep],
            samples.class_names,
        )
        self.samples = kept
        self.state.num_train = len(kept)
        if len(kept) < self.config.batch_size:
            raise ConfigError(f"only {len(kept)} crops have a teacher target: fewer than one batch")
        return kept

    def _new_network(self) -> GhostFaceNetV2:
        bb = self.config.backbone
        return GhostFaceNetV2(
            width=bb.width,
            stem_stride=bb.stem_stride,
            embedding_size=self.config.embedding_size,
            prelu=bb.prelu,
            dfc_upsample=bb.dfc_upsample,
            dropout=bb.dropout,
        )

    def _device(self) -> torch.device:
        device = torch.device(self.config.device)
        if device.type == "cuda" and self.dist.enabled:
            # One GPU per process: torchrun's LOCAL_RANK picks it.
            device = torch.device("cuda", self.dist.local_rank)
        return device

    def _build(self, samples: Samples) -> None:
        cfg = self.config
        device = self._device()
        self.model = self._new_network()
        if self._initial_state is not None:
            self.model.load_state_dict(self._initial_state)
            log.info("starting from the weights of %s", cfg.init_backbone)
        self.model = self.model.to(device)
        if cfg.channels_last:
            self.model = to_memory_format(self.model, torch.channels_last)
        modules: list[nn.Module] = [self.model]
        if cfg.uses_margin_loss:
            self.head = make_margin_head(cfg.loss, cfg.embedding_size, samples.num_classes).to(device)
            modules.append(self.head)
        if cfg.uses_teacher:
            dim = (
                self._online_dim if self._online_dim is not None else self.targets.dim if self.targets else 0
            )
            self.projection = StudentWithProjection(cfg.embedding_size, dim).to(device)
            modules.append(self.projection)
        self.optimizer = build_optimizer(cfg, modules)
        self._train_model, self._train_head, self._train_projection = self.model, self.head, self.projection
        if self.dist.enabled:
            from torch.nn.parallel import DistributedDataParallel as DDP

            ids = [device.index] if device.type == "cuda" else None
            # Each wrapper broadcasts rank 0's initial weights and averages gradients in backward.
            self._train_model = DDP(self.model, device_ids=ids)
            if self.head is not None:
                self._train_head = DDP(self.head, device_ids=ids)
            if self.projection is not None:
                self._train_projection = DDP(self.projection, device_ids=ids)

    @torch.no_grad()
    def _fit_projection(self, samples: Samples, count: int = 1024) -> None:
        """Fine-tuning: start the projection at the least-squares map from student to teacher.

        Fitted on ``count`` clean crops. A random projection would turn the first hundreds of steps into gradients that drag a trained
        backbone towards a random target space; the fitted one starts where the checkpoint already is.
        """
        assert self.model is not None and self.projection is not None
        cfg = self.config
        teacher = self.teacher or create_embedder(cfg.distill.teacher)
        self.teacher = teacher
        rng = np.random.default_rng(cfg.seed)
        picks = rng.choice(len(samples), size=min(count, len(samples)), replace=False)
        crops = np.stack([CropDataset(samples, flip=False)._load(int(i))[0] for i in picks])
        was_training = self.model.training
        self.model.eval()  # batch statistics must not move BatchNorm's running ones
        try:
            student = embed_crops(self.model, crops, flip=False, channels_last=cfg.channels_last)
        finally:
            self.model.train(was_training)
        target = teacher.embed(np.ascontiguousarray(crops[..., ::-1]))
        weights, *_ = np.linalg.lstsq(student, target, rcond=None)
        self.projection.proj.weight.copy_(torch.from_numpy(weights.T.astype(np.float32)))
        fitted = F.normalize(torch.from_numpy(student @ weights), dim=1).numpy()
        log.info(
            "projection fitted on %d crops: mean cosine to the teacher %.3f",
            len(picks),
            (fitted * target).sum(1).mean(),
        )

    def _read_initial_weights(self, path: str) -> dict[str, torch.Tensor]:
        """Fine-tuning: the weights of a saved backbone, checked against the configured network.

        Read before anything is written or the teacher runs, so a wrong file costs nothing.

        Raises:
            ModelNotFoundError, CheckpointError: the file is missing or unreadable.
            ConfigError: its shapes do not fit ``backbone`` / ``embedding_size``.
        """
        theirs = load_backbone(path).state_dict()
        mine = self._new_network().state_dict()
        wrong = [k for k in mine if k not in theirs or theirs[k].shape != mine[k].shape]
        if wrong:
            raise ConfigError(
                f"init_backbone {path} does not fit backbone {self.config.backbone.model_dump()} and "
                f"embedding_size {self.config.embedding_size}: first mismatching keys {wrong[:3]}"
            )
        return theirs

    # -- checkpoints ------------------------------------------------------------------------------------

    def _meta(self) -> dict[str, Any]:
        cfg = self.config
        threshold = self.state.val_threshold
        return {
            "similarity_threshold": round(threshold, 4) if threshold is not None else None,
            "mode": cfg.mode,
            "epochs_trained": len(self.state.history),
            "data_path": [Path(p).name for p in cfg.data_path],
            "teacher": self._teacher_id(),
            "best_val_accuracy": self.state.best_accuracy if self.state.best_epoch is not None else None,
            "num_classes": self.state.num_classes,
            "num_train_crops": self.state.num_train,
        }

    def _teacher_id(self) -> str | None:
        if self.targets is not None:
            return self.targets.model_id
        if self._online_dim is not None and self.teacher is not None:
            return self.teacher.model_id
        return None

    def _save(self, epoch_done: bool) -> None:
        assert self.model is not None and self.optimizer is not None and self.scheduler is not None
        state = self.state
        rngs = self.dist.gather(capture_rng())  # collective: every rank calls _save
        if not self.dist.is_main:
            state.last_checkpoint = self.output_dir / LAST_CHECKPOINT
            return
        payload = {
            "config": self.config.to_dict(),
            "backbone": self.model.state_dict(),
            "arch": dict(self.model.arch),
            "head": self.head.state_dict() if self.head is not None else None,
            "projection": self.projection.state_dict() if self.projection is not None else None,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            # The next step to run: (epoch, step in epoch).
            "epoch": state.epoch + 1 if epoch_done else state.epoch,
            "step_in_epoch": 0 if epoch_done else state.step,
            "global_step": state.global_step,
            "elapsed_s": state.elapsed_s,
            "rng": rngs[0],
            # Each rank's generators, so a resumed data-parallel run draws what it would have drawn.
            "rng_per_rank": rngs,
            "history": list(state.history),
            "epoch_losses": [] if epoch_done else list(self._epoch_losses),
            "best_accuracy": state.best_accuracy,
            "best_epoch": state.best_epoch,
            "class_names": list(self.samples.class_names) if self.samples is not None else [],
        }
        state.last_checkpoint = save_training_checkpoint(self.output_dir / LAST_CHECKPOINT, payload)
        save_backbone(self.model, self.output_dir / LAST_BACKBONE, self._meta())
        self.run_callbacks("on_checkpoint_saved")

    def _resume(self) -> tuple[int, int]:
        assert self.model is not None and self.optimizer is not None and self.scheduler is not None
        assert self.resume_path is not None
        data = load_training_checkpoint(self.resume_path)
        saved = data.get("config", {})
        for key in ("mode", "embedding_size", "backbone"):
            if saved.get(key) != self.config.to_dict().get(key):
                raise CheckpointError(
                    f"{self.resume_path} was trained with {key}={saved.get(key)!r}, the config says "
                    f"{self.config.to_dict().get(key)!r}"
                )
        try:
            self.model.load_state_dict(data["backbone"])
            if self.head is not None:
                self.head.load_state_dict(data["head"])
            if self.projection is not None:
                self.projection.load_state_dict(data["projection"])
            self.optimizer.load_state_dict(data["optimizer"])
            self.scheduler.load_state_dict(data["scheduler"])
        except (RuntimeError, KeyError, ValueError, TypeError) as exc:
            raise CheckpointError(
                f"{self.resume_path} does not fit this run's data or config: {exc}"
            ) from exc
        per_rank = data.get("rng_per_rank") or []
        restore_rng(per_rank[self.dist.rank] if len(per_rank) == self.dist.world_size else data["rng"])
        s = self.state
        s.history = list(data["history"])
        s.val_threshold = next(
            (r["val_threshold"] for r in reversed(s.history) if "val_threshold" in r), None
        )
        s.best_accuracy = float(data["best_accuracy"])
        s.best_epoch = data["best_epoch"]
        s.global_step = int(data["global_step"])
        s.elapsed_s = float(data.get("elapsed_s", 0.0))
        self._resumed_losses = list(data.get("epoch_losses", []))
        self.scheduler.apply(s.global_step, s.elapsed_s)
        if s.best_epoch is not None and (self.output_dir / BEST_BACKBONE).is_file():
            s.best_backbone = self.output_dir / BEST_BACKBONE
        log.info(
            "resumed from %s at epoch %d step %d (lr %.3g)",
            self.resume_path,
            int(data["epoch"]) + 1,
            int(data["step_in_epoch"]),
            self.optimizer.param_groups[0]["lr"],
        )
        return int(data["epoch"]), int(data["step_in_epoch"])

    # -- the loop ---------------------------------------------------------------------------------------

    def _loss(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        index: torch.Tensor,
        mirrored: torch.Tensor,
        online_targets: np.ndarray | None = None,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        assert self.model is not None
        cfg = self.config
        assert self._train_model is not None
        embeddings = self._train_model(images)
        total = embeddings.new_zeros((), dtype=torch.float32)
        parts: dict[str, float] = {}
        if self.projection is not None and (self.targets is not None or online_targets is not None):
            if online_targets is not None:
                targets, valid = online_targets, np.ones(len(online_targets), bool)
            else:
                assert self.targets is not None
                targets, valid = self.targets.select(index.numpy(), mirrored.numpy())
            valid_t = torch.from_numpy(valid).to(images.device)
            if valid_t.any():
                target_t = torch.from_numpy(targets).to(images.device)[valid_t]
                assert self._train_projection is not None
                student = self._train_projection(embeddings)[valid_t]
                distill = cosine_distill_loss(student, target_t)
                parts["distill"] = float(distill.detach())
                total = total + cfg.distill.weight * distill
                if cfg.distill.relational_weight > 0:
                    rel = relational_distill_loss(embeddings[valid_t], target_t)
                    parts["relational"] = float(rel.detach())
                    total = total + cfg.distill.relational_weight * rel
        if self.head is not None and self._train_head is not None:
            labelled = labels >= 0
            weight = cfg.loss.weight if cfg.mode == "both" else 1.0
            if labelled.sum() > 0:
                margin = self._train_head(embeddings[labelled], labels[labelled].to(images.device))
                parts["margin"] = float(margin.detach())
                total = total + weight * margin
            elif self.dist.enabled:
                # Every rank must run the head, or the ranks that did wait forever for this one's
                # gradients: a zero-weighted pass over one crop gives it zero gradients to share.
                dummy = self._train_head(
                    embeddings[:1], torch.zeros(1, dtype=torch.long, device=images.device)
                )
                total = total + 0.0 * dummy
        return total, parts

    def fit(self) -> TrainResult:
        """Run (or resume) training; returns when done, stopped or early-stopped.

        Under ``torchrun`` each process trains its share of every epoch and the gradients are averaged
        (:mod:`trainer.distributed`); only rank 0 writes checkpoints and logs.

        Raises:
            ConfigError: the data or config cannot be used (nothing is written then).
            CheckpointError: the resume checkpoint is unreadable or does not fit.
        """
        created = self.dist.setup(torch.device(self.config.device).type)
        try:
            return self._fit()
        finally:
            self.dist.teardown(created)

    def _fit(self) -> TrainResult:
        cfg = self.config
        self._set_up_run()
        self._enter_phase("data")
        samples = self._prepare_samples()
        if cfg.uses_teacher:
            self._enter_phase("teacher")
            teached = self._prepare_targets(samples)
            if teached is None:  # stopped while the teacher ran
                self.state.stopped = True
                self.run_callbacks("on_train_end")
                return self._result()
            samples = teached
        self._build(samples)
        assert self.model is not None and self.optimizer is not None
        if self._initial_state is not None and self.projection is not None and self.resume_path is None:
            self._enter_phase("projection")
            self._fit_projection(samples)
        dataset = self._dataset(samples)
        weighted = balanced_sampler(samples, seed=cfg.seed) if cfg.data.balanced_sampler else None
        sampler = _EpochSampler(
            len(samples), cfg.seed, weighted, rank=self.dist.rank, world_size=self.dist.world_size
        )
        run = _RunClock(steps_per_epoch=self._steps_per_epoch(samples), device=self._device())
        run.budget_s = cfg.max_minutes * 60.0 if cfg.max_minutes else None
        self.state.steps_per_epoch = run.steps_per_epoch
        self.state.total_steps = run.steps_per_epoch * cfg.epochs
        self.scheduler = Schedule(self.optimizer, cfg, run.steps_per_epoch)
        start_epoch, start_step = self._resume() if self.resume_path is not None else (0, 0)
        self.state.epoch = start_epoch
        self._enter_phase("train")
        self.run_callbacks("on_train_start")
        run.started, run.elapsed_before = time.monotonic(), self.state.elapsed_s
        for epoch in range(start_epoch, cfg.epochs):
            if self.stop:
                break
            resumed_mid_epoch = epoch == start_epoch and start_step > 0
            self.state.epoch, self.state.step = epoch, start_step if epoch == start_epoch else 0
            sampler.epoch, sampler.skip = epoch, self.state.step * cfg.batch_size
            # Flip/shift draws per epoch depend only on (seed, epoch, position) after a resume too.
            if not resumed_mid_epoch:
                random.seed(cfg.seed * 7919 + epoch + 1_000_003 * self.dist.rank)
            losses: list[float] = list(self._resumed_losses) if epoch == start_epoch else []
            if not self._run_epoch(epoch, self._loader(dataset, sampler, epoch), losses, run):
                break
        if self.stop and not self.state.early_stopped:
            self.state.stopped = True
        self.run_callbacks("on_train_end")
        return self._result()

    def _enter_phase(self, phase: str) -> None:
        self.state.phase = phase
        self.run_callbacks("on_phase")

    def _set_up_run(self) -> None:
        """Threads and seeds; the initial weights read and checked; the run folder and its config."""
        cfg = self.config
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        random.seed(cfg.seed)
        np.random.seed(cfg.seed)
        torch.manual_seed(cfg.seed)
        for path in cfg.data_path:
            if not Path(path).is_dir():
                raise ConfigError(f"data_path {path} is not a folder")
        # A resumed run takes its weights from the training checkpoint: the initial ones do not matter.
        if cfg.init_backbone and self.resume_path is None:
            self._initial_state = self._read_initial_weights(cfg.init_backbone)
        self.output_dir.mkdir(parents=True, exist_ok=True)
        if self.dist.is_main:
            save_config(cfg, self.output_dir / "config.json")

    def _prepare_samples(self) -> Samples:
        samples = self._prepare_data()
        self.samples = samples
        self.state.num_classes = samples.num_classes
        self.state.num_train = len(samples)
        log.info(
            "data: %d crops (%d labelled, %d identities, %d unlabelled), mode %s",
            len(samples),
            samples.num_labelled,
            samples.num_classes,
            len(samples) - samples.num_labelled,
            self.config.mode,
        )
        return samples

    def _prepare_targets(self, samples: Samples) -> Samples | None:
        """The teacher: online (it embeds every view), or cached targets; None when stopped meanwhile."""
        cfg = self.config
        if cfg.distill.online:
            self.teacher = self.teacher or create_embedder(cfg.distill.teacher)
            self._online_dim = self.teacher.dim
            log.info("teacher %s runs online on every augmented batch", self.teacher.model_id)
            return samples
        try:
            # One teacher pass for the run: rank 0 fills the shared cache, the others then read it.
            if not self.dist.is_main:
                self.dist.barrier()
            self.targets = self._prepare_teacher(samples)
            if self.dist.is_main:
                self.dist.barrier()
        except InterruptedError:
            return None
        return self._keep_targeted(samples)

    def _dataset(self, samples: Samples) -> CropDataset:
        cfg = self.config
        online = self._online_dim is not None
        return CropDataset(
            samples,
            flip=cfg.data.flip,
            shift_px=cfg.data.shift_px,
            degrade=cfg.data.degrade,
            jitter=cfg.data.color_jitter if online else 0.0,
            # In the main process the given teacher serves; loader workers each build one from its name.
            teacher=self.teacher if online and cfg.data.num_workers == 0 else None,
            teacher_spec=cfg.distill.teacher if online and cfg.data.num_workers > 0 else None,
        )

    def _steps_per_epoch(self, samples: Samples) -> int:
        cfg = self.config
        # batch_size is per process: an epoch is one pass over the data by all processes together.
        full_steps = len(samples) // (cfg.batch_size * self.dist.world_size)
        if full_steps < 1:
            raise ConfigError(
                f"batch_size {cfg.batch_size} x {self.dist.world_size} process(es) is larger than the "
                f"{len(samples)} training crops"
            )
        return min(full_steps, cfg.max_steps_per_epoch or full_steps)

    def _loader(self, dataset: CropDataset, sampler: _EpochSampler, epoch: int) -> DataLoader:
        cfg = self.config
        return DataLoader(
            dataset,
            batch_size=cfg.batch_size,
            sampler=sampler,
            num_workers=cfg.data.num_workers,
            drop_last=True,
            persistent_workers=False,
            # Workers that run a teacher are spawned, not forked: a fork copies OpenCV's and torch's
            # thread pools in a locked state, and the first forward in the child never returns.
            multiprocessing_context="spawn" if dataset.online and cfg.data.num_workers > 0 else None,
            # Its own generator: creating the iterator must not draw from the global torch RNG,
            # whose state a checkpoint restores.
            generator=torch.Generator().manual_seed(cfg.seed + epoch),
        )

    def _run_epoch(self, epoch: int, loader: DataLoader, losses: list[float], run: _RunClock) -> bool:
        """Train one epoch (or what is left of it), validate and save; False when the run ends here."""
        assert self.model is not None
        s = self.state
        self.model.train()
        self.run_callbacks("on_epoch_start")
        self._epoch_losses = losses
        t_epoch = time.monotonic()
        for batch in loader:
            self._train_step(epoch, batch, losses, run)
            # Checked before the next batch is drawn, so a saved RNG state resumes exactly.
            if self.dist.enabled:
                # All ranks stop together (a stop request or a spent budget on any of them).
                run.out_of_time = self.dist.any(run.out_of_time)
                if self.dist.any(self.stop) and not self.stop:
                    self.stop = True
            if self.stop or run.out_of_time or s.step >= run.steps_per_epoch:
                break
        self.dist.sync_buffers(self.model)
        # A spent time budget ends the run like a last (shorter) epoch: validated and saved.
        epoch_done = s.step >= run.steps_per_epoch or (run.out_of_time and s.step > 0)
        if not epoch_done:
            if run.batches:
                self._save(epoch_done=False)
            s.stopped = True
            return False
        record: dict[str, Any] = {
            "epoch": epoch + 1,
            "loss": round(float(np.mean(losses)) if losses else float("nan"), 5),
            "lr": round(s.lr, 8),
            "seconds": round(time.monotonic() - t_epoch, 1),
            "images_per_s": round(s.images_per_s, 1),
        }
        if run.out_of_time and s.step < run.steps_per_epoch:
            record["partial"] = True
        # In the history first: the best backbone's meta, written while validating, counts this epoch.
        s.history.append(record)
        self._validate(epoch, record, last_epoch=epoch + 1 == self.config.epochs or run.out_of_time)
        self._save(epoch_done=True)
        if self.validation is None:
            s.best_backbone = self.output_dir / LAST_BACKBONE
        self.run_callbacks("on_validation_end")
        self.run_callbacks("on_epoch_end")
        s.epoch = epoch + 1
        if run.out_of_time:
            log.info("time budget of %.1f min spent after %d epochs", self.config.max_minutes, len(s.history))
            return False
        return True

    def _train_step(self, epoch: int, batch: Sequence[Any], losses: list[float], run: _RunClock) -> None:
        """One optimizer step on ``batch`` (skipped on every rank when the loss is not finite)."""
        assert self.optimizer is not None and self.scheduler is not None
        cfg, s = self.config, self.state
        images_u8, labels, index, mirrored = batch[:4]
        online_targets = None
        if self._online_dim is not None:
            # The dataset jittered the pixels and had the teacher embed exactly those.
            online_targets = batch[4].numpy()
            images = normalize(images_u8).to(run.device)
        else:
            images = augment_batch(images_u8, cfg.data.color_jitter).to(run.device)
        if cfg.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        loss, parts = self._loss(images, labels, index, mirrored, online_targets)
        self.optimizer.zero_grad(set_to_none=True)
        # Skipped on every rank or none: a rank that skips backward would leave the others waiting.
        if self.dist.any(not bool(torch.isfinite(loss))):
            log.warning("non-finite loss at epoch %d step %d; batch skipped", epoch + 1, s.step + 1)
            return
        loss.backward()
        if cfg.grad_clip:
            params = [p for g in self.optimizer.param_groups for p in g["params"]]
            torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
        s.lr = self.scheduler.apply(s.global_step, s.elapsed_s)
        self.optimizer.step()
        s.step += 1
        s.global_step += 1
        run.batches += 1
        s.loss = float(loss.detach())
        s.loss_parts = parts
        losses.append(s.loss)
        elapsed = time.monotonic() - run.started
        s.elapsed_s = run.elapsed_before + elapsed
        s.images_per_s = run.batches * cfg.batch_size * self.dist.world_size / max(elapsed, 1e-9)
        s.eta_s = elapsed / run.batches * (s.total_steps - s.global_step)
        if run.budget_s is not None:
            # The run ends at whichever comes first: its last epoch or its time budget.
            s.eta_s = min(s.eta_s, max(0.0, run.budget_s - s.elapsed_s))
            run.out_of_time = s.elapsed_s >= run.budget_s
        self.run_callbacks("on_batch_end")

    def _validate(self, epoch: int, record: dict[str, Any], *, last_epoch: bool) -> None:
        """Held-out verification and identification into ``record``; the best epoch's backbone saved."""
        assert self.model is not None
        cfg, s = self.config, self.state
        s.val_accuracy = None
        if self.validation is None or not ((epoch + 1) % cfg.validation.every == 0 or last_epoch):
            return
        result = self.validation.evaluate(
            self.model, flip=cfg.validation.flip, channels_last=cfg.channels_last
        )
        s.val_accuracy = result.accuracy
        record["val_accuracy"] = round(result.accuracy, 5)
        record["val_std"] = round(result.std, 5)
        record["val_threshold"] = round(result.threshold_cos, 4)
        s.val_threshold = result.threshold_cos
        if self.identification is not None:
            ident = self.identification.evaluate(
                self.model, flip=cfg.validation.flip, channels_last=cfg.channels_last
            )
            s.val_rank1, s.val_rank1_small = ident.rank1, ident.rank1_small
            record["val_rank1"] = round(ident.rank1, 5)
            record["val_rank1_small"] = round(ident.rank1_small, 5)
        if result.accuracy > s.best_accuracy + cfg.early_stop.min_delta or s.best_epoch is None:
            s.best_accuracy, s.best_epoch = result.accuracy, epoch
            s.best_backbone = self.output_dir / BEST_BACKBONE
            if self.dist.is_main:
                save_backbone(self.model, s.best_backbone, self._meta())

    def _result(self) -> TrainResult:
        s = self.state
        return TrainResult(
            output_dir=self.output_dir,
            last_checkpoint=s.last_checkpoint,
            best_backbone=s.best_backbone,
            epochs_completed=len(s.history),
            best_accuracy=s.best_accuracy if s.best_epoch is not None else None,
            stopped=s.stopped,
            early_stopped=s.early_stopped,
            history=tuple(s.history),
        )
