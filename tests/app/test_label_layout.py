"""The face labels' layout: near their faces, never over one another, always inside the picture."""

from __future__ import annotations

import itertools

from app.label_layout import Rect, layout_labels

BOUNDS: Rect = (0.0, 0.0, 640.0, 360.0)


def _overlap(a: Rect, b: Rect) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _inside(r: Rect, bounds: Rect = BOUNDS) -> bool:
    return r[0] >= bounds[0] and r[1] >= bounds[1] and r[2] <= bounds[2] and r[3] <= bounds[3]


def test_labels_of_faces_apart_stay_on_top_of_their_faces() -> None:
    boxes = [(40.0, 100.0, 120.0, 200.0), (300.0, 120.0, 380.0, 220.0)]
    rects = layout_labels(boxes, [(90.0, 20.0), (90.0, 20.0)], BOUNDS)
    assert rects == [(40.0, 80.0, 130.0, 100.0), (300.0, 100.0, 390.0, 120.0)]


def test_overlapping_faces_get_labels_nudged_apart_vertically_in_their_column() -> None:
    # A crowd: five faces whose labels all want the same place.
    boxes = [(100.0 + 8 * i, 100.0 + 3 * i, 170.0 + 8 * i, 180.0 + 3 * i) for i in range(5)]
    sizes = [(120.0, 20.0)] * 5
    rects = layout_labels(boxes, sizes, BOUNDS)
    for a, b in itertools.combinations(rects, 2):
        assert not _overlap(a, b), (a, b)
    assert all(_inside(r) for r in rects)
    # Only moved up or down: each label keeps its face's left edge and its own size.
    assert [r[0] for r in rects] == [b[0] for b in boxes]
    assert all((r[2] - r[0], r[3] - r[1]) == (120.0, 20.0) for r in rects)
    # The first label (the highest face) keeps its own place, on top of its face.
    assert rects[0] == (100.0, 80.0, 220.0, 100.0)


def test_at_the_bottom_of_the_picture_labels_are_pushed_up_and_stay_inside() -> None:
    boxes = [(10.0, 300.0, 90.0, 359.0), (12.0, 302.0, 92.0, 360.0), (14.0, 304.0, 94.0, 360.0)]
    rects = layout_labels(boxes, [(100.0, 24.0)] * 3, BOUNDS)
    assert all(_inside(r) for r in rects)
    for a, b in itertools.combinations(rects, 2):
        assert not _overlap(a, b), (a, b)


def test_labels_at_the_top_and_right_edges_are_kept_inside() -> None:
    boxes = [(600.0, 2.0, 640.0, 50.0), (605.0, 4.0, 640.0, 52.0)]
    rects = layout_labels(boxes, [(100.0, 20.0)] * 2, BOUNDS)
    assert all(_inside(r) for r in rects)
    assert not _overlap(*rects)
    # No room above the faces: the labels go under them.
    assert min(r[1] for r in rects) >= 50.0
