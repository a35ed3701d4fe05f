"""One person's photos: each photo's face, its quality, how well it agrees with the others; remove one.

The review runs in the gallery worker (:class:`app.gallery_worker.ReviewPerson`, which calls
:func:`core.person_review.review_person`); removing a photo is :class:`app.gallery_worker.RemovePhoto`
(to the system trash, else the app's backup folder), and a group photo's face is picked with
:class:`app.face_picker.FacePickerDialog`. A photo whose face disagrees with the person's other photos
is flagged: a wrong photo in the folder is the commonest gallery error.
"""

from __future__ import annotations

import logging
from typing import Any

from PySide6.QtCore import QSize, Qt, Slot
from PySide6.QtGui import QBrush, QColor, QIcon, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.face_picker import FacePickerDialog
from app.fit import fit_to_screen
from app.gallery_jobs import listen_to_jobs, stop_listening_to_jobs
from app.gallery_worker import GalleryController, GalleryJobResult, RemovePhoto, ReviewPerson
from core.enrollment import GuideConfig
from core.gallery import PhotoStatus
from core.person_review import PersonReview, PhotoReview

__all__ = ["PersonView"]

log = logging.getLogger(__name__)

FACE_PX = 72
_FLAG = QColor("#ff7b72")
_MUTED = QColor("#8b949e")
# Photos whose face the user can pick (again).
_PICKABLE = frozenset({PhotoStatus.SEVERAL_FACES, PhotoStatus.CHOICE_LOST})


def _quality_text(photo: PhotoReview) -> str:
    """Face size and sharpness in words, judged as the camera enrolment judges a shot."""
    if photo.face_px <= 0:
        return ""
    guide = GuideConfig()
    size = f"{photo.face_px:.0f} px" + (" (small)" if photo.face_px < guide.min_face_px else "")
    return f"{size}, {'sharp' if photo.sharpness >= guide.min_sharpness else 'blurred'}"


def _quality_tip(photo: PhotoReview) -> str:
    if photo.face_px <= 0:
        return "No face in this photo"
    guide = GuideConfig()
    return (
        f"Face {photo.face_px:.0f} px (good from {guide.min_face_px} px); sharpness {photo.sharpness:.0f} "
        f"(good from {guide.min_sharpness:.0f}); detector confidence {photo.detection_score:.2f}"
    )


def _status_text(photo: PhotoReview) -> str:
    if photo.outlier:
        return "Check: " + photo.reason
    if photo.used:
        return "In use"
    return "Not used: " + photo.message.split(": ", 1)[-1]


