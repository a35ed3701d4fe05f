"""The :class:`Embedder` contract shared by every face-embedding model: input checks, flip TTA, L2 norm."""

from __future__ import annotations

import abc
from collections.abc import Sequence
from pathlib import Path

import numpy as np

__all__ = ["CROP_SIZE", "PREPROCESSING_VERSION", "Embedder", "as_crop_batch", "l2_normalize"]

CROP_SIZE = 112
# Bumped whenever the preparation of a crop changes (alignment template, warp, colour handling), so that
# cached gallery embeddings made the old way are recomputed.
PREPROCESSING_VERSION = 1
# Crops per network call. A frame has a handful of faces, so live use is one call; a trainer's or an
# evaluation's thousands of crops are cut into calls of this size, because OpenCV DNN crashes the whole
# process (a segmentation fault, not an exception) on a batch of a few thousand crops.
MAX_BATCH = 128


def as_crop_batch(crops_bgr: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
    """Check and stack aligned crops into one ``(N, 112, 112, 3) uint8`` BGR array.

    Raises:
        ValueError: a crop is not a 112x112 3-channel uint8 image.
    """
    if isinstance(crops_bgr, np.ndarray):
        batch = crops_bgr
        if batch.ndim == 3:
            raise ValueError(
                f"expected a batch of crops (N, {CROP_SIZE}, {CROP_SIZE}, 3), got one image of shape "
                f"{batch.shape}; wrap it as batch[None]"
            )
    else:
        items = list(crops_bgr)
        if not items:
            return np.empty((0, CROP_SIZE, CROP_SIZE, 3), np.uint8)
        for index, item in enumerate(items):
            if not isinstance(item, np.ndarray) or item.shape != (CROP_SIZE, CROP_SIZE, 3):
                shape = getattr(item, "shape", type(item).__name__)
                raise ValueError(
                    f"crop {index} must be an aligned {CROP_SIZE}x{CROP_SIZE} BGR image (shape "
                    f"({CROP_SIZE}, {CROP_SIZE}, 3)), got {shape}"
                )
        batch = np.stack(items)
    if batch.ndim != 4 or batch.shape[1:] != (CROP_SIZE, CROP_SIZE, 3):
        raise ValueError(
            f"crops must have shape (N, {CROP_SIZE}, {CROP_SIZE}, 3) (aligned BGR faces), got {batch.shape}"
        )
    if batch.dtype != np.uint8:
        raise ValueError(f"crops must be uint8 BGR images (0..255), got dtype {batch.dtype}")
    return batch


def l2_normalize(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (a zero row stays zero instead of becoming NaN)."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)


class Embedder(abc.ABC):
    """Turns aligned 112x112 BGR face crops into L2-normalised embeddings.

    Subclasses implement :meth:`_forward` (raw, un-normalised embeddings of one batch); the input
    checks, flip test-time augmentation and normalisation live here once.
    """

    #: Registry name of the model family ("sface", "ghostfacenetv2").
    name: str = ""

    def __init__(
        self,
        *,
        model_id: str,
        dim: int,
        device: str,
        model_path: Path,
        suggested_threshold: float | None = None,
    ) -> None:
        self._model_id = model_id
        self._dim = dim
        self._device = device
        self._model_path = model_path
        self._suggested_threshold = suggested_threshold

    @property
    def suggested_threshold(self) -> float | None:
        """The cosine-similarity threshold calibrated for this model, or None when it has none.

        Models differ in how spread out their embeddings are, so a threshold only means something for
        the model it was measured on. The pipeline uses this one unless the user set their own
        (``recognition.threshold_from_model``).
        """
        return self._suggested_threshold

    @property
    def model_id(self) -> str:
        """``"<name>@<first 12 hex digits of the weights' SHA-256>"``: a cache key that changes with the weights."""
        return self._model_id

    @property
    def dim(self) -> int:
        """Length of an embedding."""
        return self._dim

    @property
    def device(self) -> str:
        """Where the model really runs (``"cpu"``, ``"cuda:0"``), after any fallback."""
        return self._device

    @property
    def model_path(self) -> Path:
        """The weights file the model was loaded from."""
        return self._model_path

    @property
    def runtime(self) -> str:
        """What executes the model (``"opencv-dnn"``, ``"pytorch"``): Diagnostics and ``bench`` show it."""
        return "opencv-dnn"

    @property
    def preprocessing_version(self) -> int:
        """Version of the crop preparation the embeddings depend on (part of the gallery cache key)."""
        return PREPROCESSING_VERSION

    def embed(self, crops_bgr: np.ndarray | Sequence[np.ndarray], *, flip: bool = False) -> np.ndarray:
        """Embed aligned face crops, in network calls of at most :data:`MAX_BATCH` crops.

        Args:
            crops_bgr: ``(N, 112, 112, 3) uint8`` BGR crops (or a sequence of ``(112, 112, 3)`` ones),
                aligned to the ArcFace template; N may be 0.
            flip: add the raw embedding of each crop's horizontal mirror before normalising (the
                standard flip test-time augmentation; costs a second forward pass).

        Returns:
            ``(N, dim) float32``, each row L2-normalised.

        Raises:
            ValueError: the crops do not have the documented shape or dtype.
        """
        batch = as_crop_batch(crops_bgr)
        n = batch.shape[0]
        if n == 0:
            return np.empty((0, self._dim), np.float32)
        step = max(1, MAX_BATCH // 2) if flip else MAX_BATCH
        parts = [self._raw(batch[i : i + step], flip=flip) for i in range(0, n, step)]
        return l2_normalize(np.concatenate(parts).reshape(n, self._dim))

    def _raw(self, batch: np.ndarray, *, flip: bool) -> np.ndarray:
        n = batch.shape[0]
        if flip:
            # Original and mirror go through the network together: one batch, one call.
            both = np.concatenate([batch, batch[:, :, ::-1]], axis=0)
            raw = np.asarray(self._forward(np.ascontiguousarray(both)), dtype=np.float32).reshape(2 * n, -1)
            return raw[:n] + raw[n:]
        return np.asarray(self._forward(np.ascontiguousarray(batch)), dtype=np.float32).reshape(n, -1)

    @abc.abstractmethod
    def _forward(self, batch_bgr: np.ndarray) -> np.ndarray:
        """Raw embeddings ``(N, dim)`` of a checked, contiguous ``(N, 112, 112, 3) uint8`` BGR batch."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model_id={self._model_id!r}, dim={self._dim}, device={self._device!r})"
