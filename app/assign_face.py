"""From unknown to known in one step: assign a face seen in the video to a gallery person.

A face in Live's people list, an Events row or a History row gets an "Assign to person…" action. The
dialog shows the face and takes an existing person or a new name; the gallery worker then checks the
face (a detector must find it, large and sharp enough), saves it as a new photo of that person and
re-embeds, so the live pipeline knows the person from the next frame on. A face too small or blurred
is refused with the reason, and nothing is saved.

Live's people list has no pictures of its own: :class:`FaceMemory` keeps the latest sighting of every face
label it saw (fed from the recognition controller's ``frame_ready``; nothing is copied per frame, and
nothing is decoded on the GUI thread).
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import cv2
import numpy as np
from PySide6.QtCore import QObject, QPoint, Qt, Slot
from PySide6.QtGui import QAction, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QMenu,
    QVBoxLayout,
    QWidget,
)

from app.fit import fit_to_screen
from app.gallery_jobs import listen_to_jobs, stop_listening_to_jobs
from app.gallery_worker import AssignFace, GalleryController, GalleryJobResult
from app.video_view import _qimage
from core.types import Face, FrameResult, RecognitionEvent

__all__ = ["AssignFaceDialog", "FaceAssigner", "FaceMemory", "live_label"]

log = logging.getLogger(__name__)

ASSIGN_TEXT = "Assign to person…"
# A live crop is the face box grown by this on every side (the gallery's detector needs some context),
# its longer side at most CROP_MAX_PX.
CROP_MARGIN = 0.5
CROP_MAX_PX = 320
PREVIEW_PX = 160
_FACE_AT = "_assign_face_at"  # the attribute of an attached view that gives a row's face


def live_label(face: Face) -> str:
    """The name Live's people list shows for a face (the person, or "Unknown #12" once numbered)."""
    return face.label


