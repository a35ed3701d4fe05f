"""What the video view draws, read back from its pixels (``VideoView.grab()``), not from its state."""

from __future__ import annotations

import numpy as np
from PySide6.QtGui import QColor

from app.video_view import KNOWN_COLOUR, TENTATIVE_AGE, TENTATIVE_COLOUR, UNKNOWN_COLOUR, VideoView
from core.settings import DisplaySettings
from core.types import Detection, Face, FrameResult, Match, StageTimings

LANDMARKS = np.array([[60, 60], [100, 60], [80, 80], [65, 100], [95, 100]], np.float32)


def landmark_dots_drawn(view: VideoView) -> list[bool]:
    """For every landmark of every face shown, whether the view's pixels show its dot there."""
    image = view.grab().toImage()
    result, target = view.result, view.frame_rect()
    assert result is not None and target is not None
    scale = target.width() / result.frame.shape[1]
    drawn = []
    for face in result.faces:
        if face.person:
            colour = KNOWN_COLOUR
        else:
            colour = TENTATIVE_COLOUR if face.track_age < TENTATIVE_AGE else UNKNOWN_COLOUR
        for x, y in np.asarray(face.detection.landmarks).reshape(-1, 2):
            pixel = image.pixelColor(int(target.x() + x * scale), int(target.y() + y * scale))
            drawn.append(_close(pixel, colour))
    return drawn


def _close(a: QColor, b: QColor, tolerance: int = 12) -> bool:
    return all(abs(u - v) <= tolerance for u, v in zip(a.getRgb()[:3], b.getRgb()[:3], strict=True))


def _result(person: str | None) -> FrameResult:
    frame = np.full((180, 320, 3), 90, np.uint8)  # a grey picture: no colour of the overlay in it
    face = Face(
        Detection(np.array([40, 40, 120, 130], np.float32), 0.9, LANDMARKS),
        track_id=1,
        match=Match(person, 0.6),
        track_age=30,
    )
    return FrameResult(frame=frame, frame_index=0, timestamp=0.0, faces=(face,), timings=StageTimings())


def test_landmarks_are_drawn_only_when_asked_for(qtbot) -> None:
    view = VideoView()
    qtbot.addWidget(view)
    view.resize(640, 360)
    view.show_result(_result("obama"))
    assert not any(landmark_dots_drawn(view))
    view.set_display(DisplaySettings(show_landmarks=True))
    assert all(landmark_dots_drawn(view))
    # An unknown face is drawn in the unknown colour.
    view.show_result(_result(None))
    assert all(landmark_dots_drawn(view))


def _label_pixels(view: VideoView, colour: QColor) -> int:
    """How many pixels of the view show ``colour`` (the labels' background; boxes are switched off)."""
    image = view.grab().toImage()
    return sum(
        _close(image.pixelColor(x, y), colour, 8)
        for y in range(0, image.height())
        for x in range(0, image.width())
    )


def test_labels_of_overlapping_faces_are_all_readable(qtbot) -> None:
    view = VideoView()
    qtbot.addWidget(view)
    view.resize(640, 360)
    view.set_display(DisplaySettings(show_boxes=False))
    frame = np.full((180, 320, 3), 90, np.uint8)
    known = Face(
        Detection(np.array([40, 40, 120, 130], np.float32), 0.9, LANDMARKS),
        1,
        Match("obama", 0.6),
        track_age=30,
    )
    unknown = Face(
        Detection(np.array([44, 42, 124, 132], np.float32), 0.9, LANDMARKS),
        2,
        Match(None, 0.2),
        track_age=30,
        unknown_id=3,
    )

    def show(*faces: Face) -> tuple[int, int]:
        view.show_result(FrameResult(frame=frame, frame_index=0, timestamp=0.0, faces=faces))
        return _label_pixels(view, KNOWN_COLOUR), _label_pixels(view, UNKNOWN_COLOUR)

    alone_known, _ = show(known)
    _, alone_unknown = show(unknown)
    assert alone_known > 500 and alone_unknown > 500
    # Together, neither label hides the other: each shows as many pixels as when drawn alone.
    both_known, both_unknown = show(known, unknown)
    assert both_known >= 0.97 * alone_known and both_unknown >= 0.97 * alone_unknown
    # The unknown face is shown by its number.
    from app.video_view import face_label

    assert face_label(unknown, DisplaySettings()).startswith("Unknown #3")


def test_a_similarity_that_rounds_to_zero_reads_0_00_never_minus(qtbot) -> None:
    from app.people_seen import face_tooltip
    from app.video_view import face_label, similarity_text

    assert similarity_text(-0.004) == "0.00" and similarity_text(-0.0) == "0.00"
    assert similarity_text(-0.006) == "-0.01" and similarity_text(0.5) == "0.50"
    box = Detection(np.array([40, 40, 120, 130], np.float32), 0.9, LANDMARKS)
    unknown = Face(box, 2, Match(None, -0.003), track_age=30, unknown_id=3)
    assert face_label(unknown, DisplaySettings(show_similarity=True)) == "Unknown #3  0.00"
    known = Face(box, 1, Match("obama", -0.001), track_age=30)
    assert "similarity 0.00." in face_tooltip(known)
