"""Measure the main window on a 1366x768 screen at the scale QT_SCALE_FACTOR sets; print JSON.

Run by ``test_window_fit.py`` in a process of its own: the scale and the screen are fixed when Qt
starts, so each scale needs a fresh process (``QT_QPA_PLATFORM=offscreen:configfile=<screen.json>``).
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from PySide6.QtWidgets import QAbstractItemView, QApplication, QHeaderView, QToolBar, QToolButton, QWidget


def _views(page: QWidget) -> list[dict[str, Any]]:
    """Every visible list with a horizontal header on ``page``: its width and each column's."""
    found = []
    for view in page.findChildren(QAbstractItemView):
        header = next((h for h in view.findChildren(QHeaderView) if h.orientation().name == "Horizontal"), None)
        if not view.isVisible() or header is None or not header.isVisible():
            continue
        model, metrics = header.model(), header.fontMetrics()
        columns = []
        for index in range(header.count()):
            if header.isSectionHidden(index):
                continue
            text = str(model.headerData(index, header.orientation()) or "")
            columns.append({"text": text, "width": header.sectionSize(index), "needs": metrics.horizontalAdvance(text)})
        found.append({"name": view.objectName(), "viewport": view.viewport().width(), "length": header.length(), "columns": columns})
    return found


def _settle(app: QApplication) -> None:
    # Layouts update on posted events, some posted while others are handled: let them all run.
    for _ in range(10):
        app.processEvents()
        time.sleep(0.01)


def main() -> int:
    """Build the window on the clip in argv[1], measure it, print the figures as JSON."""
    app = QApplication(sys.argv[:1])
    from app.context import AppContext
    from app.main_window import MainWindow
    from app.themes import apply_theme
    from core.plugin_api import make_event
    from core.settings import Settings

    apply_theme("dark")
    settings = Settings().replace(camera={"source": sys.argv[1]})
    window = MainWindow(AppContext.build(settings, system_trash=False))
    window.show()
    window.live.events_panel.add_events([make_event(person="Lin-Manuel Miranda"), make_event("unknown")])
    _settle(app)
    available = window.screen().availableGeometry()
    toolbar = window.findChild(QToolBar, "MainToolbar")
    extension = toolbar.findChild(QToolButton, "qt_toolbar_ext_button")
    out: dict[str, Any] = {
        "available": [available.width(), available.height()],
        "size": [window.width(), window.height()],
        "minimum": [window.minimumSizeHint().width(), window.minimumSizeHint().height()],
        "toolbar_hidden": [a.text() for a in toolbar.actions() if not toolbar.widgetForAction(a).isVisible()],
        "toolbar_overflow": bool(extension is not None and extension.isVisible()),
        "name_px": window.fontMetrics().horizontalAdvance("Lin-Manuel Miranda"),
        "views": [],
    }
    # The dialogs fit the screen too.
    out["dialogs"] = {}
    for name, opener in (("settings", window.open_settings), ("history", window.open_history), ("plugins", window.open_plugins)):
        dialog = opener()
        _settle(app)
        out["dialogs"][name] = [dialog.width(), dialog.height(), dialog.minimumSizeHint().width(), dialog.minimumSizeHint().height()]
        dialog.close()
    # The gallery's dialogs too: a face picker on a group photo, a person's photos, assigning a face.
    from pathlib import Path

    from app.assign_face import AssignFaceDialog
    from app.face_picker import FacePickerDialog
    from app.person_view import PersonView

    gallery, photo = window.gallery_controller, str(Path(sys.argv[1]).parent / "two_people.jpg")
    for name, make in (
        ("face picker", lambda: FacePickerDialog(gallery, "obama", photo, window)),
        ("person view", lambda: PersonView(gallery, "obama", window, confirm=False)),
        ("assign face", lambda: AssignFaceDialog(gallery, ["obama"], name="Joe Biden", parent=window)),
    ):
        dialog = make()
        dialog.show()
        _settle(app)
        out["dialogs"][name] = [dialog.width(), dialog.height(), dialog.minimumSizeHint().width(), dialog.minimumSizeHint().height()]
        dialog.close()
    window.diagnostics.refresh_models()
    out["page_toolbar_overflow"] = []
    for page in (window.live, window.gallery_panel, window.diagnostics):
        window.tabs.setCurrentWidget(page)
        _settle(app)
        out["views"] += _views(page)
        for bar in page.findChildren(QToolBar):
            extension = bar.findChild(QToolButton, "qt_toolbar_ext_button")
            if bar.isVisible() and extension is not None and extension.isVisible():
                out["page_toolbar_overflow"].append(page.objectName())
    window.tabs.setCurrentWidget(window.live)
    before = window.size()
    window.show_warning("RuntimeError: " + "a very long error message " * 200)
    _settle(app)
    out["banner_kept_size"] = window.size() == before
    out["banner_height"] = window.banner.height()
    out["minimum_with_banner"] = window.minimumSizeHint().height()
    details = getattr(window.banner, "details_button", None)
    if details is not None:
        details.click()
        _settle(app)
    out["details_text"] = len(window.banner.details.toPlainText()) if details is not None else 0
    out["details_kept_size"] = window.size() == before and window.banner.height() == out["banner_height"]
    window.shutdown()
    sys.stdout.write(json.dumps(out) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
