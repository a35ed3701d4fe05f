"""Training data: folders of aligned 112x112 crops, augmentation, sampling and validation pair lists.

A data folder holds ``<identity>/<crop>`` (labelled) and/or loose crops (unlabelled, for distillation);
several folders can be combined, identities are then named ``<folder>/<identity>``. Crops are decoded as
RGB and mapped to [-1, 1] by (x - 127.5) / 127.5 (MODEL_SPEC 0.3).
"""

from __future__ import annotations

import logging
import random
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset, Sampler, WeightedRandomSampler

from core.errors import ImageReadError
from core.evaluation import EvaluationError, read_lfw_pairs
from trainer.augment import Degradation, degrade

__all__ = [
    "IMAGE_EXTENSIONS",
    "CropDataset",
    "Pair",
    "Samples",
    "augment_batch",
    "jitter_image",
    "jitter_uint8",
    "balanced_sampler",
    "load_crop_rgb",
    "make_holdout_pairs",
    "normalize",
    "read_pairs",
    "scan_folders",
    "split_holdout",
    "subset_people",
]

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp"})
CROP_SIZE = 112


@dataclass(frozen=True, slots=True)
class Samples:
    """Crop files and their labels.

    Attributes:
        paths: the crop files.
        labels: ``(N,)`` int64 class index per crop, -1 for an unlabelled crop.
        class_names: name of each class index.
    """

    paths: tuple[Path, ...]
    labels: np.ndarray
    class_names: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def num_labelled(self) -> int:
        """How many crops have a label."""
        return int((self.labels >= 0).sum())

    @property
    def num_classes(self) -> int:
        """How many classes (identities) there are."""
        return len(self.class_names)


@dataclass(frozen=True, slots=True)
class Pair:
    """Two crops and whether they show the same person; ``fold`` is the cross-validation fold."""

    a: Path
    b: Path
    same: bool
    fold: int


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)


def scan_folders(folders: Sequence[str | Path], *, min_images_per_class: int = 1) -> Samples:
    """List the crops of one or more data folders.

    Each sub-folder is an identity; image files directly in a folder are unlabelled crops. Identities
    with fewer than ``min_images_per_class`` crops become unlabelled.

    Raises:
        FileNotFoundError: a folder does not exist.
        ValueError: the folders hold no image at all.
    """
    roots = [Path(f).expanduser() for f in folders]
    prefix = len(roots) > 1
    paths: list[Path] = []
    labels: list[int] = []
    names: list[str] = []
    for root in roots:
        if not root.is_dir():
            raise FileNotFoundError(f"data folder not found: {root}")
        for crop in _images_in(root):
            paths.append(crop)
            labels.append(-1)
        for sub in sorted(p for p in root.iterdir() if p.is_dir()):
            crops = _images_in(sub)
            if not crops:
                continue
            if len(crops) < min_images_per_class:
                label = -1
            else:
                label = len(names)
                names.append(f"{root.name}/{sub.name}" if prefix else sub.name)
            paths.extend(crops)
            labels.extend([label] * len(crops))
    if not paths:
        raise ValueError(
            f"no images ({', '.join(sorted(IMAGE_EXTENSIONS))}) in {', '.join(map(str, roots))}: expected "
            "<identity>/<crop> sub-folders or loose aligned crops"
        )
    return Samples(tuple(paths), np.asarray(labels, dtype=np.int64), tuple(names))


def split_holdout(
    samples: Samples, num_identities: int, *, min_images: int = 4, max_images: int = 1000, seed: int = 0
) -> tuple[Samples, dict[str, list[Path]]]:
    """Take ``num_identities`` labelled identities (with ``min_images``..``max_images`` crops) out of ``samples``.

    Returns:
        The remaining samples (classes re-indexed) and the held-out crops per identity name.

    Raises:
        ValueError: fewer eligible identities than asked for, or too few left to train on.
    """
    if num_identities <= 0:
        return samples, {}
    counts = Counter(int(label) for label in samples.labels if label >= 0)
    eligible = sorted(c for c, n in counts.items() if min_images <= n <= max_images)
    if len(eligible) < num_identities:
        raise ValueError(
            f"validation needs {num_identities} identities with {min_images} to {max_images} crops; the data has "
            f"{len(eligible)}"
        )
    chosen = set(random.Random(seed).sample(eligible, num_identities))
    held: dict[str, list[Path]] = defaultdict(list)
    for path, label in zip(samples.paths, samples.labels.tolist(), strict=True):
        if label in chosen:
            held[samples.class_names[label]].append(path)
    rest = _select(samples, ~np.isin(samples.labels, sorted(chosen)))
    return rest, dict(held)


