"""Where the video comes from: which cameras exist (probed off the GUI thread), and the source picker."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QComboBox, QMenu

from app.icons import icon
from core.capture import camera_index, list_cameras

__all__ = ["CameraProbe", "CameraSources", "SourcePicker", "is_camera_spec"]

log = logging.getLogger(__name__)


def is_camera_spec(spec: str) -> bool:
    """True for a camera index ("0", "1", ...), the sources a person picks from the camera list."""
    return camera_index(spec) is not None


def _cameras_now() -> list[int]:
    try:
        return list_cameras()
    except Exception as exc:  # noqa: BLE001 - a driver's error while listing means no usable camera
        log.warning("cannot list cameras: %s", exc)
        return []


class CameraProbe(QObject):
    """Looks for cameras on a background thread (opening a device can take a second each).

    ``found(list[int])`` is emitted on the GUI thread: the probe thread emits a private signal that is
    relayed signal to signal.
    """

    found = Signal(object)
    _found_in_thread = Signal(object)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.probing = False
        self._found_in_thread.connect(self._done)

    def probe(self, held: str | None = None) -> None:
        """Probe once (a probe already running is not doubled); ``held``: a camera the worker holds."""
        if self.probing:
            return
        self.probing = True

        def run() -> None:
            found = _cameras_now()
            # A camera the worker holds cannot be opened a second time, yet it is there.
            if held is not None and is_camera_spec(held) and int(held) not in found:
                found = sorted([*found, int(held)])
            self._found_in_thread.emit(found)

        threading.Thread(target=run, name="camera-probe", daemon=True).start()

    def _done(self, cameras: list[int]) -> None:
        self.probing = False
        self.found.emit(cameras)


class SourcePicker(QObject):
    """Fills the toolbar's source list and the Camera menu; ``chosen(str)`` when the user picks one."""

    chosen = Signal(str)

    def __init__(self, combo: QComboBox, menu: QMenu, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._combo, self._menu = combo, menu
        combo.activated.connect(self._on_activated)

    def populate(self, cameras: list[int] | None, current: str) -> None:
        """List ``cameras`` (None: still looking) and the current file or folder, selecting ``current``."""
        combo = self._combo
        combo.blockSignals(True)
        combo.clear()
        for index in cameras or []:
            combo.addItem(icon("camera"), f"Camera {index}", str(index))
        if not cameras:
            combo.addItem(
                icon("camera"), "Looking for cameras…" if cameras is None else "No camera found", ""
            )
            combo.model().item(0).setEnabled(False)  # type: ignore[attr-defined]
        if current and not is_camera_spec(current):
            combo.addItem(icon("open"), Path(current).name, current)
        pos = combo.findData(current)
        combo.setCurrentIndex(max(pos, 0))
        combo.blockSignals(False)
        self._menu.clear()
        for index in cameras or []:
            action = self._menu.addAction(f"Camera {index}")
            action.setData(str(index))
            action.triggered.connect(self._on_menu)
        if not cameras:
            self._menu.addAction("No camera found" if cameras is not None else "Looking…").setEnabled(False)

    def _on_activated(self, index: int) -> None:
        spec = self._combo.itemData(index)
        if spec:
            self.chosen.emit(str(spec))

    def _on_menu(self) -> None:
        action = self.sender()
        if action is not None:
            self.chosen.emit(str(action.data()))


class CameraSources(QObject):
    """Which cameras exist, kept current for the source picker; ``found()`` after each probe.

    Attributes:
        cameras: the camera indexes found, or None before the first probe ended.
    """

    found = Signal()

    def __init__(self, combo: QComboBox, menu: QMenu, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.cameras: list[int] | None = None
        self.picker = SourcePicker(combo, menu, self)
        self._probe = CameraProbe(self)
        self._probe.found.connect(self._on_found)
        self._current = ""

    def show(self, current: str) -> None:
        """List the sources again, selecting ``current``."""
        self._current = current
        self.picker.populate(self.cameras, current)

    def probe(self, held: str | None = None, *, forget: bool = False) -> None:
        """Look for cameras again (``forget``: show "looking" meanwhile); ``held``: the worker's camera."""
        if forget:
            self.cameras = None
        self._probe.probe(held)

    def none_found(self, spec: str) -> bool:
        """True when ``spec`` is a camera and the probe found none."""
        return is_camera_spec(spec) and self.cameras is not None and not self.cameras

    def startable(self, spec: str) -> bool:
        """False when there is nothing to start: no source, a camera the probe did not find, a missing file."""
        if not spec.strip():
            return False
        if is_camera_spec(spec):
            return not self.none_found(spec)
        return Path(spec).expanduser().exists()

    def _on_found(self, cameras: list[int]) -> None:
        self.cameras = list(cameras)
        self.picker.populate(self.cameras, self._current)
        self.found.emit()
