"""The main window: the Live tab, the Gallery, the Trainer and Diagnostics, menus, shortcuts, status bar.

The window owns every worker (recognition, gallery) through GUI-thread controllers and stops then waits
for each in :meth:`MainWindow.closeEvent`. It never decodes, detects or embeds: it draws results.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import QByteArray, QSettings, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QAction, QBrush, QCloseEvent, QColor, QDesktopServices, QIcon, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QTabWidget,
    QToolButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.recognition_worker import EngineInfo, RecognitionController, SourceState, WorkerStats
from app.video_view import KNOWN_COLOUR, UNKNOWN_COLOUR, VideoView
from core.settings import Settings, load_settings, save_settings
from core.types import FrameResult

__all__ = ["EmptyState", "MainWindow", "PeopleInView", "icon"]

log = logging.getLogger(__name__)

RESOURCES = Path(__file__).resolve().parents[1] / "resources"
# Seconds an unknown face stays in the "in view" list after the last sighting (greyed out); known
# people stay for the whole run, so that the list also answers "who was here".
LINGER_S = 0.5
# The people list is redrawn at most this often (ms): a list redraw per frame would waste the GUI thread.
PEOPLE_REFRESH_MS = 250
GONE_COLOUR = QColor("#6e7681")


def icon(name: str) -> QIcon:
    """An icon from ``resources/icons`` (an empty icon if the file is missing)."""
    path = RESOURCES / "icons" / f"{name}.svg"
    return QIcon(str(path)) if path.exists() else QIcon()


def _is_camera(spec: str) -> bool:
    return spec.strip().isdigit()


def _list_cameras() -> list[int]:
    try:
        from core.capture import list_cameras

        return [int(c if isinstance(c, int) else getattr(c, "index", c)) for c in list_cameras()]
    except Exception as exc:  # noqa: BLE001 - no camera listing is the same as no camera
        log.warning("cannot list cameras: %s", exc)
        return []


class PeopleInView(QTreeWidget):
    """Who is in view now, and when each was first and last seen (wall-clock and video time)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("PeopleInView")
        self.setHeaderLabels(["Person", "Similarity", "First seen", "Last seen"])
        self.setRootIsDecorated(False)
        self.setUniformRowHeights(True)
        self.setSortingEnabled(False)
        # Fixed widths: "resize to contents" measures every row on every change, tens of ms a refresh.
        self.header().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        metrics = self.fontMetrics()
        for col, sample in ((1, "Similarity"), (2, "00:00:00 "), (3, "00:00:00 ")):
            self.header().setSectionResizeMode(col, QHeaderView.ResizeMode.Interactive)
            self.setColumnWidth(col, metrics.horizontalAdvance(sample) + 24)
        self.setToolTip("Everyone recognised since the video started; grey: not in view right now.")
        # key -> [display name, similarity, first wall time, last wall time, first stream s, last stream s]
        self._seen: dict[str, list[Any]] = {}
        self._in_view: set[str] = set()
        self._dirty = False

    def clear_people(self) -> None:
        self._seen.clear()
        self._in_view.clear()
        self.clear()

    def names_in_view(self) -> list[str]:
        return sorted(self._seen[k][0] for k in self._in_view)

    def names_seen(self) -> list[str]:
        """Everyone listed: in view now, or known and seen since the start."""
        return sorted(entry[0] for entry in self._seen.values())

    def update_from(self, result: FrameResult) -> None:
        now = time.time()
        in_view = set()
        for face in result.faces:
            key = face.person if face.person is not None else f"Unknown #{face.track_id}"
            in_view.add(key)
            entry = self._seen.get(key)
            if entry is None:
                self._seen[key] = [key, face.similarity, now, now, result.timestamp, result.timestamp]
            else:
                entry[1] = face.similarity
                entry[3] = now
                entry[5] = result.timestamp
        self._in_view = in_view
        # Unknown faces are not people one can look for later: drop them once they are gone.
        for key in [k for k, e in self._seen.items() if k.startswith("Unknown #") and now - e[3] > LINGER_S]:
            del self._seen[key]
        self._dirty = True

    def refresh(self) -> None:
        if not self._dirty:
            return
        self._dirty = False
        rows = sorted(
            self._seen.values(), key=lambda e: (e[0] not in self._in_view, e[0].startswith("Unknown"), e[0])
        )
        self.setUpdatesEnabled(False)
        try:
            while self.topLevelItemCount() > len(rows):
                self.takeTopLevelItem(self.topLevelItemCount() - 1)
            for i, (name, sim, first, last, first_s, last_s) in enumerate(rows):
                item = self.topLevelItem(i) or QTreeWidgetItem(self)
                texts = [
                    name,
                    f"{sim:.2f}",
                    time.strftime("%H:%M:%S", time.localtime(first)),
                    time.strftime("%H:%M:%S", time.localtime(last)),
                ]
                # Only what changed: every setText is a relayout of the row.
                for col, text in enumerate(texts):
                    if item.text(col) != text:
                        item.setText(col, text)
                item.setToolTip(2, f"{first_s:.1f} s into the video")
                item.setToolTip(3, f"{last_s:.1f} s into the video")
                colour = UNKNOWN_COLOUR if name.startswith("Unknown") else KNOWN_COLOUR
                shown = colour if name in self._in_view else GONE_COLOUR
                if item.foreground(0).color() != shown:
                    item.setForeground(0, QBrush(shown))
        finally:
            self.setUpdatesEnabled(True)


