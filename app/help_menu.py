"""The Help menu: the user guides in ``docs/``, the keyboard shortcuts, and About.

The guides are Markdown files beside the program; each opens in the system's viewer for ``.md``
(``QDesktopServices``). A build shipped without them says so instead of offering dead links.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QUrl
from PySide6.QtGui import QAction, QDesktopServices, QKeySequence
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QMainWindow,
    QMenu,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.icons import RESOURCES

__all__ = ["DOCS", "ShortcutsDialog", "fill_help_menu", "guides", "shortcuts"]

DOCS = RESOURCES.parent / "docs"
# Shortcuts that belong to no menu action (the tabs' own keys).
_EXTRA_SHORTCUTS: tuple[tuple[str, str], ...] = (
    ("Next tab", "Ctrl+Tab"),
    ("Previous tab", "Ctrl+Shift+Tab"),
)


def guides(folder: Path = DOCS) -> list[tuple[str, Path]]:
    """Each guide in ``folder`` with its title (its first heading), in file-name order."""
    found: list[tuple[str, Path]] = []
    for path in sorted(folder.glob("*.md")):
        try:
            first = path.read_text(encoding="utf-8").lstrip().splitlines()[0]
        except (OSError, IndexError, UnicodeDecodeError):
            continue
        title = first.lstrip("#").strip() if first.startswith("#") else path.stem.replace("_", " ").title()
        found.append((title, path))
    return found


def shortcuts(window: QMainWindow) -> list[tuple[str, str]]:
    """(what it does, keys) for every action of ``window`` that has a shortcut, then the tabs' keys."""
    rows: list[tuple[str, str]] = []
    for action in window.actions():
        keys = action.shortcut()
        if keys.isEmpty():
            continue
        text = action.text().replace("&", "").rstrip("…").rstrip(".")
        rows.append((text, keys.toString(QKeySequence.SequenceFormat.NativeText)))
    return rows + list(_EXTRA_SHORTCUTS)


class ShortcutsDialog(QDialog):
    """A table of the keyboard shortcuts."""

    def __init__(self, rows: list[tuple[str, str]], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Keyboard shortcuts")
        self.table = QTableWidget(len(rows), 2)
        self.table.setObjectName("ShortcutsTable")
        self.table.setHorizontalHeaderLabels(["Action", "Keys"])
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        for row, (text, keys) in enumerate(rows):
            self.table.setItem(row, 0, QTableWidgetItem(text))
            self.table.setItem(row, 1, QTableWidgetItem(keys))
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table)
        layout.addWidget(buttons)
        self.resize(420, 360)


def _open_guide(path: Path) -> None:
    QDesktopServices.openUrl(QUrl.fromLocalFile(str(path)))


def fill_help_menu(menu: QMenu, window: QMainWindow, about: QAction, folder: Path = DOCS) -> list[QAction]:
    """Add the guides, "Keyboard shortcuts…" and About to ``menu``; returns the guides' actions."""
    opened: list[QAction] = []
    for title, path in guides(folder):
        action = menu.addAction(title)
        action.setToolTip(str(path.name))
        action.setData(str(path))
        action.triggered.connect(_opener(path))
        opened.append(action)
    if not opened:
        menu.addAction("(the guides are not installed)").setEnabled(False)
    menu.addSeparator()
    keys = menu.addAction("&Keyboard shortcuts…")
    keys.setObjectName("ShortcutsAction")
    keys.triggered.connect(lambda: _show_shortcuts(window))
    menu.addSeparator()
    menu.addAction(about)
    return opened


def _opener(path: Path) -> Callable[[], None]:
    return lambda: _open_guide(path)


def _show_shortcuts(window: QMainWindow) -> ShortcutsDialog:
    dialog = ShortcutsDialog(shortcuts(window), window)
    dialog.setObjectName("ShortcutsDialog")
    dialog.show()
    return dialog
