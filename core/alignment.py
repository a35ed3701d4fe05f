"""Five-point face alignment to the ArcFace 112x112 template (closed-form Umeyama similarity + warp)."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

__all__ = ["ARCFACE_TEMPLATE", "align_face", "align_faces", "estimate_similarity", "template_for_size"]

# insightface ``arcface_dst`` (the historical 96x112 template with x + 8), in our landmark order:
# left eye, right eye, nose tip, left mouth corner, right mouth corner (image-left first).
ARCFACE_TEMPLATE: np.ndarray = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    dtype=np.float32,
)
ARCFACE_TEMPLATE.setflags(write=False)


def template_for_size(size: int) -> np.ndarray:
    """The template for a square output of ``size`` pixels, as insightface ``estimate_norm`` scales it.

    Args:
        size: output side in pixels; a multiple of 112 or of 128.

    Returns:
        ``(5, 2) float32`` template in pixels of the ``size`` x ``size`` crop.

    Raises:
        ValueError: ``size`` is a multiple of neither 112 nor 128.
    """
    if size % 112 == 0:
        return (ARCFACE_TEMPLATE * (size / 112.0)).astype(np.float32)
    if size % 128 == 0:
        ratio = size / 128.0
        out = ARCFACE_TEMPLATE * ratio
        out[:, 0] += 8.0 * ratio
        return out.astype(np.float32)
    raise ValueError(f"alignment size must be a multiple of 112 or 128, got {size}")


def estimate_similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, translation) that maps ``src`` onto ``dst``.

    The closed form of Umeyama (1991), the same fit as scikit-image ``SimilarityTransform.estimate``;
    reflections are excluded. ``cv2.estimateAffinePartial2D`` is deliberately not used: its robust
    estimators fit subsets of the points and give a different (and under noise much worse) transform.

    Args:
        src: ``(N, 2)`` points, N >= 2.
        dst: ``(N, 2)`` corresponding points.

    Returns:
        ``(2, 3) float64`` matrix ``M`` with ``dst ~= M @ [x, y, 1]``.

    Raises:
        ValueError: the shapes differ, there are fewer than 2 points, or ``src`` is degenerate.
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    if src.ndim != 2 or src.shape[1] != 2 or src.shape != dst.shape:
        raise ValueError(f"expected two (N, 2) point sets of the same shape, got {src.shape} and {dst.shape}")
    n = src.shape[0]
    if n < 2:
        raise ValueError("a similarity transform needs at least 2 points")
    src_mean = src.mean(axis=0)
    dst_mean = dst.mean(axis=0)
    src_c = src - src_mean
    dst_c = dst - dst_mean
    src_var = float((src_c**2).sum() / n)
    if not np.isfinite(src_var) or src_var < 1e-12:
        raise ValueError("source points are degenerate (all at one place or not finite)")
    cov = dst_c.T @ src_c / n
    u, d, vt = np.linalg.svd(cov)
    s = np.eye(2)
    if np.linalg.det(cov) < 0:
        s[1, 1] = -1.0
    rot = u @ s @ vt
    scale = float(np.trace(np.diag(d) @ s) / src_var)
    trans = dst_mean - scale * rot @ src_mean
    return np.hstack([scale * rot, trans[:, None]])


def align_face(image_bgr: np.ndarray, landmarks: np.ndarray, size: int = 112) -> np.ndarray:
    """Warp one face to the ArcFace template.

    Args:
        image_bgr: ``(H, W, 3) uint8`` frame (any channel order; it is kept).
        landmarks: ``(5, 2)`` pixels, left eye, right eye, nose, left mouth, right mouth.
        size: output side in pixels (multiple of 112 or 128).

    Returns:
        ``(size, size, 3) uint8`` crop; bilinear interpolation, black outside the frame.
    """
    landmarks = np.asarray(landmarks, dtype=np.float64).reshape(5, 2)
    matrix = estimate_similarity(landmarks, template_for_size(size))
    return cv2.warpAffine(
        image_bgr,
        matrix,
        (size, size),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=(0, 0, 0),
    )


def align_faces(image_bgr: np.ndarray, landmarks: Sequence[np.ndarray], size: int = 112) -> np.ndarray:
    """Warp every face of one frame to the template.

    Args:
        image_bgr: ``(H, W, 3) uint8`` frame.
        landmarks: one ``(5, 2)`` array per face.
        size: output side in pixels.

    Returns:
        ``(N, size, size, 3) uint8``; ``N`` may be 0.
    """
    channels = image_bgr.shape[2] if image_bgr.ndim == 3 else 1
    out = np.zeros((len(landmarks), size, size, channels), dtype=np.uint8)
    for i, points in enumerate(landmarks):
        out[i] = align_face(image_bgr, points, size).reshape(size, size, channels)
    return out
