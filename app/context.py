"""The application context: what the window works with, built once in :mod:`app.main`.

Settings and where they are saved, the event bus with its plugins and history recorder, the workers'
controllers and the error reporter are made here, not by the window, so that the window only lays out
widgets and wires them, and a test can build a window around a context of its own.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings
from PySide6.QtWidgets import QSplitter, QWidget

from app.errors import ErrorReporter
from app.gallery_worker import GalleryController, SyncGallery
from app.notify_plugin import DesktopNotification
from app.recognition_worker import RecognitionController
from core.events import EventBus, create_event_bus, safe_mode_requested
from core.history import History
from core.paths import config_dir, settings_path
from core.settings import Settings, load_settings

__all__ = ["AppContext"]

log = logging.getLogger(__name__)


@dataclass
class AppContext:
    """Everything the main window works with besides its own widgets.

    Attributes:
        settings: the settings to start with.
        settings_path: where OK in the settings dialog saves.
        warnings: problems found in the settings file (the window shows them).
        errors: the one error reporter.
        event_bus: the running plugins and history recorder; None when plugins could not start.
        notifier: the desktop-notification plugin (its bridge lives on the GUI thread), if any.
        recognition: the live recognition worker's controller.
        gallery: the gallery worker's controller.
        window_state: where the window's geometry is remembered.
        history: the event history the bus writes into (None when it could not be opened at all).
    """

    settings: Settings
    settings_path: Path
    warnings: tuple[str, ...]
    errors: ErrorReporter
    event_bus: EventBus | None
    notifier: DesktopNotification | None
    recognition: RecognitionController
    gallery: GalleryController
    window_state: QSettings = field(repr=False)
    history: History | None = None

    @classmethod
    def build(
        cls,
        settings: Settings,
        *,
        warnings: tuple[str, ...] = (),
        settings_path: Path | None = None,
        system_trash: bool = True,
    ) -> AppContext:
        """Start the plugins and make the controllers (no worker thread runs yet); GUI thread only."""
        errors = ErrorReporter()
        notifier = _notifier(errors)
        history = _open_history(errors, settings)
        event_bus = _start_event_bus(settings, notifier, errors, history)
        # One owner per gallery folder: the gallery worker embeds; the live pipeline reads its view.
        gallery = GalleryController(settings)
        gallery.use_system_trash = system_trash
        recognition = RecognitionController(settings, event_bus=event_bus, gallery_view=gallery.view)
        recognition.error.connect(errors.report)
        gallery.gallery_changed.connect(recognition.reload_gallery)
        gallery.submit(SyncGallery())
        return cls(
            settings=settings,
            settings_path=settings_path or default_settings_path(),
            warnings=warnings,
            errors=errors,
            event_bus=event_bus,
            notifier=notifier,
            recognition=recognition,
            gallery=gallery,
            window_state=QSettings(str(config_dir() / "window.ini"), QSettings.Format.IniFormat),
            history=history,
        )

    @classmethod
    def load(
        cls,
        settings_file: Path | None = None,
        *,
        source: str | None = None,
        gallery: str | None = None,
        system_trash: bool = True,
    ) -> AppContext:
        """Load the settings (never failing on a bad file), apply command-line overrides, build."""
        path = settings_file or default_settings_path()
        loaded = load_settings(path)
        settings = loaded.settings
        if source is not None:
            settings = settings.replace(camera={"source": source})
        if gallery is not None:
            settings = settings.replace(gallery_dir=str(Path(gallery).expanduser().resolve()))
        return cls.build(settings, warnings=loaded.warnings, settings_path=path, system_trash=system_trash)

    def startup_problems(self) -> str:
        """What the user must know as the window opens.

        Safe mode first, then what went wrong before the window opened (a bad settings file, plugins that
        did not start).
        """
        problems = list(self.errors.texts)
        if self.warnings:
            text = "The settings file had problems; defaults were used for them: " + "; ".join(self.warnings)
            problems.insert(0, text)
        if safe_mode_requested():
            problems.insert(
                0,
                "Safe mode: plugins from the plugins folder and installed packages are not loaded "
                "(started with --no-plugins or GHOSTFACE_SAFE_MODE)",
            )
        return "; ".join(problems)

    def restore_geometry(self, window: QWidget, splitter: QSplitter) -> None:
        """Put the window and its splitter back where the user left them (a default size the first time)."""
        geometry = self.window_state.value("geometry")
        if isinstance(geometry, QByteArray) and not geometry.isEmpty():
            window.restoreGeometry(geometry)
        else:
            window.resize(1280, 800)
        # Never larger than the screen it opens on (a small laptop, 150 % scaling, a smaller monitor).
        if (screen := window.screen()) is not None:
            available = screen.availableGeometry().size()
            if window.width() > available.width() or window.height() > available.height():
                window.resize(window.size().boundedTo(available))
        state = self.window_state.value("live_splitter")
        if isinstance(state, QByteArray):
            splitter.restoreState(state)

    def save_geometry(self, window: QWidget, splitter: QSplitter) -> None:
        """Remember the window's geometry and its splitter for the next start."""
        self.window_state.setValue("geometry", window.saveGeometry())
        self.window_state.setValue("live_splitter", splitter.saveState())
        self.window_state.sync()

    def shutdown(self) -> None:
        """Stop, then wait for, every worker; then stop the plugins. Safe to call twice."""
        self.recognition.stop()
        self.gallery.cancel()
        self.gallery.stop()
        if self.event_bus is not None:
            self.event_bus.stop()
            self.event_bus = None
        if self.history is not None:
            self.history.close()  # writes the events still kept in memory, if it can
            self.history = None


