"""The one error reporter: every exception the user should hear of ends here, as an object.

Workers emit their exceptions (controllers relay them); anything uncaught, on the GUI thread
(``sys.excepthook``) or on any Python thread (``threading.excepthook``), is routed here too, so that
no failure is only a line on a terminal nobody reads. The reporter keeps the texts for the
diagnostics view and emits ``reported`` on the GUI thread, where the window shows it.
"""

from __future__ import annotations

import logging
import sys
import threading
import traceback
from types import TracebackType

from PySide6.QtCore import QObject, Signal, Slot

__all__ = ["ErrorReporter"]

log = logging.getLogger(__name__)


class ErrorReporter(QObject):
    """Collects errors and announces each one on the GUI thread.

    Signals:
        reported(BaseException): one error, on the GUI thread.
    """

    reported = Signal(object)
    # Exceptions from other threads come in through this relay, so that ``report`` runs on the GUI thread.
    _from_thread = Signal(object)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.texts: list[str] = []
        self._from_thread.connect(self.report)
        self._previous: tuple[object, object] | None = None

    @Slot(object)
    def report(self, exc: BaseException) -> None:
        """Record ``exc`` and announce it (call on the GUI thread; other threads go through the hooks)."""
        text = f"{type(exc).__name__}: {exc}"
        self.texts.append(text)
        self.reported.emit(exc)

    def install(self) -> None:
        """Route uncaught exceptions of every thread here (until :meth:`uninstall`)."""
        self._previous = (sys.excepthook, threading.excepthook)
        sys.excepthook = self._excepthook
        threading.excepthook = self._thread_excepthook

    def uninstall(self) -> None:
        """Put the previous hooks back."""
        if self._previous is not None:
            sys.excepthook, threading.excepthook = self._previous  # type: ignore[assignment]
            self._previous = None

    def _excepthook(self, kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        if issubclass(kind, KeyboardInterrupt):
            sys.__excepthook__(kind, exc, tb)
            return
        log.error("uncaught exception:\n%s", "".join(traceback.format_exception(kind, exc, tb)))
        # Emitted, not called: this hook may run on any thread; the relay delivers on the GUI thread.
        self._from_thread.emit(exc)

    def _thread_excepthook(self, args: threading.ExceptHookArgs) -> None:
        if args.exc_value is None:
            return
        name = args.thread.name if args.thread is not None else "?"
        log.error(
            "uncaught exception in thread %s:\n%s",
            name,
            "".join(traceback.format_exception(args.exc_type, args.exc_value, args.exc_traceback)),
        )
        self._from_thread.emit(args.exc_value)