def _select(samples: Samples, keep: np.ndarray) -> Samples:
    """The crops where ``keep`` is True; the classes left are re-indexed in order of appearance."""
    remap: dict[int, int] = {}
    names: list[str] = []
    keep_paths: list[Path] = []
    keep_labels: list[int] = []
    for path, label, kept in zip(samples.paths, samples.labels.tolist(), keep.tolist(), strict=True):
        if not kept:
            continue
        if label >= 0:
            if label not in remap:
                remap[label] = len(names)
                names.append(samples.class_names[label])
            label = remap[label]
        keep_paths.append(path)
        keep_labels.append(label)
    return Samples(tuple(keep_paths), np.asarray(keep_labels, dtype=np.int64), tuple(names))


def subset_people(samples: Samples, fraction: float, *, seed: int = 0) -> Samples:
    """Keep ``fraction`` of the people: whole labelled identities, and as many unlabelled crops.

    An unlabelled crop counts as a person of its own (one face per photo, as UTKFace). Cutting people
    rather than random crops is what a data-scaling study needs: face recognition generalises with the
    number of identities it has seen, more than with the number of photos of each.

    Returns:
        The kept samples, classes re-indexed in their original order.

    Raises:
        ValueError: ``fraction`` is outside (0, 1], or it would keep nobody.
    """
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"people fraction must be in (0, 1], got {fraction}")
    if fraction == 1.0:
        return samples
    rng = np.random.default_rng(seed)
    classes = rng.permutation(samples.num_classes)[: round(fraction * samples.num_classes)]
    loose = np.flatnonzero(samples.labels < 0)
    keep = np.isin(samples.labels, classes)
    keep[rng.permutation(loose)[: round(fraction * len(loose))]] = True
    if not keep.any():
        raise ValueError(f"a people fraction of {fraction} keeps nobody of {len(samples)} crops")
    return _select(samples, keep)


def make_holdout_pairs(
    held: dict[str, list[Path]], *, pairs_per_fold: int, folds: int = 10, seed: int = 0
) -> list[Pair]:
    """Same/different pairs in ``folds`` identity-disjoint folds (LFW View-2 style).

    Each fold has up to ``pairs_per_fold`` same and as many different pairs, drawn from its own identities.

    Raises:
        ValueError: fewer identities than folds x 2 (a fold needs two people for a different pair).
    """
    names = sorted(held)
    if len(names) < folds * 2:
        raise ValueError(
            f"{folds} validation folds need at least {folds * 2} held-out identities, got {len(names)}"
        )
    rng = random.Random(seed)
    rng.shuffle(names)
    out: list[Pair] = []
    for fold in range(folds):
        people = names[fold::folds]
        same_pool = [(a, b) for n in people for i, a in enumerate(held[n]) for b in held[n][i + 1 :]]
        rng.shuffle(same_pool)
        same = same_pool[:pairs_per_fold]
        diff: set[tuple[Path, Path]] = set()
        attempts = 0
        while len(diff) < len(same) and attempts < 100 * pairs_per_fold:
            attempts += 1
            p, q = rng.sample(people, 2)
            diff.add((rng.choice(held[p]), rng.choice(held[q])))
        out.extend(Pair(a, b, True, fold) for a, b in same)
        out.extend(Pair(a, b, False, fold) for a, b in sorted(diff))
    return out