class EmptyState(QWidget):
    """What the Live tab shows with no video: why, and what to do (open a file, retry the camera)."""

    open_video = Signal()
    open_folder = Signal()
    retry = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("EmptyState")
        self.title = QLabel("No video")
        self.title.setObjectName("EmptyTitle")
        self.title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.message = QLabel("")
        self.message.setObjectName("EmptyMessage")
        self.message.setWordWrap(True)
        self.message.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.open_video_button = QPushButton(icon("open"), "Open a video file…")
        self.open_video_button.clicked.connect(self.open_video)
        self.open_folder_button = QPushButton(icon("folder"), "Open an image folder…")
        self.open_folder_button.clicked.connect(self.open_folder)
        self.retry_button = QPushButton(icon("camera"), "Try the camera again")
        self.retry_button.clicked.connect(self.retry)
        # Stacked, not side by side: the window stays narrow enough for a small screen.
        buttons = QVBoxLayout()
        for b in (self.open_video_button, self.open_folder_button, self.retry_button):
            b.setMinimumWidth(240)
            buttons.addWidget(b, 0, Qt.AlignmentFlag.AlignHCenter)
        layout = QVBoxLayout(self)
        layout.addStretch(1)
        layout.addWidget(self.title)
        layout.addWidget(self.message)
        layout.addSpacing(12)
        layout.addLayout(buttons)
        layout.addStretch(2)

    def show_state(self, title: str, message: str, *, camera: bool) -> None:
        self.title.setText(title)
        self.message.setText(message)
        self.retry_button.setVisible(camera)


