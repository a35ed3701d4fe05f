"""Guided enrolment from the camera: shows the live picture, says what is wrong, counts good shots.

Capture, detection and the shot judgement (:class:`core.enrollment.CaptureGuide`) run in
:class:`app.gallery_worker.EnrollCaptureController`'s thread; saving goes through the gallery worker.
"""

from __future__ import annotations

import logging
from typing import Any

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QPainter, QPen, QPixmap
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.gallery_worker import AddImages, EnrollCaptureController, EnrollFrame, GalleryController
from app.video_view import _qimage
from core.settings import Settings

__all__ = ["EnrollDialog"]

log = logging.getLogger(__name__)

TARGET_SHOTS = 8


class EnrollDialog(QDialog):
    """Take good shots of one person with the camera and add them to the gallery.

    Args:
        settings: the live settings (camera, models).
        gallery: the gallery controller that saves the shots.
        name: the person, if already chosen in the gallery tab.
    """

    def __init__(
        self,
        settings: Settings,
        gallery: GalleryController,
        *,
        name: str = "",
        target_shots: int = TARGET_SHOTS,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Enrol from the camera")
        self.setObjectName("EnrollDialog")
        self._settings = settings
        self._gallery = gallery
        self._target = target_shots
        self._capture: EnrollCaptureController | None = None
        self.shots: list[Any] = []
        self.frames_seen = 0

        self.name_edit = QLineEdit(name)
        self.name_edit.setPlaceholderText("Person's name")
        self.name_edit.textChanged.connect(lambda _text: self._update_save())
        self.preview = QLabel("Opening the camera…")
        self.preview.setObjectName("EnrollPreview")
        self.preview.setMinimumSize(480, 300)
        self.preview.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.hint = QLabel("Look at the camera; turn your head a little between shots.")
        self.hint.setObjectName("EnrollHint")
        self.hint.setWordWrap(True)
        self.counter = QProgressBar()
        self.counter.setRange(0, target_shots)
        self.counter.setFormat("%v of %m good shots")
        self.restart_button = QPushButton("Start again")
        self.restart_button.setToolTip("Forget the shots taken and capture again")
        self.restart_button.clicked.connect(self.start_capture)

        form = QFormLayout()
        form.addRow("Name", self.name_edit)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel
        )
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        self.buttons.addButton(self.restart_button, QDialogButtonBox.ButtonRole.ResetRole)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.preview, 1)
        layout.addWidget(self.hint)
        layout.addWidget(self.counter)
        layout.addWidget(self.buttons)
        self._update_save()

    def start_capture(self) -> None:
        """Start a fresh capture from the camera, discarding any shots taken so far."""
        self._stop_capture()
        self.shots = []
        self.counter.setValue(0)
        capture = EnrollCaptureController(self._settings, self._target, self)
        capture.frame_ready.connect(self._on_frame)
        capture.finished_shots.connect(self._on_shots)
        capture.error.connect(self._on_error)
        self._capture = capture
        capture.start()

    def _stop_capture(self) -> None:
        if self._capture is not None:
            self.shots = list(self._capture.shots()) or self.shots
            self._capture.stop()
            self._capture.deleteLater()
            self._capture = None

    def _on_frame(self, frame: EnrollFrame) -> None:
        self.frames_seen += 1
        image = _qimage(frame.image).copy()
        painter = QPainter(image)
        colour = QColor("#2ecc71") if frame.verdict.accepted else QColor("#f1c40f")
        painter.setPen(QPen(colour, max(2, image.width() // 200)))
        for x1, y1, x2, y2 in frame.boxes:
            painter.drawRect(QRectF(x1, y1, x2 - x1, y2 - y1))
        painter.end()
        pixmap = QPixmap.fromImage(image).scaled(
            self.preview.size(),
            Qt.AspectRatioMode.KeepAspectRatio,
            Qt.TransformationMode.SmoothTransformation,
        )
        self.preview.setPixmap(pixmap)
        self.hint.setText(frame.verdict.message)
        self.counter.setValue(frame.shots)
        self._update_save(frame.shots)

    def _on_shots(self, shots: list[Any]) -> None:
        self.shots = list(shots)
        self.counter.setValue(len(shots))
        if len(shots) >= self._target:
            self.hint.setText(f"{len(shots)} good shots. Save them, or start again.")
        self._update_save(len(shots))

    def _on_error(self, exc: BaseException) -> None:
        self.preview.setText("")
        self.hint.setText(f"The camera cannot be used: {exc}")

    def _update_save(self, count: int | None = None) -> None:
        n = len(self.shots) if count is None else count
        self.buttons.button(QDialogButtonBox.StandardButton.Save).setEnabled(
            n > 0 and bool(self.name_edit.text().strip())
        )

    def accept(self) -> None:
        """Stop the capture and, if there are shots and a name, add them to the gallery before closing."""
        self._stop_capture()
        name = self.name_edit.text().strip()
        if self.shots and name:
            self._gallery.submit(AddImages(name, tuple(self.shots)))
        super().accept()

    def reject(self) -> None:
        """Stop the capture and close without enrolling anything."""
        self._stop_capture()
        super().reject()

    def closeEvent(self, event: Any) -> None:  # noqa: N802 - Qt naming
        """Stop the capture before the dialog closes."""
        self._stop_capture()
        super().closeEvent(event)
