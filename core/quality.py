"""How good a face in a frame is to look at: its sharpness (for re-embedding and for unknown events)."""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["face_sharpness"]

# Side of the grey patch the sharpness of a face is measured on: small enough to cost ~0.05 ms a face,
# large enough for the Laplacian to see focus.
_SHARPNESS_PX = 48


def face_sharpness(image_bgr: np.ndarray, box: np.ndarray) -> float:
    """Variance of the Laplacian of the face box, resampled to a fixed size (higher is sharper)."""
    h, w = image_bgr.shape[:2]
    x1, y1, x2, y2 = (int(round(float(v))) for v in box)
    x1, y1, x2, y2 = max(0, x1), max(0, y1), min(w, x2), min(h, y2)
    if x2 - x1 < 2 or y2 - y1 < 2:
        return 0.0
    patch = cv2.cvtColor(image_bgr[y1:y2, x1:x2], cv2.COLOR_BGR2GRAY)
    patch = cv2.resize(patch, (_SHARPNESS_PX, _SHARPNESS_PX), interpolation=cv2.INTER_AREA)
    return float(cv2.Laplacian(patch, cv2.CV_32F).var())
