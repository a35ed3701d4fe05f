"""Accuracy measurements: LFW 10-fold verification with TAR@FAR, and open-set identification.

Evaluation only: nothing here tunes the engine. The LFW protocol is the standard one (insightface
``eval/verification.py``): flip-sum embeddings, squared-L2 distance thresholds scanned on nine folds and
applied to the tenth, VAL at FAR = 1e-3 by interpolation on the training folds. Identification follows
the usual open-set 1:N protocol: rank-1 rate over mated probes, and the detection-and-identification
rate at a false-positive identification rate set by non-mated probes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core._image import is_image_name, read_image
from core.alignment import align_face
from core.detection import Detector
from core.embedding import Embedder
from core.errors import GhostFaceError, ImageReadError
from core.types import Detection

__all__ = [
    "EvaluationError",
    "IdentificationResult",
    "LfwPair",
    "LfwResult",
    "VerificationResult",
    "embed_face",
    "evaluate_identification",
    "evaluate_lfw",
    "identification_metrics",
    "PAIR_IMAGE_EXTENSIONS",
    "read_lfw_pairs",
    "select_pairs",
    "verification_metrics",
]

log = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int, str], None]

# Distance thresholds scanned (squared L2 between unit vectors, so 0..4), as insightface does.
_ACC_THRESHOLDS = np.arange(0.0, 4.0, 0.01)
_FAR_THRESHOLDS = np.arange(0.0, 4.0, 0.001)
# A pair with an image where no face was found gets the worst distance: always "different".
_WORST_DISTANCE = 4.0


class EvaluationError(GhostFaceError):
    """An evaluation that cannot run (a malformed pairs file, a data folder without images)."""


# ------------------------------------------------------------------------------------------- pairs


@dataclass(frozen=True, slots=True)
class LfwPair:
    """One line of LFW ``pairs.txt``: two images and whether they show the same person."""

    first: str
    second: str
    same: bool
    fold: int


# What a lenient pairs list may point at: validation crops are stored in any of these formats.
PAIR_IMAGE_EXTENSIONS = (".jpg", ".png", ".jpeg", ".bmp", ".webp")


def _lfw_name(person: str, number: str) -> str:
    return f"{person}/{person}_{int(number):04d}.jpg"


def _lfw_file(images: Path) -> Callable[[str, str], str]:
    """Names to the image file that exists under ``images``, whatever its extension."""

    def find(person: str, number: str) -> str:
        stem = f"{person}_{int(number):04d}"
        for ext in PAIR_IMAGE_EXTENSIONS:
            candidate = images / person / f"{stem}{ext}"
            if candidate.is_file():
                return str(candidate)
        raise EvaluationError(f"pair image not found: {images / person / stem}.*")

    return find


def _is_header(parts: Sequence[str]) -> bool:
    return len(parts) == 2 and all(p.isdigit() for p in parts)


def _is_lfw_line(parts: Sequence[str]) -> bool:
    return _is_header(parts) or (len(parts) in (3, 4) and parts[1].isdigit() and parts[-1].isdigit())


def _read_path_list(path: Path, lines: Sequence[str]) -> tuple[list[LfwPair], int]:
    """``path_a<TAB>path_b<TAB>same[<TAB>fold]`` lines, paths relative to the list's folder."""
    pairs: list[LfwPair] = []
    for number, line in enumerate(lines, start=1):
        parts = line.split("\t") if "\t" in line else line.split()
        try:
            if len(parts) < 3:
                raise ValueError
            fold = int(parts[3]) if len(parts) > 3 else 0
        except ValueError:
            raise EvaluationError(f"{path}, line {number}: expected 'path_a path_b same [fold]', got {line!r}") from None
        same = parts[2].strip() in ("1", "true", "True")
        pairs.append(LfwPair(str(path.parent / parts[0]), str(path.parent / parts[1]), same, fold))
    return pairs, max(p.fold for p in pairs) + 1


