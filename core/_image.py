"""Reading images from disk safely: any path (non-ASCII too), a clear error for a bad file."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from core.errors import ImageReadError

__all__ = ["IMAGE_SUFFIXES", "decode_image", "is_image_name", "read_bytes", "read_image"]

# Suffixes the gallery and the evaluation accept as photos (compared lower-case).
IMAGE_SUFFIXES: frozenset[str] = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp"})


def is_image_name(path: Path) -> bool:
    """True when the file name has one of :data:`IMAGE_SUFFIXES` and is not hidden."""
    return path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")


def read_bytes(path: Path) -> bytes:
    """The file's content.

    Raises:
        ImageReadError: the file is missing, a folder, or cannot be read.
    """
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ImageReadError(f"cannot read {path}: {reason}") from exc


def decode_image(data: bytes, name: str = "image") -> np.ndarray:
    """Decode encoded image bytes to a BGR frame.

    Grey images are expanded to three channels and an alpha channel is dropped, so every caller gets
    ``(H, W, 3) uint8`` BGR. 16-bit images are scaled to 8 bits.

    Raises:
        ImageReadError: the bytes are not an image OpenCV can decode.
    """
    buf = np.frombuffer(data, dtype=np.uint8)
    image = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED) if buf.size else None
    if image is None or image.size == 0:
        raise ImageReadError(f"{name} is not an image that can be decoded (JPEG, PNG, BMP or WebP)")
    if image.dtype != np.uint8:
        # 16-bit PNGs: keep the top byte, which is what a viewer shows.
        image = (
            (image / 257.0).clip(0, 255).astype(np.uint8)
            if image.dtype == np.uint16
            else image.astype(np.uint8)
        )
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    elif image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    elif image.shape[2] == 1:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    return np.ascontiguousarray(image)


def read_image(path: Path) -> np.ndarray:
    """Read an image file as ``(H, W, 3) uint8`` BGR (works for paths OpenCV's imread cannot open).

    Raises:
        ImageReadError: the file cannot be read or is not an image.
    """
    return decode_image(read_bytes(Path(path)), str(path))
