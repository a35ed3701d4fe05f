"""Issue 12, points 3-4: what happened to the event history is shown in the window, not only logged."""

from __future__ import annotations

import dataclasses
import os

from app.context import AppContext
from app.main_window import MainWindow
from core import paths
from core.events import make_test_event
from core.settings import Settings


def _window(qtbot, settings: Settings | None = None, *, autostart: bool = False) -> MainWindow:
    context = AppContext.build(settings or Settings(), system_trash=False)
    window = MainWindow(context, autostart=autostart)
    qtbot.addWidget(window)
    window.show()
    return window


def test_a_recovered_history_is_shown_in_the_banner(qtbot) -> None:
    paths.data_dir()
    paths.history_path().write_bytes(b"damaged, not an SQLite database" * 64)
    window = _window(qtbot)
    assert window.banner.isVisible()
    text = window.banner.label.text()
    assert "damaged" in text and ".corrupt-" in text
    window.close()


def test_a_history_that_cannot_be_written_is_shown_in_the_banner(qtbot) -> None:
    window = _window(qtbot)
    history = window.context.history
    assert history is not None and not window.banner.isVisible()
    pages = history._conn.execute("PRAGMA page_count").fetchone()[0]
    history._conn.execute(f"PRAGMA max_page_count={pages}")  # SQLITE_FULL, as on a full disk
    history.record([dataclasses.replace(make_test_event(), thumbnail=os.urandom(9000))])
    window._check_history()
    assert window.banner.isVisible()
    assert "kept in memory" in window.banner.label.text()
    window.close()


def test_the_history_window_shows_a_read_only_history_and_why(qtbot, tmp_path) -> None:
    from app.history_dialog import HistoryDialog
    from core.history import History
    from tests._disks import hold_lock

    path = tmp_path / "history.sqlite3"
    with History(path) as first:
        first.extend([make_test_event(person=f"P{i}") for i in range(3)])
    with hold_lock(path):
        history = History(path, busy_timeout_s=0.3)
        dialog = HistoryDialog(history)
        qtbot.addWidget(dialog)
        text = dialog.count_label.text()
        assert text.startswith("3 events")  # what it holds, read through the lock
        assert "locked" in text and "kept in memory" in text
        dialog.close()
        history.close()


def test_a_damaged_embedding_cache_is_shown_in_the_banner(
    qtbot,
    hamilton_clip,
    hamilton_gallery,
) -> None:
    (paths.cache_dir() / "gallery.sqlite3").write_bytes(b"not a database" * 300)
    settings = Settings().replace(camera={"source": str(hamilton_clip)}, gallery_dir=str(hamilton_gallery))
    window = _window(qtbot, settings, autostart=True)
    # The recovery is reported by whichever worker opens the cache first, possibly after the live engine is
    # ready: wait for the banner itself, not for the engine.
    qtbot.waitUntil(
        lambda: window.banner.isVisible() and "embedding cache was damaged" in window.banner.label.text(),
        timeout=60_000,
    )
    assert ".corrupt-" in window.banner.label.text()
    window.close()


def test_a_damaged_embedding_cache_is_shown_before_anything_is_started(qtbot, hamilton_gallery) -> None:
    # No live engine runs (nothing started): the gallery's owner opening the damaged cache is what reports it.
    (paths.cache_dir() / "gallery.sqlite3").write_bytes(b"not a database" * 300)
    window = _window(qtbot, Settings().replace(gallery_dir=str(hamilton_gallery)), autostart=False)
    qtbot.waitUntil(
        lambda: window.banner.isVisible() and "embedding cache was damaged" in window.banner.label.text(),
        timeout=60_000,
    )
    assert ".corrupt-" in window.banner.label.text()
    window.close()
