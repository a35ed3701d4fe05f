"""Render the application icon (resources/icons/ghostface.svg) to the PNG sizes and the Windows .ico.

Run it after editing the SVG: ``.venv/bin/python packaging/render_icons.py``. The PNGs are committed, so
building the bundle does not depend on this script.
"""

from __future__ import annotations

import argparse
import io
import os
import struct
import sys
from pathlib import Path

# Rendering needs no screen; set before Qt is imported.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QBuffer, QByteArray, QIODevice, Qt  # noqa: E402
from PySide6.QtGui import QGuiApplication, QImage, QPainter  # noqa: E402
from PySide6.QtSvg import QSvgRenderer  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
ICON_DIR = REPO / "resources" / "icons"
PNG_SIZES = (16, 32, 48, 64, 128, 256, 512)
# Windows shows at most 256 px from an .ico; the larger entries are PNG-compressed (allowed since Vista).
ICO_SIZES = (16, 24, 32, 48, 64, 128, 256)


def render_png(renderer: QSvgRenderer, size: int) -> bytes:
    """Render the SVG into a square transparent image of ``size`` pixels and return it as PNG bytes."""
    image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
    painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
    renderer.render(painter)
    painter.end()
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    if not image.save(buffer, "PNG"):
        raise RuntimeError(f"could not encode the {size} px icon as PNG")
    buffer.close()
    return bytes(data.data())


def build_ico(pngs: dict[int, bytes]) -> bytes:
    """Pack PNG images into one .ico file (ICONDIR, one ICONDIRENTRY per size, then the PNG data)."""
    sizes = sorted(pngs)
    out = io.BytesIO()
    out.write(struct.pack("<HHH", 0, 1, len(sizes)))
    offset = 6 + 16 * len(sizes)
    for size in sizes:
        data = pngs[size]
        # A width/height byte of 0 means 256.
        dim = 0 if size >= 256 else size
        out.write(struct.pack("<BBBBHHII", dim, dim, 0, 0, 1, 32, len(data), offset))
        offset += len(data)
    for size in sizes:
        out.write(pngs[size])
    return out.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--svg", type=Path, default=ICON_DIR / "ghostface.svg")
    parser.add_argument("--out", type=Path, default=ICON_DIR)
    args = parser.parse_args(argv)

    _app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])
    renderer = QSvgRenderer(str(args.svg))
    if not renderer.isValid():
        sys.stderr.write(f"error: {args.svg} is not a valid SVG\n")
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    rendered = {size: render_png(renderer, size) for size in sorted(set(PNG_SIZES) | set(ICO_SIZES))}
    for size in PNG_SIZES:
        path = args.out / f"ghostface-{size}.png"
        path.write_bytes(rendered[size])
        sys.stdout.write(f"wrote {path}\n")
    ico = args.out / "ghostface.ico"
    ico.write_bytes(build_ico({size: rendered[size] for size in ICO_SIZES}))
    sys.stdout.write(f"wrote {ico}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