class PersonView(QDialog):
    """A person's photos with their faces, quality and agreement; remove a photo, pick a group photo's face.

    Args:
        controller: the gallery controller.
        name: the person.
        confirm: ask before removing a photo (tests and scripted use turn it off).
    """

    COLUMNS = ("Face", "Photo", "Quality", "Agreement", "Status")

    def __init__(
        self, controller: GalleryController, name: str, parent: QWidget | None = None, *, confirm: bool = True
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"{name}: photos")
        self.setObjectName("PersonView")
        self.resize(860, 560)
        fit_to_screen(self)  # a small laptop at 150 % has 911x512 logical pixels
        self._controller = controller
        self.name = name
        self.confirm = confirm
        self.review: PersonReview | None = None
        self.picker: FacePickerDialog | None = None
        self.last_removed: Any = None
        self._jobs: list[object] = []

        self.summary = QLabel("Reading the photos…")
        self.summary.setObjectName("PersonSummary")
        self.summary.setWordWrap(True)
        self.table = self._build_table()
        self.remove_button = QPushButton("Remove photo…")
        self.remove_button.setToolTip("Move the selected photo to the trash (recoverable)")
        self.remove_button.clicked.connect(lambda _c=False: self.remove_selected())
        self.pick_button = QPushButton("Pick the face…")
        self.pick_button.setToolTip("Choose which face of the selected photo is this person's")
        self.pick_button.clicked.connect(lambda _c=False: self.pick_face())
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.setToolTip("Review the photos again (after editing the folder)")
        self.refresh_button.clicked.connect(lambda _c=False: self.refresh())
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        close.rejected.connect(self.reject)
        row = QHBoxLayout()
        for b in (self.pick_button, self.remove_button, self.refresh_button):
            row.addWidget(b)
        row.addStretch(1)
        row.addWidget(close)
        layout = QVBoxLayout(self)
        layout.addWidget(self.summary)
        layout.addWidget(self.table, 1)
        layout.addLayout(row)
        listen_to_jobs(controller, self._on_finished, self._on_failed)
        self._update_buttons()
        self.refresh()

    def _build_table(self) -> QTableWidget:
        table = QTableWidget(0, len(self.COLUMNS))
        table.setObjectName("PersonPhotos")
        table.setHorizontalHeaderLabels(list(self.COLUMNS))
        table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        table.setIconSize(QSize(FACE_PX, FACE_PX))
        table.verticalHeader().setVisible(False)
        table.verticalHeader().setDefaultSectionSize(FACE_PX + 6)
        header = table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Fixed)
        table.setColumnWidth(0, FACE_PX + 12)
        for col in (1, 2, 3):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(4, QHeaderView.ResizeMode.Stretch)
        table.setWordWrap(True)
        table.itemSelectionChanged.connect(self._update_buttons)
        table.itemDoubleClicked.connect(lambda _item: self.pick_face())
        return table

    # -- state
    def selected(self) -> PhotoReview | None:
        """The review of the selected photo, or None."""
        rows = self.table.selectionModel().selectedRows() if self.table.selectionModel() else []
        if not rows or self.review is None:
            return None
        return self.review.photos[rows[0].row()]

    def select_photo(self, name: str) -> None:
        """Select the row of the photo file ``name``."""
        if self.review is None:
            return
        for row, photo in enumerate(self.review.photos):
            if photo.path.name == name:
                self.table.selectRow(row)

    def _busy(self) -> bool:
        return bool(self._jobs)

    def _update_buttons(self) -> None:
        photo = self.selected()
        free = not self._busy()
        self.remove_button.setEnabled(free and photo is not None)
        self.pick_button.setEnabled(free and photo is not None and photo.faces > 0)
        self.refresh_button.setEnabled(free)

    # -- actions
    @Slot()
    def refresh(self) -> None:
        """Review the person's photos again."""
        self._submit(ReviewPerson(self.name))

    def _submit(self, job: object) -> None:
        self._jobs.append(job)
        self._update_buttons()
        self._controller.submit(job)  # type: ignore[arg-type]

    def remove_selected(self) -> None:
        """Move the selected photo to the trash, after confirming if confirmation is on."""
        photo = self.selected()
        if photo is None:
            return
        if self.confirm:
            answer = QMessageBox.question(
                self,
                "Remove photo",
                f"Remove {photo.path.name} from {self.name}'s photos?\nIt is moved to the trash, not destroyed.",
            )
            if answer != QMessageBox.StandardButton.Yes:
                return
        self._submit(RemovePhoto(str(photo.path), self._controller.use_system_trash))

    def pick_face(self) -> FacePickerDialog | None:
        """Open the face picker for the selected photo."""
        photo = self.selected()
        if photo is None or photo.faces <= 0:
            return None
        picker = FacePickerDialog(self._controller, self.name, str(photo.path), self)
        picker.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        picker.accepted.connect(self.refresh)
        picker.open()
        self.picker = picker
        return picker

    # -- results
    def _take(self, job: object) -> bool:
        """Whether ``job`` is one of this view's (identity: another view's equal job is not)."""
        for i, mine in enumerate(self._jobs):
            if mine is job:
                del self._jobs[i]
                return True
        return False

    @Slot(object)
    def _on_finished(self, result: GalleryJobResult) -> None:
        if not self._take(result.job):
            return
        if isinstance(result.job, ReviewPerson):
            self._show(result.value)
        elif isinstance(result.job, RemovePhoto):
            self.last_removed = result.value
            self.refresh()
        self._update_buttons()

    @Slot(object, object)
    def _on_failed(self, job: object, exc: BaseException) -> None:
        if not self._take(job):
            return
        self.summary.setText(f"Error: {exc}")
        self._update_buttons()

    def _show(self, review: PersonReview) -> None:
        selected = self.selected()
        self.review = review
        self.table.setRowCount(len(review.photos))
        for row, photo in enumerate(review.photos):
            self._fill_row(row, photo)
        self.table.resizeColumnsToContents()
        self.table.setColumnWidth(0, FACE_PX + 12)
        self.summary.setText(self._summary(review))
        if selected is not None:
            self.select_photo(selected.path.name)

    def _fill_row(self, row: int, photo: PhotoReview) -> None:
        face = QTableWidgetItem()
        pixmap = QPixmap()
        if photo.face_jpeg and pixmap.loadFromData(photo.face_jpeg, "JPG"):
            face.setIcon(QIcon(pixmap))
        similarity = "" if photo.similarity is None else f"{photo.similarity:.2f}"
        items = [
            face,
            QTableWidgetItem(photo.path.name),
            QTableWidgetItem(_quality_text(photo)),
            QTableWidgetItem(similarity),
            QTableWidgetItem(_status_text(photo)),
        ]
        items[1].setToolTip(str(photo.path))
        items[2].setToolTip(_quality_tip(photo))
        items[3].setToolTip("Mean similarity of this photo's face to the person's other photos")
        items[4].setToolTip(photo.reason or photo.message)
        colour = _FLAG if photo.outlier else (_MUTED if not photo.used else None)
        for col, item in enumerate(items):
            if colour is not None and col:
                item.setForeground(QBrush(colour))
            self.table.setItem(row, col, item)

    @staticmethod
    def _summary(review: PersonReview) -> str:
        unused = len(review.photos) - review.used
        text = f"{review.name}: {review.used} photo{'s' if review.used != 1 else ''} in use"
        if unused:
            text += f", {unused} not used"
        if review.median is not None:
            text += f". Photos agree at {review.median:.2f} (recognition threshold {review.threshold:.2f})"
        flagged = review.outliers
        if flagged:
            names = ", ".join(p.path.name for p in flagged)
            text += f". Check {names}: its face does not look like the others."
        pickable = [p.path.name for p in review.photos if p.status in _PICKABLE]
        if pickable:
            text += f" Pick the face in {', '.join(pickable)}."
        return text + ("" if text.endswith(".") else ".")

    def done(self, result: int) -> None:
        """Stop listening to the gallery worker, then close."""
        stop_listening_to_jobs(self._controller, self._on_finished, self._on_failed)
        super().done(result)

    def photo_names(self) -> list[str]:
        """The photo file names listed, in order."""
        return [p.path.name for p in self.review.photos] if self.review else []