def _read_lfw_lines(
    path: Path, lines: Sequence[str], first: int, per_fold: int, name: Callable[[str, str], str]
) -> list[LfwPair]:
    """LFW pair lines, line number ``first`` on: ``name n1 n2`` (same) or ``name1 n1 name2 n2`` (different).

    Args:
        path: the pairs file, named in errors.
        lines: all its non-empty lines, the header included if it has one.
        first: the line number of the first pair line (2 after a header, else 1).
        per_fold: pair lines to a fold, in file order.
        name: a person and an image number to the image's path.
    """
    pairs: list[LfwPair] = []
    for number, line in enumerate(lines[first - 1 :], start=first):
        parts = line.split()
        fold = (number - first) // per_fold if per_fold else 0
        try:
            if len(parts) == 3:
                pairs.append(LfwPair(name(parts[0], parts[1]), name(parts[0], parts[2]), True, fold))
            elif len(parts) == 4:
                pairs.append(LfwPair(name(parts[0], parts[1]), name(parts[2], parts[3]), False, fold))
            else:
                raise ValueError
        except ValueError:
            raise EvaluationError(
                f"{path}, line {number}: not an LFW pair line: expected 'name n1 n2' or 'name1 n1 name2 n2', "
                f"got {line!r}"
            ) from None
    return pairs


def read_lfw_pairs(path: Path, *, lenient: bool = False, images: Path | None = None) -> tuple[list[LfwPair], int]:
    """Parse LFW ``pairs.txt`` (first line ``"<folds> <pairs per class per fold>"``, e.g. ``10 300``).

    Strict (the benchmark) by default. ``lenient`` also reads what the trainer's validation lists
    hold: LFW lines without the header line (one fold), and lists of ``path_a<TAB>path_b<TAB>same[<TAB>fold]``
    (paths relative to the list's folder).

    Args:
        path: the pairs file.
        lenient: accept a missing header and path lists (see above).
        images: the LFW folder: each name becomes the path of the file that exists there, whatever its
            extension (:data:`PAIR_IMAGE_EXTENSIONS`); needed for LFW lines when ``lenient``.

    Returns:
        the pairs in file order (image paths relative to the LFW folder, or the files found under
        ``images``) and the number of folds.

    Raises:
        EvaluationError: the file is missing or malformed (the message names the line), or an image
            is not found under ``images``.
    """
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise EvaluationError(f"cannot read the pairs file {path}: {exc}") from exc
    lines = [ln.strip() for ln in lines if ln.strip()]
    if not lines:
        raise EvaluationError(f"the pairs file {path} is empty")
    head = lines[0].split()
    if lenient and not _is_lfw_line(head):
        return _read_path_list(path, lines)
    if _is_header(head):
        folds, per_fold, first = int(head[0]), 2 * int(head[1]), 2
    elif lenient:
        folds, per_fold, first = 1, len(lines), 1
    else:
        raise EvaluationError(
            f"{path}: the first line must be '<folds> <pairs per fold and class>' (like '10 300'), got {lines[0]!r}"
        )
    if lenient and images is None:
        raise EvaluationError(f"{path} is in LFW format: the images folder is needed too")
    name = _lfw_file(Path(images)) if images is not None else _lfw_name
    pairs = _read_lfw_lines(path, lines, first, per_fold, name)
    if len(pairs) != folds * per_fold:
        log.warning("%s announces %d pairs but holds %d", path, folds * per_fold, len(pairs))
    return pairs, folds


