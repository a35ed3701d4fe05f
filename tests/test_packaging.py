"""The application icon and its rendered sizes: what the window and the bundle ship."""

from __future__ import annotations

import importlib.util
import struct
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[1]
ICONS = REPO / "resources" / "icons"


def _render_icons() -> ModuleType:
    spec = importlib.util.spec_from_file_location("render_icons", REPO / "packaging" / "render_icons.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _ico_entries(data: bytes) -> list[tuple[int, bytes]]:
    """(size, image bytes) of every image of an .ico file."""
    reserved, kind, count = struct.unpack_from("<HHH", data, 0)
    assert (reserved, kind) == (0, 1), "not an icon file"
    entries = []
    for i in range(count):
        width, height, _, _, _, _, length, offset = struct.unpack_from("<BBBBHHII", data, 6 + 16 * i)
        assert width == height
        entries.append((width or 256, data[offset : offset + length]))
    return entries


def test_committed_pngs_have_the_size_in_their_name(qapp: object) -> None:
    from PySide6.QtGui import QImage

    render = _render_icons()
    for size in render.PNG_SIZES:
        image = QImage(str(ICONS / f"ghostface-{size}.png"))
        assert not image.isNull(), f"ghostface-{size}.png does not load"
        assert (image.width(), image.height()) == (size, size)
        # A transparent corner and an opaque centre: the icon was really drawn, not left blank.
        assert image.pixelColor(0, 0).alpha() == 0
        assert image.pixelColor(size // 2, size // 2).alpha() == 255


def test_windows_icon_holds_every_size_up_to_256(qapp: object) -> None:
    from PySide6.QtGui import QImage

    render = _render_icons()
    entries = _ico_entries((ICONS / "ghostface.ico").read_bytes())
    assert [size for size, _ in entries] == sorted(render.ICO_SIZES)
    for size, png in entries:
        image = QImage.fromData(png, "PNG")
        assert (image.width(), image.height()) == (size, size)


def test_rendering_the_svg_reproduces_the_committed_sizes(qapp: object, tmp_path: Path) -> None:
    render = _render_icons()
    assert render.main(["--out", str(tmp_path)]) == 0
    for size in render.PNG_SIZES:
        assert (tmp_path / f"ghostface-{size}.png").is_file()
    assert _ico_entries((tmp_path / "ghostface.ico").read_bytes())[-1][0] == 256


def test_an_invalid_svg_is_refused_without_writing(qapp: object, tmp_path: Path) -> None:
    render = _render_icons()
    bad = tmp_path / "bad.svg"
    bad.write_text("<svg this is not xml", encoding="utf-8")
    out = tmp_path / "out"
    assert render.main(["--svg", str(bad), "--out", str(out)]) == 1
    assert not out.exists()
