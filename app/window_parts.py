"""Small parts of the main window that keep a job of their own: the warning banner, the lazy trainer tab."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QEvent, Qt, Signal
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QStackedWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

if TYPE_CHECKING:
    from core.history import History

__all__ = ["LazyTrainerTab", "WarningBanner"]

log = logging.getLogger(__name__)


class WarningBanner(QWidget):
    """A dismissable warning over the tabs (a bad settings file, an error while nothing is shown).

    However long the message (a traceback, a list of files), the banner keeps a fixed height: it shows
    the text on three lines at most, shortened, and "Details" puts the whole text in its place, in a small
    scrolling box. A banner that grew with its text would grow the window past the screen.
    """

    MAX_CHARS = 240  # of the short text; the whole text is in the details
    LINES = 3  # the short text's height, in lines

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("WarningBanner")
        self.full_text = ""
        self.label = QLabel()
        self.label.setObjectName("WarningBannerText")
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        # Ignored: the label's height comes from the fixed maximum below, never from its text.
        self.label.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Ignored)
        self.details_button = QPushButton("Details")
        self.details_button.setObjectName("BannerDetails")
        self.details_button.setCheckable(True)
        self.details_button.setToolTip("Show the whole message")
        self.details_button.toggled.connect(self._show_details)
        close = QToolButton()
        close.setText("✕")
        close.setToolTip("Hide this message")
        close.clicked.connect(self.hide)
        self.details = QPlainTextEdit()
        self.details.setObjectName("WarningBannerDetails")
        self.details.setReadOnly(True)
        # The short text or, on "Details", the whole text in its place, at one fixed height.
        self.text_stack = QStackedWidget()
        self.text_stack.addWidget(self.label)
        self.text_stack.addWidget(self.details)
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.text_stack, 1)
        row.addWidget(self.details_button, 0, Qt.AlignmentFlag.AlignTop)
        row.addWidget(close, 0, Qt.AlignmentFlag.AlignTop)
        column = QVBoxLayout(self)
        column.setContentsMargins(10, 6, 6, 6)
        column.addLayout(row)
        self._fix_heights()
        self.hide()

    def _fix_heights(self) -> None:
        # The details box takes the short text's place at the same height: toggling moves nothing.
        self.text_stack.setFixedHeight(self.LINES * self.fontMetrics().lineSpacing() + 8)

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802 - Qt naming
        """A new font or style (theme, scale) changes the line height the fixed heights are made of."""
        if event.type() in (QEvent.Type.FontChange, QEvent.Type.StyleChange):
            self._fix_heights()
        super().changeEvent(event)

    def show_text(self, text: str) -> None:
        """Show ``text`` until the user closes it: shortened to fit, the whole of it in the details."""
        self.full_text = text
        short = " ".join(text.split())
        if len(short) > self.MAX_CHARS:
            short = short[: self.MAX_CHARS - 1].rstrip() + "…"
        self.label.setText(short)
        self.label.setToolTip(text if len(text) <= 1000 else text[:1000] + "…")
        self.details.setPlainText(text)
        self.details_button.setVisible(short.endswith("…") or "\n" in text.strip())
        self.details_button.setChecked(False)
        self.show()

    def _show_details(self, shown: bool) -> None:
        self.text_stack.setCurrentWidget(self.details if shown else self.label)
        self.details_button.setText("Hide details" if shown else "Details")


class LazyTrainerTab(QWidget):
    """Holds the trainer tab, built the first time it is shown.

    The trainer loads torch, which recognition with SFace never needs. A build without the trainer
    shows why instead.

    Signals:
        use_model(str): the trainer tab's "Use this model", with the checkpoint path.
    """

    use_model = Signal(str)

    def __init__(self, settings: Callable[[], Any] | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        QVBoxLayout(self).setContentsMargins(0, 0, 0, 0)
        self.tab: QWidget | None = None
        self._settings = settings  # the window's settings in use (the trainer aligns with its detector)

    def load(self) -> QWidget:
        """The trainer tab (built now if it was not yet)."""
        if self.tab is not None:
            return self.tab
        try:
            from app.trainer_tab import TrainerTab

            tab: QWidget = TrainerTab(settings=self._settings)
            tab.use_model.connect(self.use_model)
        except ImportError as exc:  # a bundle built without the trainer
            log.warning("trainer tab unavailable: %s", exc)
            tab = QLabel(f"The trainer is not available:\n\n{type(exc).__name__}: {exc}")
            tab.setObjectName("TrainerUnavailable")
            tab.setAlignment(Qt.AlignmentFlag.AlignCenter)
            tab.setWordWrap(True)
        # In a scroll area: the form never sets the window's smallest height on a small screen.
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setWidget(tab)
        self.layout().addWidget(scroll)
        self.tab = tab
        return tab

    def shutdown(self) -> None:
        """Stop a running training (it saves its checkpoint first)."""
        if self.tab is not None and hasattr(self.tab, "shutdown"):
            self.tab.shutdown()


class StorageNotices:
    """Says once, in the window's banner and Diagnostics, when the history or the gallery cache failed.

    A history that was damaged and moved aside, or that cannot be written now (full, locked, read-only
    disk: the events wait in memory), and an embedding cache that could not be used: each notice is
    shown when it first appears or changes, not on every statistics tick.
    """

    def __init__(self, show: Callable[[str], None], log_error: Callable[[str], None]) -> None:
        self._show = show
        self._log_error = log_error
        self._history_notice: str | None = None
        self._cache_notice = ""

    def check_history(self, history: History | None) -> None:
        """Show a history that was recovered, or that cannot be written now (once each)."""
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
            self._show(notice)
            self._log_error(notice)
        self._history_notice = notice

    def check_cache(self, notice: str) -> None:
        """Show the gallery cache's problem when it is new."""
        if notice and notice != self._cache_notice:
            self._show(notice)
            self._log_error(notice)
        self._cache_notice = notice
