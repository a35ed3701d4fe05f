"""YuNet face detector through OpenCV ``FaceDetectorYN`` (CPU)."""

from __future__ import annotations

import logging

import cv2
import numpy as np

from core._opencv import quiet_opencv
from core.detection._base import Detector, RawDetections
from core.modelstore import ModelStore, default_store

__all__ = ["YuNetDetector"]

logger = logging.getLogger(__name__)

# Candidates kept before NMS; the OpenCV default (5000) is far more than any frame needs.
_TOP_K = 5000
# The model's own threshold is kept at or below the user's so that Detector.score_threshold stays live.
_MIN_MODEL_THRESHOLD = 0.3


class YuNetDetector(Detector):
    """YuNet (OpenCV Zoo 2023mar, int8 block-quantised): boxes, scores and 5 landmarks.

    OpenCV documents the landmarks as "right eye, left eye, nose tip, right mouth corner, left mouth
    corner", meaning the subject's right, which is image-left: the rows are already in our order
    (image-left first), which the tests check on real photos. The model runs on the CPU whatever
    ``device`` says.
    """

    model_id = "yunet"

    def __init__(
        self,
        *,
        score_threshold: float = 0.6,
        nms_threshold: float = 0.3,
        device: str = "cpu",
        max_side: int | None = None,
        store: ModelStore | None = None,
    ) -> None:
        if device != "cpu":
            logger.info("YuNet runs through OpenCV on the CPU; device %r is ignored", device)
        super().__init__(
            score_threshold=score_threshold, nms_threshold=nms_threshold, device="cpu", max_side=max_side
        )
        # The network is built from the very bytes whose SHA-256 was checked, not from the path.
        model = (store or default_store()).load_verified(self.model_id)
        self.model_path = model.path
        self._model_threshold = min(_MIN_MODEL_THRESHOLD, self.score_threshold)
        with quiet_opencv():
            self._net = cv2.FaceDetectorYN.create(
                "onnx",
                np.frombuffer(model.data, np.uint8),
                np.zeros(0, np.uint8),
                (320, 320),
                self._model_threshold,
                self.nms_threshold,
                _TOP_K,
            )
        self._input_size: tuple[int, int] = (320, 320)
        self._model_nms = self.nms_threshold

    def _detect(self, image_bgr: np.ndarray) -> RawDetections:
        height, width = image_bgr.shape[:2]
        if (width, height) != self._input_size:
            # setInputSize rebuilds the prior boxes; only do it when the frame size changes.
            self._net.setInputSize((width, height))
            self._input_size = (width, height)
        if self.score_threshold < self._model_threshold:
            self._model_threshold = self.score_threshold
            self._net.setScoreThreshold(self._model_threshold)
        if self._model_nms != self.nms_threshold:
            self._model_nms = self.nms_threshold
            self._net.setNMSThreshold(self._model_nms)
        _, faces = self._net.detect(image_bgr)
        if faces is None or len(faces) == 0:
            return (
                np.zeros((0, 4), np.float32),
                np.zeros((0,), np.float32),
                np.zeros((0, 5, 2), np.float32),
            )
        faces = np.asarray(faces, dtype=np.float32).reshape(-1, 15)
        boxes = faces[:, 0:4].copy()
        boxes[:, 2] += boxes[:, 0]
        boxes[:, 3] += boxes[:, 1]
        landmarks = faces[:, 4:14].reshape(-1, 5, 2).copy()
        scores = faces[:, 14].copy()
        return boxes, scores, landmarks
