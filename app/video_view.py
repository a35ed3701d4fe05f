"""The live video widget: draws the latest frame and, over it, a box, name and similarity per face.

The overlay is drawn here from the :class:`core.types.FrameResult`, never burned into the frame by the
engine, so display options (boxes, landmarks, mirror) change instantly and cost the worker nothing.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QImage, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

from app.label_layout import layout_labels
from core.settings import DisplaySettings
from core.types import Face, FrameResult

__all__ = ["KNOWN_COLOUR", "TENTATIVE_COLOUR", "UNKNOWN_COLOUR", "VideoView", "face_label", "similarity_text"]

KNOWN_COLOUR = QColor("#2ecc71")
UNKNOWN_COLOUR = QColor("#e74c3c")
TENTATIVE_COLOUR = QColor("#f1c40f")
# A track younger than this many frames without a name is drawn as "tentative", not yet "unknown".
TENTATIVE_AGE = 3


def similarity_text(similarity: float) -> str:
    """A similarity with two decimals; a value that rounds to zero reads "0.00", never "-0.00"."""
    text = f"{similarity:.2f}"
    # A cosine a hair below zero is no resemblance at all; the minus sign would only puzzle.
    return "0.00" if text == "-0.00" else text


def face_label(face: Face, display: DisplaySettings) -> str:
    """The text drawn above a face: name (or "Unknown #12"), similarity, track id, as the display asks."""
    parts = [face.label]
    if display.show_similarity:
        parts.append(similarity_text(face.similarity))
    if display.show_track_ids:
        parts.append(f"#{face.track_id}")
    return "  ".join(parts)


def _qimage(frame: np.ndarray) -> QImage:
    """Wrap a BGR ``uint8`` frame without copying (the caller keeps ``frame`` alive)."""
    if frame.ndim == 2:
        h, w = frame.shape
        return QImage(frame.data, w, h, frame.strides[0], QImage.Format.Format_Grayscale8)
    h, w = frame.shape[:2]
    if not frame.flags["C_CONTIGUOUS"]:
        frame = np.ascontiguousarray(frame)
    return QImage(frame.data, w, h, frame.strides[0], QImage.Format.Format_BGR888)


class VideoView(QWidget):
    """Shows the latest frame scaled to fit, with the faces' overlay. Call :meth:`show_result`."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("VideoView")
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(320, 180)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        self._result: FrameResult | None = None
        self._frame: np.ndarray | None = None  # keeps the QImage's memory alive
        self._image: QImage | None = None
        self._display = DisplaySettings()
        self._message = "No video"
        self.frames_shown = 0

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt naming
        """The preferred size: 960 x 540 (16:9)."""
        return QSize(960, 540)

    @property
    def result(self) -> FrameResult | None:
        """The frame result shown now, or None when the view is cleared."""
        return self._result

    def set_display(self, display: DisplaySettings) -> None:
        """Draw the overlay with new display settings."""
        self._display = display
        self.update()

    def set_message(self, text: str) -> None:
        """Text drawn when there is no frame to show (or over a frozen one)."""
        self._message = text
        self.update()

    def clear(self, message: str = "No video") -> None:
        """Drop the frame and show ``message`` instead."""
        self._result = None
        self._frame = None
        self._image = None
        self._message = message
        self.update()

    def show_result(self, result: FrameResult) -> None:
        """Show a processed frame and its faces, and count it."""
        self._result = result
        self._frame = result.frame
        self._image = _qimage(result.frame)
        self._message = ""
        self.frames_shown += 1
        self.update()

    def frame_rect(self) -> QRectF | None:
        """Where the current frame is drawn in the widget (None when no frame is shown)."""
        if self._image is None:
            return None
        return self._target_rect(self._image.width(), self._image.height())

    def _target_rect(self, w: int, h: int) -> QRectF:
        scale = min(self.width() / w, self.height() / h)
        tw, th = w * scale, h * scale
        return QRectF((self.width() - tw) / 2, (self.height() - th) / 2, tw, th)

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 - Qt naming
        """Draw the frame scaled to fit with the faces' overlay, or the message when there is no frame."""
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor("#111418"))
        image = self._image
        if image is None or self._result is None:
            painter.setPen(QColor("#9aa4ad"))
            font = QFont(painter.font())
            font.setPointSizeF(font.pointSizeF() * 1.3)
            painter.setFont(font)
            painter.drawText(
                self.rect(), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self._message
            )
            painter.end()
            return
        w, h = image.width(), image.height()
        target = self._target_rect(w, h)
        mirror = self._display.mirror
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        if mirror:
            painter.save()
            painter.translate(target.x() + target.width(), target.y())
            painter.scale(-1, 1)
            painter.drawImage(QRectF(0, 0, target.width(), target.height()), image)
            painter.restore()
        else:
            painter.drawImage(target, image)
        self._draw_faces(painter, target, w, mirror)
        if self._message:
            painter.setPen(QColor("#ffffff"))
            painter.drawText(self.rect().adjusted(8, 8, -8, -8), Qt.AlignmentFlag.AlignTop, self._message)
        painter.end()

    def _draw_faces(self, painter: QPainter, target: QRectF, frame_w: int, mirror: bool) -> None:
        result = self._result
        if result is None:
            return
        display = self._display
        scale = target.width() / frame_w
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        font = QFont(painter.font())
        font.setBold(True)
        painter.setFont(font)
        metrics = painter.fontMetrics()

        def map_x(x: float) -> float:
            return target.x() + ((frame_w - x) if mirror else x) * scale

        def map_y(y: float) -> float:
            return target.y() + y * scale

        boxes: list[QRectF] = []
        for face in result.faces:
            colour = _colour(face)
            x1, y1, x2, y2 = (float(v) for v in face.detection.box[:4])
            left, right = sorted((map_x(x1), map_x(x2)))
            box = QRectF(QPointF(left, map_y(y1)), QPointF(right, map_y(y2)))
            boxes.append(box)
            if display.show_boxes:
                painter.setPen(QPen(colour, 2.5))
                painter.setBrush(Qt.BrushStyle.NoBrush)
                painter.drawRect(box)
            if display.show_landmarks:
                painter.setPen(Qt.PenStyle.NoPen)
                painter.setBrush(colour)
                for lx, ly in np.asarray(face.detection.landmarks, dtype=np.float32).reshape(-1, 2):
                    painter.drawEllipse(QPointF(map_x(float(lx)), map_y(float(ly))), 2.5, 2.5)
        # Labels after every box, so that no box is drawn over a label; nudged apart in a crowd.
        texts = [face_label(face, display) for face in result.faces]
        rects = layout_labels(
            [(b.left(), b.top(), b.right(), b.bottom()) for b in boxes],
            [(metrics.horizontalAdvance(text) + 10, metrics.height() + 4) for text in texts],
            (target.left(), target.top(), target.right(), target.bottom()),
        )
        for face, text, (left, top, right, bottom) in zip(result.faces, texts, rects, strict=True):
            label_rect = QRectF(left, top, right - left, bottom - top)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(_colour(face))
            painter.drawRoundedRect(label_rect, 3, 3)
            painter.setPen(QColor("#0b0d10"))
            painter.drawText(label_rect, Qt.AlignmentFlag.AlignCenter, text)


def _colour(face: Face) -> QColor:
    """Known, tentative (a young unnamed track) or unknown."""
    if face.person is not None:
        return KNOWN_COLOUR
    return TENTATIVE_COLOUR if face.track_age < TENTATIVE_AGE else UNKNOWN_COLOUR
