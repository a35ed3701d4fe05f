"""Reading images from disk safely: any path (non-ASCII too), a clear error for a bad file.

Files are not always what their names say. A named pipe called ``x.jpg`` would block a read forever, a
link to ``/dev/zero`` never ends, and a 389 KB PNG can declare 20000x20000 pixels (1.2 GB once decoded).
So only regular files are read, at most :data:`MAX_IMAGE_BYTES` of them, and the pixel count is read
from the header and checked against :data:`MAX_IMAGE_PIXELS` before anything is decoded.
"""

from __future__ import annotations

import os
import stat
import struct
from pathlib import Path

import cv2
import numpy as np

from core.errors import ImageReadError, ImageRefusedError

__all__ = [
    "IMAGE_SUFFIXES",
    "MAX_IMAGE_BYTES",
    "MAX_IMAGE_PIXELS",
    "decode_image",
    "image_size",
    "is_image_name",
    "read_bytes",
    "read_image",
]

# Suffixes the gallery and the evaluation accept as photos (compared lower-case).
IMAGE_SUFFIXES: frozenset[str] = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp"})
# A photo larger than this is not a face photo (a 50 Mpx camera's JPEG is ~25 MB).
MAX_IMAGE_BYTES = 64 * 1024 * 1024
# 50 Mpx (e.g. 8660x5773): larger than any camera photo a user enrols; 150 MB of BGR once decoded.
MAX_IMAGE_PIXELS = 50_000_000

# O_NONBLOCK: opening a named pipe must not wait for a writer; the fstat that follows refuses it.
_OPEN_FLAGS = (
    os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_BINARY", 0)
)


def is_image_name(path: Path) -> bool:
    """True when the file name has one of :data:`IMAGE_SUFFIXES` and is not hidden."""
    return path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a named pipe"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISDIR(mode):
        return "a folder"
    return "not a regular file"


def read_bytes(path: Path, max_bytes: int = MAX_IMAGE_BYTES) -> bytes:
    """The content of a regular file of at most ``max_bytes``.

    Raises:
        ImageRefusedError: the path is a named pipe, a device (``/dev/zero``), a socket or a folder
            (links are followed), or the file is larger than ``max_bytes``.
        ImageReadError: the file is missing or cannot be read.
    """
    path = Path(path)
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ImageReadError(f"cannot read {path}: {reason}") from exc
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ImageRefusedError(f"{path} is {_kind(st.st_mode)}, not a regular file: not used")
        if st.st_size > max_bytes:
            raise ImageRefusedError(
                f"{path} is {st.st_size / 1e6:.0f} MB; photos larger than {max_bytes / 1e6:.0f} MB are not used"
            )
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        with os.fdopen(fd, "rb", closefd=False) as fh:
            data = fh.read(max_bytes + 1)
    except OSError as exc:
        raise ImageReadError(f"cannot read {path}: {exc.strerror or type(exc).__name__}") from exc
    finally:
        os.close(fd)
    if len(data) > max_bytes:  # it grew while being read
        raise ImageRefusedError(f"{path} is larger than {max_bytes / 1e6:.0f} MB: not used")
    return data


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    i = 2
    while i + 9 <= len(data):
        if data[i] != 0xFF:
            i += 1
            continue
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        (length,) = struct.unpack(">H", data[i + 2 : i + 4])
        # Start-of-frame markers (baseline, progressive, lossless, arithmetic); not DHT/JPG/DAC.
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height, width = struct.unpack(">HH", data[i + 5 : i + 9])
            return width, height
        i += 2 + length
    return None


def _tiff_size(data: bytes) -> tuple[int, int] | None:
    end = "<" if data[:2] == b"II" else ">"
    try:
        (offset,) = struct.unpack(end + "I", data[4:8])
        (count,) = struct.unpack(end + "H", data[offset : offset + 2])
        found: dict[int, int] = {}
        for n in range(count):
            entry = data[offset + 2 + 12 * n : offset + 14 + 12 * n]
            tag, kind = struct.unpack(end + "HH", entry[:4])
            if tag in (256, 257):
                fmt = end + ("H" if kind == 3 else "I")
                found[tag] = struct.unpack(fmt, entry[8 : 8 + struct.calcsize(fmt)])[0]
    except struct.error:
        return None
    return (found[256], found[257]) if {256, 257} <= found.keys() else None


def image_size(data: bytes) -> tuple[int, int] | None:
    """``(width, height)`` from the header of a JPEG, PNG, BMP, WebP or TIFF; None for anything else.

    Only the header is read: this is what decides whether decoding is affordable.
    """
    try:
        if data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR":
            return struct.unpack(">II", data[16:24])
        if data[:2] == b"\xff\xd8":
            return _jpeg_size(data)
        if data[:2] == b"BM":
            (header,) = struct.unpack("<I", data[14:18])
            if header == 12:
                return struct.unpack("<HH", data[18:22])
            width, height = struct.unpack("<ii", data[18:26])
            return abs(width), abs(height)
        if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            chunk = data[12:16]
            if chunk == b"VP8 ":
                width, height = struct.unpack("<HH", data[26:30])
                return width & 0x3FFF, height & 0x3FFF
            if chunk == b"VP8L":
                (bits,) = struct.unpack("<I", data[21:25])
                return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
            if chunk == b"VP8X":
                return 1 + int.from_bytes(data[24:27], "little"), 1 + int.from_bytes(data[27:30], "little")
            return None
        if data[:4] in (b"II*\x00", b"MM\x00*"):
            return _tiff_size(data)
    except struct.error:
        return None
    return None


def decode_image(data: bytes, name: str = "image", max_pixels: int = MAX_IMAGE_PIXELS) -> np.ndarray:
    """Decode encoded image bytes to a BGR frame.

    Grey images are expanded to three channels and an alpha channel is dropped, so every caller gets
    ``(H, W, 3) uint8`` BGR. 16-bit images are scaled to 8 bits.

    Raises:
        ImageRefusedError: the header declares more than ``max_pixels`` pixels (nothing is decoded).
        ImageReadError: the bytes are not an image OpenCV can decode.
    """
    size = image_size(data)
    if size is None:
        raise ImageReadError(f"{name} is not an image that can be decoded (JPEG, PNG, BMP or WebP)")
    width, height = size
    if width * height > max_pixels:
        raise ImageRefusedError(
            f"{name} is {width}x{height} pixels ({width * height / 1e6:.0f} Mpx); images larger than "
            f"{max_pixels / 1e6:.0f} Mpx are not used"
        )
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
        ImageRefusedError: not a regular file, or too large (see :func:`read_bytes`, :func:`decode_image`).
        ImageReadError: the file cannot be read or is not an image.
    """
    return decode_image(read_bytes(Path(path)), str(path))