class MainWindow(QMainWindow):
    # Emitted by the camera probe thread, relayed signal-to-signal so that the slot runs on the GUI thread.
    _cameras_probed = Signal(object)
    _cameras_in = Signal(object)

    """The application window.

    Args:
        settings: the settings to start with.
        warnings: problems found in the settings file (shown in a banner and the status bar).
        settings_path: where OK in the settings dialog saves; None means :func:`core.paths.settings_path`.
        autostart: start recognising at once.
        system_trash: delete people into the system trash when it works (else the backup folder).
    """

    def __init__(
        self,
        settings: Settings,
        *,
        warnings: tuple[str, ...] = (),
        settings_path: Path | None = None,
        autostart: bool = False,
        system_trash: bool = True,
    ) -> None:
        super().__init__()
        from core.paths import config_dir
        from core.paths import settings_path as default_settings_path

        self.setObjectName("MainWindow")
        self.setWindowTitle("GhostFace")
        app_icon = RESOURCES / "icons" / "ghostface.svg"
        if app_icon.exists():
            self.setWindowIcon(QIcon(str(app_icon)))
        self._settings = settings
        self._settings_path = settings_path or default_settings_path()
        self._window_state = QSettings(str(config_dir() / "window.ini"), QSettings.Format.IniFormat)
        self._closing = False
        self._last_stats: WorkerStats | None = None
        self._engine: EngineInfo | None = None
        self._errors: list[str] = []
        self._settings_dialog: Any = None
        self._trainer_loaded = False
        self._gc_frozen = False
        self._history: Any = None  # the event history the bus writes into, when there is one
        self._history_notice: str | None = None
        self._cache_notice = ""

        self.event_bus = self._make_event_bus(settings)
        self.controller = RecognitionController(settings, self, event_bus=self.event_bus)
        self.controller.frame_ready.connect(self._on_frame)
        self.controller.stats_ready.connect(self._on_stats)
        self.controller.engine_ready.connect(self._on_engine)
        self.controller.source_state.connect(self._on_source_state)
        self.controller.error.connect(self._on_error)
        self.controller.running_changed.connect(self._on_running_changed)
        self.controller.gallery_progress.connect(self._on_gallery_progress)

        from app.gallery_worker import GalleryController

        self.gallery_controller = GalleryController(settings, self)
        self.gallery_controller.use_system_trash = system_trash
        self.gallery_controller.gallery_changed.connect(self.controller.reload_gallery)

        self._build_ui()
        self._build_actions()
        self.video_view.set_display(settings.display)
        self._people_timer = QTimer(self)
        self._people_timer.setInterval(PEOPLE_REFRESH_MS)
        self._people_timer.timeout.connect(self.people.refresh)
        self._people_timer.start()
        self._restore_geometry()
        self._cameras: list[int] | None = None  # None: not probed yet
        self._probing = False
        self._start_when_probed = False
        self._cameras_probed.connect(self._cameras_in)
        self._cameras_in.connect(self._on_cameras)
        self._populate_sources()
        self._show_idle_state()
        self.probe_cameras()
        if warnings:
            self.show_warning(
                "The settings file had problems; defaults were used for them: " + "; ".join(warnings)
            )
        self._check_history()
        if autostart:
            QTimer.singleShot(0, self.start)

    # -- building ---------------------------------------------------------------------------------
    def _make_event_bus(self, settings: Settings) -> Any:
        try:
            from core.events import EventBus
            from core.history import History
            from core.plugins import discover_plugins, load_plugins

            extra: list[object] = []
            try:
                from app.notify_plugin import DesktopNotification

                # Made here, on the GUI thread: its bridge must belong to this thread.
                notifier = DesktopNotification()
                notifier.bridge.shown.connect(
                    lambda title, text: self.statusBar().showMessage(f"{title}: {text}", 5000)
                )
                extra.append(notifier)
            except Exception as exc:  # noqa: BLE001 - no notifications is not a reason to stop
                log.warning("desktop notifications unavailable: %s", exc)
            plugins = load_plugins(discover_plugins(extra_builtins=extra), settings.plugins)
            ev = settings.events
            # A short wait on a history another program holds locked: this runs on the GUI thread. It
            # then opens read-only, and the events wait in memory until the lock is gone.
            self._history = History(busy_timeout_s=2.0)
            plugins.append(self._history.recorder(ev.history_max_days, ev.history_max_mb))
            bus = EventBus(plugins, settings.plugins.queue_size, settings.plugins.max_failures)
            bus.start()
            return bus
        except Exception as exc:  # noqa: BLE001 - recognition works without plugins
            log.warning("plugins are not available: %s", exc)
            self._errors.append(f"Plugins are not available: {exc}")
            return None

    def _build_ui(self) -> None:
        self.banner = QWidget()
        self.banner.setObjectName("WarningBanner")
        banner_row = QHBoxLayout(self.banner)
        banner_row.setContentsMargins(10, 6, 6, 6)
        self.banner_label = QLabel()
        self.banner_label.setObjectName("WarningBannerText")
        self.banner_label.setWordWrap(True)
        close = QToolButton()
        close.setText("✕")
        close.setToolTip("Hide this message")
        close.clicked.connect(self.banner.hide)
        banner_row.addWidget(self.banner_label, 1)
        banner_row.addWidget(close)
        self.banner.hide()

        # Live tab
        self.video_view = VideoView()
        self.empty_state = EmptyState()
        self.empty_state.open_video.connect(self.open_video)
        self.empty_state.open_folder.connect(self.open_image_folder)
        self.empty_state.retry.connect(self.retry_camera)
        self.live_stack = QStackedWidget()
        self.live_stack.addWidget(self.empty_state)
        self.live_stack.addWidget(self.video_view)

        self.people = PeopleInView()
        side = QWidget()
        side_layout = QVBoxLayout(side)
        side_layout.setContentsMargins(0, 0, 0, 0)
        people_title = QLabel("In view")
        people_title.setObjectName("SectionTitle")
        side_layout.addWidget(people_title)
        side_layout.addWidget(self.people, 2)
        self.events_panel = self._make_events_panel()
        if self.events_panel is not None:
            if hasattr(self.events_panel, "history_requested"):
                self.events_panel.history_requested.connect(self.open_history)
            events_title = QLabel("Events")
            events_title.setObjectName("SectionTitle")
            side_layout.addWidget(events_title)
            side_layout.addWidget(self.events_panel, 3)
        self.live_splitter = QSplitter(Qt.Orientation.Horizontal)
        self.live_splitter.setObjectName("LiveSplitter")
        self.live_splitter.addWidget(self.live_stack)
        self.live_splitter.addWidget(side)
        self.live_splitter.setStretchFactor(0, 3)
        self.live_splitter.setStretchFactor(1, 1)
        self.live_splitter.setSizes([860, 420])

        from app.gallery_panel import GalleryPanel

        self.gallery_panel = GalleryPanel(self.gallery_controller, self._settings, self)
        self.gallery_panel.enroll_requested.connect(self.enroll_from_camera)

        from app.diagnostics import DiagnosticsView

        self.diagnostics = DiagnosticsView(self)

        self.tabs = QTabWidget()
        self.tabs.setObjectName("MainTabs")
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(self.live_splitter, icon("camera"), "Live")
        self.tabs.addTab(self.gallery_panel, icon("people"), "Gallery")
        self.trainer_holder = QWidget()
        QVBoxLayout(self.trainer_holder).setContentsMargins(0, 0, 0, 0)
        self.tabs.addTab(self.trainer_holder, icon("train"), "Trainer")
        self.tabs.addTab(self.diagnostics, icon("diagnostics"), "Diagnostics")
        self.tabs.currentChanged.connect(self._on_tab_changed)

        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.banner)
        layout.addWidget(self.tabs)
        self.setCentralWidget(central)

        # Status bar: permanent figures on the right, messages on the left.
        bar = self.statusBar()
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(160)
        self.progress.setTextVisible(True)
        self.progress.hide()
        self.fps_label = QLabel("– fps")
        self.fps_label.setObjectName("FpsLabel")
        self.fps_label.setToolTip("Frames processed per second")
        self.timings_label = QLabel("")
        self.timings_label.setObjectName("TimingsLabel")
        self.timings_label.setToolTip("Milliseconds per frame spent in each stage (recent average)")
        self.dropped_label = QLabel("")
        self.dropped_label.setObjectName("DroppedLabel")
        self.dropped_label.setToolTip(
            "Frames skipped so that the view stays live: by the source (processing slower than the video) "
            "and by the display"
        )
        for w in (self.progress, self.timings_label, self.dropped_label, self.fps_label):
            bar.addPermanentWidget(w)

    def _make_events_panel(self) -> QWidget | None:
        try:
            from app.events_panel import EventsPanel
        except ImportError as exc:
            log.info("events panel not available: %s", exc)
            return None
        try:
            panel = EventsPanel()
        except Exception as exc:  # noqa: BLE001
            log.warning("events panel failed: %s", exc)
            return None
        return panel

    def _build_actions(self) -> None:
        def action(text: str, slot: Any, shortcut: Any = None, icon_name: str = "", tip: str = "") -> QAction:
            act = QAction(icon(icon_name) if icon_name else QIcon(), text, self)
            if shortcut is not None:
                act.setShortcut(QKeySequence(shortcut))
            act.setToolTip(tip or text.replace("&", "").rstrip("…"))
            act.triggered.connect(slot)
            self.addAction(act)
            return act

        self.start_action = action(
            "&Start", self.toggle_running, Qt.Key.Key_Space, "play", "Start or stop (Space)"
        )
        self.open_action = action("&Open video…", self.open_video, QKeySequence.StandardKey.Open, "open")
        self.open_folder_action = action("Open image &folder…", self.open_image_folder, None, "folder")
        self.settings_action = action(
            "&Settings…", self.open_settings, QKeySequence("Ctrl+,"), "settings", "Settings (Ctrl+,)"
        )
        self.fullscreen_action = action("&Full screen", self.toggle_fullscreen, Qt.Key.Key_F11, "fullscreen")
        self.fullscreen_action.setCheckable(True)
        self.quit_action = action("&Quit", self.close, QKeySequence("Ctrl+Q"), "", "Quit (Ctrl+Q)")
        self.history_action = action("Event &history…", self.open_history, QKeySequence("Ctrl+H"), "history")
        self.plugins_action = action("&Plugins…", self.open_plugins, None, "plugins")
        self.gallery_folder_action = action("Open &gallery folder", self.open_gallery_folder, None, "folder")
        self.diagnostics_action = action(
            "&Diagnostics", lambda: self.tabs.setCurrentWidget(self.diagnostics), None, "diagnostics"
        )
        self.about_action = action("&About GhostFace", self.about)

        menu = self.menuBar()
        file_menu = menu.addMenu("&File")
        file_menu.addActions([self.open_action, self.open_folder_action])
        self.camera_menu = file_menu.addMenu(icon("camera"), "&Camera")
        file_menu.addSeparator()
        file_menu.addAction(self.gallery_folder_action)
        file_menu.addSeparator()
        file_menu.addAction(self.quit_action)
        view_menu = menu.addMenu("&View")
        view_menu.addActions([self.start_action, self.fullscreen_action, self.diagnostics_action])
        tools_menu = menu.addMenu("&Tools")
        tools_menu.addActions([self.settings_action, self.history_action, self.plugins_action])
        help_menu = menu.addMenu("&Help")
        help_menu.addAction(self.about_action)

        toolbar = self.addToolBar("Main")
        toolbar.setObjectName("MainToolbar")
        toolbar.setMovable(False)
        toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        toolbar.addAction(self.start_action)
        self.source_combo = QComboBox()
        self.source_combo.setObjectName("SourceCombo")
        self.source_combo.setMinimumWidth(260)
        self.source_combo.setToolTip("What to watch: a camera, a video file or a folder of images")
        self.source_combo.activated.connect(self._on_source_chosen)
        toolbar.addWidget(QLabel(" Source: "))
        toolbar.addWidget(self.source_combo)
        toolbar.addAction(self.open_action)
        toolbar.addSeparator()
        toolbar.addAction(self.settings_action)

    # -- settings ---------------------------------------------------------------------------------
    @property
    def settings(self) -> Settings:
        return self._settings

    def apply_settings(self, settings: Settings, *, save: bool = False) -> None:
        """Make ``settings`` live everywhere (pipeline, display, gallery); optionally save them."""
        self._settings = settings
        self.controller.apply_settings(settings)
        self.video_view.set_display(settings.display)
        self.gallery_controller.apply_settings(settings, sync=not self.controller.is_running())
        self.gallery_panel.set_settings(settings)
        if save:
            self.save_settings()

    def save_settings(self) -> None:
        try:
            save_settings(self._settings, self._settings_path)
        except OSError as exc:
            self.show_warning(f"The settings could not be saved to {self._settings_path}: {exc}")

    def open_settings(self) -> Any:
        from app.settings_dialog import SettingsDialog

        if self._settings_dialog is not None:
            self._settings_dialog.raise_()
            return self._settings_dialog
        dialog = SettingsDialog(
            self._settings,
            self,
            save=lambda s: self.apply_settings(s, save=True),
            cameras=[str(c) for c in self._cameras or []],
        )
        dialog.settings_changed.connect(self.apply_settings)
        dialog.finished.connect(self._settings_dialog_closed)
        self._settings_dialog = dialog
        dialog.open()
        return dialog

    def _settings_dialog_closed(self) -> None:
        dialog, self._settings_dialog = self._settings_dialog, None
        if dialog is not None:
            dialog.deleteLater()

    # -- sources ----------------------------------------------------------------------------------
    def probe_cameras(self) -> None:
        """Look for cameras on a background thread: opening devices can take a second each."""
        if self._probing:
            return
        self._probing = True
        running = self._settings.camera.source if self.controller.is_running() else None

        def probe() -> None:
            found = _list_cameras()
            # A camera the worker holds cannot be opened a second time, yet it is there.
            if running is not None and _is_camera(running) and int(running) not in found:
                found = sorted([*found, int(running)])
            self._cameras_probed.emit(found)  # relayed to the GUI thread (signal to signal)

        threading.Thread(target=probe, name="camera-probe", daemon=True).start()

    def _on_cameras(self, cameras: list[int]) -> None:
        self._probing = False
        if self._closing:
            return
        self._cameras = list(cameras)
        self._populate_sources()
        if not self.controller.is_running() and self.video_view.result is None:
            if self._start_when_probed:
                self._start_when_probed = False
                self.start()
            else:
                self._show_idle_state()

    def _populate_sources(self) -> None:
        cameras = self._cameras or []
        combo = self.source_combo
        combo.blockSignals(True)
        combo.clear()
        for index in cameras:
            combo.addItem(icon("camera"), f"Camera {index}", str(index))
        if not cameras:
            combo.addItem(
                icon("camera"), "Looking for cameras…" if self._cameras is None else "No camera found", ""
            )
            item = combo.model().item(0)  # type: ignore[attr-defined]
            item.setEnabled(False)
        current = self._settings.camera.source
        if not _is_camera(current) and current:
            combo.addItem(icon("open"), Path(current).name, current)
        pos = combo.findData(current)
        combo.setCurrentIndex(pos if pos >= 0 else 0)
        combo.blockSignals(False)
        self.camera_menu.clear()
        for index in cameras:
            act = self.camera_menu.addAction(f"Camera {index}")
            act.triggered.connect(lambda _=False, i=index: self.set_source(str(i)))
        if not cameras:
            none = self.camera_menu.addAction("No camera found" if self._cameras is not None else "Looking…")
            none.setEnabled(False)

    def _on_source_chosen(self, index: int) -> None:
        spec = self.source_combo.itemData(index)
        if spec:
            self.set_source(str(spec))

    def set_source(self, spec: str, *, start: bool = True) -> None:
        """Watch ``spec`` (camera index, video file or image folder); saved as the new source."""
        self.people.clear_people()
        self.apply_settings(self._settings.replace(camera={"source": spec}), save=True)
        self._populate_sources()
        if start and not self.controller.is_running():
            self.start()
        elif not self.controller.is_running():
            self._show_idle_state()

    def open_video(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Open a video", "", "Videos (*.mp4 *.avi *.mkv *.mov *.webm *.m4v);;All files (*)"
        )
        if path:
            self.set_source(path)

    def open_image_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Open a folder of images")
        if path:
            self.set_source(path)

    def retry_camera(self) -> None:
        """Look for cameras again; start with the first one found (or say again that there is none)."""
        self._start_when_probed = True
        if not _is_camera(self._settings.camera.source):
            self.apply_settings(self._settings.replace(camera={"source": "0"}), save=True)
        self._cameras = None
        self._show_idle_state()
        self.probe_cameras()

    def open_gallery_folder(self) -> None:
        from core.engine import gallery_root

        root = gallery_root(self._settings)
        root.mkdir(parents=True, exist_ok=True)
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(root)))

    # -- running ----------------------------------------------------------------------------------
    def start(self) -> None:
        spec = self._settings.camera.source
        if _is_camera(spec) and self._cameras is not None and not self._cameras:
            self._show_no_camera()
            return
        # With the probe still running, start anyway: a missing camera is reported by the worker.
        self.people.clear_people()
        self.video_view.clear("Starting…")
        self.live_stack.setCurrentWidget(self.video_view)
        self.controller.start(self._settings)

    def stop(self) -> None:
        self.controller.stop()

    def toggle_running(self) -> None:
        if self.controller.is_running():
            self.stop()
        else:
            self.start()

    def _on_running_changed(self, running: bool) -> None:
        self.start_action.setText("&Stop" if running else "&Start")
        self.start_action.setIcon(icon("stop" if running else "play"))
        if not running:
            self.fps_label.setText("– fps")
            self.timings_label.setText("")
            if self.video_view.result is None:
                self._show_idle_state()

    def _show_no_camera(self) -> None:
        self.live_stack.setCurrentWidget(self.empty_state)
        self.empty_state.show_state(
            "No camera found",
            "GhostFace did not find a camera on this computer. Open a video file or a folder of images "
            "instead, or connect a camera and try again.",
            camera=True,
        )
        self.statusBar().showMessage("No camera found: open a video file instead (Ctrl+O)")

    def _show_idle_state(self) -> None:
        spec = self._settings.camera.source
        if _is_camera(spec) and self._cameras is None:
            self.live_stack.setCurrentWidget(self.empty_state)
            self.empty_state.show_state("Looking for cameras…", "", camera=False)
            return
        if _is_camera(spec) and not self._cameras:
            self._show_no_camera()
            return
        self.live_stack.setCurrentWidget(self.empty_state)
        what = f"camera {spec}" if _is_camera(spec) else (Path(spec).name or "nothing")
        self.empty_state.show_state(
            "Ready",
            f"Press Start (Space) to recognise faces in {what}, or open another source.",
            camera=False,
        )

    # -- worker results ---------------------------------------------------------------------------
    def _on_frame(self, result: FrameResult) -> None:
        if not self._gc_frozen:
            # Models and modules are loaded by now: move every object that exists into the permanent
            # generation, so that a full garbage collection (which holds the GIL) stays short.
            self._gc_frozen = True
            gc.freeze()
        if self.live_stack.currentWidget() is not self.video_view:
            self.live_stack.setCurrentWidget(self.video_view)
        self.video_view.show_result(result)
        self.people.update_from(result)
        if result.events and self.events_panel is not None:
            try:
                self.events_panel.add_events(list(result.events))
            except Exception as exc:  # noqa: BLE001 - a panel bug must not stop the video
                log.warning("events panel failed: %s", exc)

    def _on_stats(self, stats: WorkerStats) -> None:
        self._last_stats = stats
        self.fps_label.setText(f"{stats.fps:.1f} fps")
        t = stats.mean_timings
        self.timings_label.setText(
            f"decode {t.decode_ms:.1f} · detect {t.detect_ms:.1f} · align {t.align_ms:.1f} · "
            f"embed {t.embed_ms:.1f} · match {t.match_ms:.1f} · track {t.track_ms:.1f} ms"
        )
        self.dropped_label.setText(f"dropped {stats.source_dropped + stats.display_dropped}")
        self.diagnostics.set_stats(stats)
        self._check_history()

    def _check_history(self) -> None:
        """Show a history that was recovered, or that cannot be written now, in the banner (once each)."""
        history = self._history
        if history is None:
            return
        notice = history.problem
        if history.recovered_from is not None:
            recovered = (
                f"The event history was damaged: it was moved to {history.recovered_from} and a new one "
                "was started."
            )
            notice = f"{recovered} {notice}" if notice else recovered
            if history.problem is None:
                # Said once; afterwards only a new problem is news.
                history.recovered_from = None
        if notice and notice != self._history_notice:
            self.show_warning(notice)
            self.diagnostics.add_error(notice)
        self._history_notice = notice

    def _on_engine(self, info: EngineInfo) -> None:
        self._engine = info
        self.diagnostics.set_engine(info)
        if info.gallery_cache_notice and info.gallery_cache_notice != self._cache_notice:
            self.show_warning(info.gallery_cache_notice)
            self.diagnostics.add_error(info.gallery_cache_notice)
        self._cache_notice = info.gallery_cache_notice
        if info.gallery_people == 0:
            self.statusBar().showMessage(
                "The gallery is empty: everyone is Unknown. Add people in the Gallery tab.", 8000
            )

    def _on_source_state(self, state: str, message: str) -> None:
        if state == SourceState.RUNNING:
            self.statusBar().showMessage(message, 4000)
            return
        if state == SourceState.OPENING:
            self.video_view.set_message(message)
            self.statusBar().showMessage(message)
            return
        if state == SourceState.ENDED:
            self.statusBar().showMessage(message, 8000)
            return
        # LOST or UNAVAILABLE: the worker retries by itself; say so, and offer a file meanwhile.
        spec = self._settings.camera.source
        self.statusBar().showMessage(message)
        if self.video_view.result is None or state == SourceState.UNAVAILABLE:
            self.live_stack.setCurrentWidget(self.empty_state)
            title = "Camera lost" if state == SourceState.LOST else "Cannot open the source"
            self.empty_state.show_state(title, message, camera=_is_camera(spec))
        else:
            self.video_view.set_message(message)

    def _on_error(self, exc: BaseException) -> None:
        text = f"{type(exc).__name__}: {exc}"
        self._errors.append(text)
        self.diagnostics.add_error(text)
        self.statusBar().showMessage(f"Error: {exc}", 8000)
        if not self.controller.is_running() or self.video_view.result is None:
            self.show_warning(str(exc))

    def _on_gallery_progress(self, done: int, total: int, item: str) -> None:
        if done >= total:
            self.progress.hide()
            return
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)
        self.progress.setFormat("Gallery %v/%m")
        self.progress.show()

    # -- banner -----------------------------------------------------------------------------------
    def show_warning(self, text: str) -> None:
        """A visible warning: a banner over the tabs and the status bar."""
        self.banner_label.setText(text)
        self.banner.show()
        self.statusBar().showMessage(text.splitlines()[0], 15000)

    # -- other windows ----------------------------------------------------------------------------
    def open_history(self) -> Any:
        try:
            from app.history_dialog import HistoryDialog
        except ImportError as exc:
            QMessageBox.information(self, "Event history", f"The event history is not available: {exc}")
            return None
        # The history the bus writes into: the dialog then needs no connection of its own (no second
        # wait on a locked file) and shows what it holds even when it is read-only for now.
        dialog = HistoryDialog(self._history, parent=self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.show()
        return dialog

    def open_plugins(self) -> Any:
        try:
            from app.plugins_dialog import PluginsDialog
        except ImportError as exc:
            QMessageBox.information(self, "Plugins", f"The plugins window is not available: {exc}")
            return None
        dialog = PluginsDialog(self.event_bus, parent=self, settings=self._settings.plugins)
        dialog.plugin_settings_changed.connect(
            lambda plugins: self.apply_settings(self._settings.replace(plugins=plugins), save=True)
        )
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.show()
        return dialog

    def enroll_from_camera(self, name: str = "") -> Any:
        from app.enroll_dialog import EnrollDialog

        was_running = self.controller.is_running()
        if was_running:
            # The camera can be opened by one reader at a time.
            self.controller.stop()
        dialog = EnrollDialog(self._settings, self.gallery_controller, name=name, parent=self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        if was_running:
            dialog.finished.connect(lambda _=0: self.start())
        dialog.open()
        dialog.start_capture()
        return dialog

    def about(self) -> None:
        import core

        QMessageBox.about(
            self,
            "About GhostFace",
            f"<b>GhostFace</b> {core.__version__}<br>Real-time face recognition on an ordinary computer.",
        )

    def toggle_fullscreen(self) -> None:
        if self.isFullScreen():
            self.showNormal()
        else:
            self.showFullScreen()
        self.fullscreen_action.setChecked(self.isFullScreen())

    def _on_tab_changed(self, index: int) -> None:
        widget = self.tabs.widget(index)
        if widget is self.trainer_holder and not self._trainer_loaded:
            self._load_trainer()
        elif widget is self.diagnostics:
            self.diagnostics.refresh_models()
        elif widget is self.gallery_panel:
            self.gallery_panel.refresh()

    def _load_trainer(self) -> None:
        self._trainer_loaded = True
        layout = self.trainer_holder.layout()
        try:
            from app.trainer_tab import TrainerTab

            tab = TrainerTab()
        except Exception as exc:  # noqa: BLE001 - the rest of the app works without the trainer
            log.warning("trainer tab unavailable: %s", exc)
            tab = QLabel(f"The trainer is not available:\n\n{type(exc).__name__}: {exc}")
            tab.setObjectName("TrainerUnavailable")
            tab.setAlignment(Qt.AlignmentFlag.AlignCenter)
            tab.setWordWrap(True)
        if hasattr(tab, "use_model"):
            tab.use_model.connect(self.use_trained_model)
        layout.addWidget(tab)
        self.trainer_tab = tab

    def use_trained_model(self, checkpoint: str) -> None:
        """ "Use this model": recognise with a trained GhostFaceNetV2 from now on, and save that choice.

        The threshold follows the model (its checkpoint carries the one calibrated on its validation
        pairs; a hand-set one belonged to the previous model). The worker builds the new embedder and
        re-embeds the gallery in the background; until then the old model keeps recognising.
        """
        new = self._settings.replace(
            recognition={"embedder": f"ghostfacenetv2:{checkpoint}", "threshold_from_model": True}
        )
        self.apply_settings(new, save=True)
        self.statusBar().showMessage(
            f"Now recognising with {Path(checkpoint).name}: the gallery is re-embedded for it in the background",
            8000,
        )

    # -- geometry and closing ---------------------------------------------------------------------
    def _restore_geometry(self) -> None:
        geometry = self._window_state.value("geometry")
        if isinstance(geometry, QByteArray) and not geometry.isEmpty():
            self.restoreGeometry(geometry)
        else:
            self.resize(1280, 800)
        splitter = self._window_state.value("live_splitter")
        if isinstance(splitter, QByteArray):
            self.live_splitter.restoreState(splitter)

    def shutdown(self) -> None:
        """Stop, then wait for, every worker; stop the plugins. Safe to call twice."""
        if self._closing:
            return
        self._closing = True
        self._people_timer.stop()
        if self._settings_dialog is not None:
            self._settings_dialog.done(0)
        self.controller.stop()
        self.gallery_panel.shutdown()
        self.gallery_controller.stop()
        if self._trainer_loaded and hasattr(getattr(self, "trainer_tab", None), "shutdown"):
            try:
                self.trainer_tab.shutdown()
            except Exception as exc:  # noqa: BLE001
                log.warning("trainer tab shutdown failed: %s", exc)
        if self.event_bus is not None:
            try:
                self.event_bus.stop()
            except Exception as exc:  # noqa: BLE001
                log.warning("event bus did not stop cleanly: %s", exc)

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt naming
        self._window_state.setValue("geometry", self.saveGeometry())
        self._window_state.setValue("live_splitter", self.live_splitter.saveState())
        self._window_state.sync()
        self.shutdown()
        super().closeEvent(event)


def create_window(
    settings_file: Path | None = None, *, source: str | None = None, gallery: str | None = None, **kwargs: Any
) -> MainWindow:
    """Load the settings (never failing on a bad file), apply command-line overrides, build the window."""
    from core.paths import settings_path

    path = settings_file or settings_path()
    loaded = load_settings(path)
    settings = loaded.settings
    if source is not None:
        settings = settings.replace(camera={"source": source})
    if gallery is not None:
        settings = settings.replace(gallery_dir=str(Path(gallery).expanduser().resolve()))
    app = QApplication.instance()
    if app is None:
        raise RuntimeError("create a QApplication first")
    return MainWindow(settings, warnings=loaded.warnings, settings_path=path, **kwargs)
