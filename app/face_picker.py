"""Pick the person's face in a group photo: the faces are shown on the photo and as crops; click one.

The faces are found by the gallery worker (:class:`app.gallery_worker.DetectFaces`); the choice is sent
back as :class:`app.gallery_worker.ChooseFace`, which keeps it beside the photo (``<photo>.face.json``)
and embeds that face.
"""

from __future__ import annotations

import logging
from typing import Any

from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal, Slot
from PySide6.QtGui import QColor, QIcon, QMouseEvent, QPainter, QPen, QPixmap
from PySide6.QtWidgets import (
    QButtonGroup,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.fit import fit_to_screen
from app.gallery_jobs import listen_to_jobs, stop_listening_to_jobs
from app.gallery_worker import ChooseFace, DetectFaces, FaceCandidates, GalleryController, GalleryJobResult
from app.video_view import _qimage

__all__ = ["FacePickerDialog", "PhotoWithFaces"]

log = logging.getLogger(__name__)

CROP_PX = 96
_BOX = QColor("#f1c40f")
_CHOSEN = QColor("#2ecc71")


class PhotoWithFaces(QWidget):
    """The photo scaled to fit, each face boxed and numbered; a click on a face chooses it.

    Signals:
        face_clicked(int): the index of the face clicked.
    """

    face_clicked = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("PhotoWithFaces")
        self.setMinimumSize(360, 260)
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self._pixmap = QPixmap()
        self._boxes: list[QRectF] = []  # in preview pixels
        self.chosen = -1

    def set_photo(self, candidates: FaceCandidates) -> None:
        """Show the photo and its faces."""
        self._pixmap = QPixmap.fromImage(_qimage(candidates.preview).copy())
        s = candidates.scale
        self._boxes = [
            QRectF(x1 * s, y1 * s, (x2 - x1) * s, (y2 - y1) * s) for x1, y1, x2, y2 in candidates.boxes
        ]
        self.update()

    def set_chosen(self, index: int) -> None:
        """Draw face ``index`` as the chosen one."""
        self.chosen = index
        self.update()

    def _fit(self) -> tuple[float, QPointF]:
        if self._pixmap.isNull():
            return 1.0, QPointF()
        scale = min(self.width() / self._pixmap.width(), self.height() / self._pixmap.height())
        offset = QPointF(
            (self.width() - self._pixmap.width() * scale) / 2,
            (self.height() - self._pixmap.height() * scale) / 2,
        )
        return scale, offset

    def face_at(self, point: QPointF) -> int:
        """The index of the face under a widget point, or -1 (the smallest box wins where they overlap)."""
        scale, offset = self._fit()
        x, y = (point.x() - offset.x()) / scale, (point.y() - offset.y()) / scale
        hits = [(r.width() * r.height(), i) for i, r in enumerate(self._boxes) if r.contains(QPointF(x, y))]
        return min(hits)[1] if hits else -1

    def widget_center(self, index: int) -> QPointF:
        """The widget point at the centre of face ``index`` (for tests and accessibility)."""
        scale, offset = self._fit()
        c = self._boxes[index].center()
        return QPointF(c.x() * scale + offset.x(), c.y() * scale + offset.y())

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt naming
        """Choose the face under the click."""
        index = self.face_at(event.position())
        if index >= 0:
            self.face_clicked.emit(index)
        super().mousePressEvent(event)

    def paintEvent(self, _event: Any) -> None:  # noqa: N802 - Qt naming
        """The photo, then each face's box and number (drawn at screen size, whatever the photo's)."""
        painter = QPainter(self)
        if self._pixmap.isNull():
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, "Finding the faces…")
            return
        scale, offset = self._fit()
        target = QRectF(offset.x(), offset.y(), self._pixmap.width() * scale, self._pixmap.height() * scale)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        painter.drawPixmap(target, self._pixmap, QRectF(self._pixmap.rect()))
        metrics = painter.fontMetrics()
        for i, box in enumerate(self._boxes):
            colour = _CHOSEN if i == self.chosen else _BOX
            rect = QRectF(
                box.x() * scale + offset.x(),
                box.y() * scale + offset.y(),
                box.width() * scale,
                box.height() * scale,
            )
            painter.setPen(QPen(colour, 3 if i == self.chosen else 2))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawRect(rect)
            text = str(i + 1)
            tag = QRectF(rect.x(), rect.y(), metrics.horizontalAdvance(text) + 10, metrics.height() + 4)
            painter.fillRect(tag, colour)
            painter.setPen(QColor("#000000"))
            painter.drawText(tag, Qt.AlignmentFlag.AlignCenter, text)
        painter.end()