def default_settings_path() -> Path:
    """Where the settings live unless a file is named."""
    return settings_path()


def _notifier(errors: ErrorReporter) -> DesktopNotification | None:
    try:
        # Made here, on the GUI thread: its bridge must belong to this thread.
        return DesktopNotification()
    except RuntimeError as exc:  # no system tray: recognition works without notifications
        log.warning("desktop notifications unavailable: %s", exc)
        return None


def _open_history(errors: ErrorReporter, settings: Settings | None = None) -> History | None:
    try:
        if settings is not None and settings.store.backend == "postgresql":
            from core.engine import open_shared_history

            # The site's history on the server; this station's events wait in a local outbox whenever
            # the server cannot be reached, so this never stops recognition. This is the GUI thread: the
            # server (which may take the whole connect timeout to not answer) is checked by the outbox's.
            return open_shared_history(settings, check_now=False)  # type: ignore[return-value]
        # A short wait on a history another program holds locked: this runs on the GUI thread. It
        # then opens read-only, and new events wait in memory until the lock is gone.
        return History(busy_timeout_s=2.0)
    except Exception as exc:  # noqa: BLE001 - recognition works without a history; the user is told why
        log.warning("the event history is not available: %s", exc)
        errors.texts.append(f"The event history is not available: {exc}")
        return None


def _start_event_bus(
    settings: Settings,
    notifier: DesktopNotification | None,
    errors: ErrorReporter,
    history: History | None = None,
) -> EventBus | None:
    """The plugins as configured, plus the history recorder, each on its dispatch thread."""
    try:
        extra: list[object] = [notifier] if notifier is not None else []
        # The same assembly as `ghostface run --plugins`; folder and installed plugins are found on a
        # thread of their own (each imported in its own process), so none delays the window. The
        # history is the context's own, so that the window can say what happened to it.
        return create_event_bus(
            settings, extra_builtins=extra, background=True, history=history if history is not None else False
        )
    except Exception as exc:  # noqa: BLE001 - recognition works without plugins; the user is told why
        log.warning("plugins are not available: %s", exc)
        errors.texts.append(f"Plugins are not available: {exc}")
        return None
