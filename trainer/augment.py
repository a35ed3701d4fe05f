"""Degradations that make aligned training crops look like live, in-the-wild faces.

The engine meets small, blurred, compressed and slightly misaligned faces; the training crops are clean
112x112 ones. Each crop is degraded in its own ``numpy`` generator, so a view is a pure function of
(seed, crop, view): a run can be repeated, and a cache of teacher targets per view needs no image storage.
With distillation the teacher embeds the *degraded* crop (``distill.online``), so the student learns to
map a bad view where the teacher maps that same view, not where the teacher maps the clean crop.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

__all__ = ["Degradation", "degrade"]

CROP_SIZE = 112


@dataclass(frozen=True, slots=True)
class Degradation:
    """How often and how hard each degradation is drawn (probabilities per crop).

    Attributes:
        p_small: downscale to ``small_px`` (min, max) on the long side and back: a small, far face.
        small_px: the range of that size, in pixels.
        p_blur: Gaussian blur (sigma 0.5-2) or, one time in three, a short motion blur.
        p_jpeg: JPEG re-encoding at quality ``jpeg_quality`` (min, max).
        jpeg_quality: the quality range.
        p_geometry: a small rotation, scale and shift (a live detector's alignment noise).
        max_rotation_deg: the largest rotation.
        max_scale: the largest relative change of scale (0.1 = 0.9x-1.1x).
        max_shift_px: the largest translation.
        p_gray: grayscale (IR-like and black-and-white cameras).
        p_gamma: a gamma curve in 0.6-1.6 (under- and over-exposure).
    """

    p_small: float = 0.3
    small_px: tuple[int, int] = (16, 48)
    p_blur: float = 0.2
    p_jpeg: float = 0.3
    jpeg_quality: tuple[int, int] = (20, 60)
    p_geometry: float = 0.5
    max_rotation_deg: float = 10.0
    max_scale: float = 0.1
    max_shift_px: float = 4.0
    p_gray: float = 0.1
    p_gamma: float = 0.2


def _geometry(image: np.ndarray, rng: np.random.Generator, spec: Degradation) -> np.ndarray:
    angle = rng.uniform(-spec.max_rotation_deg, spec.max_rotation_deg)
    scale = 1.0 + rng.uniform(-spec.max_scale, spec.max_scale)
    matrix = np.asarray(cv2.getRotationMatrix2D((CROP_SIZE / 2.0, CROP_SIZE / 2.0), angle, scale), np.float64)
    matrix[:, 2] += rng.uniform(-spec.max_shift_px, spec.max_shift_px, size=2)
    # Black border, as the engine's own alignment warp leaves it.
    return cv2.warpAffine(image, matrix, (CROP_SIZE, CROP_SIZE), flags=cv2.INTER_LINEAR)


def _small(image: np.ndarray, rng: np.random.Generator, spec: Degradation) -> np.ndarray:
    side = int(rng.integers(spec.small_px[0], spec.small_px[1] + 1))
    tiny = cv2.resize(image, (side, side), interpolation=cv2.INTER_AREA)
    # The engine upsamples a small detection with a bilinear warp: do the same.
    return cv2.resize(tiny, (CROP_SIZE, CROP_SIZE), interpolation=cv2.INTER_LINEAR)


def _blur(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    if rng.random() < 1.0 / 3.0:
        length = int(rng.integers(3, 8))
        line = np.zeros((length, length), np.float32)
        line[length // 2, :] = 1.0 / length
        rotation = cv2.getRotationMatrix2D((length / 2.0 - 0.5, length / 2.0 - 0.5), rng.uniform(0, 180), 1.0)
        kernel = np.asarray(cv2.warpAffine(line, rotation, (length, length)), np.float32)
        kernel /= max(float(kernel.sum()), 1e-6)
        return cv2.filter2D(image, -1, kernel)
    return cv2.GaussianBlur(image, (0, 0), sigmaX=rng.uniform(0.5, 2.0))


def _jpeg(image: np.ndarray, rng: np.random.Generator, spec: Degradation) -> np.ndarray:
    quality = int(rng.integers(spec.jpeg_quality[0], spec.jpeg_quality[1] + 1))
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        return image
    decoded = cv2.imdecode(data, cv2.IMREAD_COLOR)
    return decoded if decoded is not None else image


def _gamma(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    gamma = math.exp(rng.uniform(math.log(0.6), math.log(1.6)))
    table = np.clip(((np.arange(256) / 255.0) ** gamma) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return cv2.LUT(image, table)


def degrade(image: np.ndarray, rng: np.random.Generator, spec: Degradation | None = None) -> np.ndarray:
    """A degraded copy of one ``(112, 112, 3) uint8`` crop (channel order is kept).

    The order follows a camera's: the face moves in the frame (geometry), the lens and motion blur it,
    it is small on the sensor, exposure bends the tones, the encoder compresses it. Each step is drawn
    on its own, so most crops get one or two and some get none.
    """
    spec = spec or Degradation()
    out = np.ascontiguousarray(image)
    if rng.random() < spec.p_geometry:
        out = _geometry(out, rng, spec)
    if rng.random() < spec.p_blur:
        out = _blur(out, rng)
    if rng.random() < spec.p_small:
        out = _small(out, rng, spec)
    if rng.random() < spec.p_gamma:
        out = _gamma(out, rng)
    if rng.random() < spec.p_gray:
        gray = cv2.cvtColor(out, cv2.COLOR_RGB2GRAY)
        out = cv2.cvtColor(gray, cv2.COLOR_GRAY2RGB)
    if rng.random() < spec.p_jpeg:
        out = _jpeg(out, rng, spec)
    return np.ascontiguousarray(out)
