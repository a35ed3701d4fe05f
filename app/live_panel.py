"""The Live tab: the video with its overlay (or why there is none), who is in view, and the events.

It only draws what the recognition worker sends and says what the source is doing; the window decides
what to start and stop.
"""

from __future__ import annotations

import gc
import logging
import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QHeaderView,
    QLabel,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.events_panel import EventsPanel
from app.fit import columns_width
from app.icons import icon
from app.people_seen import PeopleSeen, face_tooltip
from app.recognition_worker import SourceState
from app.sources import is_camera_spec
from app.video_view import KNOWN_COLOUR, UNKNOWN_COLOUR, VideoView, similarity_text
from core.settings import DisplaySettings
from core.types import Face, FrameResult

__all__ = ["EmptyState", "LivePanel", "PeopleInView"]

log = logging.getLogger(__name__)

# Seconds a face stays in the "in view" list after its last sighting (greyed out), so that a face the
# detector misses for a frame or two does not blink in and out; "Seen" keeps everyone for the run.
LINGER_S = 1.0
# The people list is redrawn at most this often (ms): a list redraw per frame would waste the GUI thread.
PEOPLE_REFRESH_MS = 250
GONE_COLOUR = QColor("#6e7681")


def _listed(face: Face) -> bool:
    """Whether "In view" lists the face: a known person, or a numbered unknown one.

    A young unknown track is not a person yet (it gets a number once its Unknown is confirmed, or a
    name); listing it would make the list flicker with every passing false detection.
    """
    return face.person is not None or face.unknown_id > 0


class PeopleInView(QTreeWidget):
    """Who is in view now, and since when (wall-clock and video time); each row's tooltip says why.

    A new stream (a looping video's next pass) empties the list: everyone in it has left.
    """

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
        self.setToolTip("Who is in view now; grey: just out of view. Hover over a name to see why.")
        # key -> [display name, similarity, first wall time, last wall time, first stream s, last stream s,
        #         tooltip]
        self._seen: dict[str, list[Any]] = {}
        self._in_view: set[str] = set()
        self._stream_id: int | None = None
        self._dirty = False

    def clear_people(self) -> None:
        """Forget everyone (a new run, a new source, or a new stream)."""
        self._seen.clear()
        self._in_view.clear()
        self._stream_id = None
        self._dirty = False
        self.clear()

    def names_in_view(self) -> list[str]:
        """The names in the latest frame, sorted."""
        return sorted(self._seen[k][0] for k in self._in_view)

    def names_listed(self) -> list[str]:
        """Every name listed: in view now, or just out of view."""
        return sorted(entry[0] for entry in self._seen.values())

    def tooltip_of(self, name: str) -> str:
        """The tooltip of ``name``'s row as it will be drawn ("" when not listed)."""
        return next((e[6] for e in self._seen.values() if e[0] == name), "")

    def update_from(self, result: FrameResult) -> None:
        """Record who is in this result; the list is redrawn by :meth:`refresh`, at most every 250 ms."""
        if self._stream_id is not None and result.stream_id != self._stream_id:
            self.clear_people()  # the stream ended: everyone left, and a new visit starts for each
        self._stream_id = result.stream_id
        now = time.time()
        in_view = set()
        for face in filter(_listed, result.faces):
            key = face.label
            in_view.add(key)
            entry = self._seen.get(key)
            if entry is None:
                entry = self._seen[key] = [face.label, 0.0, now, now, result.timestamp, result.timestamp, ""]
            entry[0], entry[1], entry[3], entry[5] = face.label, face.similarity, now, result.timestamp
            entry[6] = face_tooltip(face)
        self._in_view = in_view
        for key in [k for k, e in self._seen.items() if now - e[3] > LINGER_S]:
            del self._seen[key]
        self._dirty = True

    def refresh(self) -> None:
        """Redraw the list if anything changed since the last redraw."""
        if not self._dirty:
            return
        self._dirty = False
        rows = sorted(
            self._seen.items(),
            key=lambda kv: (kv[0] not in self._in_view, kv[1][0].startswith("Unknown"), kv[0]),
        )
        self.setUpdatesEnabled(False)
        try:
            while self.topLevelItemCount() > len(rows):
                self.takeTopLevelItem(self.topLevelItemCount() - 1)
            for i, (key, (name, sim, first, last, first_s, last_s, tip)) in enumerate(rows):
                item = self.topLevelItem(i) or QTreeWidgetItem(self)
                texts = [
                    name,
                    similarity_text(sim),
                    time.strftime("%H:%M:%S", time.localtime(first)),
                    time.strftime("%H:%M:%S", time.localtime(last)),
                ]
                # Only what changed: every setText is a relayout of the row.
                for col, text in enumerate(texts):
                    if item.text(col) != text:
                        item.setText(col, text)
                item.setToolTip(0, tip)
                item.setToolTip(1, tip)
                item.setToolTip(2, f"{first_s:.1f} s into the video")
                item.setToolTip(3, f"{last_s:.1f} s into the video")
                colour = UNKNOWN_COLOUR if name.startswith("Unknown") else KNOWN_COLOUR
                shown = colour if key in self._in_view else GONE_COLOUR
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
        """Say why there is no video; offer the camera retry only when the source is a camera."""
        self.title.setText(title)
        self.message.setText(message)
        self.retry_button.setVisible(camera)


