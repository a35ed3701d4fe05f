"""The main window: the Live tab, the Gallery, the Trainer and Diagnostics, menus, shortcuts, status bar.

It lays out the widgets and wires them to what an :class:`app.context.AppContext` holds (settings,
workers' controllers, plugins, the error reporter); it never decodes, detects or embeds, only draws
results. Closing it stops, then waits for, every worker.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from PySide6.QtCore import QTimer
from PySide6.QtGui import QCloseEvent, QIcon
from PySide6.QtWidgets import QMainWindow, QTabWidget, QVBoxLayout, QWidget

from app.context import AppContext
from app.diagnostics import DiagnosticsView
from app.fit import keep_toolbars_whole
from app.gallery_panel import GalleryPanel
from app.icons import RESOURCES, icon
from app.live_panel import LivePanel
from app.model_choices import MODEL_LOAD_ERRORS
from app.recognition_worker import EngineInfo, SourceState, cache_notice
from app.sources import CameraSources, is_camera_spec
from app.status_figures import StatusFigures
from app.themes import apply_theme
from app.window_actions import build_actions
from app.window_dialogs import WindowDialogs
from app.window_parts import LazyTrainerTab, StorageNotices, WarningBanner
from core.settings import Rebuild, Settings, rebuilds, save_settings

__all__ = ["MainWindow", "create_window"]

log = logging.getLogger(__name__)


class MainWindow(QMainWindow):
    """The application window, around an :class:`~app.context.AppContext`; ``autostart`` starts at once."""

    def __init__(self, context: AppContext | Settings, *, autostart: bool = False, **options: Any) -> None:
        super().__init__()
        if isinstance(context, Settings):  # bare settings: a context of its own (``options`` for it)
            context = AppContext.build(context, **options)
        self.setObjectName("MainWindow")
        self.setWindowTitle("GhostFace")
        self.setWindowIcon(QIcon(str(RESOURCES / "icons" / "ghostface.svg")))
        self.context = context
        self._settings = context.settings
        self.controller, self.gallery_controller = context.recognition, context.gallery
        self._closing = False
        self._start_when_probed = False
        # Why the last start could not load its models; shown as the Live view's state until the
        # models change or the next start.
        self._load_error: str | None = None
        self._build_ui()
        self._wire()
        self.live.set_display(self._settings.display)
        self.context.restore_geometry(self, self.live)
        self.sources.show(self._settings.camera.source)
        self._show_idle_state()
        self.probe_cameras()
        if problems := context.startup_problems():
            self.show_warning(problems)
        self._check_history()
        if autostart:
            QTimer.singleShot(0, self.start)

    @property
    def event_bus(self) -> Any:
        """The running plugins (None when they could not start)."""
        return self.context.event_bus

    @property
    def settings(self) -> Settings:
        """The settings in use."""
        return self._settings

    # -- building ---------------------------------------------------------------------------------
    def _build_ui(self) -> None:
        self.banner = WarningBanner()
        self.banner_label = self.banner.label
        self.live = LivePanel()
        self.video_view, self.events_panel = self.live.video_view, self.live.events_panel
        self.gallery_panel = GalleryPanel(self.gallery_controller, self._settings, self)
        self.diagnostics = DiagnosticsView(self)
        self.trainer_holder = LazyTrainerTab(lambda: self._settings)
        self.tabs = QTabWidget()
        self.tabs.setObjectName("MainTabs")
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(self.live, icon("camera"), "Live")
        self.tabs.addTab(self.gallery_panel, icon("people"), "Gallery")
        self.tabs.addTab(self.trainer_holder, icon("train"), "Trainer")
        self.tabs.addTab(self.diagnostics, icon("diagnostics"), "Diagnostics")
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.banner)
        layout.addWidget(self.tabs)
        self.setCentralWidget(central)
        keep_toolbars_whole(self)
        self.figures = StatusFigures(self.statusBar())
        self.notices = StorageNotices(self.show_warning, self.diagnostics.add_error)
        self.dialogs = WindowDialogs(self)
        d = self.dialogs
        self.open_settings, self.open_history, self.open_plugins = d.open_settings, d.open_history, d.open_plugins
        self.menu_actions = build_actions(
            self,
            {
                "start": self.toggle_running,
                "open_video": self.open_video,
                "open_folder": self.open_image_folder,
                "settings": d.open_settings,
                "quit": self.close,
                "history": d.open_history,
                "plugins": d.open_plugins,
                "gallery_folder": d.show_gallery_folder,
                "diagnostics": self.show_diagnostics,
                "about": d.about,
            },
        )
        self.start_action, self.source_combo = self.menu_actions.start, self.menu_actions.source_combo
        self.sources = CameraSources(self.source_combo, self.menu_actions.camera_menu, self)

    def _wire(self) -> None:
        ctl = self.controller
        ctl.frame_ready.connect(self.live.show_result)
        self.figures.follow(ctl, self.gallery_controller)
        self.diagnostics.follow(ctl)
        ctl.stats_ready.connect(self._check_history)  # a history problem is news as soon as it happens
        ctl.engine_ready.connect(self._on_engine)
        self.gallery_controller.people_ready.connect(lambda _: self.notices.check_cache(cache_notice(self.gallery_controller.view)))
        ctl.source_state.connect(self._on_source_state)
        ctl.running_changed.connect(self._on_running_changed)
        self.context.errors.reported.connect(self._on_error)
        if self.context.notifier is not None:
            self.context.notifier.bridge.shown.connect(self._on_notification)
        self.live.open_video.connect(self.open_video)
        self.live.open_folder.connect(self.open_image_folder)
        self.live.retry.connect(self.retry_camera)
        self.live.history_requested.connect(self.dialogs.open_history)
        self.gallery_panel.enroll_requested.connect(self.dialogs.enroll_from_camera)
        self.tabs.currentChanged.connect(self._on_tab_changed)
        self.sources.picker.chosen.connect(self.set_source)
        self.sources.found.connect(self._on_cameras)
        self.trainer_holder.use_model.connect(self.use_trained_model)

    # -- settings ---------------------------------------------------------------------------------
    def apply_settings(self, settings: Settings, *, save: bool = False) -> None:
        """Make ``settings`` live everywhere (pipeline, display, gallery); optionally save them."""
        old, self._settings = self._settings, settings
        models_changed = bool({Rebuild.DETECTOR, Rebuild.EMBEDDER} & set(rebuilds(old, settings)))
        if models_changed and self._load_error is not None:
            self._load_error = None
            if not self.controller.is_running():
                self._show_idle_state()
        self.controller.apply_settings(settings)
        self.live.set_display(settings.display)
        self.gallery_controller.apply_settings(settings)
        self.gallery_panel.set_settings(settings)
        if settings.ui != old.ui:
            apply_theme(settings.ui.theme)
        if save:
            self.save_settings()

    def save_settings(self) -> None:
        """Write the settings file; a failure is shown, never raised."""
        try:
            save_settings(self._settings, self.context.settings_path)
        except OSError as exc:
            self.show_warning(f"The settings could not be saved to {self.context.settings_path}: {exc}")

    # -- sources ----------------------------------------------------------------------------------
    def probe_cameras(self) -> None:
        """Look for cameras in the background; a camera the worker holds counts as found."""
        self.sources.probe(self._settings.camera.source if self.controller.is_running() else None)

    def _on_cameras(self) -> None:
        if not self._closing and not self.controller.is_running() and self.video_view.result is None:
            if self._start_when_probed:
                self._start_when_probed = False
                self.start()
            else:
                self._show_idle_state()

    def set_source(self, spec: str, *, start: bool = True) -> None:
        """Watch ``spec`` (camera index, video file or image folder); saved as the new source."""
        self.live.clear_people()
        self.apply_settings(self._settings.replace(camera={"source": spec}), save=True)
        self.sources.show(spec)
        if start and not self.controller.is_running():
            self.start()
        elif not self.controller.is_running():
            self._show_idle_state()

    def open_video(self) -> None:
        """Ask for a video file and watch it."""
        if path := self.dialogs.ask_video():
            self.set_source(path)

    def open_image_folder(self) -> None:
        """Ask for a folder of images and watch it."""
        if path := self.dialogs.ask_image_folder():
            self.set_source(path)

    def retry_camera(self) -> None:
        """Look for cameras again; start with the first one found (or say again that there is none)."""
        self._start_when_probed = True
        if not is_camera_spec(self._settings.camera.source):
            self.apply_settings(self._settings.replace(camera={"source": "0"}), save=True)
        self.sources.probe(forget=True)
        self._show_idle_state()

    # -- running ----------------------------------------------------------------------------------
    def start(self) -> None:
        """Start recognizing the current source (or show that there is no camera)."""
        if self.sources.none_found(self._settings.camera.source):
            self._show_no_camera()
            return
        # With the probe still running, start anyway: a missing camera is reported by the worker.
        self._load_error = None
        self.live.show_starting()
        self.controller.start(self._settings)

    def stop(self) -> None:
        """Stop recognizing (waits for the worker)."""
        self.controller.stop()

    def toggle_running(self) -> None:
        """What Space does."""
        self.stop() if self.controller.is_running() else self.start()

    def _on_running_changed(self, running: bool) -> None:
        self.start_action.setEnabled(running or self.sources.startable(self._settings.camera.source))
        self.start_action.setText("&Stop" if running else "&Start")
        self.start_action.setIcon(icon("stop" if running else "play"))
        if not running and self.video_view.result is None:
            self._show_idle_state()

    def _show_no_camera(self) -> None:
        self.live.show_no_camera()
        self.statusBar().showMessage("No camera found: open a video file instead (Ctrl+O)")

    def _show_idle_state(self) -> None:
        self.start_action.setEnabled(self.sources.startable(self._settings.camera.source))
        if self._load_error is not None:
            self.live.show_load_error(self._load_error)
        elif self.sources.none_found(self._settings.camera.source):
            self._show_no_camera()
        else:
            self.live.show_idle(self._settings.camera.source, self.sources.cameras)

    # -- worker reports ---------------------------------------------------------------------------
    def _on_engine(self, info: EngineInfo) -> None:
        self.notices.check_cache(info.gallery_cache_notice)
        if info.gallery_people == 0 and not self.gallery_controller.pending:
            message = "The gallery is empty: everyone is Unknown. Add people in the Gallery tab."
            self.statusBar().showMessage(message, 8000)

    def _on_source_state(self, state: str, message: str) -> None:
        timeout = {SourceState.RUNNING: 4000, SourceState.ENDED: 8000}.get(state, 0)
        self.statusBar().showMessage(message, timeout)
        self.live.show_source_state(state, message, self._settings.camera.source)

    def _on_error(self, exc: BaseException) -> None:
        self.diagnostics.add_error(f"{type(exc).__name__}: {exc}")
        self.statusBar().showMessage(f"Error: {exc}", 8000)
        if isinstance(exc, MODEL_LOAD_ERRORS):
            self.dialogs.model_failed(exc)
            if self.controller.frames_received == 0:
                # The run could not start: the Live view says why, instead of a banner over "Ready".
                self._load_error = str(exc)
                self.live.show_load_error(self._load_error)
                return
        if not self.controller.is_running() or self.video_view.result is None:
            self.show_warning(str(exc))

    def _check_history(self, *_stats: object) -> None:
        self.notices.check_history(self.context.history)

    def _on_notification(self, title: str, text: str) -> None:
        self.statusBar().showMessage(f"{title}: {text}", 5000)

    def show_warning(self, text: str) -> None:
        """A visible warning: a banner over the tabs and the status bar."""
        self.banner.show_text(text)
        self.statusBar().showMessage(text.splitlines()[0], 15000)

    # -- tabs -------------------------------------------------------------------------------------
    def show_diagnostics(self) -> None:
        """Bring the Diagnostics tab forward."""
        self.tabs.setCurrentWidget(self.diagnostics)

    def _on_tab_changed(self, index: int) -> None:
        # Each tab brings itself up to date when shown (the trainer tab is built the first time).
        on_show = {
            self.trainer_holder: self.trainer_holder.load,
            self.diagnostics: self.diagnostics.refresh_models,
            self.gallery_panel: self.gallery_panel.refresh,
        }
        if (refresh := on_show.get(self.tabs.widget(index))) is not None:
            refresh()

    @property
    def trainer_tab(self) -> QWidget | None:
        """The trainer tab once it was first shown (None before)."""
        return self.trainer_holder.tab

    def use_trained_model(self, checkpoint: str) -> None:
        """Recognize with a trained GhostFaceNetV2 from now on ("Use this model"), and save that choice.

        The threshold follows the model (a hand-set one belonged to the previous model). The worker builds
        the new embedder and re-embeds the gallery in the background; meanwhile the old model recognizes.
        """
        recognition = {"embedder": f"ghostfacenetv2:{checkpoint}", "threshold_from_model": True}
        self.apply_settings(self._settings.replace(recognition=recognition), save=True)
        name = Path(checkpoint).name
        self.statusBar().showMessage(f"Now recognizing with {name}: the gallery is re-embedded for it", 8000)

    # -- geometry and closing ---------------------------------------------------------------------
    def shutdown(self) -> None:
        """Stop, then wait for, every worker; stop the plugins. Safe to call twice."""
        if self._closing:
            return
        self._closing = True
        self.live.stop_refreshing()
        self.dialogs.close_all()
        self.trainer_holder.shutdown()
        self.context.shutdown()

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt naming
        """Remember the geometry, then stop every worker before the window goes."""
        self.context.save_geometry(self, self.live)
        self.shutdown()
        super().closeEvent(event)


def create_window(
    settings_file: Path | None = None,
    *,
    source: str | None = None,
    gallery: str | None = None,
    system_trash: bool = True,
    autostart: bool = False,
) -> MainWindow:
    """Load the settings (never failing on a bad file), apply command-line overrides, build the window."""
    context = AppContext.load(settings_file, source=source, gallery=gallery, system_trash=system_trash)
    return MainWindow(context, autostart=autostart)
