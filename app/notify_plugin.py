"""Built-in plugin: a desktop notification (system tray balloon) when someone is recognized.

``on_event`` runs on the plugin's dispatch thread, and Qt widgets may only be touched on the GUI thread.
The plugin therefore only emits a signal of a bridge ``QObject`` that lives on the GUI thread; the
bridge's slot, run there by Qt's queued delivery, shows the message. Create the plugin on the GUI
thread (discovery runs there) and pass it to :func:`core.plugins.discover_plugins` as an extra
built-in::

    discover_plugins(extra_builtins=[DesktopNotification(tray_icon)])
"""

from __future__ import annotations

import logging
from typing import Any

from PySide6.QtCore import QObject, Qt, Signal, Slot
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication, QSystemTrayIcon

from core.builtin_plugins.snapshot import parse_kinds
from core.types import EventKind, RecognitionEvent

__all__ = ["DesktopNotification", "NotificationBridge"]

log = logging.getLogger(__name__)


class NotificationBridge(QObject):
    """Lives on the GUI thread; turns requests from any thread into tray messages there.

    Signals:
        shown(str, str): title and text of each message, emitted on the GUI thread after it was shown
            (or, with no system tray, instead of it: the window can put it in its status bar).
    """

    request = Signal(str, str, int)
    shown = Signal(str, str)

    def __init__(self, tray: QSystemTrayIcon | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.tray = tray
        self.messages: list[tuple[str, str]] = []
        self.last_thread: object = None
        # Explicitly queued: a request from a dispatch thread must be shown by the GUI thread.
        self.request.connect(self._show, Qt.ConnectionType.QueuedConnection)

    def _ensure_tray(self) -> QSystemTrayIcon | None:
        if self.tray is None and QSystemTrayIcon.isSystemTrayAvailable():
            app = QApplication.instance()
            icon = app.windowIcon() if isinstance(app, QApplication) else QIcon()
            self.tray = QSystemTrayIcon(icon, self)
            self.tray.setToolTip("GhostFace")
            self.tray.show()
        return self.tray

    @Slot(str, str, int)
    def _show(self, title: str, text: str, duration_ms: int) -> None:
        from PySide6.QtCore import QThread

        self.last_thread = QThread.currentThread()
        tray = self._ensure_tray()
        if (
            tray is not None
            and QSystemTrayIcon.isSystemTrayAvailable()
            and QSystemTrayIcon.supportsMessages()
        ):
            tray.showMessage(title, text, QSystemTrayIcon.MessageIcon.Information, duration_ms)
        else:
            log.info("notification (no system tray): %s: %s", title, text)
        self.messages.append((title, text))
        self.shown.emit(title, text)


class DesktopNotification:
    """Pops up "Obama recognized" (and, if chosen, unknown faces and departures).

    Settings:
        kinds: comma-separated event kinds to notify about.
        duration_ms: how long the message stays.
    """

    NAME = "notification"
    SETTINGS: dict[str, Any] = {"kinds": "recognized", "duration_ms": 5000}

    def __init__(self, tray: QSystemTrayIcon | None = None) -> None:
        # Made here, on the GUI thread, so that the bridge (and its slot) belong to that thread.
        self.bridge = NotificationBridge(tray)
        self._kinds: frozenset[EventKind] = frozenset({EventKind.RECOGNIZED})
        self._duration = 5000

    def on_start(self, context: Any) -> None:
        """Read which event kinds to notify about and how long a message stays.

        Raises:
            ValueError: ``duration_ms`` is negative.
        """
        self._kinds = parse_kinds(context.settings.get("kinds", "recognized"))
        duration = int(context.settings.get("duration_ms", 5000))
        if duration < 0:
            raise ValueError(f"duration_ms must be 0 or more, not {duration}")
        self._duration = duration

    def on_event(self, event: RecognitionEvent) -> None:
        """Ask the GUI thread to show a message for an event of a chosen kind."""
        if event.kind not in self._kinds:
            return
        who = event.person or "An unknown face"
        if event.kind is EventKind.RECOGNIZED:
            title, text = f"{who} recognized", f"Similarity {event.similarity:.2f} · {event.source}"
        elif event.kind is EventKind.UNKNOWN:
            title, text = "Unknown face", f"Someone not in the gallery is in view · {event.source}"
        else:
            title, text = f"{who} left", f"Not seen for a while · {event.source}"
        # Emitting is thread-safe; the bridge's slot runs on the GUI thread.
        self.bridge.request.emit(title, text, self._duration)