class LivePanel(QSplitter):
    """The Live tab: the video (or the empty state) beside who is in view and the recent events.

    Signals:
        open_video, open_folder, retry: the empty state's buttons.
        history_requested: the events panel's "History…" button.
    """

    open_video = Signal()
    open_folder = Signal()
    retry = Signal()
    history_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(Qt.Orientation.Horizontal, parent)
        self.setObjectName("LiveSplitter")
        self.video_view = VideoView()
        self.empty_state = EmptyState()
        self.empty_state.open_video.connect(self.open_video)
        self.empty_state.open_folder.connect(self.open_folder)
        self.empty_state.retry.connect(self.retry)
        self.live_stack = QStackedWidget()
        self.live_stack.addWidget(self.empty_state)
        self.live_stack.addWidget(self.video_view)
        self.people = PeopleInView()
        self.seen = PeopleSeen()
        self.events_panel = EventsPanel()
        self.events_panel.history_requested.connect(self.history_requested)
        side = QWidget()
        side_layout = QVBoxLayout(side)
        side_layout.setContentsMargins(0, 0, 0, 0)
        sections = (("In view", self.people, 2), ("Seen", self.seen, 2), ("Events", self.events_panel, 3))
        # Three lists share the side's height: each may shrink to a few rows, so that the window's smallest
        # height stays within a 1366x768 screen at 150 % even with the warning banner shown above.
        rows = self.fontMetrics().height()
        for title, widget, stretch in sections:
            widget.setMinimumHeight(rows * 4)
            label = QLabel(title)
            label.setObjectName("SectionTitle")
            side_layout.addWidget(label)
            side_layout.addWidget(widget, stretch)
        self.addWidget(self.live_stack)
        self.addWidget(side)
        self.setStretchFactor(0, 3)
        self.setStretchFactor(1, 1)
        self.setSizes([860, 420])
        side.setMinimumWidth(columns_width(self.people, self.fontMetrics().horizontalAdvance("M") * 18))
        self._gc_frozen = False
        self._people_timer = QTimer(self)
        self._people_timer.setInterval(PEOPLE_REFRESH_MS)
        self._people_timer.timeout.connect(self.people.refresh)
        self._people_timer.timeout.connect(self.seen.refresh)
        self._people_timer.start()

    def set_display(self, display: DisplaySettings) -> None:
        """Draw the overlay this way from now on (boxes, landmarks, mirror...)."""
        self.video_view.set_display(display)

    def show_result(self, result: FrameResult) -> None:
        """Draw one result: the frame and its faces, who is in view, the new events."""
        if not self._gc_frozen:
            # Models and modules are loaded by now: move every object that exists into the permanent
            # generation, so that a full garbage collection (which holds the GIL) stays short.
            self._gc_frozen = True
            gc.freeze()
        if self.live_stack.currentWidget() is not self.video_view:
            self.live_stack.setCurrentWidget(self.video_view)
        self.video_view.show_result(result)
        self.people.update_from(result)
        self.seen.update_from(result)
        if result.events:
            self.events_panel.add_events(list(result.events))

    def clear_people(self) -> None:
        """Forget who is in view and who was seen (a new source)."""
        self.people.clear_people()
        self.seen.clear_people()

    def show_starting(self) -> None:
        """A new run begins: forget who was in view and who was seen, show the video area."""
        self.clear_people()
        self.video_view.clear("Starting…")
        self.live_stack.setCurrentWidget(self.video_view)

    def show_idle(self, spec: str, cameras: list[int] | None) -> None:
        """Nothing runs: say what Start would watch (or that the cameras are still being looked for)."""
        self.live_stack.setCurrentWidget(self.empty_state)
        if is_camera_spec(spec) and cameras is None:
            self.empty_state.show_state("Looking for cameras…", "", camera=False)
        elif is_camera_spec(spec) and not cameras:
            self.show_no_camera()
        else:
            what = f"camera {spec}" if is_camera_spec(spec) else (Path(spec).name or "nothing")
            self.empty_state.show_state(
                "Ready",
                f"Press Start (Space) to recognize faces in {what}, or open another source.",
                camera=False,
            )

    def show_load_error(self, message: str) -> None:
        """The models could not be loaded: that is the state of the view, not "Ready"."""
        self.live_stack.setCurrentWidget(self.empty_state)
        self.empty_state.show_state(
            "The models could not be loaded",
            f"{message}\n\nChoose another model in Settings (Ctrl+,), or locate its file there.",
            camera=False,
        )

    def show_no_camera(self) -> None:
        """The first-class "no camera" state: what to do instead."""
        self.live_stack.setCurrentWidget(self.empty_state)
        self.empty_state.show_state(
            "No camera found",
            "GhostFace did not find a camera on this computer. Open a video file or a folder of images "
            "instead, or connect a camera and try again.",
            camera=True,
        )

    def show_source_state(self, state: str, message: str, spec: str) -> None:
        """The worker's word on the source: opening is said over the video, a problem as :meth:`show_source_problem`."""
        if state == SourceState.OPENING:
            self.video_view.set_message(message)
        elif state in (SourceState.LOST, SourceState.UNAVAILABLE):
            # The worker retries by itself; say so, and offer a file meanwhile.
            self.show_source_problem(state, message, spec)

    def show_source_problem(self, state: str, message: str, spec: str) -> None:
        """A lost or unavailable source (the worker retries by itself): say so over the video or instead."""
        if self.video_view.result is None or state == SourceState.UNAVAILABLE:
            self.live_stack.setCurrentWidget(self.empty_state)
            title = "Camera lost" if state == SourceState.LOST else "Cannot open the source"
            self.empty_state.show_state(title, message, camera=is_camera_spec(spec))
        else:
            self.video_view.set_message(message)

    def stop_refreshing(self) -> None:
        """The window closes: no more list redraws."""
        self._people_timer.stop()
