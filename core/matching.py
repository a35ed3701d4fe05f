"""Open-set matching of face embeddings against a gallery: best-of-photos cosine, threshold and margin."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from core.types import HeldBack, Match, UnknownReason

__all__ = ["Matcher", "PersonScores"]


@dataclass(frozen=True, slots=True)
class _GalleryState:
    """The gallery as the matcher uses it; replaced whole, never mutated (readers on other threads)."""

    # (d, M) float32: the L2-normalised photo embeddings as columns, sorted so that each person's photos
    # are contiguous. Stored transposed because the product with one query then streams the gallery in
    # memory order, measurably faster (the gallery read dominates matching).
    matrix_t: np.ndarray
    # (P,) index of each person's first row in ``matrix`` (for ``np.maximum.reduceat``).
    starts: np.ndarray
    people: tuple[str, ...]
    # (P, d) float32, each person's mean embedding, re-normalised.
    means: np.ndarray


@dataclass(frozen=True, slots=True)
class PersonScores:
    """Per-person similarities of a batch of embeddings.

    Attributes:
        people: the gallery's people, in column order.
        scores: ``(N, P) float32`` similarity of each embedding to each person (best of the person's
            photos, or their mean when that is higher and means are used).
    """

    people: tuple[str, ...]
    scores: np.ndarray


def _normalise(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


class Matcher:
    """Decides who a face is, or that it is Unknown.

    A face is compared with every photo embedding of every person (cosine similarity); a person's
    score is the best of their photos, and optionally also their mean embedding. The best person is
    the answer when their score reaches ``threshold`` *and* beats the second-best person by at least
    ``margin``; otherwise the face is Unknown (``Match.person is None``).

    Threshold, margin and ``use_mean`` may be changed at any time (they are plain attributes read
    once per call); :meth:`set_gallery` swaps the gallery atomically, so one thread may match while
    another replaces the gallery.

    Args:
        threshold: cosine similarity at or above which a face is a gallery person.
        margin: how much the best person must beat the second best.
        use_mean: also compare with each person's mean embedding.
    """

    def __init__(self, threshold: float, margin: float, use_mean: bool = False) -> None:
        self.threshold = float(threshold)
        self.margin = float(margin)
        self.use_mean = bool(use_mean)
        self._lock = threading.Lock()
        self._state: _GalleryState | None = None

    @property
    def people(self) -> tuple[str, ...]:
        """The people in the current gallery, sorted."""
        state = self._state
        return state.people if state is not None else ()

    @property
    def size(self) -> int:
        """Number of photo embeddings in the current gallery."""
        state = self._state
        return int(state.matrix_t.shape[1]) if state is not None else 0

    @property
    def dim(self) -> int | None:
        """Embedding size of the current gallery, or None when it is empty."""
        state = self._state
        return int(state.matrix_t.shape[0]) if state is not None else None

    def set_gallery(self, embeddings: np.ndarray, labels: Sequence[str]) -> None:
        """Replace the gallery.

        Args:
            embeddings: ``(M, d)`` photo embeddings (normalised here, so any scale works).
            labels: ``M`` person names, one per row.

        Raises:
            ValueError: the shapes do not agree, or an embedding is not finite.
        """
        matrix = np.asarray(embeddings, dtype=np.float32)
        if matrix.ndim != 2:
            raise ValueError(f"gallery embeddings must be (M, d), got shape {matrix.shape}")
        if len(labels) != matrix.shape[0]:
            raise ValueError(f"{matrix.shape[0]} embeddings but {len(labels)} labels")
        if matrix.shape[0] == 0:
            with self._lock:
                self._state = None
            return
        if not np.isfinite(matrix).all():
            raise ValueError("gallery embeddings contain NaN or infinity")
        label_array = np.asarray(list(labels), dtype=object)
        order = np.argsort(label_array, kind="stable")
        sorted_labels = label_array[order]
        matrix = _normalise(matrix[order]).astype(np.float32, copy=False)
        is_start = np.ones(len(sorted_labels), dtype=bool)
        is_start[1:] = sorted_labels[1:] != sorted_labels[:-1]
        starts = np.flatnonzero(is_start)
        people = tuple(str(p) for p in sorted_labels[starts])
        sums = np.add.reduceat(matrix, starts, axis=0)
        means = np.ascontiguousarray(_normalise(sums), dtype=np.float32)
        with self._lock:
            self._state = _GalleryState(
                matrix_t=np.ascontiguousarray(matrix.T), starts=starts, people=people, means=means
            )

    def person_scores(self, embeddings: np.ndarray) -> PersonScores:
        """Similarity of each embedding to each person.

        Args:
            embeddings: ``(N, d)`` or ``(d,)`` query embeddings.

        Returns:
            the people and an ``(N, P)`` score matrix (``P`` is 0 for an empty gallery).

        Raises:
            ValueError: the embedding size differs from the gallery's.
        """
        state = self._state
        query = np.asarray(embeddings, dtype=np.float32)
        if query.ndim == 1:
            query = query[None, :]
        if state is None:
            return PersonScores((), np.zeros((query.shape[0], 0), dtype=np.float32))
        if query.shape[1] != state.matrix_t.shape[0]:
            raise ValueError(
                f"embedding size {query.shape[1]} does not match the gallery's {state.matrix_t.shape[0]}"
                " (the gallery was built with another model; sync it again)"
            )
        query = _normalise(query).astype(np.float32, copy=False)
        if query.shape[0] == 1:
            # One face (the common live case): a vector-matrix product and a 1-D reduction are
            # cheaper than their 2-D forms.
            scores = np.maximum.reduceat(query[0] @ state.matrix_t, state.starts)[None, :]
        else:
            scores = np.maximum.reduceat(query @ state.matrix_t, state.starts, axis=1)
        if self.use_mean:
            np.maximum(scores, query @ state.means.T, out=scores)
        return PersonScores(state.people, scores)

    def match(self, embeddings: np.ndarray) -> list[Match]:
        """Decide each face.

        Args:
            embeddings: ``(N, d)`` query embeddings.

        Returns:
            one :class:`~core.types.Match` per row. With an empty gallery every face is Unknown with
            similarity -1.
        """
        result = self.person_scores(embeddings)
        scores = result.scores
        n, p = scores.shape
        threshold, margin = self.threshold, self.margin
        if p == 0:
            nobody = UnknownReason(HeldBack.NO_GALLERY, threshold=threshold, margin=margin)
            return [Match(None, -1.0, reason=nobody) for _ in range(n)]
        if p == 1:
            top = scores[:, 0]
            return [self._decide(result.people[0], s, None, -1.0) for s in top.tolist()]
        # The two best people per row without sorting all P columns.
        top2 = np.argpartition(-scores, 1, axis=1)[:, :2]
        rows = np.arange(n)[:, None]
        pair = scores[rows, top2]
        swap = pair[:, 1] > pair[:, 0]
        top2[swap] = top2[swap][:, ::-1]
        pair[swap] = pair[swap][:, ::-1]
        return [
            self._decide(result.people[i1], s1, result.people[i2], s2)
            for (i1, i2), (s1, s2) in zip(top2.tolist(), pair.tolist(), strict=True)
        ]

    def _decide(self, best: str, s1: float, second: str | None, s2: float) -> Match:
        """The decision for one face from its two best people; an Unknown says which rule held it back."""
        threshold, margin = self.threshold, self.margin
        rule = None
        if s1 < threshold:
            rule = HeldBack.THRESHOLD
        elif second is not None and (s1 - s2) < margin:
            rule = HeldBack.MARGIN
        if rule is None:
            return Match(best, float(s1), second, float(s2))
        reason = UnknownReason(rule, best, float(s1), threshold, margin, second, float(s2))
        return Match(None, float(s1), second, float(s2), reason)