class FacePickerDialog(QDialog):
    """Show the faces of one photo; the one the user clicks becomes the person's face in that photo.

    Args:
        controller: the gallery controller (finds the faces, saves the choice).
        name: the person the photo belongs to.
        path: the photo (in the person's folder, or a file to add).
    """

    def __init__(
        self, controller: GalleryController, name: str, path: str, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Pick {name}'s face")
        self.setObjectName("FacePickerDialog")
        self.resize(820, 620)
        fit_to_screen(self)  # a small laptop at 150 % has 911x512 logical pixels
        self._controller = controller
        self.name, self.path = name, path
        self.candidates: FaceCandidates | None = None
        self.result_value: Any = None
        self._job: DetectFaces | ChooseFace | None = DetectFaces(path)

        self.hint = QLabel(f"Finding the faces in {path.rsplit('/', 1)[-1]}…")
        self.hint.setObjectName("FacePickerHint")
        self.hint.setWordWrap(True)
        self.photo = PhotoWithFaces()
        self.photo.face_clicked.connect(self.choose)
        self.crops = QHBoxLayout()
        self.crops.addStretch(1)
        self.crop_group = QButtonGroup(self)
        self.crop_group.setExclusive(True)
        self.crop_group.idClicked.connect(self.choose)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Use this face")
        self.buttons.accepted.connect(self.use_choice)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.hint)
        layout.addWidget(self.photo, 1)
        layout.addLayout(self.crops)
        layout.addWidget(self.buttons)
        listen_to_jobs(controller, self._on_finished, self._on_failed)
        self._update_ok()
        controller.submit(self._job)

    @property
    def chosen(self) -> int:
        """The index of the chosen face (largest first), or -1."""
        return self.photo.chosen

    def _update_ok(self) -> None:
        ok = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        ok.setEnabled(self._job is None and self.chosen >= 0)

    @Slot(int)
    def choose(self, index: int) -> None:
        """Make face ``index`` the chosen one (the photo's box and the crop button both show it)."""
        if self.candidates is None or not 0 <= index < len(self.candidates.boxes):
            return
        self.photo.set_chosen(index)
        button = self.crop_group.button(index)
        if button is not None:
            button.setChecked(True)
        self.hint.setText(f"Face {index + 1} chosen. Use it as {self.name}'s face in this photo?")
        self._update_ok()

    @Slot()
    def use_choice(self) -> None:
        """Send the chosen face to the gallery; the dialog closes when it is in use."""
        if self.candidates is None or self.chosen < 0 or self._job is not None:
            return
        self._job = ChooseFace(self.name, self.path, self.candidates.boxes[self.chosen])
        self.hint.setText(f"Adding face {self.chosen + 1} to {self.name}…")
        self._update_ok()
        self._controller.submit(self._job)

    def _crop_button(self, i: int, pixmap: QPixmap) -> QWidget:
        """Face ``i``'s crop as a checkable button, its caption on a line of its own below it."""
        button = QToolButton()
        button.setObjectName(f"FaceCrop{i + 1}")
        button.setCheckable(True)
        # Scaled here to the crop size in this screen's pixels: sharp at 150 %, one size for tall and wide.
        ratio = self.devicePixelRatioF()
        side = round(CROP_PX * ratio)
        icon = pixmap.scaled(
            side, side, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation
        )
        icon.setDevicePixelRatio(ratio)
        button.setIcon(QIcon(icon))
        button.setIconSize(QSize(CROP_PX, CROP_PX))
        button.setText(f"Face {i + 1}")
        button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonIconOnly)
        button.setFixedSize(CROP_PX + 16, CROP_PX + 16)
        # The border is always there (clear until checked) so that checking never moves the crop.
        button.setStyleSheet(
            f"QToolButton {{ border: 3px solid transparent; }} QToolButton:checked {{ border-color: {_CHOSEN.name()}; }}"
        )
        button.setToolTip(f"Face {i + 1}")
        self.crop_group.addButton(button, i)
        # The caption is a label of its own, not the button's text: a text under the icon is clipped when
        # the font grows (150 %) and the button does not.
        caption = QLabel(f"Face {i + 1}")
        caption.setAlignment(Qt.AlignmentFlag.AlignHCenter)
        caption.setBuddy(button)
        cell = QWidget()
        column = QVBoxLayout(cell)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(2)
        column.addWidget(button, 0, Qt.AlignmentFlag.AlignHCenter)
        column.addWidget(caption)
        cell.show()  # added to a layout of a dialog already shown: not shown by itself
        return cell

    def _show_candidates(self, candidates: FaceCandidates) -> None:
        self.candidates = candidates
        self.photo.set_photo(candidates)
        for i, jpeg in enumerate(candidates.crops):
            pixmap = QPixmap()
            pixmap.loadFromData(jpeg, "JPG")
            self.crops.insertWidget(self.crops.count() - 1, self._crop_button(i, pixmap))
        n = len(candidates.boxes)
        if n == 0:
            self.hint.setText("No face was found in this photo: it cannot be used.")
        else:
            self.hint.setText(
                f"{n} face{'s' if n != 1 else ''} found. Click {self.name}'s face, on the photo or below."
            )
            if n == 1:
                self.choose(0)

    @Slot(object)
    def _on_finished(self, result: GalleryJobResult) -> None:
        if self._job is None or result.job is not self._job:
            return
        job, self._job = self._job, None
        if isinstance(job, DetectFaces):
            self._show_candidates(result.value)
        elif result.value.ok:
            self.result_value = result.value
            self.accept()
            return
        else:
            self.result_value = result.value
            self.hint.setText(f"Not used: {result.value.message}")
        self._update_ok()

    @Slot(object, object)
    def _on_failed(self, job: object, exc: BaseException) -> None:
        if self._job is None or job is not self._job:
            return
        self._job = None
        self.result_value = exc
        self.hint.setText(f"This photo cannot be used: {exc}")
        self._update_ok()

    def done(self, result: int) -> None:
        """Stop listening to the gallery worker, then close."""
        stop_listening_to_jobs(self._controller, self._on_finished, self._on_failed)
        super().done(result)
