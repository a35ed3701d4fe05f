"""The app's icons, from ``resources/icons``."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtGui import QIcon

__all__ = ["RESOURCES", "icon"]

RESOURCES = Path(__file__).resolve().parents[1] / "resources"


def icon(name: str) -> QIcon:
    """An icon from ``resources/icons`` (an empty icon if the file is missing)."""
    path = RESOURCES / "icons" / f"{name}.svg"
    return QIcon(str(path)) if path.exists() else QIcon()
