"""The detector base class: input checks, optional downscaling, thresholding and sorting in one place."""

from __future__ import annotations

import abc
import logging

import cv2
import numpy as np

from core.types import Detection

__all__ = ["Detector", "RawDetections", "nms"]

logger = logging.getLogger(__name__)

# (boxes (N, 4) float32 x1y1x2y2, scores (N,) float32, landmarks (N, 5, 2) float32), pixels of the
# image the subclass was given, landmarks already in our order (image-left first).
RawDetections = tuple[np.ndarray, np.ndarray, np.ndarray]


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Greedy non-maximum suppression.

    Args:
        boxes: ``(N, 4)`` x1, y1, x2, y2.
        scores: ``(N,)``.
        iou_threshold: a box whose IoU with a kept, higher-scoring box exceeds this is dropped.

    Returns:
        ``(K,) int64`` indexes of the kept boxes, highest score first.
    """
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    order = np.argsort(-np.asarray(scores, dtype=np.float32), kind="stable")
    x1, y1, x2, y2 = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    areas = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    keep: list[int] = []
    while order.size:
        i = int(order[0])
        keep.append(i)
        rest = order[1:]
        w = np.clip(np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]), 0, None)
        h = np.clip(np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]), 0, None)
        inter = w * h
        iou = inter / np.maximum(areas[i] + areas[rest] - inter, 1e-9)
        order = rest[iou <= iou_threshold]
    return np.asarray(keep, dtype=np.int64)


def _as_bgr(image: np.ndarray) -> np.ndarray:
    if not isinstance(image, np.ndarray):
        raise TypeError(f"expected a numpy image, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise ValueError(f"expected a uint8 image, got dtype {image.dtype}")
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    if image.ndim == 3 and image.shape[2] == 3:
        return image
    raise ValueError(f"expected an (H, W, 3) BGR image, got shape {image.shape}")


class Detector(abc.ABC):
    """A face detector. Instances are not thread-safe: use one per thread.

    Args:
        score_threshold: minimum confidence of a returned face, in (0, 1); may be changed live.
        nms_threshold: IoU above which overlapping boxes are merged by non-maximum suppression.
        device: where the model runs (``"cpu"``, ``"cuda"``, ``"cuda:N"``); OpenCV models run on CPU.
        max_side: when set (and not 0), frames whose longer side exceeds it are detected on a downscaled
            copy and the results are scaled back (much faster on HD frames; very small faces may be missed).
    """

    model_id: str = ""
    # What :func:`core.detection.create_detector` uses when the caller gives no ``max_side``.
    default_max_side: int | None = None

    def __init__(
        self,
        *,
        score_threshold: float = 0.6,
        nms_threshold: float = 0.3,
        device: str = "cpu",
        max_side: int | None = None,
    ) -> None:
        self._score_threshold = 0.0
        self._nms_threshold = 0.0
        self._max_side: int | None = None
        self.score_threshold = score_threshold
        self.nms_threshold = nms_threshold
        self.max_side = max_side
        self.device = device

    @property
    def name(self) -> str:
        """The registry name (same as :attr:`model_id`)."""
        return self.model_id

    @property
    def score_threshold(self) -> float:
        """Minimum confidence of a returned face; settable between frames."""
        return self._score_threshold

    @score_threshold.setter
    def score_threshold(self, value: float) -> None:
        value = float(value)
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"score_threshold must be in [0, 1], got {value}")
        self._score_threshold = value

    @property
    def nms_threshold(self) -> float:
        """IoU above which the lower-scoring of two boxes is dropped; settable between frames."""
        return self._nms_threshold

    @nms_threshold.setter
    def nms_threshold(self, value: float) -> None:
        value = float(value)
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"nms_threshold must be in [0, 1], got {value}")
        self._nms_threshold = value

    @property
    def max_side(self) -> int | None:
        """Longest side detection runs at (None: full size); settable between frames, 0 means None."""
        return self._max_side

    @max_side.setter
    def max_side(self, value: int | None) -> None:
        if value is not None and value != 0 and value < 32:
            raise ValueError(f"max_side must be at least 32 pixels, or 0/None for full size; got {value}")
        self._max_side = int(value) if value else None

    def detect(self, image_bgr: np.ndarray) -> list[Detection]:
        """Find the faces in one frame.

        Args:
            image_bgr: ``(H, W, 3) uint8`` BGR (grey and BGRA are converted).

        Returns:
            The faces, highest score first, in pixels of ``image_bgr``.

        Raises:
            TypeError, ValueError: ``image_bgr`` is not a uint8 image.
        """
        image = _as_bgr(image_bgr)
        height, width = image.shape[:2]
        if height == 0 or width == 0:
            return []
        if self.max_side is not None and max(height, width) > self.max_side:
            scale = self.max_side / max(height, width)
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
            # Exact per-axis factors: rounding the size makes them differ slightly from ``scale``.
            sx, sy = width / size[0], height / size[1]
        else:
            sx = sy = 1.0
        boxes, scores, landmarks = self._detect(np.ascontiguousarray(image))
        if scores.size == 0:
            return []
        keep = scores >= self._score_threshold
        boxes, scores, landmarks = boxes[keep], scores[keep], landmarks[keep]
        order = np.argsort(-scores, kind="stable")
        factor = np.array([sx, sy], dtype=np.float32)
        out: list[Detection] = []
        for i in order:
            box = (boxes[i].reshape(2, 2) * factor).reshape(4).astype(np.float32)
            points = (landmarks[i] * factor).astype(np.float32)
            out.append(Detection(box=box, score=float(scores[i]), landmarks=points))
        return out

    @abc.abstractmethod
    def _detect(self, image_bgr: np.ndarray) -> RawDetections:
        """Run the model on a contiguous ``(H, W, 3) uint8`` BGR image; NMS already applied."""

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(model_id={self.model_id!r}, device={self.device!r}, "
            f"score_threshold={self.score_threshold}, nms_threshold={self.nms_threshold}, "
            f"max_side={self.max_side})"
        )