def read_pairs(pairs_file: str | Path, images: str | Path | None = None) -> list[Pair]:
    """Read a pair list: LFW ``pairs.txt`` (View 2) over ``images``, or ``path_a<TAB>path_b<TAB>same``.

    The lenient mode of :func:`core.evaluation.read_lfw_pairs`: the header line may be missing, and LFW
    names refer to ``images/<name>/<name>_<i:04d>.<any image extension>``.

    Raises:
        ValueError: the list is missing or malformed, or an image it names is missing.
    """
    try:
        pairs, _ = read_lfw_pairs(Path(pairs_file), lenient=True, images=Path(images) if images else None)
    except EvaluationError as exc:
        raise ValueError(str(exc)) from exc
    return [Pair(Path(p.first), Path(p.second), p.same, p.fold) for p in pairs]


def load_crop_rgb(path: str | Path) -> np.ndarray:
    """Decode a crop as ``(112, 112, 3) uint8`` RGB (other sizes are resized).

    Raises:
        ImageReadError: the file is missing or not a decodable image.
    """
    data = np.fromfile(str(path), dtype=np.uint8) if Path(path).is_file() else None
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data is not None and data.size else None
    if image is None:
        raise ImageReadError(f"not a readable image: {path}")
    if image.shape[:2] != (CROP_SIZE, CROP_SIZE):
        image = cv2.resize(image, (CROP_SIZE, CROP_SIZE), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(image[:, :, ::-1])


def normalize(batch_uint8: torch.Tensor) -> torch.Tensor:
    """``(N, 3, H, W)`` uint8 or float in [0, 255] to float32 in [-1, 1]."""
    return (batch_uint8.float() - 127.5) / 127.5


def augment_batch(
    batch_uint8: torch.Tensor, jitter: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Per-image brightness, contrast and saturation factors in [1 - jitter, 1 + jitter]; returns [-1, 1]."""
    return normalize(_jitter(batch_uint8, jitter, generator))


def jitter_uint8(
    batch_uint8: torch.Tensor, jitter: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """The colour jitter of :func:`augment_batch`, rounded back to uint8.

    An online teacher must see the very pixels the student sees, and teachers take uint8 images.
    """
    return _jitter(batch_uint8, jitter, generator).round_().to(torch.uint8)


def jitter_image(image: np.ndarray, jitter: float, rng: np.random.Generator) -> np.ndarray:
    """The colour jitter of :func:`augment_batch` on one ``(H, W, 3) uint8`` RGB image, as uint8."""
    if jitter <= 0:
        return image
    batch = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None]
    generator = torch.Generator().manual_seed(int(rng.integers(2**62)))
    return jitter_uint8(batch, jitter, generator)[0].permute(1, 2, 0).numpy()


def _jitter(batch_uint8: torch.Tensor, jitter: float, generator: torch.Generator | None) -> torch.Tensor:
    x = batch_uint8.float()
    if jitter > 0:
        n = x.shape[0]

        def factor() -> torch.Tensor:
            return (1.0 + (torch.rand(n, 1, 1, 1, generator=generator) * 2 - 1) * jitter).to(x.device)

        gray_w = torch.tensor([0.299, 0.587, 0.114], device=x.device).view(1, 3, 1, 1)
        x = x * factor()
        gray = (x * gray_w).sum(1, keepdim=True)
        x = (x - gray.mean((2, 3), keepdim=True)) * factor() + gray.mean((2, 3), keepdim=True)
        gray = (x * gray_w).sum(1, keepdim=True)
        x = gray + (x - gray) * factor()
        x = x.clamp(0.0, 255.0)
    return x


class CropDataset(Dataset):
    """Crops as ``(uint8 CHW RGB tensor, label, index, flipped)``; flip and shift are drawn per item.

    The flip flag lets distillation pick the teacher's embedding of the mirrored crop. A crop that cannot
    be read is replaced by the next readable one (logged once), so one bad file does not end a long run.
    With ``degrade`` each crop also goes through :func:`trainer.augment.degrade`, seeded from the
    ``random`` module like the flip, so an epoch's views depend only on (seed, epoch).

    With an online teacher (``teacher``, or ``teacher_spec`` for loader worker processes, each of which
    builds its own) the colour jitter is applied here too and an item gains a fifth element: the teacher's
    L2-normalised embedding of exactly the pixels returned. The teacher then runs in the loader's
    workers, in parallel, which is what keeps a GPU fed (the CPU teacher is the slow part).
    """

    def __init__(
        self,
        samples: Samples,
        *,
        flip: bool = True,
        shift_px: int = 0,
        degrade: bool = False,
        degradation: Degradation | None = None,
        jitter: float = 0.0,
        teacher: Any = None,
        teacher_spec: str | None = None,
    ) -> None:
        self.samples = samples
        self.flip = flip
        self.shift_px = shift_px
        self.degrade = degrade
        self.degradation = degradation or Degradation()
        self.jitter = jitter
        self.teacher = teacher
        self.teacher_spec = teacher_spec
        self._bad: set[int] = set()

    @property
    def online(self) -> bool:
        """Whether an online teacher embeds the exact pixels of each item (see the class docstring)."""
        return self.teacher is not None or self.teacher_spec is not None

    def __getstate__(self) -> dict[str, Any]:
        # A worker process builds its own teacher from the spec: OpenCV networks cannot be pickled.
        state = dict(self.__dict__)
        if self.teacher_spec is not None:
            state["teacher"] = None
        return state

    def _embed(self, image_rgb: np.ndarray) -> np.ndarray:
        if self.teacher is None:
            from core.embedding import create_embedder

            cv2.setNumThreads(1)  # one worker, one core: the workers are the parallelism
            self.teacher = create_embedder(str(self.teacher_spec))
        return self.teacher.embed(np.ascontiguousarray(image_rgb[None, :, :, ::-1]))[0]

    def __len__(self) -> int:
        return len(self.samples)

    def _load(self, index: int) -> tuple[np.ndarray, int]:
        for step in range(len(self.samples)):
            i = (index + step) % len(self.samples)
            if i in self._bad:
                continue
            try:
                return load_crop_rgb(self.samples.paths[i]), i
            except ImageReadError as exc:
                self._bad.add(i)
                log.warning("skipping unreadable crop: %s", exc)
        raise ImageReadError("no readable crop in the data set")

    def __getitem__(self, index: int) -> tuple[Any, ...]:
        image, index = self._load(index)
        flipped = bool(self.flip and random.random() < 0.5)
        if flipped:
            image = image[:, ::-1]
        if self.shift_px:
            dx, dy = (random.randint(-self.shift_px, self.shift_px) for _ in range(2))
            if dx or dy:
                matrix = np.array([[1, 0, dx], [0, 1, dy]], np.float32)
                image = cv2.warpAffine(np.ascontiguousarray(image), matrix, (CROP_SIZE, CROP_SIZE))
        if self.degrade:
            image = degrade(image, np.random.default_rng(random.getrandbits(63)), self.degradation)
        if self.online:
            image = jitter_image(image, self.jitter, np.random.default_rng(random.getrandbits(63)))
        tensor = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).contiguous()
        if self.online:
            target = torch.from_numpy(np.asarray(self._embed(image), np.float32))
            return tensor, int(self.samples.labels[index]), index, flipped, target
        return tensor, int(self.samples.labels[index]), index, flipped


def balanced_sampler(samples: Samples, *, seed: int = 0) -> Sampler[int]:
    """A WeightedRandomSampler drawing each class equally often (weight 1/count; with replacement).

    Unlabelled crops get the weight of a median-sized class.
    """
    labels = samples.labels
    counts = np.bincount(labels[labels >= 0], minlength=max(samples.num_classes, 1)).astype(np.float64)
    median = float(np.median(counts[counts > 0])) if (counts > 0).any() else 1.0
    weights = np.where(labels >= 0, 1.0 / np.maximum(counts[np.maximum(labels, 0)], 1.0), 1.0 / median)
    generator = torch.Generator().manual_seed(seed)
    return WeightedRandomSampler(
        weights.astype(np.float64).tolist(),
        num_samples=len(samples),
        replacement=True,
        generator=generator,
    )