def select_pairs(pairs: Sequence[LfwPair], limit: int) -> list[LfwPair]:
    """A small subset for smoke tests: the first pairs of each class in every fold, ``limit`` in all."""
    folds = sorted({p.fold for p in pairs})
    per_class = max(1, limit // (2 * max(len(folds), 1)))
    out: list[LfwPair] = []
    for fold in folds:
        in_fold = [p for p in pairs if p.fold == fold]
        out.extend([p for p in in_fold if p.same][:per_class])
        out.extend([p for p in in_fold if not p.same][:per_class])
    return out


# ------------------------------------------------------------------------------------ verification


@dataclass(frozen=True, slots=True)
class VerificationResult:
    """10-fold verification figures.

    Attributes:
        accuracy: mean held-out fold accuracy, in [0, 1].
        std: its standard deviation over folds.
        fold_accuracies: each fold's accuracy.
        threshold: mean chosen cosine-similarity threshold (same person when similarity is above it).
        tar_at_far: mean VAL (true accept rate) at the target FAR.
        tar_std: its standard deviation over folds.
        far: the mean FAR actually reached on the held-out folds.
        target_far: the FAR aimed at.
    """

    accuracy: float
    std: float
    fold_accuracies: tuple[float, ...]
    threshold: float
    tar_at_far: float
    tar_std: float
    far: float
    target_far: float


def _fold_ids(n: int, folds: int) -> np.ndarray:
    # Contiguous folds without shuffling (sklearn KFold): with LFW's file order they are the official ones.
    sizes = np.full(folds, n // folds, dtype=int)
    sizes[: n % folds] += 1
    return np.repeat(np.arange(folds), sizes)


def _best_accuracy_threshold(dist: np.ndarray, same: np.ndarray) -> float:
    pos = np.sort(dist[same])
    neg = np.sort(dist[~same])
    tp = np.searchsorted(pos, _ACC_THRESHOLDS, side="left")  # same pairs with distance < t
    tn = neg.size - np.searchsorted(neg, _ACC_THRESHOLDS, side="left")  # different pairs with distance >= t
    return float(_ACC_THRESHOLDS[int(np.argmax(tp + tn))])


def _threshold_at_far(dist: np.ndarray, same: np.ndarray, target_far: float) -> float:
    neg = np.sort(dist[~same])
    if neg.size == 0:
        return 0.0
    far = np.searchsorted(neg, _FAR_THRESHOLDS, side="left") / neg.size
    if far.max() < target_far:
        return 0.0
    # FAR rises in steps along the scanned thresholds. Interpolate on that curve as insightface does
    # (scipy interp1d over every point): between the last threshold still at or under the target FAR
    # and the next one.
    i = int(np.searchsorted(far, target_far, side="right")) - 1
    if i < 0:
        return 0.0
    if far[i] == target_far or i + 1 >= far.size:
        return float(_FAR_THRESHOLDS[i])
    frac = (target_far - far[i]) / (far[i + 1] - far[i])
    return float(_FAR_THRESHOLDS[i] + frac * (_FAR_THRESHOLDS[i + 1] - _FAR_THRESHOLDS[i]))


def verification_metrics(
    similarities: np.ndarray, same: np.ndarray, folds: int | np.ndarray = 10, target_far: float = 1e-3
) -> VerificationResult:
    """k-fold accuracy and VAL@FAR from pair similarities (MODEL_SPEC 5.1).

    Args:
        similarities: ``(P,)`` cosine similarity of each pair (of L2-normalised embeddings), in file
            order; a pair without a face should carry -1 (the worst).
        same: ``(P,)`` bool, whether each pair shows one person.
        folds: number of contiguous folds, or ``(P,)`` fold ids given per pair (the trainer's
            identity-disjoint folds).
        target_far: the false accept rate VAL is reported at.

    Raises:
        EvaluationError: fewer pairs than folds, or a fold's training part lacks a class.
    """
    sims = np.asarray(similarities, dtype=np.float64).reshape(-1)
    same = np.asarray(same, dtype=bool).reshape(-1)
    if sims.shape != same.shape:
        raise EvaluationError(f"{sims.size} similarities but {same.size} labels")
    if isinstance(folds, np.ndarray):
        ids = folds.reshape(-1)
        if ids.shape != sims.shape:
            raise EvaluationError(f"{sims.size} similarities but {ids.size} fold ids")
    else:
        if folds < 2 or sims.size < folds:
            raise EvaluationError(
                f"{sims.size} pairs cannot be split into {folds} folds (need at least 2 folds)"
            )
        ids = _fold_ids(sims.size, folds)
    fold_ids = np.unique(ids)
    if fold_ids.size < 2:
        raise EvaluationError("at least 2 folds are needed")
    dist = np.clip(2.0 - 2.0 * sims, 0.0, _WORST_DISTANCE)
    accs, thresholds, vals, fars = [], [], [], []
    for k in fold_ids:
        test = ids == k
        train = ~test
        if same[train].all() or not same[train].any():
            raise EvaluationError("every training split needs both same and different pairs")
        t = _best_accuracy_threshold(dist[train], same[train])
        thresholds.append(t)
        predicted = dist[test] < t
        accs.append(float((predicted == same[test]).mean()))
        t_far = _threshold_at_far(dist[train], same[train], target_far)
        accept = dist[test] < t_far
        n_same = max(int(same[test].sum()), 1)
        n_diff = max(int((~same[test]).sum()), 1)
        vals.append(float((accept & same[test]).sum() / n_same))
        fars.append(float((accept & ~same[test]).sum() / n_diff))
    return VerificationResult(
        accuracy=float(np.mean(accs)),
        std=float(np.std(accs)),
        fold_accuracies=tuple(accs),
        threshold=float(1.0 - np.mean(thresholds) / 2.0),
        tar_at_far=float(np.mean(vals)),
        tar_std=float(np.std(vals)),
        far=float(np.mean(fars)),
        target_far=target_far,
    )


# ------------------------------------------------------------------------------------------ faces


def _nearest_centre(detections: Sequence[Detection], shape: tuple[int, ...]) -> Detection:
    cy, cx = shape[0] / 2.0, shape[1] / 2.0
    return min(
        detections,
        key=lambda d: ((d.box[0] + d.box[2]) / 2 - cx) ** 2 + ((d.box[1] + d.box[3]) / 2 - cy) ** 2,
    )


def _largest(detections: Sequence[Detection], shape: tuple[int, ...]) -> Detection:
    del shape
    return max(detections, key=lambda d: d.width * d.height)


def embed_face(
    image_bgr: np.ndarray, detector: Detector, embedder: Embedder, *, choose: str = "largest"
) -> np.ndarray | None:
    """The flip-sum embedding of one face of a photo, or None when no face is found.

    Args:
        image_bgr: the photo.
        detector: finds the faces.
        embedder: embeds the aligned crop (with flip test-time augmentation).
        choose: ``"largest"`` face, or the face ``"centre"`` nearest the image centre (LFW photos are
            centred on their subject).
    """
    detections = detector.detect(image_bgr)
    if not detections:
        return None
    pick = _nearest_centre if choose == "centre" else _largest
    face = pick(detections, image_bgr.shape)
    crop = align_face(image_bgr, face.landmarks)
    return embedder.embed(crop[None], flip=True)[0]


# -------------------------------------------------------------------------------------------- LFW


@dataclass(frozen=True, slots=True)
class LfwResult:
    """LFW verification on real images.

    Attributes:
        verification: the fold figures.
        pairs: pairs scored.
        images: distinct images read.
        no_face: images where no face was found (their pairs count as "different").
        pairs_without_face: pairs that involve such an image.
        unreadable: images that could not be read (treated like no face).
        seconds: wall time of the whole evaluation.
    """

    verification: VerificationResult
    pairs: int
    images: int
    no_face: int
    pairs_without_face: int
    unreadable: int
    seconds: float
    missing_faces: tuple[str, ...] = field(default_factory=tuple)


def _embed_lfw_images(
    root: Path,
    names: Sequence[str],
    detector: Detector,
    embedder: Embedder,
    progress: ProgressCallback | None,
) -> tuple[dict[str, np.ndarray | None], int]:
    """Each image's embedding (None: unreadable or no face), and how many images were unreadable."""
    vectors: dict[str, np.ndarray | None] = {}
    unreadable = 0
    for done, name in enumerate(names, start=1):
        try:
            image = read_image(root / name)
        except ImageReadError as exc:
            unreadable += 1
            log.warning("%s", exc)
            vectors[name] = None
        else:
            vectors[name] = embed_face(image, detector, embedder, choose="centre")
        if progress is not None:
            progress(done, len(names), name)
    return vectors, unreadable


def _pair_similarities(
    pairs: Sequence[LfwPair], vectors: dict[str, np.ndarray | None]
) -> tuple[np.ndarray, int]:
    """Cosine similarity of each pair; a pair with an image without a face scores -1 ("different")."""
    sims = np.empty(len(pairs), dtype=np.float64)
    without = 0
    for i, pair in enumerate(pairs):
        a, b = vectors[pair.first], vectors[pair.second]
        if a is None or b is None:
            sims[i] = -1.0
            without += 1
        else:
            sims[i] = float(np.dot(a, b))
    return sims, without


def evaluate_lfw(
    images_dir: Path,
    pairs_path: Path,
    detector: Detector,
    embedder: Embedder,
    *,
    folds: int | None = None,
    limit_pairs: int | None = None,
    progress: ProgressCallback | None = None,
) -> LfwResult:
    """Run the LFW pairs protocol with the engine's own detector, alignment and embedder.

    Each image is read once; the face nearest the image centre is aligned and embedded with flip.

    Args:
        images_dir: the LFW folder (``<Name>/<Name>_0001.jpg``).
        pairs_path: ``pairs.txt``.
        detector: the detector to evaluate with.
        embedder: the embedder to evaluate.
        folds: number of folds (default: as the pairs file says).
        limit_pairs: score only about this many pairs, spread over every fold (smoke tests).
        progress: ``progress(done, total, image)`` after each image.

    Raises:
        EvaluationError: the pairs file is malformed or no image could be read.
    """
    start = time.perf_counter()
    pairs, file_folds = read_lfw_pairs(pairs_path)
    if limit_pairs is not None:
        pairs = select_pairs(pairs, limit_pairs)
    n_folds = folds or file_folds
    names = sorted({p.first for p in pairs} | {p.second for p in pairs})
    root = Path(images_dir)
    vectors, unreadable = _embed_lfw_images(root, names, detector, embedder, progress)
    if unreadable == len(names):
        raise EvaluationError(f"none of the {len(names)} LFW images could be read under {root}")
    missing = [n for n, v in vectors.items() if v is None]
    sims, without = _pair_similarities(pairs, vectors)
    if without:
        log.warning("%d pairs involve an image without a detected face; scored as 'different'", without)
    verification = verification_metrics(sims, np.array([p.same for p in pairs]), folds=n_folds)
    return LfwResult(
        verification=verification,
        pairs=len(pairs),
        images=len(names),
        no_face=len(missing) - unreadable,
        pairs_without_face=without,
        unreadable=unreadable,
        seconds=time.perf_counter() - start,
        missing_faces=tuple(missing),
    )


# ---------------------------------------------------------------------------------- identification


@dataclass(frozen=True, slots=True)
class IdentificationResult:
    """Open-set 1:N identification figures.

    Attributes:
        rank1: fraction of mated probes whose best gallery person is the right one.
        dir_at_fpir: detection-and-identification rate at each false-positive identification rate
            (keys like ``"0.01"``); None when there are no non-mated probes to set the threshold.
        thresholds: the similarity threshold chosen for each FPIR.
        gallery_people: people in the gallery with at least one usable photo.
        mated: mated probes (people in the gallery).
        non_mated: non-mated probes (other people and distractors).
        no_face: images without a detected face (a mated probe without a face counts as a miss;
            a gallery photo or non-mated probe without one is left out).
    """

    rank1: float
    dir_at_fpir: dict[str, float | None]
    thresholds: dict[str, float | None]
    gallery_people: int
    mated: int
    non_mated: int
    no_face: int


def identification_metrics(
    scores: np.ndarray,
    truth: Sequence[int],
    non_mated_best: np.ndarray,
    fpirs: Sequence[float] = (0.01, 0.1),
    missed_mated: int = 0,
) -> tuple[float, dict[str, float | None], dict[str, float | None]]:
    """Rank-1 and DIR@FPIR from scores.

    Args:
        scores: ``(N, P)`` similarity of each mated probe to each gallery person.
        truth: the right column for each mated probe.
        non_mated_best: ``(K,)`` each non-mated probe's best similarity to any gallery person.
        fpirs: target false-positive identification rates.
        missed_mated: mated probes that could not be scored at all (no face); they count as misses.

    Returns:
        ``(rank1, {fpir: DIR or None}, {fpir: threshold or None})``. The threshold for an FPIR f is
        the similarity that exactly ``floor(f * K)`` non-mated probes exceed; a probe is accepted
        when its score is above it.
    """
    scores = np.asarray(scores, dtype=np.float64).reshape(len(truth), -1) if len(truth) else np.zeros((0, 0))
    total = len(truth) + missed_mated
    if total == 0:
        raise EvaluationError("there are no mated probes (probe folders named like gallery people)")
    truth_arr = np.asarray(truth, dtype=int)
    if len(truth):
        best = scores.argmax(axis=1)
        correct = best == truth_arr
        top = scores[np.arange(len(truth)), best]
    else:
        correct = np.zeros(0, bool)
        top = np.zeros(0)
    rank1 = float(correct.sum() / total)
    neg = np.sort(np.asarray(non_mated_best, dtype=np.float64))[::-1]
    dirs: dict[str, float | None] = {}
    taus: dict[str, float | None] = {}
    for f in fpirs:
        key = f"{f:g}"
        if neg.size == 0:
            dirs[key] = taus[key] = None
            continue
        allowed = int(np.floor(f * neg.size))
        tau = float(neg[allowed]) if allowed < neg.size else float(neg[-1]) - 1e-9
        taus[key] = tau
        dirs[key] = float((correct & (top > tau)).sum() / total)
    return rank1, dirs, taus


def _images_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and is_image_name(p))


def _embed_identification_jobs(
    jobs: Sequence[tuple[str, str, Path]],
    detector: Detector,
    embedder: Embedder,
    progress: ProgressCallback | None,
) -> tuple[dict[str, list[np.ndarray]], list[tuple[str, np.ndarray | None]], list[np.ndarray], int]:
    """Embed every (role, person, photo).

    Returns:
        The gallery per person, the probes, the distractors, and how many photos gave no face (a
        probe without a face is kept, as a miss).
    """
    no_face = 0
    gallery: dict[str, list[np.ndarray]] = {}
    probes: list[tuple[str, np.ndarray | None]] = []
    distractors: list[np.ndarray] = []
    for done, (role, person, photo) in enumerate(jobs, start=1):
        try:
            vector = embed_face(read_image(photo), detector, embedder)
        except ImageReadError as exc:
            log.warning("%s", exc)
            vector = None
        if vector is None:
            no_face += 1
        if role == "gallery":
            if vector is not None:
                gallery.setdefault(person, []).append(vector)
        elif role == "probe":
            probes.append((person, vector))
        elif vector is not None:
            distractors.append(vector)
        if progress is not None:
            progress(done, len(jobs), str(photo))
    return gallery, probes, distractors, no_face


def evaluate_identification(
    gallery_dir: Path,
    probes_dir: Path,
    detector: Detector,
    embedder: Embedder,
    *,
    distractors_dir: Path | None = None,
    fpirs: Sequence[float] = (0.01, 0.1),
    progress: ProgressCallback | None = None,
) -> IdentificationResult:
    """Open-set identification (MODEL_SPEC 5.6) on folders of photos.

    One template per gallery person: the mean of their photos' flip-sum embeddings, re-normalised.
    Probes are ``<probes>/<person>/<photo>``: mated when the person is in the gallery, non-mated
    otherwise; every photo under ``distractors_dir`` is non-mated. The largest face of a photo is used.

    Raises:
        EvaluationError: a folder is missing, or there is no gallery person or no mated probe.
    """
    for label, folder in (("gallery", gallery_dir), ("probes", probes_dir), ("distractors", distractors_dir)):
        if folder is not None and not Path(folder).is_dir():
            raise EvaluationError(f"the {label} folder {folder} does not exist")
    people = sorted(p for p in Path(gallery_dir).iterdir() if p.is_dir() and not p.name.startswith("."))
    probe_people = sorted(p for p in Path(probes_dir).iterdir() if p.is_dir() and not p.name.startswith("."))
    jobs = [("gallery", p.name, photo) for p in people for photo in _images_under(p)]  # (role, person, photo)
    jobs += [("probe", p.name, photo) for p in probe_people for photo in _images_under(p)]
    if distractors_dir is not None:
        jobs.extend(("distractor", "", photo) for photo in _images_under(Path(distractors_dir)))
    gallery, probes, distractors, no_face = _embed_identification_jobs(jobs, detector, embedder, progress)
    names = sorted(gallery)
    if not names:
        raise EvaluationError(f"no usable gallery photo under {gallery_dir}")
    templates = np.stack([np.mean(gallery[n], axis=0) for n in names])
    templates /= np.maximum(np.linalg.norm(templates, axis=1, keepdims=True), 1e-12)
    column = {n: i for i, n in enumerate(names)}
    mated_vectors, truth, missed = [], [], 0
    non_mated = [v for v in distractors]
    for person, vector in probes:
        if person in column:
            if vector is None:
                missed += 1
            else:
                mated_vectors.append(vector)
                truth.append(column[person])
        elif vector is not None:
            non_mated.append(vector)
    scores = np.stack(mated_vectors) @ templates.T if mated_vectors else np.zeros((0, len(names)))
    non_best = (np.stack(non_mated) @ templates.T).max(axis=1) if non_mated else np.zeros(0)
    rank1, dirs, taus = identification_metrics(scores, truth, non_best, fpirs, missed)
    return IdentificationResult(
        rank1=rank1,
        dir_at_fpir=dirs,
        thresholds=taus,
        gallery_people=len(names),
        mated=len(truth) + missed,
        non_mated=len(non_mated),
        no_face=no_face,
    )