def _face_crop(frame: np.ndarray, box: np.ndarray) -> np.ndarray | None:
    h, w = frame.shape[:2]
    x1, y1, x2, y2 = (float(v) for v in box[:4])
    mx, my = (x2 - x1) * CROP_MARGIN, (y2 - y1) * CROP_MARGIN
    left, top = max(0, int(x1 - mx)), max(0, int(y1 - my))
    right, bottom = min(w, int(x2 + mx)), min(h, int(y2 + my))
    if right <= left or bottom <= top:
        return None
    crop = frame[top:bottom, left:right]
    scale = CROP_MAX_PX / max(crop.shape[:2])
    if scale < 1.0:
        return cv2.resize(crop, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    return crop.copy()


class FaceMemory:
    """The latest sighting of each face label seen live (at most ``max_labels``, the oldest forgotten).

    Nothing is copied per frame: the latest result is kept (the video view holds it anyway), and a face
    is cut out of it only when it leaves the view or is asked for.

    Args:
        label_of: the label of a face, as Live's people list names it.
        max_labels: labels remembered.
    """

    def __init__(self, label_of: Callable[[Face], str] = live_label, max_labels: int = 64) -> None:
        self._label_of = label_of
        self._max = max_labels
        self._crops: OrderedDict[str, np.ndarray] = OrderedDict()
        self._frame: np.ndarray | None = None
        self._in_view: dict[str, np.ndarray] = {}  # label -> box in the latest frame

    def update(self, result: FrameResult) -> None:
        """Remember the faces of one result; cut out those that have just left the view."""
        in_view = {self._label_of(face): face.detection.box for face in result.faces}
        if self._frame is not None:
            for label, box in self._in_view.items():
                if label not in in_view:
                    self._keep(label, _face_crop(self._frame, box))
        self._frame, self._in_view = result.frame, in_view

    def _keep(self, label: str, crop: np.ndarray | None) -> None:
        if crop is None:
            return
        self._crops[label] = crop
        self._crops.move_to_end(label)
        while len(self._crops) > self._max:
            self._crops.popitem(last=False)

    def crop(self, label: str) -> np.ndarray | None:
        """The latest ``(h, w, 3) uint8`` BGR crop of ``label``, or None."""
        box = self._in_view.get(label)
        if box is not None and self._frame is not None:
            return _face_crop(self._frame, box)
        return self._crops.get(label)

    def clear(self) -> None:
        """Forget every face."""
        self._crops.clear()
        self._frame, self._in_view = None, {}


def _pixmap(image: np.ndarray | None = None, jpeg: bytes = b"") -> QPixmap:
    if image is not None:
        return QPixmap.fromImage(_qimage(np.ascontiguousarray(image)).copy())
    pixmap = QPixmap()
    if jpeg:
        pixmap.loadFromData(jpeg, "JPG")
    return pixmap


class AssignFaceDialog(QDialog):
    """Show a face and ask whose it is; the gallery worker checks it and saves it.

    The dialog stays open with the reason when the face is refused (too small, blurred, no face).

    Args:
        controller: the gallery controller that saves the face.
        people: the gallery's names, offered first.
        image: the face as a BGR crop, or None with ``jpeg``.
        jpeg: the face as JPEG bytes (an event's thumbnail).
        name: the name to suggest ("" for none).
    """

    def __init__(
        self,
        controller: GalleryController,
        people: list[str],
        *,
        image: np.ndarray | None = None,
        jpeg: bytes = b"",
        name: str = "",
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Assign to person")
        self.setObjectName("AssignFaceDialog")
        self.setMinimumWidth(380)
        self._controller = controller
        self._image, self._jpeg = image, jpeg
        self._people = list(people)
        self._job: AssignFace | None = None
        self.result_value: Any = None

        self.picture = self._build_picture(_pixmap(image, jpeg))
        self.name_box = self._build_name_box(people, name)
        self.message = QLabel("The face is saved as a new photo of this person in the gallery folder.")
        self.message.setObjectName("AssignFaceMessage")
        self.message.setWordWrap(True)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Assign")
        self.buttons.accepted.connect(self.assign)
        self.buttons.rejected.connect(self.reject)
        form = QFormLayout()
        form.addRow("Person", self.name_box)
        layout = QVBoxLayout(self)
        layout.addWidget(self.picture)
        layout.addLayout(form)
        layout.addWidget(self.message)
        layout.addWidget(self.buttons)
        listen_to_jobs(controller, self._on_finished, self._on_failed)
        self._update_ok()
        self.adjustSize()
        fit_to_screen(self)  # a small laptop at 150 %

    @staticmethod
    def _build_picture(pixmap: QPixmap) -> QLabel:
        """The face, scaled down to the preview size (an empty square when it cannot be shown)."""
        picture = QLabel()
        picture.setObjectName("AssignFacePicture")
        picture.setAlignment(Qt.AlignmentFlag.AlignCenter)
        picture.setMinimumSize(PREVIEW_PX, PREVIEW_PX)
        if not pixmap.isNull():
            picture.setPixmap(
                pixmap.scaled(
                    PREVIEW_PX,
                    PREVIEW_PX,
                    Qt.AspectRatioMode.KeepAspectRatio,
                    Qt.TransformationMode.SmoothTransformation,
                )
            )
        return picture

    def _build_name_box(self, people: list[str], name: str) -> QComboBox:
        """The person's name: a gallery person picked from the list, or a new name typed in."""
        box = QComboBox()
        box.setEditable(True)
        box.addItems(sorted(people, key=str.casefold))
        box.setEditText(name)
        box.lineEdit().setPlaceholderText("A person of the gallery, or a new name")
        box.setToolTip("Pick a person of the gallery, or type a new name to add a new person")
        box.editTextChanged.connect(lambda _t: self._update_ok())
        return box

    def _update_ok(self) -> None:
        ok = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        name = self.name_box.currentText().strip()
        ok.setEnabled(self._job is None and bool(name))
        if self._job is None and name and not self.message.text().startswith("Not added"):
            known = name.casefold() in {p.casefold() for p in self._people}
            self.message.setText(
                f"The face is saved as a new photo of {name} in the gallery folder."
                if known
                else f"{name} is not in the gallery yet: a new person is added with this face."
            )

    @Slot()
    def assign(self, name: str | None = None) -> None:
        """Send the face to the gallery worker as a photo of ``name`` (the name box by default)."""
        if name is not None:
            self.name_box.setEditText(name)
        person = self.name_box.currentText().strip()
        if not person or self._job is not None:
            return
        self._job = AssignFace(person, self._image, self._jpeg)
        self.message.setText(f"Checking the face and adding it to {person}…")
        self._update_ok()
        self._controller.submit(self._job)

    @Slot(object)
    def _on_finished(self, result: GalleryJobResult) -> None:
        if self._job is None or result.job is not self._job:
            return
        self._job = None
        self.result_value = result.value
        if result.value.ok:
            log.info("face assigned to %s: %s", result.value.person, result.value.path)
            self.accept()
            return
        self.message.setText(f"Not added: {result.value.message}")
        self._update_ok()

    @Slot(object, object)
    def _on_failed(self, job: object, exc: BaseException) -> None:
        if job is not self._job or self._job is None:
            return
        self._job = None
        self.result_value = exc
        self.message.setText(f"Not added: {exc}")
        self._update_ok()

    def done(self, result: int) -> None:
        """Stop listening to the gallery worker, then close."""
        stop_listening_to_jobs(self._controller, self._on_finished, self._on_failed)
        super().done(result)


class FaceAssigner(QObject):
    """Adds "Assign to person…" to the Live people list, the Events table and History tables.

    Args:
        controller: the gallery controller (saves the faces; its people are offered in the dialog).
        parent: the dialogs' parent window.
    """

    def __init__(self, controller: GalleryController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._controller = controller
        self._window = parent
        self.memory = FaceMemory()
        self.people: list[str] = []
        self.dialog: AssignFaceDialog | None = None
        controller.people_ready.connect(self._on_people)

    @Slot(object)
    def _on_people(self, people: list[Any]) -> None:
        self.people = [p.name for p in people]

    def open_dialog(
        self, *, image: np.ndarray | None = None, jpeg: bytes = b"", name: str = ""
    ) -> AssignFaceDialog:
        """Open the dialog for one face (a BGR crop or a JPEG); ``name`` suggested when known."""
        dialog = AssignFaceDialog(
            self._controller, self.people, image=image, jpeg=jpeg, name=name, parent=self._window
        )
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()
        self.dialog = dialog
        return dialog

    def attach_live(self, people_view: QAbstractItemView, frame_source: Any) -> None:
        """Remember the live faces from ``frame_source.frame_ready`` and add the action to ``people_view``."""
        frame_source.frame_ready.connect(self.memory.update)
        self._attach(people_view, lambda row: self._live_face(people_view, row))

    def attach_events(
        self, table: QAbstractItemView, event_at: Callable[[int], RecognitionEvent | None]
    ) -> None:
        """Add the action to a table of events; ``event_at(row)`` gives a row's event."""
        self._attach(table, lambda row: self._event_face(event_at(row)))

    def face_at(self, view: QAbstractItemView, row: int) -> dict[str, Any] | None:
        """What "Assign to person…" offers for ``row`` of an attached ``view`` (None: no picture kept)."""
        face_at: Callable[[int], dict[str, Any] | None] = getattr(view, _FACE_AT)
        return face_at(row)

    def _live_face(self, view: QAbstractItemView, row: int) -> dict[str, Any] | None:
        label = str(view.model().index(row, 0).data() or "")
        crop = self.memory.crop(label)
        if crop is None:
            return None
        return {"image": crop, "name": "" if label.startswith("Unknown") else label}

    @staticmethod
    def _event_face(event: RecognitionEvent | None) -> dict[str, Any] | None:
        if event is None or not event.thumbnail:
            return None
        return {"jpeg": event.thumbnail, "name": event.person or ""}

    def _attach(self, view: QAbstractItemView, face_at: Callable[[int], dict[str, Any] | None]) -> None:
        # Kept on the view itself, not here: a closed History window goes with its rows' faces.
        setattr(view, _FACE_AT, face_at)
        view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        view.customContextMenuRequested.connect(lambda pos: self._menu(view, pos))

    def _menu(self, view: QAbstractItemView, pos: QPoint) -> QMenu | None:
        index = view.indexAt(pos)
        if not index.isValid():
            return None
        face = self.face_at(view, index.row())
        popup = QMenu(view)
        popup.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        action = QAction(ASSIGN_TEXT if face is not None else ASSIGN_TEXT + " (no picture kept)", popup)
        action.setEnabled(face is not None)
        if face is not None:
            action.triggered.connect(lambda _checked=False: self.open_dialog(**face))
        popup.addAction(action)
        popup.popup(view.viewport().mapToGlobal(pos))
        return popup
