"""Where the face labels go in a crowded frame: each near its face, none over another, all inside the picture.

Plain geometry (no Qt), so that it is tested on its own. As in Frigate, labels are moved vertically only:
the label of a face stays in that face's column, so the eye finds it.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["Rect", "layout_labels"]

# (left, top, right, bottom), in any one unit (the widget's pixels).
Rect = tuple[float, float, float, float]


def _overlaps(a: Rect, b: Rect, gap: float) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] + gap and b[1] < a[3] + gap


def _first_overlap(rect: Rect, placed: Sequence[Rect], gap: float) -> Rect | None:
    return next((p for p in placed if _overlaps(rect, p, gap)), None)


def _slide(rect: Rect, placed: Sequence[Rect], bounds: Rect, gap: float, down: bool) -> Rect | None:
    """Move ``rect`` down (or up) past every placed label it meets; None when it leaves ``bounds``."""
    left, top, right, bottom = rect
    height = bottom - top
    for _ in range(len(placed) + 1):
        other = _first_overlap((left, top, right, top + height), placed, gap)
        if other is None:
            return left, top, right, top + height
        top = other[3] + gap if down else other[1] - gap - height
        if top < bounds[1] or top + height > bounds[3]:
            return None
    return None


def _wanted(box: Rect, size: tuple[float, float], bounds: Rect) -> Rect:
    """A label's own place: on top of its box (below it when there is no room above), inside ``bounds``."""
    width, height = size
    left = min(max(box[0], bounds[0]), max(bounds[0], bounds[2] - width))
    top = box[1] - height if box[1] - height >= bounds[1] else box[3]
    top = min(max(top, bounds[1]), max(bounds[1], bounds[3] - height))
    return left, top, left + width, top + height


def layout_labels(
    boxes: Sequence[Rect], sizes: Sequence[tuple[float, float]], bounds: Rect, gap: float = 1.0
) -> list[Rect]:
    """One rectangle per label, in the order of ``boxes``, so that labels do not overlap.

    Each label wants to sit on top of its face box (below it at the top of the picture), left-aligned
    with it and inside ``bounds``. Labels are placed from the top of the picture down; one that would
    cover a label already placed is pushed down below it, or, when that would leave the picture, up
    above it. Only when neither fits (more labels than the picture has room for) does it stay where it
    wanted to be.

    Args:
        boxes: the faces' boxes, ``(left, top, right, bottom)``.
        sizes: each label's ``(width, height)``.
        bounds: the picture's rectangle; every label stays inside it (as far as it fits).
        gap: the space kept between two labels.

    Returns:
        each label's rectangle, ``(left, top, right, bottom)``.
    """
    wanted = [_wanted(box, size, bounds) for box, size in zip(boxes, sizes, strict=True)]
    order = sorted(range(len(wanted)), key=lambda i: (wanted[i][1], wanted[i][0]))
    placed: list[Rect] = []
    out: dict[int, Rect] = {}
    for i in order:
        rect = (
            _slide(wanted[i], placed, bounds, gap, down=True)
            or _slide(wanted[i], placed, bounds, gap, down=False)
            or wanted[i]
        )
        placed.append(rect)
        out[i] = rect
    return [out[i] for i in range(len(wanted))]
